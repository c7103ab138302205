"""Rate-limit counters on both backends: GCRA window boundary, retry-after, no overshoot under threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.core.settings import get_settings
from shequn.promotions.guard import limits
from shequn.promotions.guard.models import GuardCounter
from tests.conftest import REDIS_URL, REQUIRE_SERVICES

US = limits.US


def _use_redis(url: str) -> None:
    os.environ["SHEQUN_REDIS_URL"] = url
    get_settings.cache_clear()
    limits.sync_redis(url).flushdb()


def _no_redis() -> None:
    os.environ.pop("SHEQUN_REDIS_URL", None)
    get_settings.cache_clear()


@pytest.fixture(params=["db", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[str]:
    """The counter store under test: the database of the test's backend, or Redis (SHEQUN_TEST_REDIS_URL).

    Tests request it before `backend`/`db`, so the Redis variant of a PostgreSQL run is skipped before the
    database is set up (Redis does not depend on the database: it runs once, beside SQLite).
    """
    if request.param == "redis":
        if request.node.callspec.params.get("backend", "sqlite") != "sqlite":
            pytest.skip("the Redis store does not depend on the database")
        if not REDIS_URL:
            if REQUIRE_SERVICES:
                pytest.fail("SHEQUN_REQUIRE_SERVICES=1 but SHEQUN_TEST_REDIS_URL is not set")
            pytest.skip("SHEQUN_TEST_REDIS_URL not set")
        _use_redis(REDIS_URL)
    try:
        yield request.param
    finally:
        _no_redis()


def test_limit_then_retry_after_then_window_frees(store: str, backend: str) -> None:
    t0 = 1_800_000_000 * US
    results = [limits.hit("k:a", limit=5, window_s=10, now=t0 + i) for i in range(5)]
    assert results == [None] * 5
    retry = limits.hit("k:a", limit=5, window_s=10, now=t0 + 10)
    assert retry is not None and 1.9 < retry <= 2.0  # one slot frees every window/limit = 2 s
    # Just before the first slot frees: still refused; at it: allowed again.
    assert limits.hit("k:a", limit=5, window_s=10, now=t0 + 2 * US - 100) is not None
    assert limits.hit("k:a", limit=5, window_s=10, now=t0 + 2 * US + 5) is None
    # After a full quiet window the whole burst is back; other keys never shared it.
    assert [limits.hit("k:a", limit=5, window_s=10, now=t0 + 20 * US) for _ in range(5)] == [None] * 5
    assert limits.hit("k:b", limit=5, window_s=10, now=t0 + 20 * US) is None


def test_refill_is_continuous_not_a_window_reset(store: str, backend: str) -> None:
    """Fixed windows hand out a fresh `limit` at each boundary (2×limit within a moment); GCRA refills one slot
    per window/limit, so right after a burst nothing passes and 59 s later only the 9 refilled slots do."""
    t0 = 1_800_000_100 * US
    allowed = sum(limits.hit("k:edge", limit=10, window_s=60, now=t0 + i * 1000) is None for i in range(10))
    assert allowed == 10
    assert limits.hit("k:edge", limit=10, window_s=60, now=t0 + 2 * US) is not None
    later = t0 + 59 * US
    allowed_later = sum(limits.hit("k:edge", limit=10, window_s=60, now=later) is None for _ in range(20))
    assert allowed_later == 9


def test_limit_zero_is_off(store: str, backend: str) -> None:
    assert all(limits.hit("k:off", limit=0, window_s=1) is None for _ in range(50))


def test_concurrent_threads_never_exceed_the_limit(store: str, backend: str) -> None:
    allowed: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            if limits.hit("k:race", limit=25, window_s=3600) is None:
                allowed.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 25


def test_async_hit_on_redis() -> None:
    if not REDIS_URL:
        pytest.skip("SHEQUN_TEST_REDIS_URL not set")
    import asyncio

    import redis.asyncio as aredis

    async def main() -> list[float | None]:
        client = aredis.Redis.from_url(REDIS_URL)
        try:
            await client.flushdb()
            t0 = 1_800_000_200 * US
            return [await limits.ahit(client, "k:async", limit=3, window_s=6, now=t0) for _ in range(4)]
        finally:
            await client.aclose()  # type: ignore[attr-defined]

    out = asyncio.run(main())
    assert out[:3] == [None, None, None]
    assert out[3] is not None and 1.9 < out[3] <= 2.0


def test_sweep_deletes_expired_counters(backend: str, db: Session) -> None:
    t0 = 1_800_000_300 * US
    limits.hit("k:old", limit=1, window_s=1, now=t0)
    limits.hit("k:new", limit=1, window_s=100, now=t0)
    assert limits.sweep(now=t0 + 2 * US) == 1
    assert db.scalar(select(func.count()).select_from(GuardCounter)) == 1


def test_local_limiter() -> None:
    local = limits.LocalLimiter(max_keys=10)
    t0 = 1_800_000_400 * US
    assert [local.hit("a", limit=2, window_s=1, now=t0) for _ in range(3)][:2] == [None, None]
    assert local.hit("a", limit=2, window_s=1, now=t0) is not None
    assert local.hit("a", limit=2, window_s=1, now=t0 + US) is None
    for i in range(20):  # pruning keeps memory bounded
        local.hit(f"k{i}", limit=1, window_s=1, now=t0 + 5 * US + i)
    assert len(local._tats) <= 10


def test_migration_matches_the_models(backend: str) -> None:
    """Migration 0021 builds exactly the guard tables the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shequn.core.db import get_engine
    from shequn.models_registry import Base

    with get_engine().connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)

    def table_of(op: object) -> str:
        item = op[0] if isinstance(op, list) else op
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else part
            table = getattr(getattr(part, "table", None), "name", None)
            if table:
                return str(table)
            if isinstance(name, str) and name.startswith("promo_guard"):
                return name
        return ""

    assert [d for d in diff if table_of(d).startswith("promo_guard")] == []


def test_unreachable_redis_falls_back_to_the_database(backend: str) -> None:
    """Nothing listens on port 1: the hit is counted in the database instead of failing the member's request."""
    os.environ["SHEQUN_REDIS_URL"] = "redis://127.0.0.1:1/0"
    get_settings.cache_clear()
    try:
        t0 = 1_800_000_500 * US
        assert [limits.hit("k:down", limit=2, window_s=60, now=t0) for _ in range(3)][:2] == [None, None]
        assert limits.hit("k:down", limit=2, window_s=60, now=t0) is not None
    finally:
        _no_redis()


def test_server_processes_share_the_database_counters(store: str, backend: str) -> None:
    """Three processes (like three servers on one database or Redis) hitting one key: exactly `limit` pass."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from shequn.promotions.guard import limits\n"
        "sys.stdout.write(str(sum(limits.hit('k:procs', limit=25, window_s=3600) is None for _ in range(20))))\n"
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(("SHEQUN_", "PATH", "PYTHON", "HOME"))}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-500:] for _, err in outs]
    assert sum(int(out) for out, _ in outs) == 25
