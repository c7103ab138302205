"""Order import throughput: shequn's batched importer vs a naive one-order-per-transaction import.

Both run in the same process on the same machine against fresh databases, on the same demo orders
(with line items and buyers). Prints orders/s for each and the ratio; --pg adds PostgreSQL. The import
is timed as the import job runs it (orders, lines, products, customers, identities; facts, activity and
rollups left to the backlog), and the drain that derives those is timed apart and together with it.
Beside them: the same orders read from a shequn JSON Lines file (parsing inside the clock); a nightly
sync into a workspace that already knows most buyers; and the write-only ceiling (the import's own
rows, inserted without any look-up).

    .venv/bin/python bench/bench_import.py --orders 100000 --naive-orders 5000 --pg postgresql://postgres@127.0.0.1/import_bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("SHEQUN_VAR_DIR", tempfile.mkdtemp(prefix="shequn-bench-"))
os.environ["SHEQUN_JOBS_MODE"] = "immediate"

import orjson
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from shequn.audience.models import Customer, CustomerIdentity
from shequn.commerce import derive
from shequn.commerce import service as commerce_service  # noqa: F401  (registers merge hooks)
from shequn.commerce.canonical import PAID_STATUSES, OrderIn, ParsedRow
from shequn.commerce.demo import DemoSpec, demo_orders
from shequn.commerce.ingest import import_orders
from shequn.commerce.models import Order, OrderLineItem
from shequn.commerce.sources import parse_orders
from shequn.core import db as core_db
from shequn.core.migrate import upgrade
from shequn.core.security import normalize_phone, phone_hash
from shequn.core.settings import get_settings
from shequn.identity import service as identity_service

OUT = Path(__file__).parent / "out"


def fresh_database(url: str) -> None:
    """Point shequn at an empty, migrated database."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    os.environ["SHEQUN_DATABASE_URL"] = url
    get_settings.cache_clear()
    core_db.reset_engine()
    upgrade()


def make_workspace() -> int:
    with core_db.session_scope() as s:
        _, ws = identity_service.bootstrap_owner(
            s,
            email="bench@example.com",
            password="bench-password",
            name="bench",
            workspace_slug="bench",
            workspace_name="bench",
        )
        return ws.id


def run_batched(url: str, orders: list[OrderIn], batch_size: int, jsonl: bytes | None = None) -> tuple[float, float]:
    """shequn's importer as the import job runs it: batches of batch_size, committed after each batch,
    then the drain that derives facts, purchase activity and rollups. Returns (import s, drain s).

    With jsonl, the import's clock also covers parsing that file (streamed into the importer).
    """
    fresh_database(url)
    ws = make_workspace()
    session = core_db.new_session()
    start = time.perf_counter()
    if jsonl is None:
        rows: Iterable[ParsedRow] = [ParsedRow(row=i + 1, item=o) for i, o in enumerate(orders)]
        start = time.perf_counter()
    else:
        rows = parse_orders(jsonl, "orders.jsonl", source="shequn")
    stats = import_orders(
        session, workspace_id=ws, rows=rows, batch_size=batch_size, on_batch=lambda _s: session.commit(), derive=False
    )
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    derive.drain(session, workspace_id=ws)
    session.commit()
    drained = time.perf_counter() - start
    session.close()
    assert stats.failed == 0, stats
    assert stats.created == len({(o.source, o.shop_id, o.source_order_id) for o in orders}), stats
    return elapsed, drained


def to_jsonl(orders: list[OrderIn]) -> bytes:
    """The orders as a shequn canonical JSON Lines file (what an export from another shequn looks like)."""

    def ident(i: Any) -> dict[str, Any]:
        return {"source": i.source, "kind": i.kind, "value": i.value, "verified": i.verified, "followers": i.followers}

    out = []
    for o in orders:
        c = o.customer
        record: dict[str, Any] = {
            "source": o.source,
            "shop_id": o.shop_id,
            "source_order_id": o.source_order_id,
            "status": o.status,
            "currency": o.currency,
            "subtotal": o.subtotal,
            "discount": o.discount,
            "shipping": o.shipping,
            "total": o.total,
            "paid": o.paid,
            "refunded": o.refunded,
            "created_at": o.created_at.isoformat(),
            "updated_at": o.source_updated_at.isoformat(),
            "paid_at": o.paid_at.isoformat() if o.paid_at else None,
            "line_items": [
                {
                    "sku": li.sku,
                    "title": li.title,
                    "quantity": li.quantity,
                    "unit_price": li.unit_price,
                    "total": li.total,
                    "category": li.category,
                }
                for li in o.line_items
            ],
        }
        if c is not None:
            record["customer"] = {
                "name": c.name,
                "phone": c.phone,
                "phone_verified": c.phone_verified,
                "email": c.email,
                "province": c.province,
                "city": c.city,
                "identities": [ident(i) for i in c.identities],
            }
        out.append(orjson.dumps(record))
    return b"\n".join(out) + b"\n"


def run_naive(url: str, orders: list[OrderIn]) -> float:
    """The peer: per order, ORM look-ups and inserts in its own transaction (how a first version is written)."""
    fresh_database(url)
    ws = make_workspace()
    session: Session = core_db.new_session()
    start = time.perf_counter()
    for o in orders:
        existing = session.scalar(
            select(Order).where(
                Order.workspace_id == ws,
                Order.source == o.source,
                Order.shop_id == o.shop_id,
                Order.source_order_id == o.source_order_id,
            )
        )
        if existing is not None and existing.source_updated_at >= o.source_updated_at:
            session.commit()
            continue
        customer = None
        if o.customer is not None:
            for ident in o.customer.identities:
                key = f"{ident.kind}:{ident.source}:{ident.value}"
                found = session.scalar(
                    select(CustomerIdentity).where(
                        CustomerIdentity.workspace_id == ws, CustomerIdentity.match_key == key
                    )
                )
                if found is not None:
                    customer = session.get(Customer, found.customer_id)
                    break
            if customer is None:
                phone = normalize_phone(o.customer.phone or "")
                customer = Customer(
                    workspace_id=ws,
                    name=o.customer.name,
                    city=o.customer.city,
                    province=o.customer.province,
                    phone_hash=phone_hash(phone) if phone else None,
                    top_categories=[],
                    platforms=[],
                )
                session.add(customer)
                session.flush()
                for ident in o.customer.identities:
                    session.add(
                        CustomerIdentity(
                            workspace_id=ws,
                            customer_id=customer.id,
                            source=ident.source,
                            kind=ident.kind,
                            value=ident.value,
                            match_key=f"{ident.kind}:{ident.source}:{ident.value}",
                            verified=ident.verified,
                            followers=ident.followers,
                        )
                    )
        order = Order(
            workspace_id=ws,
            customer_id=customer.id if customer else None,
            source=o.source,
            shop_id=o.shop_id,
            source_order_id=o.source_order_id,
            status=o.status,
            currency=o.currency,
            subtotal=o.subtotal,
            discount=o.discount,
            shipping=o.shipping,
            total=o.total,
            paid=o.paid,
            refunded=o.refunded,
            placed_at=o.created_at,
            paid_at=o.paid_at,
            source_updated_at=o.source_updated_at,
            discount_codes=[],
            attribution=o.attribution,
            raw=o.raw,
        )
        session.add(order)
        session.flush()
        for li in o.line_items:
            session.add(
                OrderLineItem(
                    workspace_id=ws,
                    order_id=order.id,
                    sku=li.sku,
                    title=li.title,
                    category=li.category,
                    quantity=li.quantity,
                    unit_price=li.unit_price,
                    total=li.total,
                )
            )
        if customer is not None and o.status in PAID_STATUSES:
            customer.orders_count += 1
            customer.total_spent += o.paid - o.refunded
            customer.last_order_at = max(customer.last_order_at or o.created_at, o.created_at)
            customer.first_order_at = min(customer.first_order_at or o.created_at, o.created_at)
        session.commit()
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed


Batches = list[tuple[list[Any], list[Any], list[Any], list[Any]]]


def ceiling_rows(bulk: Any, ws: int, orders: list[OrderIn], batch_size: int) -> Batches:
    """The rows the import writes for these orders, per batch: (customers, identities, orders, lines).

    New customers, their identities, orders (deduplicated as the import does) and line items, built
    with the import's own order-row builder. Customers are matched by identity key in a dict here:
    no look-up, no merge rule.
    """
    from shequn.commerce.ingest import _order_row

    now = bulk.ts(datetime.now(UTC))
    customers: dict[str, int] = {}
    latest = list({(o.source, o.shop_id, o.source_order_id): o for o in orders}.values())
    batches: Batches = []
    for start in range(0, len(latest), batch_size):
        cust_rows: list[Any] = []
        ident_rows: list[Any] = []
        order_rows: list[Any] = []
        line_rows: list[Any] = []
        for oid, o in enumerate(latest[start : start + batch_size], start + 1):
            idents = o.customer.identities if o.customer else []
            keys = [f"{i.kind}:{i.source}:{i.value}" for i in idents]
            cid = next((customers[k] for k in keys if k in customers), None)
            if cid is None:
                cid = len(customers) + 1
                cust_rows.append((cid, ws, "", "", "", "", None, "", "", 0, 0, 0, "[]", "{}", "[]", 0, 0, now, now))
            for k, i in zip(keys, idents, strict=True):
                if k not in customers:
                    customers[k] = cid
                    ident_rows.append((ws, cid, i.source, i.kind, i.value, k, True, None, now))
            order_rows.append(_order_row(bulk, oid, ws, o, cid, now))
            line_rows.extend(
                (ws, oid, None, li.sku, li.title, li.category, li.quantity, li.unit_price, li.total)
                for li in o.line_items
            )
        batches.append((cust_rows, ident_rows, order_rows, line_rows))
    return batches


def _ceiling_tables() -> list[tuple[str, tuple[str, ...]]]:
    from shequn.audience.identities import CUSTOMER_COLUMNS, IDENTITY_COLUMNS
    from shequn.commerce.ingest import LINE_COLUMNS, ORDER_COLUMNS

    return [
        ("customers", CUSTOMER_COLUMNS),
        ("customer_identities", IDENTITY_COLUMNS),
        ("orders", ORDER_COLUMNS),
        ("order_line_items", LINE_COLUMNS),
    ]


def run_insert_only(url: str, orders: list[OrderIn], batch_size: int) -> float:
    """The ceiling: every row the import writes in its own transactions, with executemany / COPY alone.

    The rows of ceiling_rows and one backlog row per batch, prepared before the clock starts and
    committed every batch_size orders. No look-ups, no resolution, no Python per row inside the clock:
    nothing that imports correctly through the driver can beat this. (The derived rows are the drain's.)
    """
    from shequn.core.bulk import Bulk

    fresh_database(url)
    ws = make_workspace()
    session = core_db.new_session()
    batches = ceiling_rows(Bulk(session), ws, orders, batch_size)
    tables = _ceiling_tables()
    start_t = time.perf_counter()
    for batch in batches:
        bulk = Bulk(session)  # a commit hands the connection back: take the session's current one
        for (table, cols), rows in zip(tables, batch, strict=True):
            bulk.insert(table, cols, rows)
        bulk.insert("purchase_backlog", ("workspace_id", "order_ids"), [(ws, bulk.js([r[0] for r in batch[2]]))])
        session.commit()
    elapsed = time.perf_counter() - start_t
    session.close()
    return elapsed


def run_engine_floor(url: str, orders: list[OrderIn], batch_size: int) -> float:
    """SQLite's own cost for the same rows: staged in temp tables first (untimed), then copied into the
    real tables, indexes and foreign keys by one INSERT ... SELECT per table, in one transaction.

    Inside the clock no Python value is bound, so this is what the engine itself needs; the gap to the
    write-only ceiling is the Python driver's per-row binding.
    """
    from shequn.core.bulk import Bulk

    fresh_database(url)
    ws = make_workspace()
    session = core_db.new_session()
    batches = ceiling_rows(Bulk(session), ws, orders, batch_size)
    session.close()
    core_db.reset_engine()
    import sqlite3

    conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{get_settings().sqlite_cache_mb * 1024}")
    tables = _ceiling_tables()
    for i, (table, cols) in enumerate(tables):
        conn.execute(f"CREATE TEMP TABLE stage_{table} AS SELECT {', '.join(cols)} FROM {table} WHERE 0")
        marks = ", ".join("?" * len(cols))
        conn.executemany(f"INSERT INTO stage_{table} VALUES ({marks})", [r for b in batches for r in b[i]])
    start_t = time.perf_counter()
    conn.execute("BEGIN")
    for table, cols in tables:
        names = ", ".join(cols)
        conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM stage_{table} ORDER BY rowid")
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start_t
    conn.close()
    return elapsed


def run_returning(url: str, orders: list[OrderIn], batch_size: int, share: float = 0.8) -> tuple[float, float, int]:
    """A nightly sync: the first share of the stream is already imported (untimed); the clock covers
    importing and then draining the rest, whose buyers are mostly known. Returns (import s, drain s, rows)."""
    fresh_database(url)
    ws = make_workspace()
    split = int(len(orders) * share)
    session = core_db.new_session()
    known = [ParsedRow(row=i + 1, item=o) for i, o in enumerate(orders[:split])]
    import_orders(
        session, workspace_id=ws, rows=known, batch_size=batch_size, on_batch=lambda _s: session.commit(), derive=False
    )
    derive.drain(session, workspace_id=ws)
    session.commit()
    core_db.analyze(session, ("customers", "customer_identities", "orders", "order_line_items"))
    session.commit()
    rows = [ParsedRow(row=i + 1, item=o) for i, o in enumerate(orders[split:])]
    start = time.perf_counter()
    import_orders(
        session, workspace_id=ws, rows=rows, batch_size=batch_size, on_batch=lambda _s: session.commit(), derive=False
    )
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    derive.drain(session, workspace_id=ws)
    session.commit()
    drained = time.perf_counter() - start
    session.close()
    return elapsed, drained, len(rows)


def generate(n: int, seed: int) -> tuple[list[OrderIn], float]:
    """The first n demo orders (customers sized so the stream has at least n)."""
    spec = DemoSpec(customers=max(1000, n // 3), months=12, seed=seed, end=datetime(2026, 11, 1, tzinfo=UTC))
    start = time.perf_counter()
    out: list[OrderIn] = []
    for o in demo_orders(spec):
        out.append(o)
        if len(out) >= n:
            break
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--naive-orders", type=int, default=5_000)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg", default=os.environ.get("SHEQUN_BENCH_PG", ""))
    args = ap.parse_args()

    orders, gen_s = generate(args.orders, 7)
    lines = sum(len(o.line_items) for o in orders)
    print(
        f"data: {len(orders):,} demo orders with {lines:,} line items "
        f"(generated in {gen_s:.1f}s, not timed below); machine: {os.cpu_count()} cores"
    )
    jsonl = to_jsonl(orders)
    print(f"file: the same orders as shequn JSON Lines, {len(jsonl) / 1e6:.1f} MB (parsed inside the clock)")
    sqlite_url = f"sqlite:///{Path(os.environ['SHEQUN_VAR_DIR']) / 'bench.db'}"
    targets = [("SQLite", sqlite_url)] + ([("PostgreSQL", args.pg)] if args.pg else [])
    results = []
    for name, url in targets:
        fast_runs = [run_batched(url, orders, args.batch_size) for _ in range(args.repeat)]
        file_runs = [run_batched(url, orders, args.batch_size, jsonl) for _ in range(args.repeat)]
        fast = [imp for imp, _ in fast_runs]
        from_file = [imp for imp, _ in file_runs]
        drains = [d for _, d in fast_runs + file_runs]
        ends = [imp + d for imp, d in fast_runs]
        naive_set = orders[: args.naive_orders]
        slow = [run_naive(url, naive_set) for _ in range(max(1, args.repeat - 1))]
        ceiling = [run_insert_only(url, orders, args.batch_size) for _ in range(args.repeat)]
        floor = [run_engine_floor(url, orders, args.batch_size) for _ in range(args.repeat)] if name == "SQLite" else []
        returning = [run_returning(url, orders, args.batch_size) for _ in range(args.repeat)]
        ret_rows = returning[0][2]
        ret_rate = ret_rows / statistics.median([imp for imp, _, _ in returning])
        ret_end_rate = ret_rows / statistics.median([imp + d for imp, d, _ in returning])
        fast_rate = len(orders) / statistics.median(fast)
        file_rate = len(orders) / statistics.median(from_file)
        slow_rate = len(naive_set) / statistics.median(slow)
        ceiling_rate = len(orders) / statistics.median(ceiling)
        end_rate = len(orders) / statistics.median(ends)
        results.append(
            {
                "db": name,
                "orders": len(orders),
                "line_items": lines,
                "batch_size": args.batch_size,
                "batched_orders_per_s": round(fast_rate),
                "batched_runs_s": [round(x, 2) for x in fast],
                "drain_runs_s": [round(x, 2) for x in drains],
                "import_and_drain_orders_per_s": round(end_rate),
                "file_jsonl_orders_per_s": round(file_rate),
                "file_jsonl_runs_s": [round(x, 2) for x in from_file],
                "naive_orders": len(naive_set),
                "naive_orders_per_s": round(slow_rate),
                "naive_runs_s": [round(x, 2) for x in slow],
                "ratio": round(fast_rate / slow_rate, 1),
                "file_ratio": round(file_rate / slow_rate, 1),
                "returning_orders": ret_rows,
                "returning_orders_per_s": round(ret_rate),
                "returning_runs_s": [[round(imp, 2), round(d, 2)] for imp, d, _ in returning],
                "returning_import_and_drain_orders_per_s": round(ret_end_rate),
                "write_only_orders_per_s": round(ceiling_rate),
                "write_only_runs_s": [round(x, 2) for x in ceiling],
                "share_of_write_only": round(fast_rate / ceiling_rate, 2),
                "engine_floor_orders_per_s": round(len(orders) / statistics.median(floor)) if floor else None,
                "engine_floor_runs_s": [round(x, 3) for x in floor],
            }
        )
        print(
            f"{name:10s} batched: {fast_rate:>9,.0f} orders/s ({fast_rate * lines / len(orders):,.0f} lines/s; "
            f"median of {len(fast)})   naive: {slow_rate:>7,.0f} orders/s   ratio {fast_rate / slow_rate:.1f}x"
        )
        print(
            f"{'':10s} import + drain (facts, activity, rollups derived): {end_rate:>9,.0f} orders/s   "
            f"ratio {end_rate / slow_rate:.1f}x   (drain median {statistics.median(drains):.2f} s)"
        )
        print(
            f"{'':10s} from the JSONL file (parse + import): {file_rate:>9,.0f} orders/s   "
            f"ratio {file_rate / slow_rate:.1f}x"
        )
        print(
            f"{'':10s} write-only ceiling (the import's own rows, no look-ups): {ceiling_rate:>9,.0f} orders/s   "
            f"batched reaches {fast_rate / ceiling_rate:.0%} of it"
        )
        if floor:
            floor_rate = len(orders) / statistics.median(floor)
            print(
                f"{'':10s} engine floor (the same rows by INSERT ... SELECT, no Python binding): "
                f"{floor_rate:>9,.0f} orders/s   write-only ceiling is {ceiling_rate / floor_rate:.0%} of it"
            )
        print(
            f"{'':10s} nightly sync (last {ret_rows:,} orders, buyers mostly known): {ret_rate:>9,.0f} orders/s   "
            f"with drain {ret_end_rate:,.0f} orders/s   ratio {ret_rate / slow_rate:.1f}x"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "import.json").write_text(json.dumps(results, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
