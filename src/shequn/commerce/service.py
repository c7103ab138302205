"""Commerce services: products, orders, imports, figures for the dashboard."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import TimelineEntry
from shequn.commerce import derive, rollups
from shequn.commerce.canonical import ORDER_STATUSES, PAID_STATUSES, OrderIn, ParsedRow, ProductIn
from shequn.commerce.derive import refresh_customer_facts
from shequn.commerce.errors import OrderNotFound, ProductNotFound
from shequn.commerce.ingest import BULK_TABLES, ImportStats, import_orders, upsert_orders
from shequn.commerce.models import ImportRowError, Order, OrderLineItem, Product
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.db import analyze
from shequn.core.errors import TooLarge, ValidationFailed
from shequn.core.jobs import JobRun, enqueue_job
from shequn.core.settings import get_settings
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

__all__ = ["ImportStats", "import_orders", "upsert_orders"]

IMPORT_JOB = "commerce.import_orders"
PRODUCT_IMPORT_JOB = "commerce.import_products"
DEMO_JOB = "commerce.load_demo"
DEMO_LOADED = "commerce.demo_loaded"  # signal: the demo orders are in (other domains add their demo layer)
ROLLUP_JOB = "commerce.rebuild_rollups"


# --- merges and timeline, registered with audience ----------------------------------------------


def _move_orders_on_merge(session: Session, workspace_id: int, pairs: list[tuple[int, int]]) -> None:
    Bulk(session).executemany(
        "UPDATE orders SET customer_id = ? WHERE workspace_id = ? AND customer_id = ?",
        [(winner, workspace_id, loser) for loser, winner in pairs],
    )
    winners = {winner for _, winner in pairs}
    refresh_customer_facts(session, workspace_id=workspace_id, customer_ids=winners)
    # New orders of the losers may still wait in the backlog: the drain must recompute the winners from
    # all their orders rather than add those orders to facts that already hold them.
    derive.log_backlog(Bulk(session), workspace_id, customer_ids=sorted(winners))


def _order_timeline(session: Session, workspace_id: int, customer_id: int, limit: int) -> list[TimelineEntry]:
    rows = session.scalars(
        select(Order)
        .where(Order.workspace_id == workspace_id, Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc())
        .limit(limit)
    )
    return [
        TimelineEntry(
            at=o.placed_at,
            kind="order",
            title=f"{o.source} #{o.source_order_id}",
            amount=o.total,
            details={"order_id": o.id, "status": o.status},
        )
        for o in rows
    ]


audience_service.register_merge_hook(_move_orders_on_merge)
audience_service.register_timeline_source("commerce.orders", _order_timeline)


# --- products -----------------------------------------------------------------------------------


def list_products(
    session: Session, *, workspace_id: int, q: str = "", category: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[Product], int]:
    """A page of products and the total matching."""
    stmt = select(Product).where(Product.workspace_id == workspace_id)
    if q:
        stmt = stmt.where(or_(Product.sku.like(f"%{q}%"), Product.title.like(f"%{q}%")))
    if category:
        stmt = stmt.where(Product.category == category)
    total = session.scalar(stmt.with_only_columns(func.count(Product.id))) or 0
    rows = session.scalars(stmt.order_by(Product.category, Product.sku).limit(limit).offset(offset))
    return list(rows), total


def get_product(session: Session, *, workspace_id: int, product_id: int) -> Product:
    """A product of this workspace."""
    product = session.get(Product, product_id)
    if product is None or product.workspace_id != workspace_id:
        raise ProductNotFound(id=product_id)
    return product


def upsert_products(session: Session, actor: Actor, products: Sequence[ProductIn]) -> tuple[int, int]:
    """Create or update products by SKU; returns (created, updated)."""
    identity_service.check_perm(actor, Perm.WRITE)
    created = updated = 0
    skus = [p.sku for p in products]
    existing = {
        p.sku: p
        for p in session.scalars(
            select(Product).where(Product.workspace_id == actor.workspace_id, Product.sku.in_(skus))
        )
    }
    for p in products:
        row = existing.get(p.sku)
        if row is None:
            row = Product(workspace_id=actor.workspace_id, sku=p.sku)
            session.add(row)
            existing[p.sku] = row
            created += 1
        else:
            updated += 1
        row.title, row.category, row.price, row.tags, row.updated_at = p.title, p.category, p.price, p.tags, utcnow()
    session.flush()
    identity_service.record_audit(
        session, actor, "products.upserted", "product", "", {"created": created, "updated": updated}
    )
    return created, updated


def list_categories(session: Session, *, workspace_id: int) -> list[str]:
    """Distinct product categories."""
    return [
        c
        for c in session.scalars(
            select(Product.category)
            .where(Product.workspace_id == workspace_id, Product.category != "")
            .distinct()
            .order_by(Product.category)
        )
    ]


# --- orders -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    """Filters of the order list."""

    q: str = ""
    status: str = ""
    source: str = ""
    customer_id: int | None = None


def list_orders(
    session: Session, *, workspace_id: int, flt: OrderFilter, limit: int = 50, offset: int = 0
) -> tuple[list[Order], int]:
    """A page of orders, newest first, and the total matching."""
    stmt = select(Order).where(Order.workspace_id == workspace_id)
    if flt.q:
        stmt = stmt.where(Order.source_order_id == flt.q.strip())
    if flt.status:
        stmt = stmt.where(Order.status == flt.status)
    if flt.source:
        stmt = stmt.where(Order.source == flt.source)
    if flt.customer_id is not None:
        stmt = stmt.where(Order.customer_id == flt.customer_id)
    total = session.scalar(stmt.with_only_columns(func.count(Order.id))) or 0
    rows = session.scalars(stmt.order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def get_order(session: Session, *, workspace_id: int, order_id: int) -> Order:
    """An order of this workspace."""
    order = session.get(Order, order_id)
    if order is None or order.workspace_id != workspace_id:
        raise OrderNotFound(id=order_id)
    return order


def orders_of_customers(
    session: Session, *, workspace_id: int, order_ids: Sequence[int], customer_ids: Collection[int]
) -> list[Order]:
    """Those of these orders whose buyer is one of these customers, by id (one query per 5,000 ids).

    The buyers are filtered here, not in SQL: a busy sale can have more waiting buyers than SQLite
    binds parameters in one statement.
    """
    if not order_ids or not customer_ids:
        return []
    out: list[Order] = []
    ids = sorted(set(order_ids))
    for i in range(0, len(ids), 5000):
        rows = session.scalars(
            select(Order).where(Order.workspace_id == workspace_id, Order.id.in_(ids[i : i + 5000])).order_by(Order.id)
        )
        out += [o for o in rows if o.customer_id in customer_ids]
    return out


def list_line_items(session: Session, *, workspace_id: int, order_ids: Sequence[int]) -> dict[int, list[OrderLineItem]]:
    """Line items of these orders, grouped by order id."""
    out: dict[int, list[OrderLineItem]] = {i: [] for i in order_ids}
    if not order_ids:
        return out
    for li in session.scalars(
        select(OrderLineItem)
        .where(OrderLineItem.workspace_id == workspace_id, OrderLineItem.order_id.in_(order_ids))
        .order_by(OrderLineItem.id)
    ):
        out[li.order_id].append(li)
    return out


def push_orders(session: Session, actor: Actor, orders: Sequence[OrderIn]) -> tuple[ImportStats, list[int]]:
    """Upsert orders pushed through the API or a webhook (same rules as file imports)."""
    identity_service.check_perm(actor, Perm.WRITE)
    stats = ImportStats(received=len(orders))
    ids = upsert_orders(session, workspace_id=actor.workspace_id, orders=orders, stats=stats)
    identity_service.record_audit(session, actor, "orders.pushed", "order", "", stats.as_dict())
    return stats, ids


def order_ids_for(session: Session, *, workspace_id: int, keys: Sequence[tuple[str, str, str]]) -> list[int | None]:
    """Order ids for (source, shop_id, source_order_id) keys, in order (None where missing)."""
    out: list[int | None] = []
    for source, shop, soid in keys:
        out.append(
            session.scalar(
                select(Order.id).where(
                    Order.workspace_id == workspace_id,
                    Order.source == source,
                    Order.shop_id == shop,
                    Order.source_order_id == soid,
                )
            )
        )
    return out


# --- imports ------------------------------------------------------------------------------------


def start_import(
    session: Session,
    actor: Actor,
    *,
    filename: str,
    data: bytes,
    source: str | None,
    shop_id: str,
    kind: str = "orders",
    idempotency_key: str | None = None,
) -> JobRun:
    """Store an uploaded file and queue its import job (runs after commit)."""
    identity_service.check_perm(actor, Perm.IMPORT)
    settings = get_settings()
    if len(data) > settings.max_upload_mb * 1024 * 1024:
        raise TooLarge(limit_mb=settings.max_upload_mb)
    if not data:
        raise ValidationFailed(details=[{"field": "file", "message": "empty file"}])
    from shequn.commerce.sources import SOURCES

    if source and source not in SOURCES:
        raise ValidationFailed(details=[{"field": "source", "message": f"unknown source {source}"}])
    digest = hashlib.sha256(data).hexdigest()
    upload_dir = settings.upload_dir / str(actor.workspace_id)
    upload_dir.mkdir(parents=True, exist_ok=True)
    suffix = "".join(ch for ch in Path(filename).suffix.lower()[:8] if ch.isalnum() or ch == ".")
    # One file per upload (deleted when its import succeeds): uploads carry buyers' PII.
    path = upload_dir / f"{digest[:16]}-{secrets.token_hex(4)}{suffix}"
    path.write_bytes(data)
    job = enqueue_job(
        session,
        workspace_id=actor.workspace_id,
        kind=PRODUCT_IMPORT_JOB if kind == "products" else IMPORT_JOB,
        params={
            "path": str(path),
            "filename": Path(filename).name[:200],
            "source": source,
            "shop_id": shop_id,
            "sha256": digest,
        },
        created_by=actor.operator_id,
        idempotency_key=idempotency_key,
    )
    identity_service.record_audit(
        session, actor, "import.started", "job", job.id, {"filename": filename, "source": source, "bytes": len(data)}
    )
    return job


def save_row_errors(session: Session, *, workspace_id: int, job_id: int, rows: Sequence[ParsedRow]) -> None:
    """Record rejected rows for the error report."""
    session.execute(
        insert(ImportRowError),
        [
            {
                "workspace_id": workspace_id,
                "job_id": job_id,
                "row": r.row,
                "field": (r.error.field if r.error else "")[:100],
                "reason": (r.error.reason if r.error else "?")[:255],
                "source_order_id": r.source_order_id[:64],
            }
            for r in rows
        ],
    )


def list_row_errors(session: Session, *, workspace_id: int, job_id: int, limit: int = 1000) -> list[ImportRowError]:
    """The error report of an import job."""
    return list(
        session.scalars(
            select(ImportRowError)
            .where(ImportRowError.workspace_id == workspace_id, ImportRowError.job_id == job_id)
            .order_by(ImportRowError.row)
            .limit(limit)
        )
    )


# --- figures ------------------------------------------------------------------------------------


def gmv_by_month(session: Session, *, workspace_id: int, tz: str, months: int = 12) -> list[tuple[str, int, int]]:
    """(YYYY-MM, GMV in fen net of refunds, paid orders) for the last `months` months in the workspace's zone."""
    today = datetime.now(ZoneInfo(tz)).date()
    first = today.replace(day=1)
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    by_month: dict[str, list[int]] = {}
    for r in rollups.daily(session, workspace_id=workspace_id, since=first.isoformat()):
        if r.status in PAID_STATUSES:
            acc = by_month.setdefault(r.day[:7], [0, 0])
            acc[0] += r.net_paid
            acc[1] += r.orders
    return [(m, g, n) for m, (g, n) in sorted(by_month.items())]


def tagged_orders_by_day(
    session: Session, *, workspace_id: int, utm_campaign: str, since: datetime, until: datetime, tz: str
) -> list[tuple[str, int, int]]:
    """(YYYY-MM-DD, paid orders, GMV net of refunds) per local day of orders tagged utm_campaign in [since, until)."""
    rows = session.execute(
        select(Order.placed_at, Order.paid - Order.refunded).where(
            Order.workspace_id == workspace_id,
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status.in_(PAID_STATUSES),
            Order.attribution["utm_campaign"].as_string() == utm_campaign,
        )
    )
    zone = ZoneInfo(tz)
    by_day: dict[str, list[int]] = {}
    for placed_at, net in rows:
        acc = by_day.setdefault(placed_at.astimezone(zone).date().isoformat(), [0, 0])
        acc[0] += 1
        acc[1] += int(net or 0)
    return [(d, n, g) for d, (n, g) in sorted(by_day.items())]


def order_totals(session: Session, *, workspace_id: int) -> dict[str, int]:
    """All-time order count, paid order count and GMV (from the daily rollups)."""
    out = {"orders": 0, "paid_orders": 0, "gmv": 0}
    for r in rollups.daily(session, workspace_id=workspace_id):
        out["orders"] += r.orders
        if r.status in PAID_STATUSES:
            out["paid_orders"] += r.orders
            out["gmv"] += r.net_paid
    return out


def status_counts(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Orders per status (from the daily rollups)."""
    counts = dict.fromkeys(ORDER_STATUSES, 0)
    for r in rollups.daily(session, workspace_id=workspace_id):
        counts[r.status] = counts.get(r.status, 0) + r.orders
    return counts


def top_categories(session: Session, *, workspace_id: int, limit: int = 8) -> list[tuple[str, int]]:
    """Categories by sales (fen) of paid-like orders."""
    return rollups.categories(session, workspace_id=workspace_id, limit=limit)


def refresh_statistics(session: Session) -> None:
    """Refresh planner statistics of the tables a bulk import changes."""
    analyze(session, BULK_TABLES)


def rebuild_rollups(session: Session, *, workspace_id: int) -> int:
    """Recompute the dashboard rollups of a workspace from its orders; returns the days rebuilt."""
    return rollups.rebuild(
        session, workspace_id=workspace_id, tz=identity_service.workspace_timezone(session, workspace_id)
    )
