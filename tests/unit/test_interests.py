"""Interest scores: purchase days weigh 3, engagements 1, halving every half-life."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.audience.interests import (
    MIN_SCORE,
    Engagement,
    decay,
    interest_score,
    interest_tag_name,
)

TODAY = 20_000


def test_decay_halves_at_each_half_life() -> None:
    assert decay(0, 90) == 1.0
    assert decay(90, 90) == pytest.approx(0.5)
    assert decay(180, 90) == pytest.approx(0.25)
    assert decay(45, 90) == pytest.approx(math.sqrt(0.5))
    assert decay(-5, 90) == 1.0  # a day ahead of ours (client clocks) counts as today


def test_purchase_days_weigh_three_whatever_the_quantity() -> None:
    bought = [Engagement("category", TODAY, count=12)]
    assert interest_score(bought, today=TODAY, half_life_days=90) == 3.0
    assert interest_score([Engagement("category", TODAY - 90)], today=TODAY, half_life_days=90) == pytest.approx(1.5)


def test_engagements_weigh_one_each() -> None:
    read = [Engagement("engage", TODAY, count=2), Engagement("engage", TODAY - 30, count=1)]
    assert interest_score(read, today=TODAY, half_life_days=30) == pytest.approx(2.5)


def test_a_single_purchase_stays_an_interest_for_about_one_and_a_half_half_lives() -> None:
    def score(age: int) -> float:
        return interest_score([Engagement("category", TODAY - age)], today=TODAY, half_life_days=90)

    limit = 90 * math.log2(3)  # 3 × 0.5^(age / 90) = 1
    assert score(math.floor(limit)) >= MIN_SCORE > score(math.ceil(limit))
    assert interest_score([], today=TODAY, half_life_days=90) == 0.0


@given(
    st.lists(st.tuples(st.sampled_from(["category", "engage"]), st.integers(0, 3000), st.integers(1, 50)), max_size=20),
    st.integers(1, 3650),
    st.integers(1, 400),
)
def test_scores_only_fade_with_time(rows: list[tuple[str, int, int]], half_life: int, later: int) -> None:
    events = [Engagement(kind, TODAY - age, n) for kind, age, n in rows]
    now = interest_score(events, today=TODAY, half_life_days=half_life)
    after = interest_score(events, today=TODAY + later, half_life_days=half_life)
    assert 0.0 <= after <= now + 1e-9
    # Exactly one half-life later, everything weighs half as much.
    assert interest_score(events, today=TODAY + half_life, half_life_days=half_life) == pytest.approx(now / 2)


def test_tag_names_fit_the_name_limit() -> None:
    assert interest_tag_name("绿茶") == "兴趣·绿茶"
    assert len(interest_tag_name("长" * 64)) == 64
