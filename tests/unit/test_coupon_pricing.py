"""Discount math (property tests): never negative, never above the order or the cap, stacking rules hold."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shequn.promotions.coupons.codes import ALPHABET, mask_code, new_code
from shequn.promotions.coupons.errors import CouponNotApplicable
from shequn.promotions.coupons.pricing import Line, Rule, discount_of, price

fen = st.integers(min_value=0, max_value=10**9)
rules = st.builds(
    Rule,
    id=st.integers(min_value=1, max_value=10**6),
    kind=st.sampled_from(["fixed", "percent", "threshold", "free_shipping"]),
    amount_fen=fen,
    percent_off=st.integers(min_value=0, max_value=99),
    max_discount_fen=st.none() | st.integers(min_value=1, max_value=10**9),
    min_order_fen=st.integers(min_value=0, max_value=10**6),
    stackable=st.booleans(),
)


# The machine running the suite is shared: slow generation is not a failure of the math.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RELAXED
@given(rule=rules, amount=fen, shipping=fen)
def test_one_discount_is_bounded(rule: Rule, amount: int, shipping: int) -> None:
    d = discount_of(rule, eligible_fen=amount, shipping_fen=shipping)
    assert d >= 0
    assert d <= (shipping if rule.kind == "free_shipping" else amount)
    if rule.max_discount_fen is not None:
        assert d <= rule.max_discount_fen
    if amount < rule.min_order_fen:
        assert d == 0


@RELAXED
@given(stack=st.lists(rules, min_size=1, max_size=4, unique_by=lambda r: r.id), amount=fen, shipping=fen)
def test_stacked_total_never_exceeds_the_order(stack: list[Rule], amount: int, shipping: int) -> None:
    try:
        out = price(stack, amount_fen=amount, shipping_fen=shipping)
    except CouponNotApplicable:
        return
    goods = sum(d for r in stack for rid, d in out.items() if rid == r.id and r.kind != "free_shipping")
    assert all(d >= 0 for d in out.values())
    assert goods <= amount
    assert sum(out.values()) <= amount + shipping


def test_percent_rounds_down_and_caps() -> None:
    r = Rule(id=1, kind="percent", percent_off=15, max_discount_fen=500)
    assert discount_of(r, eligible_fen=1999) == 299
    assert discount_of(r, eligible_fen=100_000) == 500


def test_threshold_scope_and_stacking_errors() -> None:
    full = Rule(id=1, kind="threshold", amount_fen=3000, min_order_fen=19900)
    with pytest.raises(CouponNotApplicable):
        price([full], amount_fen=19899)
    assert price([full], amount_fen=19900) == {1: 3000}
    cat = Rule(id=2, kind="fixed", amount_fen=1000, scope="categories", scope_categories=frozenset({"茶具"}))
    with pytest.raises(CouponNotApplicable):
        price([cat], amount_fen=5000, lines=[Line("A", "绿茶", 5000)])
    assert price([cat], amount_fen=5000, lines=[Line("B", "茶具", 600), Line("A", "绿茶", 4400)]) == {2: 600}
    excl = Rule(id=3, kind="fixed", amount_fen=500)
    ship = Rule(id=4, kind="free_shipping", stackable=True)
    with pytest.raises(CouponNotApplicable):
        price([excl, ship], amount_fen=5000, shipping_fen=800)
    a = Rule(id=5, kind="fixed", amount_fen=500, stackable=True)
    b = Rule(id=6, kind="fixed", amount_fen=700, stackable=True)
    with pytest.raises(CouponNotApplicable):
        price([a, b], amount_fen=5000)
    assert price([a, ship], amount_fen=5000, shipping_fen=800) == {5: 500, 4: 800}


def test_codes_avoid_look_alikes_and_mask() -> None:
    assert not set(ALPHABET) & set("0O1IL")
    code = new_code(10)
    assert len(code) == 10 and set(code) <= set(ALPHABET)
    assert mask_code("ABCDEFGHJK") == "AB******JK"
