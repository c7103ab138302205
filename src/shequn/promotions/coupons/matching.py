"""Imported orders meet coupons: codes on paid orders redeem grants, refunds and cancellations reverse them.

Runs as a job after each order import (commerce.orders_changed), and is idempotent: an order already
matched is skipped, so re-imports and status updates never redeem a second coupon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from shequn.commerce import service as commerce_service
from shequn.core.errors import NotFound, ShequnError
from shequn.promotions.coupons.models import CouponGrant, CouponTemplate
from shequn.promotions.coupons.pricing import Line
from shequn.promotions.coupons.redeem import redeem_grants, resolve_code, reverse_order

MATCH_JOB = "coupons.match_orders"
REDEEM_STATUSES = frozenset({"paid", "shipped", "completed", "partially_refunded"})
REVERSE_STATUSES = frozenset({"refunded", "cancelled", "closed"})
JOB_CHUNK = 5_000  # order ids per job: params stay small even for a million-order import


def order_ref_of(source: str, source_order_id: str) -> str:
    """How an imported order is named on the grants it used."""
    return f"{source}:{source_order_id}"


def order_codes(discount_codes: Sequence[Any], attribution: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(code, amount the shop gave or None) from an order's discount codes and its attribution's coupon_code."""
    out: list[tuple[str, int | None]] = []
    for entry in discount_codes or ():
        if isinstance(entry, dict) and str(entry.get("code") or "").strip():
            amount = entry.get("amount")
            out.append((str(entry["code"]).strip(), int(amount) if isinstance(amount, int | float) else None))
    extra = str((attribution or {}).get("coupon_code") or "").strip()
    if extra and extra.upper() not in {c.upper() for c, _ in out}:
        out.append((extra, None))
    return out


def workspace_has_coupons(session: Session, *, workspace_id: int) -> bool:
    """Whether matching can find anything at all (skips the job for workspaces without coupons)."""
    return bool(session.scalar(select(exists().where(CouponTemplate.workspace_id == workspace_id))))


def _already_matched(session: Session, workspace_id: int, ref: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    CouponGrant.workspace_id == workspace_id,
                    CouponGrant.order_ref == ref,
                    CouponGrant.state == "redeemed",
                )
            )
        )
    )


def match_orders(session: Session, *, workspace_id: int, order_ids: Sequence[int]) -> dict[str, int]:
    """Redeem or reverse coupons for these orders; returns counts (redeemed, reversed, unmatched)."""
    stats = {"orders": 0, "redeemed": 0, "reversed": 0, "unmatched": 0}
    if not workspace_has_coupons(session, workspace_id=workspace_id):
        return stats
    for oid in order_ids:
        try:
            order = commerce_service.get_order(session, workspace_id=workspace_id, order_id=oid)
        except NotFound:
            continue
        stats["orders"] += 1
        ref = order_ref_of(order.source, order.source_order_id)
        if order.status in REVERSE_STATUSES:
            stats["reversed"] += reverse_order(session, workspace_id=workspace_id, order_ref=ref)
            continue
        codes = order_codes(order.discount_codes, order.attribution)
        if order.status not in REDEEM_STATUSES or not codes or _already_matched(session, workspace_id, ref):
            continue
        try:
            stats["redeemed"] += _redeem_order(session, workspace_id, order, ref, codes)
        except ShequnError:
            stats["unmatched"] += 1  # a code we do not know, or a coupon already spent: the order stands
    return stats


def _redeem_order(
    session: Session, workspace_id: int, order: Any, ref: str, codes: list[tuple[str, int | None]]
) -> int:
    at = order.placed_at
    grants = [
        resolve_code(session, workspace_id=workspace_id, code=code, customer_id=order.customer_id, now=at)
        for code, _ in codes
    ]
    given: dict[int, int] | None = None
    if all(amount is not None for _, amount in codes):
        given = {g.id: int(amount or 0) for g, (_, amount) in zip(grants, codes, strict=True)}
    lines = [
        Line(sku=li.sku, category=li.category, amount_fen=li.total)
        for li in commerce_service.list_line_items(session, workspace_id=workspace_id, order_ids=[order.id])[order.id]
    ]
    goods = order.subtotal or max(0, order.total - order.shipping + order.discount)
    done = redeem_grants(
        session,
        workspace_id=workspace_id,
        grants=grants,
        order_ref=ref,
        order_id=order.id,
        amount_fen=goods,
        shipping_fen=order.shipping,
        lines=lines,
        given=given,
        now=at,
    )
    return len(done.coupons)
