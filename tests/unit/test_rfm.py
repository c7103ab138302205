"""RFM scoring rules, independent of the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shequn.audience.rfm import GROUP_NAMES, GROUPS, RfmRow, quintile, score

AS_OF = datetime(2026, 11, 24, tzinfo=UTC)

rows = st.lists(
    st.tuples(st.integers(0, 400), st.integers(1, 30), st.integers(0, 500_000)), min_size=1, max_size=60
).map(lambda xs: [RfmRow(i + 1, AS_OF - timedelta(days=d), n, m) for i, (d, n, m) in enumerate(xs)])


def test_quintile_edges() -> None:
    assert [quintile(k, 10) for k in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile(1, 1) == 5


@given(rows)
def test_scores_are_monotonic_and_ties_score_alike(data: list[RfmRow]) -> None:
    out = score(data, AS_OF)
    assert set(out) == {r.customer_id for r in data}
    for a in data:
        for b in data:
            ra, fa, ma, _ = out[a.customer_id]
            rb, fb, mb, _ = out[b.customer_id]
            if a.last_order_at > b.last_order_at:
                assert ra >= rb  # more recent never scores lower
            if a.orders == b.orders:
                assert fa == fb
            if a.spent > b.spent:
                assert ma >= mb
            if a.spent == b.spent:
                assert ma == mb
    assert all(1 <= v <= 5 for s in out.values() for v in s[:3])
    assert {s[3] for s in out.values()} <= set(GROUP_NAMES)


def test_groups_follow_the_classic_model() -> None:
    assert len(GROUPS) == 8 and set(GROUPS.values()) == set(GROUP_NAMES)
    assert GROUP_NAMES[GROUPS[(True, True, True)]][0] == "重要价值客户"
    assert GROUP_NAMES[GROUPS[(False, False, True)]][0] == "重要挽留客户"
    recent_big = RfmRow(1, AS_OF - timedelta(days=1), 9, 90_000)
    old_small = RfmRow(2, AS_OF - timedelta(days=300), 1, 1_000)
    mid = RfmRow(3, AS_OF - timedelta(days=100), 3, 20_000)
    out = score([recent_big, old_small, mid], AS_OF)
    assert out[1][3] == "important_value" and out[2][3] == "general_retain"
