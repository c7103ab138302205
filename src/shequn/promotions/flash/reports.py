"""What operators watch: outcome counts, claims per minute, the oversell check, the campaign summary."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.common import ActivitySummary, participations_by_day
from shequn.promotions.flash import redis_store
from shequn.promotions.flash.claims import redis_url, set_outcome_counts
from shequn.promotions.flash.manage import phase_of
from shequn.promotions.flash.models import FlashOutcomeCount, FlashReservation, FlashSale
from shequn.promotions.flash.schemas import OversellCheck


def sync_outcomes(session: Session, sale: FlashSale) -> None:
    """Copy the Redis engine's attempt counters into the database (absolute values; retry-safe)."""
    if not redis_url():
        return
    counts = redis_store.read_stats(redis_store.client(redis_url()), sale.id)
    set_outcome_counts(session, workspace_id=sale.workspace_id, sale_id=sale.id, counts=counts)


def outcome_totals(session: Session, *, sale_id: int) -> dict[str, int]:
    """All-time attempts per outcome."""
    rows = session.execute(
        select(FlashOutcomeCount.outcome, FlashOutcomeCount.n).where(
            FlashOutcomeCount.sale_id == sale_id, FlashOutcomeCount.minute == 0
        )
    )
    return {str(o): int(n) for o, n in rows}


def claims_per_minute(session: Session, *, sale_id: int, last: int = 60) -> list[tuple[datetime, dict[str, int]]]:
    """Attempts per outcome for the last `last` minutes that had any, oldest first."""
    rows = session.execute(
        select(FlashOutcomeCount.minute, FlashOutcomeCount.outcome, FlashOutcomeCount.n)
        .where(FlashOutcomeCount.sale_id == sale_id, FlashOutcomeCount.minute > 0)
        .order_by(FlashOutcomeCount.minute.desc())
        .limit(last * 8)
    )
    by_minute: dict[int, dict[str, int]] = {}
    for minute, outcome, n in rows:
        by_minute.setdefault(int(minute), {})[str(outcome)] = int(n)
    keys = sorted(by_minute)[-last:]
    return [(datetime.fromtimestamp(m * 60, UTC), by_minute[m]) for m in keys]


def state_units(session: Session, *, sale_id: int) -> dict[str, int]:
    """Units per reservation state."""
    rows = session.execute(
        select(FlashReservation.state, func.coalesce(func.sum(FlashReservation.qty), 0))
        .where(FlashReservation.sale_id == sale_id)
        .group_by(FlashReservation.state)
    )
    return {str(s): int(n) for s, n in rows}


def oversell_check(session: Session, sale: FlashSale) -> OversellCheck:
    """sold == paid + reserved, sold <= stock, and (Redis) left == stock − sold once the stream is drained."""
    units = state_units(session, sale_id=sale.id)
    paid, reserved = units.get("paid", 0), units.get("reserved", 0)
    left = None
    if redis_url() and sale.status != "draft":
        left = redis_store.stock_left(redis_store.client(redis_url()), sale.id)
    ok = sale.sold == paid + reserved and sale.sold <= sale.stock and sale.paid_units == paid
    if left is not None:
        ok = ok and left >= 0 and left + sale.sold <= sale.stock
    return OversellCheck(stock=sale.stock, sold=sale.sold, paid=paid, reserved=reserved, redis_left=left, ok=ok)


def participants(session: Session, *, sale_id: int) -> int:
    """Distinct customers who won stock."""
    stmt = select(func.count(func.distinct(FlashReservation.customer_id))).where(FlashReservation.sale_id == sale_id)
    return int(session.scalar(stmt) or 0)


def summarize(session: Session, *, workspace_id: int, campaign_id: int) -> list[ActivitySummary]:
    """The campaign page's view of its flash sales."""
    sales = session.scalars(
        select(FlashSale)
        .where(FlashSale.workspace_id == workspace_id, FlashSale.campaign_id == campaign_id)
        .order_by(FlashSale.starts_at)
    )
    out: list[ActivitySummary] = []
    now = utcnow()
    for sale in sales:
        attempts = sum(outcome_totals(session, sale_id=sale.id).values())
        out.append(
            ActivitySummary(
                kind="flash_sale",
                id=sale.id,
                name=sale.title,
                status=phase_of(sale, now),
                starts_at=sale.starts_at,
                ends_at=sale.ends_at,
                participants=participants(session, sale_id=sale.id),
                actions=attempts,
                wins=sale.sold,
                redemptions=sale.paid_units,
                gmv_fen=sale.paid_units * sale.flash_price,
                cost_fen=sale.paid_units * max(0, sale.original_price - sale.flash_price),
                console_url=f"/flash-sales/{sale.id}",
                extra={
                    "stock": sale.stock,
                    **participations_by_day(
                        session, workspace_id, FlashReservation.created_at, [FlashReservation.sale_id == sale.id]
                    ),
                },
            )
        )
    return out
