"""Lifecycle stages from order days: each stage, the threshold edges, won-back gaps, settings checks."""

from __future__ import annotations

import pytest

from shequn.audience.lifecycle import Thresholds, check_settings, lifecycle_stage
from shequn.core.errors import ValidationFailed

T = Thresholds(new_days=30, active_days=90, lapsed_days=180)
TODAY = 20_000


def stage(*ages: int, limits: Thresholds = T) -> str | None:
    """The stage of a customer who ordered this many days ago."""
    return lifecycle_stage([TODAY - a for a in ages], today=TODAY, thresholds=limits)


def test_no_orders_has_no_stage() -> None:
    assert stage() is None


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        ((0,), "new"),
        ((29,), "new"),  # within 30 days: today and the 29 before
        ((30,), "active"),
        ((89,), "active"),
        ((90,), "at_risk"),
        ((179,), "at_risk"),
        ((180,), "lapsed"),
        ((2000,), "lapsed"),
        ((5, 40), "active"),  # a repeat buyer whose first order is older than 30 days
        ((5, 20), "new"),  # several orders, all recent: still new
        ((100, 150), "at_risk"),
    ],
)
def test_stages_and_their_edges(ages: tuple[int, ...], expected: str) -> None:
    assert stage(*ages) == expected


def test_won_back_needs_a_recent_order_after_a_long_gap() -> None:
    assert stage(10, 190) == "won_back"  # gap of exactly lapsed_days counts
    assert stage(10, 189) == "active"  # one day short of the gap
    assert stage(89, 400) == "won_back"
    assert stage(90, 400) == "at_risk"  # the return itself is no longer recent
    assert stage(0, 300) == "won_back"  # won back beats new: the first order is old
    # Only the gap before the last order counts, and days are distinct: two orders today are one day.
    assert stage(10, 20, 400) == "active"
    assert stage(10, 10, 400) == "won_back"


def test_thresholds_come_from_the_settings() -> None:
    short = Thresholds(new_days=7, active_days=14, lapsed_days=28)
    assert stage(10, limits=short) == "active"
    assert stage(20, limits=short) == "at_risk"
    assert stage(3, 40, limits=short) == "won_back"
    equal = Thresholds(new_days=30, active_days=30, lapsed_days=30)
    assert [stage(a, limits=equal) for a in (29, 30)] == ["new", "lapsed"]


def test_order_of_input_does_not_matter() -> None:
    days = [TODAY - 10, TODAY - 400, TODAY - 200]
    assert lifecycle_stage(days, today=TODAY, thresholds=T) == lifecycle_stage(sorted(days), today=TODAY, thresholds=T)


def _settings(**changes: int) -> dict[str, int]:
    base = {
        "rfm_window_days": 365,
        "interest_half_life_days": 90,
        "lifecycle_new_days": 30,
        "lifecycle_active_days": 90,
        "lifecycle_lapsed_days": 180,
    }
    return {**base, **changes}


def test_settings_checks_name_the_fields() -> None:
    check_settings(_settings())
    check_settings(_settings(lifecycle_new_days=90, lifecycle_active_days=90, lifecycle_lapsed_days=90))
    with pytest.raises(ValidationFailed) as bad:
        check_settings(_settings(rfm_window_days=6, interest_half_life_days=3651))
    assert [d["field"] for d in bad.value.details] == ["rfm_window_days", "interest_half_life_days"]
    with pytest.raises(ValidationFailed) as bad:
        check_settings(_settings(lifecycle_new_days=100))
    assert [d["field"] for d in bad.value.details] == ["lifecycle_new_days"]
    with pytest.raises(ValidationFailed) as bad:
        check_settings(_settings(lifecycle_lapsed_days=60))
    assert [d["field"] for d in bad.value.details] == ["lifecycle_active_days"]
    with pytest.raises(ValidationFailed):
        check_settings(_settings(rfm_window_days=True))  # type: ignore[arg-type]
