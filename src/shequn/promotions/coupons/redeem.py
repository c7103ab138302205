"""Redemption: an order uses coupons (operator API or matched from imported orders), refunds reverse it.

A grant moves issued → redeemed by one conditional UPDATE, so two orders can never use the same coupon.
On redemption the budget keeps the discount actually given and releases the rest of the face value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.campaigns.budget import refund_budget
from shequn.promotions.coupons.claims import commit_budget
from shequn.promotions.coupons.errors import (
    CouponBudgetExhausted,
    CouponCodeInvalid,
    CouponGrantNotFound,
    CouponNotUsable,
)
from shequn.promotions.coupons.models import CouponCode, CouponGrant, CouponTemplate
from shequn.promotions.coupons.pricing import Line, Rule, price
from shequn.promotions.coupons.templates import normalize_code


@dataclass(frozen=True)
class Redeemed:
    """One coupon used on the order."""

    grant_id: int
    template_id: int
    discount_fen: int


@dataclass(frozen=True)
class Redemption:
    """Coupons used on one order and the total taken off."""

    order_ref: str
    amount_fen: int
    discount_fen: int
    coupons: list[Redeemed]


def rule_of(tpl: CouponTemplate) -> Rule:
    """The template as the pricing functions see it."""
    return Rule(
        id=tpl.id,
        kind=tpl.kind,
        amount_fen=tpl.amount_fen,
        percent_off=tpl.percent_off,
        max_discount_fen=tpl.max_discount_fen,
        min_order_fen=tpl.min_order_fen,
        scope=tpl.scope,
        scope_skus=frozenset(tpl.scope_skus or ()),
        scope_categories=frozenset(tpl.scope_categories or ()),
        stackable=tpl.stackable,
    )


def release_budget(session: Session, tpl: CouponTemplate, amount: int) -> None:
    """Give back committed value (redeemed for less than face, expired, reversed)."""
    if amount <= 0:
        return
    session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == tpl.id)
        .values(committed_fen=CouponTemplate.committed_fen - amount)
        .execution_options(synchronize_session=False)
    )
    refund_budget(session, workspace_id=tpl.workspace_id, campaign_id=tpl.campaign_id, amount_fen=amount)


def _open_grant_of(
    session: Session, workspace_id: int, template_id: int, customer_id: int, now: datetime
) -> CouponGrant:
    """The customer's oldest usable grant of a template (a public code names the template, not the coupon)."""
    grant = session.scalar(
        select(CouponGrant)
        .where(
            CouponGrant.workspace_id == workspace_id,
            CouponGrant.customer_id == customer_id,
            CouponGrant.template_id == template_id,
            CouponGrant.state == "issued",
            CouponGrant.valid_until > now,
        )
        .order_by(CouponGrant.valid_until, CouponGrant.id)
        .limit(1)
    )
    if grant is None:
        raise CouponNotUsable(reason="no_open_coupon")
    return grant


def resolve_code(
    session: Session, *, workspace_id: int, code: str, customer_id: int | None, now: datetime
) -> CouponGrant:
    """The grant a code on an order stands for: the holder of a unique code, or the buyer's coupon of a public code."""
    norm = normalize_code(code)
    row = session.scalar(select(CouponCode).where(CouponCode.workspace_id == workspace_id, CouponCode.code == norm))
    if row is not None:
        grant = session.get(CouponGrant, row.grant_id) if row.grant_id is not None else None
        if grant is None:
            raise CouponNotUsable(reason="code_not_claimed")
        return grant
    tpl_id = session.scalar(
        select(CouponTemplate.id).where(
            CouponTemplate.workspace_id == workspace_id,
            CouponTemplate.code_mode == "public",
            CouponTemplate.public_code == norm,
        )
    )
    if tpl_id is None or customer_id is None:
        raise CouponCodeInvalid()
    return _open_grant_of(session, workspace_id, tpl_id, customer_id, now)


def _grant(session: Session, workspace_id: int, grant_id: int) -> CouponGrant:
    grant = session.get(CouponGrant, grant_id)
    if grant is None or grant.workspace_id != workspace_id:
        raise CouponGrantNotFound(id=grant_id)
    return grant


def _settle(session: Session, tpl: CouponTemplate, grant: CouponGrant, discount: int) -> None:
    """Keep the discount given against the budget; release (or, for uncapped coupons, add) the difference."""
    delta = discount - grant.face_fen
    if delta > 0:
        commit_budget(session, tpl, delta)
    else:
        release_budget(session, tpl, -delta)
    session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == tpl.id)
        .values(
            redeemed_count=CouponTemplate.redeemed_count + 1,
            discount_fen=CouponTemplate.discount_fen + discount,
        )
        .execution_options(synchronize_session=False)
    )


def _mark_redeemed(
    session: Session,
    grant: CouponGrant,
    *,
    order_ref: str,
    order_id: int | None,
    amount_fen: int,
    discount: int,
    now: datetime,
) -> None:
    result = session.execute(
        update(CouponGrant)
        .where(CouponGrant.id == grant.id, CouponGrant.state == "issued")
        .values(
            state="redeemed",
            order_ref=order_ref,
            order_id=order_id,
            order_amount_fen=amount_fen,
            discount_fen=discount,
            redeemed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CouponNotUsable(reason="already_used")


def redeem_grants(
    session: Session,
    *,
    workspace_id: int,
    grants: Sequence[CouponGrant],
    order_ref: str,
    amount_fen: int,
    shipping_fen: int = 0,
    lines: Sequence[Line] = (),
    customer_id: int | None = None,
    order_id: int | None = None,
    given: dict[int, int] | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Use these grants on one order: checks validity, owner, scope, threshold and stacking, then settles budgets.

    given: discounts the shop already applied (imported orders), by grant id, instead of computing them.
    Retry-safe: grants already redeemed on this order_ref are reported, not redeemed again.
    """
    now = now or utcnow()
    unique = {g.id: g for g in grants}
    for g in unique.values():
        session.refresh(g)
    done = [g for g in unique.values() if g.state == "redeemed" and g.order_ref == order_ref]
    if done and len(done) == len(unique):
        return _result(order_ref, amount_fen, done)
    todo = [g for g in unique.values() if g not in done]
    templates = {g.id: session.get(CouponTemplate, g.template_id) for g in todo}
    for g in todo:
        if g.state != "issued":
            raise CouponNotUsable(reason=g.state)
        if not g.valid_from <= now < g.valid_until:
            raise CouponNotUsable(reason="not_valid_now")
        if customer_id is not None and g.customer_id != customer_id:
            raise CouponNotUsable(reason="not_owner")
    if given is None:
        rules = [rule_of(t) for t in templates.values() if t is not None]
        by_tpl = price(rules, amount_fen=amount_fen, shipping_fen=shipping_fen, lines=lines)
        discounts = {g.id: by_tpl[g.template_id] for g in todo}
    else:
        discounts = {g.id: max(0, min(given.get(g.id, 0), amount_fen + shipping_fen)) for g in todo}
    with session.begin_nested():
        for g in todo:
            tpl = templates[g.id]
            assert tpl is not None
            d = discounts[g.id]
            _mark_redeemed(
                session, g, order_ref=order_ref, order_id=order_id, amount_fen=amount_fen, discount=d, now=now
            )
            _settle(session, tpl, g, d)
    for g in todo:
        session.refresh(g)
    return _result(order_ref, amount_fen, [*done, *todo])


def _result(order_ref: str, amount_fen: int, grants: Sequence[CouponGrant]) -> Redemption:
    used = [Redeemed(g.id, g.template_id, g.discount_fen) for g in sorted(grants, key=lambda g: g.id)]
    return Redemption(order_ref, amount_fen, sum(r.discount_fen for r in used), used)


def redeem(
    session: Session,
    *,
    workspace_id: int,
    order_ref: str,
    amount_fen: int,
    shipping_fen: int = 0,
    customer_id: int | None = None,
    codes: Sequence[str] = (),
    grant_ids: Sequence[int] = (),
    lines: Sequence[Line] = (),
    now: datetime | None = None,
) -> Redemption:
    """The operator API: redeem coupons (by code or grant id) on an order, all of the order's coupons in one call."""
    now = now or utcnow()
    used = list(
        session.scalars(
            select(CouponGrant).where(
                CouponGrant.workspace_id == workspace_id,
                CouponGrant.order_ref == order_ref,
                CouponGrant.state == "redeemed",
            )
        )
    )
    if used:
        # A retry: the order already used its coupons (a public code would otherwise pick the buyer's next one).
        return _result(order_ref, amount_fen, used)
    grants = [resolve_code(session, workspace_id=workspace_id, code=c, customer_id=customer_id, now=now) for c in codes]
    grants += [_grant(session, workspace_id, gid) for gid in grant_ids]
    if not grants:
        raise CouponCodeInvalid()
    return redeem_grants(
        session,
        workspace_id=workspace_id,
        grants=grants,
        order_ref=order_ref,
        amount_fen=amount_fen,
        shipping_fen=shipping_fen,
        lines=lines,
        customer_id=customer_id,
        now=now,
    )


def reverse_order(session: Session, *, workspace_id: int, order_ref: str, now: datetime | None = None) -> int:
    """A refund or cancellation: its coupons go back to issued if still valid, else reversed; budget refunded."""
    now = now or utcnow()
    grants = list(
        session.scalars(
            select(CouponGrant).where(
                CouponGrant.workspace_id == workspace_id,
                CouponGrant.order_ref == order_ref,
                CouponGrant.state == "redeemed",
            )
        )
    )
    for g in grants:
        tpl = session.get(CouponTemplate, g.template_id)
        assert tpl is not None
        with session.begin_nested():
            _unredeem(session, tpl, g, now)
    return len(grants)


def _unredeem(session: Session, tpl: CouponTemplate, g: CouponGrant, now: datetime) -> None:
    back = g.valid_until > now
    if back:
        try:
            with session.begin_nested():
                commit_budget(session, tpl, g.face_fen - g.discount_fen)  # the coupon is open again
        except CouponBudgetExhausted:
            back = False  # someone else used the freed budget meanwhile: the coupon is spent for good
    if not back:
        release_budget(session, tpl, g.discount_fen)
    result = session.execute(
        update(CouponGrant)
        .where(CouponGrant.id == g.id, CouponGrant.state == "redeemed")
        .values(
            state="issued" if back else "reversed",
            order_ref=None if back else g.order_ref,
            order_id=None if back else g.order_id,
            order_amount_fen=0 if back else g.order_amount_fen,
            discount_fen=0,
            redeemed_at=None if back else g.redeemed_at,
            reversed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        session.execute(
            update(CouponTemplate)
            .where(CouponTemplate.id == tpl.id)
            .values(
                redeemed_count=CouponTemplate.redeemed_count - 1,
                discount_fen=CouponTemplate.discount_fen - g.discount_fen,
            )
            .execution_options(synchronize_session=False)
        )
    session.refresh(g)


def expire_grants(session: Session, *, workspace_id: int | None = None, now: datetime | None = None) -> int:
    """Mark issued grants past their validity as expired (set-based per template) and release their value."""
    now = now or utcnow()
    due = (CouponGrant.state == "issued", CouponGrant.valid_until <= now)
    q = select(CouponGrant.template_id).where(*due).distinct()
    if workspace_id is not None:
        q = q.where(CouponGrant.workspace_id == workspace_id)
    n = 0
    for tid in list(session.scalars(q)):
        faces = session.scalars(
            update(CouponGrant)
            .where(CouponGrant.template_id == tid, *due)
            .values(state="expired")
            .returning(CouponGrant.face_fen)
            .execution_options(synchronize_session=False)
        ).all()
        tpl = session.get(CouponTemplate, tid)
        if tpl is not None:
            release_budget(session, tpl, sum(faces))
        n += len(faces)
    return n
