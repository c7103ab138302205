"""The issue's concurrency test: several processes (spawn) × threads claim sales of stock S with per-customer
limit L. Exactly min(S, demand) claims win, nobody holds more than L, and (Redis engine) the database and Redis
agree once the stream is written. Runs on the Redis engine and on the embedded SQL engine (SQLite file and
PostgreSQL). One race covers two sales at once: one with less stock than demand, one with more."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.core.settings import get_settings
from shequn.promotions.flash import consumer, redis_store, service
from shequn.promotions.flash.models import FlashCustomerCount, FlashReservation, FlashSale
from tests.conftest import Tenant
from tests.integration import test_flash
from tests.integration.test_flash import customers, make_sale

PROCESSES = 3
THREADS = 4
LIMIT = 2
ATTEMPTS = 3  # claims per customer and sale: one more than the limit, so the limit is raced too
engine = test_flash.engine  # the claim-engine fixture (SQL, or Redis when a test Redis is set)

Job = tuple[int, int]  # (sale_id, customer_id)


def _worker(db_url: str, redis_url: str, ws: int, jobs: list[Job], barrier: Any, out: Any) -> None:
    """One process: THREADS threads, each claiming its share of (sale, customer) jobs."""
    os.environ["SHEQUN_DATABASE_URL"] = db_url
    if redis_url:
        os.environ["SHEQUN_REDIS_URL"] = redis_url
    else:
        os.environ.pop("SHEQUN_REDIS_URL", None)
    from shequn.core.db import new_session
    from shequn.promotions.flash import service as flash_service

    outcomes: list[tuple[int, int, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def run(mine: list[Job]) -> None:
        start.wait()
        for n, (sale_id, cid) in enumerate(mine):
            session = new_session()
            try:
                key = f"{cid}-{os.getpid()}-{n}"
                result = flash_service.claim(session, workspace_id=ws, sale_id=sale_id, customer_id=cid, idem_key=key)
                session.commit()
            finally:
                session.close()
            with lock:
                outcomes.append((sale_id, cid, result.outcome))

    barrier.wait()  # every process starts together
    threads = [threading.Thread(target=run, args=(jobs[i::THREADS],)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(outcomes)


def _race(ws: int, jobs: list[Job]) -> list[tuple[int, int, str]]:
    settings = get_settings()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    args = (settings.effective_database_url, settings.redis_url, ws)
    procs = [ctx.Process(target=_worker, args=(*args, jobs[i::PROCESSES], barrier, out)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    results: list[tuple[int, int, str]] = []
    for _ in procs:
        results.extend(out.get(timeout=240))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def _check_sale(db: Session, engine: str, sale_id: int, stock: int, results: list[tuple[int, int, str]]) -> None:
    mine = [(cid, o) for sid, cid, o in results if sid == sale_id]
    demand = len({cid for cid, _ in mine}) * min(ATTEMPTS, LIMIT)
    outcomes = Counter(o for _, o in mine)
    assert outcomes["ok"] == min(stock, demand), (sale_id, outcomes)
    assert set(outcomes) <= {"ok", "sold_out", "limit_reached"}
    won = Counter(cid for cid, o in mine if o == "ok")
    assert max(won.values()) <= LIMIT
    sale = db.get(FlashSale, sale_id)
    assert sale is not None and sale.sold == min(stock, demand)
    rows = db.execute(
        select(FlashReservation.customer_id, func.sum(FlashReservation.qty))
        .where(FlashReservation.sale_id == sale_id)
        .group_by(FlashReservation.customer_id)
    ).all()
    assert {int(c): int(q) for c, q in rows} == dict(won)
    counters = db.execute(
        select(FlashCustomerCount.customer_id, FlashCustomerCount.qty).where(FlashCustomerCount.sale_id == sale_id)
    ).all()
    assert {int(c): int(q) for c, q in counters if q} == dict(won)
    assert service.oversell_check(db, sale).ok
    if engine == "redis":
        r = redis_store.client(get_settings().redis_url)
        assert redis_store.stock_left(r, sale_id) == stock - sale.sold
        cust = {int(k): int(v) for k, v in r.hgetall(redis_store.keys(sale_id)[1]).items() if int(v)}
        assert cust == dict(won)


def test_processes_and_threads_never_oversell(db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    scarce_buyers, plenty_buyers = customers(db, tenant, 20, "甲"), customers(db, tenant, 12, "乙")
    scarce = make_sale(db, ws, stock=25, limit=LIMIT)  # demand 40 > stock 25
    plenty = make_sale(db, ws, stock=60, limit=LIMIT)  # demand 24 < stock 60
    jobs = [(scarce, cid) for cid in scarce_buyers for _ in range(ATTEMPTS)]
    jobs += [(plenty, cid) for cid in plenty_buyers for _ in range(ATTEMPTS)]
    jobs.sort(key=lambda j: (j[1] * 7919) % 101)  # interleave the two sales' jobs
    results = _race(ws, jobs)
    assert len(results) == len(jobs)
    if engine == "redis":
        consumer.drain()
    db.expire_all()
    _check_sale(db, engine, scarce, 25, results)
    _check_sale(db, engine, plenty, 60, results)
