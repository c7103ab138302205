"""Coupon fan-out to a million-member segment: grants durable and delivery messages enqueued.

Generates (set-based, in the database itself) one workspace with --members customers (default 1,000,000)
and a static segment holding all of them, then measures, each a median of --repeat runs on a fresh
coupon template:

  a. coupons.run_fanout: chunked INSERT … SELECT of grants and outbox messages, stock and budget reserved
     per chunk, every chunk committed (on PostgreSQL grants and messages in one statement per chunk);
  b. the peer, measured in the same run: naive row-by-row issuance through the ORM — one
     coupons.grant_coupon call per member (stock UPDATE, budget, grant row, message row) with a commit
     every 1,000 — on a --naive subset of members; its rate is extrapolated to the whole segment.

Each fan-out is checked: exactly one grant and one queued message per member.

    .venv/bin/python bench/bench_coupon_fanout.py                                   # SQLite (temp file)
    .venv/bin/python bench/bench_coupon_fanout.py --sqlite var/bench-coupons.db
    .venv/bin/python bench/bench_coupon_fanout.py --pg postgresql://postgres@127.0.0.1:5432/coupon_bench

The PostgreSQL database is created if missing and its schema rebuilt by the migrations (use a database of
its own: the bench drops the public schema). Results are printed and written to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("SHEQUN_VAR_DIR", tempfile.mkdtemp(prefix="shequn-bench-"))
os.environ["SHEQUN_JOBS_MODE"] = "immediate"

from sqlalchemy import Integer, String, Table, func, literal, select, text
from sqlalchemy.orm import Session

from benchdb import ensure_pg_database
from shequn.audience.models import Customer, Segment
from shequn.core import db as core_db
from shequn.core.clock import utcnow
from shequn.core.migrate import upgrade
from shequn.core.outbox import OutboxMessage
from shequn.core.settings import get_settings
from shequn.identity import service as identity_service
from shequn.promotions.coupons import service as coupons
from shequn.promotions.coupons.fanout import CHUNK, PG_WORKERS
from shequn.promotions.coupons.models import CouponGrant
from shequn.promotions.coupons.schemas import TemplateIn

OUT = Path(__file__).parent / "out"


def _point_at(url: str) -> None:
    os.environ["SHEQUN_DATABASE_URL"] = url
    get_settings.cache_clear()
    core_db.reset_engine()


def fresh_schema(url: str) -> None:
    """An empty schema built by the migrations."""
    if url.startswith("postgresql"):
        ensure_pg_database(url)
        _point_at(url)
        with core_db.get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        _point_at(url)
    upgrade()


def _numbers(session: Session, n: int) -> Any:
    """A one-column selectable 1..n (generate_series on PostgreSQL, a recursive CTE on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return select(func.generate_series(1, n).label("i")).subquery()
    seq = select(literal(1, Integer).label("i")).cte("seq", recursive=True)
    return seq.union_all(select(seq.c.i + 1).where(seq.c.i < n))


def generate(members: int) -> tuple[int, int, float]:
    """A workspace with `members` customers, all in one static segment; returns (workspace, segment, seconds)."""
    started = time.perf_counter()
    with core_db.session_scope() as s:
        _, ws_row = identity_service.bootstrap_owner(
            s,
            email="bench@example.com",
            password="bench-password",
            name="bench",
            workspace_slug="bench-coupons",
            workspace_name="Bench coupons",
        )
        ws = ws_row.id
    with core_db.session_scope() as s:
        nums = _numbers(s, members)
        now = utcnow()
        table = cast(Table, Customer.__table__)
        values: dict[str, Any] = {}
        for col in table.columns:
            if col.primary_key or col.nullable:
                continue
            values[col.name] = _filler(col, ws, now)
        values["name"] = literal("会员") + func.cast(nums.c.i, String)
        cols = list(values)
        s.execute(table.insert().from_select(cols, select(*[values[c] for c in cols]).select_from(nums)))
        seg = Segment(workspace_id=ws, name="全部会员", kind="static", rule={}, members_count=members)
        s.add(seg)
        s.flush()
        s.execute(
            text(
                "INSERT INTO segment_members (segment_id, customer_id, workspace_id, entered_at) "
                "SELECT :seg, id, :ws, :now FROM customers WHERE workspace_id = :ws"
            ),
            {
                "seg": seg.id,
                "ws": ws,
                "now": now if s.get_bind().dialect.name == "postgresql" else now.isoformat(" ")[:26],
            },
        )
        sid = seg.id
    with core_db.session_scope() as s:
        core_db.analyze(s, ["customers", "segment_members"])
    return ws, sid, time.perf_counter() - started


def _filler(col: Any, ws: int, now: Any) -> Any:
    """A constant for a NOT NULL customer column (so the bench follows the table as it evolves)."""
    if col.name == "workspace_id":
        return literal(ws)
    try:
        python_type = col.type.python_type
    except NotImplementedError:
        python_type = None
    if python_type is str:
        return literal("")
    if python_type in (int, float):
        return literal(0)
    if python_type is bool:
        return literal(False)
    if python_type in (list, dict) or col.type.__class__.__name__ in ("JSON", "JSONB", "Variant"):
        default = col.default.arg(None) if col.default is not None and callable(col.default.arg) else []
        return literal(default, col.type)
    return literal(now, col.type)


def new_template(ws: int, name: str) -> int:
    """An active ¥5-off template open for a week (unlimited stock, no budget)."""
    now = utcnow()
    with core_db.session_scope() as s:
        tpl = coupons.create_template(
            s,
            workspace_id=ws,
            data=TemplateIn(
                name=name,
                kind="fixed",
                amount_fen=500,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=7),
            ),
        )
        coupons.set_status(s, workspace_id=ws, template_id=tpl.id, status="active")
        return tpl.id


def clear_grants() -> None:
    """Remove the previous run's grants and messages (so every run writes into tables of the same size)."""
    with core_db.session_scope() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("TRUNCATE promo_coupon_grants, outbox_messages"))
        else:
            s.execute(text("DELETE FROM promo_coupon_grants"))
            s.execute(text("DELETE FROM outbox_messages"))
    with core_db.session_scope() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.connection().exec_driver_sql("CHECKPOINT")
        else:
            s.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def run_fast(ws: int, sid: int, members: int, chunk: int, workers: int) -> dict[str, Any]:
    """One fan-out of a fresh template to the segment, timed to its last commit, then verified."""
    tid = new_template(ws, "fast")
    session = core_db.new_session()
    try:
        started = time.perf_counter()
        report = coupons.run_fanout(
            session,
            workspace_id=ws,
            template_id=tid,
            segment_id=sid,
            chunk=chunk,
            checkpoint=lambda *_: session.commit(),
        )
        session.commit()
        took = time.perf_counter() - started
    finally:
        session.close()
    with core_db.session_scope() as s:
        grants = s.scalar(select(func.count()).select_from(CouponGrant).where(CouponGrant.template_id == tid))
        queued = s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.workspace_id == ws, OutboxMessage.status == "queued")
        )
    assert report.issued == members == grants == queued, (report, grants, queued)
    return {"seconds": took, "issued": report.issued, "messages": report.messages, "rate": members / took}


def run_naive(ws: int, customer_ids: list[int]) -> dict[str, Any]:
    """The peer: grant_coupon once per member through the ORM, a commit every 1,000."""
    tid = new_template(ws, "naive")
    session = core_db.new_session()
    try:
        started = time.perf_counter()
        for i, cid in enumerate(customer_ids, 1):
            coupons.grant_coupon(
                session, workspace_id=ws, template_id=tid, customer_id=cid, source="bench", source_ref=str(cid)
            )
            if i % 1000 == 0:
                session.commit()
        session.commit()
        took = time.perf_counter() - started
    finally:
        session.close()
    return {"seconds": took, "issued": len(customer_ids), "rate": len(customer_ids) / took}


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def bench(url: str, members: int, repeat: int, naive: int, chunk: int, workers: int) -> dict[str, Any]:
    """Generate, then time the fan-out `repeat` times and the naive peer once."""
    label = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(f"== {label}: {members:,} members  ({_load()})", flush=True)
    fresh_schema(url)
    ws, sid, gen = generate(members)
    print(f"  generated {members:,} customers + segment in {gen:.1f}s", flush=True)
    runs = []
    for i in range(repeat):
        clear_grants()
        r = run_fast(ws, sid, members, chunk, workers)
        runs.append(r)
        print(
            f"  fan-out run {i + 1}: {r['seconds']:.2f}s ({r['rate']:,.0f} members/s, a grant and a message each)"
            f"  load: {_load()}",
            flush=True,
        )
    clear_grants()
    with core_db.session_scope() as s:
        ids = list(s.scalars(select(Customer.id).where(Customer.workspace_id == ws).order_by(Customer.id).limit(naive)))
    peer = run_naive(ws, ids)
    median = statistics.median(r["seconds"] for r in runs)
    extrapolated = members / peer["rate"]
    print(
        f"  median fan-out {median:.2f}s for {members:,} (target < 15 s); naive peer {peer['rate']:,.0f}/s on "
        f"{naive:,} → {extrapolated:,.0f}s extrapolated; ratio {extrapolated / median:,.0f}×",
        flush=True,
    )
    return {
        "database": label,
        "members": members,
        "chunk": chunk,
        "workers": workers if label == "postgresql" else 1,
        "generate_s": round(gen, 2),
        "runs_s": [round(r["seconds"], 3) for r in runs],
        "median_s": round(median, 3),
        "naive_rate_per_s": round(peer["rate"], 1),
        "naive_sample": naive,
        "naive_extrapolated_s": round(extrapolated, 1),
        "ratio": round(extrapolated / median, 1),
        "load_after": _load(),
    }


def main() -> None:
    """Parse the arguments, run the benches, print and save the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg", help="PostgreSQL URL of a database the bench may wipe (e.g. …/coupon_bench)")
    p.add_argument("--sqlite", help="SQLite file (default: a temporary file)")
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--naive", type=int, default=5_000, help="members issued row by row by the peer")
    p.add_argument("--chunk", type=int, default=CHUNK)
    p.add_argument("--workers", type=int, default=PG_WORKERS, help="PostgreSQL connections writing chunks")
    args = p.parse_args()
    url = args.pg or f"sqlite:///{args.sqlite or Path(tempfile.mkdtemp(prefix='coupon-bench-')) / 'bench.db'}"
    result = bench(url, args.members, args.repeat, args.naive, args.chunk, args.workers)
    OUT.mkdir(exist_ok=True)
    out = OUT / f"coupon_fanout_{result['database']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"  written {out}")


if __name__ == "__main__":
    main()
