"""Purchase data derived from orders: customer facts, purchase activity and the dashboard rollups.

Small pushes (API, webhooks) derive inside their own transaction. A bulk import writes orders and
line items only and logs its new orders, the customers of changed orders and the local days it
touched in `purchase_backlog`; `drain` claims those rows and derives them (decision 0009): new orders
of buyers with history are added as deltas, everyone else is recomputed from all their orders. The
claim (a DELETE ... RETURNING in the drain's own transaction) is what makes a drain safe to repeat
after a crash or to run twice at once: a delta is added exactly when its backlog row is deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import PurchaseFacts
from shequn.commerce import rollups
from shequn.commerce.canonical import PAID_STATUSES_SQL
from shequn.core.bulk import Bulk, gc_paused
from shequn.identity import service as identity_service

DRAIN_CHUNK = 20_000  # customers recomputed per round: bounds the IN lists and the Python-side rows


@dataclass
class DrainStats:
    """What one drain recomputed."""

    customers: int = 0
    days: int = 0


def log_backlog(
    bulk: Bulk,
    workspace_id: int,
    *,
    new_orders: Sequence[int] = (),
    customer_ids: Collection[int] = (),
    days: Iterable[date] = (),
) -> None:
    """Record what is now stale: these new orders, these customers (all their orders), these local days."""
    rows: list[tuple[Any, ...]] = [(workspace_id, cid, None, None) for cid in customer_ids]
    if new_orders:
        rows.append((workspace_id, None, None, bulk.js(list(new_orders))))
    rows += [(workspace_id, None, d.toordinal(), None) for d in set(days)]
    bulk.insert("purchase_backlog", ("workspace_id", "customer_id", "day", "order_ids"), rows)


def pending(session: Session, *, workspace_id: int) -> int:
    """Backlog rows not yet derived (0 once facts, activity and rollups are current)."""
    rows = Bulk(session).execute("SELECT COUNT(*) FROM purchase_backlog WHERE workspace_id = ?", [workspace_id])
    return int(rows[0][0])


def workspaces_with_backlog(session: Session) -> list[int]:
    """Workspaces whose backlog holds rows."""
    return [int(r[0]) for r in Bulk(session).execute("SELECT DISTINCT workspace_id FROM purchase_backlog")]


def drain(session: Session, *, workspace_id: int) -> DrainStats:
    """Derive everything the backlog holds now, in the caller's transaction (see _drain)."""
    with gc_paused():
        return _drain(session, workspace_id)


def _drain(session: Session, workspace_id: int) -> DrainStats:
    """Claim the backlog and derive it.

    The rows are claimed first (deleted, returning them): a second drain running at the same time
    waits for this transaction and then finds them gone, and a crash rolls the claim back with the
    work. That is what lets new orders be added to the stored facts as deltas, in proportion to the
    new orders rather than to the buyers' whole history. Customers named on their own (a changed or
    moved order, a merge) are recomputed from all their orders, after the deltas, which overwrites
    whatever the deltas did to them.
    """
    bulk = Bulk(session)
    claimed = bulk.execute(
        "DELETE FROM purchase_backlog WHERE workspace_id = ? RETURNING customer_id, day, order_ids", [workspace_id]
    )
    stats = DrainStats()
    named = {int(c) for c, _, _ in claimed if c is not None}
    days = sorted({date.fromordinal(int(d)) for _, d, _ in claimed if d is not None})
    new_orders = [oid for _, _, ids in claimed if ids is not None for oid in orjson.loads(ids)]
    returning, fresh = _split_buyers(bulk, workspace_id, new_orders, named)
    # Buyers with purchase history get the new orders added (cost: the new orders). Everyone else has
    # nothing stored to add to, and a recompute from their orders writes their rows in customer order,
    # which is about twice as fast as upserting a first import's rows batch by batch (measured).
    delta = [oid for cid in sorted(returning) for oid in returning[cid]]
    for i in range(0, len(delta), DRAIN_CHUNK):
        _add_new_orders(session, bulk, workspace_id, delta[i : i + DRAIN_CHUNK])
    # A customer merged since is recomputed as its winner: the merge moved its orders there.
    live = sorted(
        {
            int(r[0])
            for r in bulk.select_in(
                "SELECT COALESCE(merged_into_id, id) FROM customers WHERE workspace_id = ? AND id {in}",
                sorted(named | fresh),
                [workspace_id],
            )
        }
    )
    # Buyers whose facts count no order yet have no purchase activity either (both are always written
    # together), so their recompute need not delete any.
    first_timers = fresh - named
    for group, is_fresh in ((sorted(set(live) - first_timers), False), (sorted(set(live) & first_timers), True)):
        for i in range(0, len(group), DRAIN_CHUNK):
            chunk = set(group[i : i + DRAIN_CHUNK])
            refresh_customer_facts(session, workspace_id=workspace_id, customer_ids=chunk, fresh=is_fresh)
    tz = identity_service.workspace_timezone(session, workspace_id)
    rollups.refresh_days(session, workspace_id=workspace_id, tz=tz, days=days)
    stats.customers, stats.days = len(set(returning) | set(live)), len(days)
    return stats


def _split_buyers(
    bulk: Bulk, workspace_id: int, order_ids: list[int], named: set[int]
) -> tuple[dict[int, list[int]], set[int]]:
    """The new orders' buyers: those with purchase history (→ their new order ids), and the rest."""
    orders_of: dict[int, list[int]] = defaultdict(list)
    history: set[int] = set()
    for oid, cid, count in bulk.select_in(
        "SELECT o.id, o.customer_id, c.orders_count FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.workspace_id = ? AND o.id {in}",
        order_ids,
        [workspace_id],
    ):
        orders_of[int(cid)].append(int(oid))
        if count:
            history.add(int(cid))
    returning = {cid: ids for cid, ids in orders_of.items() if cid in history and cid not in named}
    return returning, set(orders_of) - set(returning)


def _add_new_orders(session: Session, bulk: Bulk, workspace_id: int, order_ids: list[int]) -> None:
    """Add these new orders to their buyers' stored facts and purchase activity."""
    paid = f"o.workspace_id = ? AND o.status IN ({PAID_STATUSES_SQL}) AND o.customer_id IS NOT NULL AND o.id {{in}}"
    by_line = paid.replace("o.id {in}", "li.order_id {in}")  # see _activity_selects
    facts: dict[int, PurchaseFacts] = {}
    for cid, first, last, n, spent in bulk.select_in(
        f"SELECT o.customer_id, MIN(o.placed_at), MAX(o.placed_at), COUNT(*), SUM(o.paid - o.refunded) FROM orders o "
        f"WHERE {paid} GROUP BY o.customer_id",
        order_ids,
        [workspace_id],
    ):
        facts[cid] = PurchaseFacts(cid, bulk.parse_ts(first), bulk.parse_ts(last), int(n), int(spent or 0), {})
    if not facts:
        return
    for cid, category, amount in bulk.select_in(
        "SELECT o.customer_id, li.category, SUM(li.total) FROM order_line_items li JOIN orders o ON o.id = li.order_id "
        f"WHERE li.category <> '' AND {by_line} GROUP BY o.customer_id, li.category",
        order_ids,
        [workspace_id],
    ):
        facts[cid].category_spend[category] = int(amount or 0)
    audience_service.add_purchase_facts(session, workspace_id=workspace_id, deltas=list(facts.values()))
    first_days = {cid: audience_service.epoch_day(f.first_order_at) for cid, f in facts.items() if f.first_order_at}
    audience_service.add_activity_from(
        session,
        workspace_id=workspace_id,
        selects=[(sql, [workspace_id, *params]) for sql, params in _activity_selects(bulk, workspace_id, paid)],
        ids=order_ids,
        min_days=first_days,
    )


def _activity_selects(bulk: Bulk, workspace_id: int, where: str) -> list[tuple[str, list[Any]]]:
    """SELECTs of purchase activity rows (workspace, customer, kind, ref, day, count, amount) of the
    orders `where` picks (its `?` is the workspace; its `{in}` is left for the caller's ids)."""
    day = audience_service.epoch_day_sql(bulk, "o.placed_at")
    lines = "FROM order_line_items li JOIN orders o ON o.id = li.order_id"
    # Picked by order id, the line queries say so on the lines' own indexed column: SQLite then walks the
    # id list into order_line_items instead of scanning every line of the workspace per batch.
    by_line = where.replace("o.id {in}", "li.order_id {in}")
    return [
        (
            f"SELECT ?, o.customer_id, 'order', '', {day}, COUNT(*), SUM(o.paid - o.refunded) FROM orders o "
            f"WHERE {where} GROUP BY o.customer_id, {day}",
            [workspace_id],
        ),
        (
            f"SELECT ?, o.customer_id, 'category', li.category, {day}, COUNT(DISTINCT o.id), SUM(li.total) {lines} "
            f"WHERE li.category <> '' AND {by_line} GROUP BY o.customer_id, li.category, {day}",
            [workspace_id],
        ),
        (
            f"SELECT ?, o.customer_id, 'product', CAST(li.product_id AS TEXT), {day}, COUNT(DISTINCT o.id), "
            f"SUM(li.total) {lines} WHERE li.product_id IS NOT NULL AND {by_line} "
            f"GROUP BY o.customer_id, li.product_id, {day}",
            [workspace_id],
        ),
    ]


def refresh_customer_activity(
    session: Session, *, workspace_id: int, customer_ids: Sequence[int], fresh: bool = False
) -> None:
    """Rebuild these customers' purchase activity from their paid-like orders, in the database.

    Per customer and UTC day: 'order' rows count orders and sum net paid; 'category' and 'product'
    rows count the orders that had them and sum their line totals.
    """
    bulk = Bulk(session)
    where = f"o.workspace_id = ? AND o.status IN ({PAID_STATUSES_SQL}) AND o.customer_id {{in}}"
    audience_service.replace_activity_from(
        session,
        workspace_id=workspace_id,
        customer_ids=customer_ids,
        kinds=audience_service.PURCHASE_KINDS,
        selects=[(sql, [workspace_id, *params]) for sql, params in _activity_selects(bulk, workspace_id, where)],
        fresh=fresh,
    )


def refresh_customer_facts(session: Session, *, workspace_id: int, customer_ids: set[int], fresh: bool = False) -> None:
    """Recompute purchase facts of these customers from their paid-like orders and hand them to audience."""
    if not customer_ids:
        return
    ids = sorted(customer_ids)
    bulk = Bulk(session)
    paid = PAID_STATUSES_SQL
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
    refresh_customer_activity(session, workspace_id=workspace_id, customer_ids=ids, fresh=fresh)
