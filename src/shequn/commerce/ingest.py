"""Bulk, idempotent order import: upsert by source id, newer source_updated_at wins.

Each batch costs a fixed number of statements (look-ups, executemany inserts and updates), never one
per order. The caller commits after each batch, so a failure later in a file keeps the batches before
it. With derive=True (API and webhook pushes) a batch also updates purchase facts, activity and
rollups in its transaction; with derive=False (file imports, the demo load) it logs the customers and
days it touched to the purchase backlog, and `commerce.derive.drain` derives them afterwards in
set-based passes (decision 0009). Figures: docs/benchmarks.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import PurchaseFacts
from shequn.commerce import derive as derived
from shequn.commerce import rollups
from shequn.commerce.canonical import PAID_STATUSES, OrderIn, ParsedRow, RowError, check_text, scrub_raw
from shequn.commerce.rollups import local_day
from shequn.core.bulk import Bulk, gc_paused
from shequn.core.clock import utcnow
from shequn.core.db import analyze, reserve_ids
from shequn.core.signals import send_on_commit
from shequn.identity import service as identity_service

MAX_KEPT_ERRORS = 10_000  # rows kept for the error report; all bad rows are still counted
BULK_TABLES = ("customers", "customer_identities", "orders", "order_line_items")


@dataclass
class ImportStats:
    """What an import did, row by row."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    customers: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "customers": len(self.customers),
        }


def import_orders(
    session: Session,
    *,
    workspace_id: int,
    rows: Iterable[ParsedRow],
    batch_size: int = 5000,
    on_batch: Callable[[ImportStats], None] | None = None,
    on_errors: Callable[[list[ParsedRow]], None] | None = None,
    derive: bool = True,
) -> ImportStats:
    """Import parsed rows in batches; bad rows go to on_errors, good ones are upserted.

    derive=False leaves facts, activity and rollups to `commerce.derive.drain` (see the module doc).
    """
    stats = ImportStats()
    batch: list[OrderIn] = []
    errors: list[ParsedRow] = []

    next_analyze = [batch_size]

    kept = [0]

    def flush() -> None:
        if errors and on_errors is not None and kept[0] < MAX_KEPT_ERRORS:
            keep = errors[: MAX_KEPT_ERRORS - kept[0]]
            on_errors(keep)
            kept[0] += len(keep)
        errors.clear()
        if batch:
            with gc_paused():
                upsert_orders(session, workspace_id=workspace_id, orders=batch, stats=stats, derive=derive)
            batch.clear()
        written = stats.created + stats.updated
        if written >= next_analyze[0]:
            # A fresh table has no planner statistics, and PostgreSQL then plans the batch look-ups as
            # sequential scans; refreshing them as the tables grow 4× keeps every batch on its indexes.
            analyze(session, BULK_TABLES)
            next_analyze[0] = written * 4
        if on_batch is not None:
            on_batch(stats)

    for parsed in rows:
        stats.received += 1
        if parsed.error is None and isinstance(parsed.item, OrderIn):
            try:
                check_text(parsed.item)
            except RowError as exc:
                parsed = ParsedRow(row=parsed.row, error=exc, source_order_id=parsed.source_order_id)
        if parsed.error is not None or not isinstance(parsed.item, OrderIn):
            stats.failed += 1
            errors.append(parsed)
        else:
            batch.append(parsed.item)
        if len(batch) >= batch_size or len(errors) >= batch_size:
            flush()
    flush()
    return stats


def _key(o: OrderIn) -> tuple[str, str, str]:
    return (o.source, o.shop_id, o.source_order_id)


def upsert_orders(
    session: Session, *, workspace_id: int, orders: Sequence[OrderIn], stats: ImportStats, derive: bool = True
) -> list[int]:
    """Upsert one batch of orders with their customers, products and line items; returns changed order ids."""
    latest: dict[tuple[str, str, str], OrderIn] = {}
    for o in orders:
        prev = latest.get(_key(o))
        if prev is None or o.source_updated_at >= prev.source_updated_at:
            latest[_key(o)] = o
    duplicates = len(orders) - len(latest)

    existing = _existing(Bulk(session), workspace_id, list(latest))
    new: list[OrderIn] = []
    changed: list[tuple[int, OrderIn]] = []
    old_customers: set[int] = set()
    old_placed: list[Any] = []
    for key, o in latest.items():
        found = existing.get(key)
        if found is None:
            new.append(o)
        elif o.source_updated_at > found[1]:
            changed.append((found[0], o))
            old_placed.append(found[3])
            if found[2] is not None:
                old_customers.add(found[2])
        else:
            stats.unchanged += 1
    stats.unchanged += duplicates
    if not new and not changed:
        return []

    todo = new + [o for _, o in changed]
    resolution = audience_service.resolve_customers(
        session, workspace_id=workspace_id, people=[o.customer for o in todo]
    )
    customer_ids = resolution.ids
    bulk = Bulk(session)
    products = _ensure_products(bulk, session, workspace_id, todo)
    now = bulk.ts(utcnow())
    new_ids = reserve_ids(session, "orders", len(new)) if new else []
    ids = new_ids + [oid for oid, _ in changed]
    tz = identity_service.workspace_timezone(session, workspace_id)
    zone = ZoneInfo(tz)
    # An updated order can change or move spend, so its customers (old and new) are recomputed from
    # all their orders; everyone else only gains new orders, which are added to the stored facts.
    recompute = old_customers | {cid for cid in customer_ids[len(new) :] if cid is not None}
    batch = _Batch(bulk, workspace_id, now, products, recompute, zone, derive=derive)
    for i, (oid, o, cid) in enumerate(zip(ids, todo, customer_ids, strict=True)):
        batch.add(oid, o, cid, is_new=i < len(new))
    bulk.insert("orders", ORDER_COLUMNS, batch.orders[: len(new)])
    if changed:
        # Same column order minus id/created_at, then the id for the WHERE.
        sets = ", ".join(f"{c} = ?j" if c in JSON_ORDER_COLUMNS else f"{c} = ?" for c in ORDER_COLUMNS[1:-2])
        bulk.executemany(
            f"UPDATE orders SET {sets}, updated_at = ? WHERE id = ?",
            [(*r[1:-2], r[-1], r[0]) for r in batch.orders[len(new) :]],
        )
        bulk.select_in("DELETE FROM order_line_items WHERE order_id {in}", [oid for oid, _ in changed])
    bulk.insert("order_line_items", LINE_COLUMNS, batch.lines)

    stats.created += len(new)
    stats.updated += len(changed)
    affected = {c for c in customer_ids if c is not None} | old_customers | resolution.touched
    days = batch.days | {local_day(t, zone) for t in old_placed if t is not None}
    stats.customers |= affected
    send_on_commit(
        session,
        "commerce.orders_changed",
        workspace_id,
        order_ids=ids,
        paid_order_ids=batch.paid_ids,
        customer_ids=sorted(affected),
    )
    if not derive:
        # Facts change only with orders: the new orders' buyers, and both buyers of a changed order.
        derived.log_backlog(bulk, workspace_id, new_orders=new_ids, customer_ids=sorted(recompute), days=days)
        return ids
    # Customers created by this batch have no stored facts yet: theirs are written without a read.
    fresh = [f for cid, f in batch.facts.items() if cid in resolution.created]
    audience_service.update_purchase_facts(session, workspace_id=workspace_id, facts=fresh)
    audience_service.add_purchase_facts(
        session,
        workspace_id=workspace_id,
        deltas=[f for cid, f in batch.facts.items() if cid not in resolution.created],
    )
    audience_service.add_activity(
        session,
        workspace_id=workspace_id,
        rows=[
            audience_service.ActivityRow(cid, kind, ref, day, n, amount)
            for (cid, kind, ref, day), (n, amount) in batch.activity.items()
        ],
    )
    derived.refresh_customer_facts(session, workspace_id=workspace_id, customer_ids=recompute)
    rollups.refresh_days(session, workspace_id=workspace_id, tz=tz, days=days)
    return ids


class _Batch:
    """One pass over a batch's orders: row tuples, line rows, purchase facts, activity sums, local days."""

    def __init__(
        self,
        bulk: Bulk,
        workspace_id: int,
        now: Any,
        products: dict[str, tuple[int, str]],
        skip: set[int],
        zone: ZoneInfo,
        *,
        derive: bool,
    ) -> None:
        self.bulk, self.ws, self.now, self.derive = bulk, workspace_id, now, derive
        self.products, self.skip, self.zone = products, skip, zone
        self.orders: list[tuple[Any, ...]] = []
        self.lines: list[tuple[Any, ...]] = []
        self.paid_ids: list[int] = []
        self.facts: dict[int, PurchaseFacts] = {}
        # (customer, kind, ref, day) → [orders, amount]: the activity rows of new paid-like orders.
        self.activity: dict[tuple[int, str, str, int], list[int]] = {}
        self.days: set[Any] = set()

    def add(self, oid: int, o: OrderIn, cid: int | None, *, is_new: bool) -> None:
        """Account for one order (new or changed) with its resolved customer."""
        ws, products = self.ws, self.products
        self.orders.append(_order_row(self.bulk, oid, ws, o, cid, self.now))
        created = o.created_at
        self.days.add(local_day(created, self.zone))
        paid = o.status in PAID_STATUSES
        if paid:
            self.paid_ids.append(oid)
        # Only a deriving batch adds facts and activity of new orders here; otherwise the drain does.
        counted = self.derive and paid and is_new and cid is not None and cid not in self.skip
        categories: dict[str, int] = {}
        by_product: dict[int, int] = {}
        lines = self.lines
        for li in o.line_items:
            pid, pcat = products.get(li.sku, (None, ""))
            category = (li.category or pcat)[:64]
            lines.append((ws, oid, pid, li.sku[:100], li.title[:255], category, li.quantity, li.unit_price, li.total))
            if counted:
                if category:
                    categories[category] = categories.get(category, 0) + li.total
                if pid is not None:
                    by_product[pid] = by_product.get(pid, 0) + li.total
        if not counted:
            return
        assert cid is not None
        net = o.paid - o.refunded
        f = self.facts.get(cid)
        if f is None:
            f = self.facts[cid] = PurchaseFacts(cid, created, created, 0, 0, {})
        else:
            if f.first_order_at is None or created < f.first_order_at:
                f.first_order_at = created
            if f.last_order_at is None or created > f.last_order_at:
                f.last_order_at = created
        f.orders_count += 1
        f.total_spent += net
        spend = f.category_spend
        for cat, amount in categories.items():
            spend[cat] = spend.get(cat, 0) + amount
        eday = audience_service.epoch_day(created)
        acc = self.activity
        _bump(acc, (cid, "order", "", eday), net)
        for cat, amount in categories.items():
            _bump(acc, (cid, "category", cat, eday), amount)
        for pid, amount in by_product.items():
            _bump(acc, (cid, "product", str(pid), eday), amount)


def _bump(acc: dict[tuple[int, str, str, int], list[int]], key: tuple[int, str, str, int], amount: int) -> None:
    cell = acc.get(key)
    if cell is None:
        acc[key] = [1, amount]
    else:
        cell[0] += 1
        cell[1] += amount


ORDER_COLUMNS = (
    "id",
    "workspace_id",
    "customer_id",
    "source",
    "shop_id",
    "source_order_id",
    "status",
    "currency",
    "subtotal",
    "discount",
    "shipping",
    "total",
    "paid",
    "refunded",
    "placed_at",
    "paid_at",
    "source_updated_at",
    "discount_codes",
    "attribution",
    "raw",
    "created_at",
    "updated_at",
)
JSON_ORDER_COLUMNS = frozenset({"discount_codes", "attribution", "raw"})
LINE_COLUMNS = (
    "workspace_id",
    "order_id",
    "product_id",
    "sku",
    "title",
    "category",
    "quantity",
    "unit_price",
    "total",
)
PRODUCT_COLUMNS = ("id", "workspace_id", "sku", "title", "category", "price", "tags", "created_at", "updated_at")


def _order_row(
    bulk: Bulk, oid: int, workspace_id: int, o: OrderIn, customer_id: int | None, now: Any
) -> tuple[Any, ...]:
    return (
        oid,
        workspace_id,
        customer_id,
        o.source[:32],
        o.shop_id[:64],
        o.source_order_id[:64],
        o.status,
        o.currency[:3],
        o.subtotal,
        o.discount,
        o.shipping,
        o.total,
        o.paid,
        o.refunded,
        bulk.ts(o.created_at),
        bulk.ts(o.paid_at),
        bulk.ts(o.source_updated_at),
        bulk.js([{"code": c, "amount": a} for c, a in o.discount_codes]) if o.discount_codes else "[]",
        bulk.js(o.attribution) if o.attribution else "{}",
        bulk.js(scrub_raw(o.raw)) if o.raw else "{}",
        now,
        now,
    )


def _existing(
    bulk: Bulk, workspace_id: int, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], tuple[int, Any, int | None, Any]]:
    """(source, shop, id) → (order id, source_updated_at, customer_id, placed_at) for stored orders."""
    by_shop: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, shop, oid in keys:
        by_shop[(source, shop)].append(oid)
    found: dict[tuple[str, str, str], tuple[int, Any, int | None, Any]] = {}
    for (source, shop), oids in by_shop.items():
        rows = bulk.select_in(
            "SELECT id, source_order_id, source_updated_at, customer_id, placed_at FROM orders "
            "WHERE workspace_id = ? AND source = ? AND shop_id = ? AND source_order_id {in}",
            oids,
            [workspace_id, source, shop],
        )
        for order_id, soid, updated, cid, placed in rows:
            found[(source, shop, soid)] = (order_id, bulk.parse_ts(updated), cid, bulk.parse_ts(placed))
    return found


def _ensure_products(
    bulk: Bulk, session: Session, workspace_id: int, orders: Sequence[OrderIn]
) -> dict[str, tuple[int, str]]:
    """sku → (product id, category); SKUs first seen in orders become products."""
    first_seen: dict[str, Any] = {}
    for o in orders:
        for li in o.line_items:
            if li.sku and li.sku not in first_seen:
                first_seen[li.sku] = li
    if not first_seen:
        return {}
    skus = list(first_seen)
    known = {
        sku: (pid, cat)
        for sku, pid, cat in bulk.select_in(
            "SELECT sku, id, category FROM products WHERE workspace_id = ? AND sku {in}", skus, [workspace_id]
        )
    }
    missing = [s for s in skus if s not in known]
    if missing:
        now = bulk.ts(utcnow())
        pids = reserve_ids(session, "products", len(missing))
        bulk.insert(
            "products",
            PRODUCT_COLUMNS,
            [
                (
                    pid,
                    workspace_id,
                    s[:100],
                    first_seen[s].title[:255] or s,
                    first_seen[s].category[:64],
                    first_seen[s].unit_price,
                    "[]",
                    now,
                    now,
                )
                for pid, s in zip(pids, missing, strict=True)
            ],
        )
        known.update({s: (pid, first_seen[s].category) for pid, s in zip(pids, missing, strict=True)})
    return known
