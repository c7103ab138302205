"""Discount math: what coupons take off an order, and the scope, threshold and stacking rules.

Pure functions over plain values, so the property tests can hammer them without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shequn.promotions.coupons.errors import CouponNotApplicable

# Order in which stacked coupons apply: 满减 and fixed amounts first, then percentages on what is left.
KIND_ORDER = {"threshold": 0, "fixed": 1, "percent": 2, "free_shipping": 3}


@dataclass(frozen=True)
class Rule:
    """The parts of a template the math needs."""

    id: int
    kind: str
    amount_fen: int = 0
    percent_off: int = 0
    max_discount_fen: int | None = None
    min_order_fen: int = 0
    scope: str = "all"
    scope_skus: frozenset[str] = field(default_factory=frozenset)
    scope_categories: frozenset[str] = field(default_factory=frozenset)
    stackable: bool = False


@dataclass(frozen=True)
class Line:
    """One order line (for product and category scope)."""

    sku: str
    category: str
    amount_fen: int


def eligible_amount(rule: Rule, amount_fen: int, lines: Sequence[Line]) -> int:
    """The part of the goods amount the coupon's scope covers."""
    if rule.scope == "all":
        return max(0, amount_fen)
    if rule.scope == "products":
        part = sum(li.amount_fen for li in lines if li.sku in rule.scope_skus)
    else:
        part = sum(li.amount_fen for li in lines if li.category in rule.scope_categories)
    return max(0, min(part, amount_fen))


def discount_of(rule: Rule, *, eligible_fen: int, shipping_fen: int = 0) -> int:
    """One coupon's discount on an eligible amount (0 below its minimum spend)."""
    if eligible_fen < rule.min_order_fen:
        return 0
    return _capped(rule, eligible_fen, shipping_fen)


def _capped(rule: Rule, eligible_fen: int, shipping_fen: int) -> int:
    """The discount on a qualifying amount: never negative, never above the amount or the cap."""
    if eligible_fen <= 0 and rule.kind != "free_shipping":
        return 0
    if rule.kind in ("fixed", "threshold"):
        d = rule.amount_fen
    elif rule.kind == "percent":
        d = eligible_fen * rule.percent_off // 100  # rounds down: the shop never gives a fen too much
    else:
        d = shipping_fen
        eligible_fen = shipping_fen
    if rule.max_discount_fen is not None:
        d = min(d, rule.max_discount_fen)
    return max(0, min(d, eligible_fen))


def check_stacking(rules: Sequence[Rule]) -> None:
    """Exclusive coupons stand alone; at most one coupon of each kind per order."""
    if len(rules) > 1 and not all(r.stackable for r in rules):
        raise CouponNotApplicable(reason="exclusive")
    kinds = [r.kind for r in rules]
    if len(set(kinds)) != len(kinds):
        raise CouponNotApplicable(reason="one_per_kind")


def price(
    rules: Sequence[Rule], *, amount_fen: int, shipping_fen: int = 0, lines: Sequence[Line] = ()
) -> dict[int, int]:
    """Each rule's discount (by rule id) on the order; raises CouponNotApplicable when one does not apply.

    Stacked coupons apply one after another on what is left, so the total never passes the goods amount
    (plus shipping for a free-shipping coupon).
    """
    check_stacking(rules)
    goods_left = max(0, amount_fen)
    out: dict[int, int] = {}
    for rule in sorted(rules, key=lambda r: (KIND_ORDER.get(r.kind, 9), r.id)):
        if rule.kind == "free_shipping":
            if goods_left < rule.min_order_fen:
                raise CouponNotApplicable(reason="threshold")
            out[rule.id] = _capped(rule, goods_left, max(0, shipping_fen))
            continue
        eligible = eligible_amount(rule, amount_fen, lines)
        if eligible <= 0:
            raise CouponNotApplicable(reason="scope")
        if eligible < rule.min_order_fen:
            raise CouponNotApplicable(reason="threshold")
        d = _capped(rule, min(eligible, goods_left), 0)
        goods_left -= d
        out[rule.id] = d
    return out
