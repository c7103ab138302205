"""Purchase data derived from orders: customer facts, purchase activity and the dashboard rollups.

Small pushes (API, webhooks) derive inside their own transaction. A bulk import writes orders and
line items only and logs which customers and local days it touched in `purchase_backlog`; `drain`
then recomputes them from all their orders, a chunk of customers at a time, and deletes the rows it
handled (decision 0009). Recomputing from the orders, never adding deltas, is what makes a drain safe
to repeat after a crash or to run twice at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import PurchaseFacts
from shequn.commerce import rollups
from shequn.commerce.canonical import PAID_STATUSES
from shequn.core.bulk import Bulk
from shequn.identity import service as identity_service

DRAIN_CHUNK = 20_000  # customers recomputed per round: bounds the IN lists and the Python-side rows
_PAID_SQL = ", ".join(f"'{st}'" for st in sorted(PAID_STATUSES))  # code constants, not input


@dataclass
class DrainStats:
    """What one drain recomputed."""

    customers: int = 0
    days: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-ready summary."""
        return {"customers": self.customers, "days": self.days}


def log_backlog(
    bulk: Bulk,
    workspace_id: int,
    *,
    new_orders: Collection[int] = (),
    customer_ids: Collection[int] = (),
    days: Iterable[date] = (),
) -> None:
    """Record what is now stale: the customers of these new orders, these customers, these local days."""
    rows: list[tuple[Any, ...]] = [(workspace_id, cid, None, None, None) for cid in customer_ids]
    if new_orders:
        # One row for the batch: on SQLite its ids are one block; on PostgreSQL a range that also
        # spans another session's orders only makes the drain recompute a few more customers.
        rows.append((workspace_id, None, None, min(new_orders), max(new_orders)))
    rows += [(workspace_id, None, d.toordinal(), None, None) for d in set(days)]
    bulk.insert("purchase_backlog", ("workspace_id", "customer_id", "day", "order_lo", "order_hi"), rows)


def pending(session: Session, *, workspace_id: int) -> int:
    """Backlog rows not yet derived (0 once facts, activity and rollups are current)."""
    rows = Bulk(session).execute("SELECT COUNT(*) FROM purchase_backlog WHERE workspace_id = ?", [workspace_id])
    return int(rows[0][0])


def workspaces_with_backlog(session: Session) -> list[int]:
    """Workspaces whose backlog holds rows."""
    return [int(r[0]) for r in Bulk(session).execute("SELECT DISTINCT workspace_id FROM purchase_backlog")]


def drain(session: Session, *, workspace_id: int) -> DrainStats:
    """Derive everything the backlog holds up to now; rows logged meanwhile wait for the next drain."""
    bulk = Bulk(session)
    top = bulk.execute("SELECT MAX(id) FROM purchase_backlog WHERE workspace_id = ?", [workspace_id])[0][0]
    stats = DrainStats()
    if top is None:
        return stats
    # A customer merged since the import is derived as its winner: the merge moved its orders there.
    named = (
        "SELECT b.customer_id FROM purchase_backlog b WHERE b.workspace_id = ? AND b.id <= ? "
        "AND b.customer_id IS NOT NULL UNION "
        "SELECT o.customer_id FROM purchase_backlog b JOIN orders o ON o.workspace_id = b.workspace_id "
        "AND o.id BETWEEN b.order_lo AND b.order_hi WHERE b.workspace_id = ? AND b.id <= ? AND b.order_lo IS NOT NULL"
    )
    customers = [
        int(r[0])
        for r in bulk.execute(
            f"SELECT DISTINCT COALESCE(c.merged_into_id, c.id) FROM customers c WHERE c.workspace_id = ? "
            f"AND c.id IN ({named}) ORDER BY 1",
            [workspace_id, workspace_id, top, workspace_id, top],
        )
    ]
    days = [
        date.fromordinal(int(r[0]))
        for r in bulk.execute(
            "SELECT DISTINCT day FROM purchase_backlog WHERE workspace_id = ? AND id <= ? AND day IS NOT NULL",
            [workspace_id, top],
        )
    ]
    for i in range(0, len(customers), DRAIN_CHUNK):
        refresh_customer_facts(session, workspace_id=workspace_id, customer_ids=set(customers[i : i + DRAIN_CHUNK]))
    tz = identity_service.workspace_timezone(session, workspace_id)
    rollups.refresh_days(session, workspace_id=workspace_id, tz=tz, days=days)
    bulk.execute("DELETE FROM purchase_backlog WHERE workspace_id = ? AND id <= ?", [workspace_id, top])
    stats.customers, stats.days = len(customers), len(days)
    return stats


def refresh_customer_activity(session: Session, *, workspace_id: int, customer_ids: Sequence[int]) -> None:
    """Rebuild these customers' purchase activity from their paid-like orders, in the database.

    Per customer and UTC day: 'order' rows count orders and sum net paid; 'category' and 'product'
    rows count the orders that had them and sum their line totals.
    """
    bulk = Bulk(session)
    day = audience_service.epoch_day_sql(bulk, "o.placed_at")
    paid_orders = f"o.workspace_id = ? AND o.status IN ({_PAID_SQL}) AND o.customer_id {{in}}"
    lines = "FROM order_line_items li JOIN orders o ON o.id = li.order_id"
    selects = [
        (
            f"SELECT ?, o.customer_id, 'order', '', {day}, COUNT(*), SUM(o.paid - o.refunded) FROM orders o "
            f"WHERE {paid_orders} GROUP BY o.customer_id, {day}",
            [workspace_id, workspace_id],
        ),
        (
            f"SELECT ?, o.customer_id, 'category', li.category, {day}, COUNT(DISTINCT o.id), SUM(li.total) {lines} "
            f"WHERE li.category <> '' AND {paid_orders} GROUP BY o.customer_id, li.category, {day}",
            [workspace_id, workspace_id],
        ),
        (
            f"SELECT ?, o.customer_id, 'product', CAST(li.product_id AS TEXT), {day}, COUNT(DISTINCT o.id), "
            f"SUM(li.total) {lines} WHERE li.product_id IS NOT NULL AND {paid_orders} "
            f"GROUP BY o.customer_id, li.product_id, {day}",
            [workspace_id, workspace_id],
        ),
    ]
    audience_service.replace_activity_from(
        session,
        workspace_id=workspace_id,
        customer_ids=customer_ids,
        kinds=audience_service.PURCHASE_KINDS,
        selects=selects,
    )


def refresh_customer_facts(session: Session, *, workspace_id: int, customer_ids: set[int]) -> None:
    """Recompute purchase facts of these customers from their paid-like orders and hand them to audience."""
    if not customer_ids:
        return
    ids = sorted(customer_ids)
    bulk = Bulk(session)
    paid = _PAID_SQL
    agg: dict[int, list[Any]] = {cid: [None, None, 0, 0] for cid in ids}
    for cid, first, last, n, spent in bulk.select_in(
        "SELECT customer_id, MIN(placed_at), MAX(placed_at), COUNT(*), SUM(paid - refunded) FROM orders "
        f"WHERE workspace_id = ? AND status IN ({paid}) AND customer_id {{in}} GROUP BY customer_id",
        ids,
        [workspace_id],
    ):
        agg[cid] = [bulk.parse_ts(first), bulk.parse_ts(last), int(n), int(spent or 0)]
    cats: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for cid, cat, amount in bulk.select_in(
        "SELECT o.customer_id, li.category, SUM(li.total) FROM order_line_items li "
        "JOIN orders o ON o.id = li.order_id "
        f"WHERE o.workspace_id = ? AND li.category <> '' AND o.status IN ({paid}) AND o.customer_id {{in}} "
        "GROUP BY o.customer_id, li.category",
        ids,
        [workspace_id],
    ):
        cats[cid].append((cat, int(amount or 0)))
    facts = [PurchaseFacts(cid, a[0], a[1], a[2], max(a[3], 0), dict(cats.get(cid, []))) for cid, a in agg.items()]
    audience_service.update_purchase_facts(session, workspace_id=workspace_id, facts=facts)
    refresh_customer_activity(session, workspace_id=workspace_id, customer_ids=ids)
