"""Purchase data derived from orders: customer facts, purchase activity and the dashboard rollups.

Small pushes (API, webhooks) derive inside their own transaction. A bulk import writes orders and
line items only and logs which customers and local days it touched in `purchase_backlog`; `drain`
then recomputes them from all their orders, a chunk of customers at a time, and deletes the rows it
handled (decision 0009). Recomputing from the orders, never adding deltas, is what makes a drain safe
to repeat after a crash or to run twice at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
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


def log_backlog(bulk: Bulk, workspace_id: int, customer_ids: Collection[int], days: Iterable[date]) -> None:
    """Record customers and local days whose derived purchase data is now stale."""
    rows: list[tuple[Any, ...]] = [(workspace_id, cid, None) for cid in customer_ids]
    rows += [(workspace_id, None, d.toordinal()) for d in set(days)]
    bulk.insert("purchase_backlog", ("workspace_id", "customer_id", "day"), rows)


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
    customers = [
        int(r[0])
        for r in bulk.execute(
            "SELECT DISTINCT COALESCE(c.merged_into_id, c.id) FROM purchase_backlog b "
            "JOIN customers c ON c.id = b.customer_id AND c.workspace_id = b.workspace_id "
            "WHERE b.workspace_id = ? AND b.id <= ? ORDER BY 1",
            [workspace_id, top],
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


def _purchase_rows(
    cid: int, day: int, net: int, lines: Iterable[tuple[str, int | None, int, int]]
) -> Iterator[audience_service.ActivityRow]:
    """Activity rows of one paid-like order: the order, and its categories and products (count = orders)."""
    yield audience_service.ActivityRow(cid, "order", "", day, 1, net)
    categories: dict[str, int] = defaultdict(int)
    products: dict[int, int] = defaultdict(int)
    for category, product_id, _quantity, total in lines:
        if category:
            categories[category[:64]] += total
        if product_id is not None:
            products[product_id] += total
    for category, amount in categories.items():
        yield audience_service.ActivityRow(cid, "category", category, day, 1, amount)
    for product_id, amount in products.items():
        yield audience_service.ActivityRow(cid, "product", str(product_id), day, 1, amount)


def refresh_customer_activity(session: Session, *, workspace_id: int, customer_ids: Sequence[int]) -> None:
    """Rebuild these customers' purchase activity from their paid-like orders."""
    bulk = Bulk(session)
    paid = _PAID_SQL
    orders: dict[int, tuple[int, int, int]] = {}
    for oid, cid, placed, net in bulk.select_in(
        f"SELECT id, customer_id, placed_at, paid - refunded FROM orders WHERE workspace_id = ? AND status IN ({paid}) "
        "AND customer_id {in}",
        customer_ids,
        [workspace_id],
    ):
        at = bulk.parse_ts(placed)
        assert at is not None
        orders[oid] = (cid, audience_service.epoch_day(at), int(net or 0))
    lines: dict[int, list[tuple[str, int | None, int, int]]] = defaultdict(list)
    for oid, category, product_id, quantity, total in bulk.select_in(
        "SELECT order_id, category, product_id, quantity, total FROM order_line_items WHERE order_id {in}",
        sorted(orders),
    ):
        lines[oid].append((category, product_id, int(quantity), int(total)))
    rows = [row for oid, (cid, day, net) in orders.items() for row in _purchase_rows(cid, day, net, lines[oid])]
    audience_service.replace_activity(
        session,
        workspace_id=workspace_id,
        customer_ids=customer_ids,
        kinds=audience_service.PURCHASE_KINDS,
        rows=rows,
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
