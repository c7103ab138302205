"""Bulk, idempotent order import: upsert by source id, newer source_updated_at wins.

Each batch costs a fixed number of statements (lookups, executemany inserts/updates, one facts
query), never one per order: that is what makes tens of thousands of orders a second possible on
SQLite. The caller commits after each batch, so a failure later in a file keeps earlier batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import PurchaseFacts
from shequn.commerce.canonical import PAID_STATUSES, OrderIn, ParsedRow
from shequn.commerce.models import Order, OrderLineItem, Product
from shequn.core.clock import utcnow
from shequn.core.db import reserve_ids
from shequn.core.signals import send_on_commit

CHUNK = 900
TOP_CATEGORIES = 3
MAX_KEPT_ERRORS = 10_000


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
            "received": self.received, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "failed": self.failed, "customers": len(self.customers),
        }


def import_orders(
    session: Session,
    *,
    workspace_id: int,
    rows: Iterable[ParsedRow],
    batch_size: int = 5000,
    on_batch: Callable[[ImportStats], None] | None = None,
    on_errors: Callable[[list[ParsedRow]], None] | None = None,
) -> ImportStats:
    """Import parsed rows in batches; bad rows go to on_errors, good ones are upserted."""
    stats = ImportStats()
    batch: list[OrderIn] = []
    errors: list[ParsedRow] = []

    def flush() -> None:
        if errors and on_errors is not None:
            on_errors(list(errors))
        errors.clear()
        if batch:
            upsert_orders(session, workspace_id=workspace_id, orders=batch, stats=stats)
            batch.clear()
        if on_batch is not None:
            on_batch(stats)

    for parsed in rows:
        stats.received += 1
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


def upsert_orders(session: Session, *, workspace_id: int, orders: Sequence[OrderIn], stats: ImportStats) -> list[int]:
    """Upsert one batch of orders with their customers, products and line items; returns changed order ids."""
    latest: dict[tuple[str, str, str], OrderIn] = {}
    for o in orders:
        prev = latest.get(_key(o))
        if prev is None or o.source_updated_at >= prev.source_updated_at:
            latest[_key(o)] = o
    duplicates = len(orders) - len(latest)

    existing = _existing(session, workspace_id, list(latest))
    new: list[OrderIn] = []
    changed: list[tuple[int, OrderIn]] = []
    old_customers: set[int] = set()
    for key, o in latest.items():
        found = existing.get(key)
        if found is None:
            new.append(o)
        elif o.source_updated_at > found[1]:
            changed.append((found[0], o))
            if found[2] is not None:
                old_customers.add(found[2])
        else:
            stats.unchanged += 1
    stats.unchanged += duplicates
    if not new and not changed:
        return []

    todo = new + [o for _, o in changed]
    customer_ids, touched = audience_service.resolve_customers(
        session, workspace_id=workspace_id, people=[o.customer for o in todo]
    )
    products = _ensure_products(session, workspace_id, todo)
    now = utcnow()
    new_ids = reserve_ids(session, "orders", len(new)) if new else []
    ids = new_ids + [oid for oid, _ in changed]
    order_rows = [_order_row(oid, workspace_id, o, cid, now) for oid, o, cid in zip(ids, todo, customer_ids, strict=True)]
    if new:
        session.execute(Order.__table__.insert(), order_rows[: len(new)])
    if changed:
        t = Order.__table__
        updates = order_rows[len(new) :]
        for row in updates:
            row["_id"] = row.pop("id")
            row.pop("created_at")
        session.execute(
            t.update().where(t.c.id == bindparam("_id")).values({k: bindparam(k) for k in updates[0] if k != "_id"}),
            updates,
        )
        changed_ids = [oid for oid, _ in changed]
        for i in range(0, len(changed_ids), CHUNK):
            session.execute(delete(OrderLineItem).where(OrderLineItem.order_id.in_(changed_ids[i : i + CHUNK])))
    line_rows = [
        {"workspace_id": workspace_id, "order_id": oid, "product_id": products.get(li.sku, (None, ""))[0],
         "sku": li.sku[:100], "title": li.title[:255], "category": (li.category or products.get(li.sku, (None, ""))[1])[:64],
         "quantity": li.quantity, "unit_price": li.unit_price, "total": li.total}
        for oid, o in zip(ids, todo, strict=True)
        for li in o.line_items
    ]
    if line_rows:
        session.execute(OrderLineItem.__table__.insert(), line_rows)

    stats.created += len(new)
    stats.updated += len(changed)
    affected = {c for c in customer_ids if c is not None} | old_customers | touched
    refresh_customer_facts(session, workspace_id=workspace_id, customer_ids=affected)
    stats.customers |= affected
    paid_ids = [oid for oid, o in zip(ids, todo, strict=True) if o.status in PAID_STATUSES]
    send_on_commit(session, "commerce.orders_changed", workspace_id, order_ids=ids, paid_order_ids=paid_ids,
                   customer_ids=sorted(affected))
    return ids


def _order_row(oid: int, workspace_id: int, o: OrderIn, customer_id: int | None, now: Any) -> dict[str, Any]:
    return {
        "id": oid, "workspace_id": workspace_id, "customer_id": customer_id, "source": o.source[:32],
        "shop_id": o.shop_id[:64], "source_order_id": o.source_order_id[:64], "status": o.status,
        "currency": o.currency[:3], "subtotal": o.subtotal, "discount": o.discount, "shipping": o.shipping,
        "total": o.total, "paid": o.paid, "refunded": o.refunded, "placed_at": o.created_at,
        "paid_at": o.paid_at, "source_updated_at": o.source_updated_at,
        "discount_codes": [{"code": c, "amount": a} for c, a in o.discount_codes],
        "attribution": o.attribution, "raw": o.raw, "created_at": now, "updated_at": now,
    }


def _existing(
    session: Session, workspace_id: int, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], tuple[int, Any, int | None]]:
    """(source, shop, id) → (order id, source_updated_at, customer_id) for orders already stored."""
    by_shop: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, shop, oid in keys:
        by_shop[(source, shop)].append(oid)
    found: dict[tuple[str, str, str], tuple[int, Any, int | None]] = {}
    for (source, shop), oids in by_shop.items():
        for i in range(0, len(oids), CHUNK):
            rows = session.execute(
                select(Order.id, Order.source_order_id, Order.source_updated_at, Order.customer_id).where(
                    Order.workspace_id == workspace_id, Order.source == source, Order.shop_id == shop,
                    Order.source_order_id.in_(oids[i : i + CHUNK]),
                )
            )
            for order_id, soid, updated, cid in rows:
                found[(source, shop, soid)] = (order_id, updated, cid)
    return found


def _ensure_products(session: Session, workspace_id: int, orders: Sequence[OrderIn]) -> dict[str, tuple[int, str]]:
    """sku → (product id, category); SKUs first seen in orders become products."""
    first_seen: dict[str, Any] = {}
    for o in orders:
        for li in o.line_items:
            if li.sku and li.sku not in first_seen:
                first_seen[li.sku] = li
    if not first_seen:
        return {}
    skus = list(first_seen)
    known: dict[str, tuple[int, str]] = {}
    for i in range(0, len(skus), CHUNK):
        rows = session.execute(
            select(Product.sku, Product.id, Product.category).where(
                Product.workspace_id == workspace_id, Product.sku.in_(skus[i : i + CHUNK])
            )
        )
        known.update({sku: (pid, cat) for sku, pid, cat in rows})
    missing = [s for s in skus if s not in known]
    if missing:
        now = utcnow()
        pids = reserve_ids(session, "products", len(missing))
        session.execute(
            Product.__table__.insert(),
            [{"id": pid, "workspace_id": workspace_id, "sku": s[:100], "title": first_seen[s].title[:255] or s,
              "category": first_seen[s].category[:64], "price": first_seen[s].unit_price, "tags": [],
              "created_at": now, "updated_at": now} for pid, s in zip(pids, missing, strict=True)],
        )
        known.update({s: (pid, first_seen[s].category) for pid, s in zip(pids, missing, strict=True)})
    return known


def refresh_customer_facts(session: Session, *, workspace_id: int, customer_ids: set[int]) -> None:
    """Recompute purchase facts of these customers from their paid-like orders and hand them to audience."""
    if not customer_ids:
        return
    ids = sorted(customer_ids)
    paid = list(PAID_STATUSES)
    agg: dict[int, list[Any]] = {cid: [None, None, 0, 0] for cid in ids}
    cats: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        rows = session.execute(
            select(Order.customer_id, func.min(Order.placed_at), func.max(Order.placed_at), func.count(),
                   func.sum(Order.paid - Order.refunded))
            .where(Order.workspace_id == workspace_id, Order.customer_id.in_(chunk), Order.status.in_(paid))
            .group_by(Order.customer_id)
        )
        for cid, first, last, n, spent in rows:
            agg[cid] = [first, last, int(n), int(spent or 0)]
        cat_rows = session.execute(
            select(Order.customer_id, OrderLineItem.category, func.sum(OrderLineItem.total))
            .join(Order, Order.id == OrderLineItem.order_id)
            .where(Order.workspace_id == workspace_id, Order.customer_id.in_(chunk), Order.status.in_(paid),
                   OrderLineItem.category != "")
            .group_by(Order.customer_id, OrderLineItem.category)
        )
        for cid, cat, amount in cat_rows:
            cats[cid].append((cat, int(amount or 0)))
    facts = []
    for cid, (first, last, n, spent) in agg.items():
        spent_by_cat = sorted(cats.get(cid, []), key=lambda x: (-x[1], x[0]))
        total = sum(a for _, a in spent_by_cat) or 1
        top = [{"category": c, "spent": a, "share": round(a / total, 3)} for c, a in spent_by_cat[:TOP_CATEGORIES]]
        facts.append(PurchaseFacts(customer_id=cid, first_order_at=first, last_order_at=last, orders_count=n,
                                   total_spent=max(spent, 0), top_categories=top))
    audience_service.update_purchase_facts(session, workspace_id=workspace_id, facts=facts)
