"""Daily order and category rollups, kept current by imports so dashboards never scan orders.

After each import batch the local days it touched are recomputed from the orders of those days
(delete + insert…select), which is correct by construction for new, updated and re-imported orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.commerce.canonical import PAID_STATUSES_SQL
from shequn.commerce.models import CategoryDailyRollup, Order, OrderDailyRollup
from shequn.core.bulk import Bulk


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day of an aware moment in the workspace's zone."""
    return moment.astimezone(tz).date()


def refresh_days(session: Session, *, workspace_id: int, tz: str, days: Iterable[date]) -> None:
    """Recompute both rollups for these local days from the orders placed on them."""
    zone = ZoneInfo(tz)
    bulk = Bulk(session)
    wanted = sorted(set(days))
    if bulk.pg and wanted:
        _refresh_days_pg(bulk, workspace_id, tz, zone, wanted)
        return
    for day in wanted:
        start = datetime.combine(day, time.min, zone)
        lo, hi = bulk.ts(start), bulk.ts(start + timedelta(days=1))
        key = day.isoformat()
        bulk.execute("DELETE FROM order_daily_rollups WHERE workspace_id = ? AND day = ?", [workspace_id, key])
        bulk.execute("DELETE FROM category_daily_rollups WHERE workspace_id = ? AND day = ?", [workspace_id, key])
        bulk.execute(
            "INSERT INTO order_daily_rollups (workspace_id, day, status, source, orders, total, net_paid) "
            "SELECT ?, ?, status, source, COUNT(*), SUM(total), SUM(paid - refunded) FROM orders "
            "WHERE workspace_id = ? AND placed_at >= ? AND placed_at < ? GROUP BY status, source",
            [workspace_id, key, workspace_id, lo, hi],
        )
        bulk.execute(
            "INSERT INTO category_daily_rollups (workspace_id, day, category, sales, quantity) "
            "SELECT ?, ?, li.category, SUM(li.total), SUM(li.quantity) FROM order_line_items li "
            "JOIN orders o ON o.id = li.order_id "
            f"WHERE o.workspace_id = ? AND o.placed_at >= ? AND o.placed_at < ? AND o.status IN ({PAID_STATUSES_SQL}) "
            "AND li.category <> '' GROUP BY li.category",
            [workspace_id, key, workspace_id, lo, hi],
        )


def _refresh_days_pg(bulk: Bulk, workspace_id: int, tz: str, zone: ZoneInfo, days: list[date]) -> None:
    """All the days in four statements: PostgreSQL groups by the local day itself (AT TIME ZONE), where the
    per-day loop cost two round trips per day (a year of days made most of a drain's time)."""
    keys = [d.isoformat() for d in days]
    lo = datetime.combine(days[0], time.min, zone)
    hi = datetime.combine(days[-1], time.min, zone) + timedelta(days=1)
    local = "to_char(o.placed_at AT TIME ZONE ?, 'YYYY-MM-DD')"
    span = "o.workspace_id = ? AND o.placed_at >= ? AND o.placed_at < ?"
    bulk.execute("DELETE FROM order_daily_rollups WHERE workspace_id = ? AND day = ANY(?)", [workspace_id, keys])
    bulk.execute("DELETE FROM category_daily_rollups WHERE workspace_id = ? AND day = ANY(?)", [workspace_id, keys])
    bulk.execute(
        "INSERT INTO order_daily_rollups (workspace_id, day, status, source, orders, total, net_paid) "
        f"SELECT ?, d, status, source, COUNT(*), SUM(total), SUM(paid - refunded) FROM ("
        f"SELECT {local} AS d, o.status, o.source, o.total, o.paid, o.refunded FROM orders o WHERE {span}"
        ") x WHERE d = ANY(?) GROUP BY d, status, source",
        [workspace_id, tz, workspace_id, lo, hi, keys],
    )
    bulk.execute(
        "INSERT INTO category_daily_rollups (workspace_id, day, category, sales, quantity) "
        "SELECT ?, d, category, SUM(total), SUM(quantity) FROM ("
        f"SELECT {local} AS d, li.category, li.total, li.quantity FROM order_line_items li "
        f"JOIN orders o ON o.id = li.order_id WHERE {span} AND o.status IN ({PAID_STATUSES_SQL}) AND li.category <> ''"
        ") x WHERE d = ANY(?) GROUP BY d, category",
        [workspace_id, tz, workspace_id, lo, hi, keys],
    )


def rebuild(session: Session, *, workspace_id: int, tz: str) -> int:
    """Recompute every day that has orders (after a restore or a timezone change); returns the day count."""
    zone = ZoneInfo(tz)
    first, last = session.execute(
        select(func.min(Order.placed_at), func.max(Order.placed_at)).where(Order.workspace_id == workspace_id)
    ).one()
    bulk = Bulk(session)
    bulk.execute("DELETE FROM order_daily_rollups WHERE workspace_id = ?", [workspace_id])
    bulk.execute("DELETE FROM category_daily_rollups WHERE workspace_id = ?", [workspace_id])
    if first is None:
        return 0
    day, end = local_day(first, zone), local_day(last, zone)
    days = []
    while day <= end:
        days.append(day)
        day += timedelta(days=1)
    refresh_days(session, workspace_id=workspace_id, tz=tz, days=days)
    return len(days)


def daily(session: Session, *, workspace_id: int, since: str = "") -> list[OrderDailyRollup]:
    """Order rollup rows from `since` (YYYY-MM-DD) on."""
    q = select(OrderDailyRollup).where(OrderDailyRollup.workspace_id == workspace_id)
    if since:
        q = q.where(OrderDailyRollup.day >= since)
    return list(session.scalars(q))


def categories(session: Session, *, workspace_id: int, limit: int) -> list[tuple[str, int]]:
    """Categories by sales over all days."""
    rows = session.execute(
        select(CategoryDailyRollup.category, func.sum(CategoryDailyRollup.sales))
        .where(CategoryDailyRollup.workspace_id == workspace_id)
        .group_by(CategoryDailyRollup.category)
        .order_by(func.sum(CategoryDailyRollup.sales).desc())
        .limit(limit)
    )
    return [(c, int(s or 0)) for c, s in rows]
