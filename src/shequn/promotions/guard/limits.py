"""Rate-limit counters: GCRA on Redis (one Lua script, one round trip) or on the database (one conditional upsert).

Why GCRA (the generic cell rate algorithm, a token bucket written as one timestamp): each key is a single number
(its "theoretical arrival time"), so memory is O(1) per key where a sliding-window log grows with the limit; it
allows `limit` hits at once and then one every `window/limit`, so there is no window edge where 2×limit pass in a
moment as with fixed windows (a full window may see about 2×limit, evenly spread); the retry-after falls out of the
arithmetic; and the whole test-and-set is one conditional upsert in
SQL, so both backends run the very same algorithm. Times are integer microseconds from this process's clock
(servers are assumed NTP-synced; a few ms of skew only shifts a window by as much).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import Connection, Table, case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shequn.core.db import get_engine
from shequn.core.settings import get_settings
from shequn.promotions.guard.models import GuardCounter, GuardSighting

US = 1_000_000
log = logging.getLogger(__name__)


def now_us() -> int:
    """The current time in epoch microseconds (tests replace this to move time)."""
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Check:
    """One GCRA key: a bucket of `limit` hits refilled at `limit` per `window_us` (consume=False only asks).

    Any span of t µs admits at most limit + t // interval hits: `limit` at once, then one per interval — so a full
    window can see up to about 2×limit, evenly spread, never the 2×limit-in-a-moment of fixed windows' edges.
    """

    key: str
    limit: int
    window_us: int
    consume: bool = True

    @property
    def interval_us(self) -> int:
        """Spacing between hits once the burst is spent (floor, so `limit` hits always fit in the window)."""
        return max(1, self.window_us // max(1, self.limit))

    @property
    def burst_us(self) -> int:
        """How far the arrival time may run ahead of now: exactly `limit` intervals, so a burst is never limit + 1."""
        return self.interval_us * max(1, self.limit)


@dataclass(frozen=True)
class Distinct:
    """At most `limit` distinct customers acting from one subject (device or IP) within `window_us`."""

    workspace_id: int
    subject: str
    customer_id: int
    limit: int
    window_us: int

    @property
    def key(self) -> str:
        """The Redis sorted-set key of the subject."""
        return f"gd:{self.workspace_id}:{self.subject}"


def gcra(tat_us: int, now: int, check: Check) -> tuple[int | None, int]:
    """(retry-after µs or None when allowed, the new theoretical arrival time)."""
    new_tat = max(tat_us, now) + check.interval_us
    over = new_tat - now - check.burst_us
    return (over if over > 0 else None), new_tat


# --- Redis ---------------------------------------------------------------------------------------

# KEYS: the GCRA keys, then the distinct-customer sets. ARGV: now_us, number of GCRA keys, then
# (interval_us, burst_us, consume) per GCRA key, then (member, limit, window_us) per set.
# Everything is checked before anything is written, so a refused request spends no quota (all or nothing).
# Returns {0, 0} when allowed, else {1-based index of the refusing key, retry-after µs}.
SCRIPT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local a = 3
local tats = {}
for i = 1, n do
  local interval = tonumber(ARGV[a]); local burst = tonumber(ARGV[a + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new = tat + interval
  if new - now > burst then return {i, new - now - burst} end
  if ARGV[a + 2] == '1' then tats[i] = new end
  a = a + 3
end
local sets = {}
for j = n + 1, #KEYS do
  local member = ARGV[a]; local limit = tonumber(ARGV[a + 1]); local window = tonumber(ARGV[a + 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now - window)
  if not redis.call('ZSCORE', KEYS[j], member) and redis.call('ZCARD', KEYS[j]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[j], 0, 0, 'WITHSCORES')
    return {j, tonumber(oldest[2]) + window - now}
  end
  sets[j] = {member, window}
  a = a + 3
end
for i, new in pairs(tats) do
  redis.call('SET', KEYS[i], string.format('%d', new), 'PX', math.floor((new - now) / 1000) + 1)
end
for j, s in pairs(sets) do
  redis.call('ZADD', KEYS[j], now, s[1])
  redis.call('PEXPIRE', KEYS[j], math.floor(s[2] / 1000) + 1)
end
return {0, 0}
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


def _script_args(checks: Sequence[Check], sets: Sequence[Distinct], now: int) -> tuple[list[str], list[Any]]:
    keys = [c.key for c in checks] + [d.key for d in sets]
    args: list[Any] = [now, len(checks)]
    for c in checks:
        args += [c.interval_us, c.burst_us, 1 if c.consume else 0]
    for d in sets:
        args += [str(d.customer_id), d.limit, d.window_us]
    return keys, args


_async_clients: dict[tuple[str, int], Any] = {}
# A member action must not hang on a stuck Redis: give up after a second and fall back (see run()).
TIMEOUT_S = 1.0
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


def async_redis(url: str) -> Any:
    """A `redis.asyncio` client for url on the running event loop (clients are bound to their loop)."""
    import asyncio

    import redis.asyncio as aredis

    key = (url, id(asyncio.get_running_loop()))
    client = _async_clients.get(key)
    if client is None:
        if len(_async_clients) > 16:  # loops of finished test clients: drop their (idle) clients
            _async_clients.clear()
        client = _async_clients[key] = aredis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
    return client


@lru_cache(maxsize=4)
def sync_redis(url: str) -> Any:
    """A process-wide Redis client for url (connection pool inside)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)


def _redis_run(client: Any, checks: Sequence[Check], sets: Sequence[Distinct], now: int) -> tuple[int, int]:
    from redis.exceptions import NoScriptError

    keys, args = _script_args(checks, sets, now)
    try:
        result = client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        result = client.eval(SCRIPT, len(keys), *keys, *args)
    return int(result[0]), int(result[1])


async def arun(client: Any, checks: Sequence[Check], now: int) -> tuple[int, int]:
    """The GCRA checks on an async Redis client in one round trip: (0, 0) or (1-based index, retry-after µs)."""
    from redis.exceptions import NoScriptError

    keys, args = _script_args(checks, (), now)
    try:
        result = await client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        result = await client.eval(SCRIPT, len(keys), *keys, *args)
    return int(result[0]), int(result[1])


# --- database ------------------------------------------------------------------------------------


def dialect_insert(conn: Connection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _tats(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    t = cast(Table, GuardCounter.__table__)
    return {k: int(v) for k, v in conn.execute(select(t.c.key, t.c.tat_us).where(t.c.key.in_(keys))).all()}


def _db_consume(conn: Connection, checks: Sequence[Check], now: int) -> set[str]:
    """Count a hit on every key that has room, in one upsert; returns the keys that had room.

    Each row proposes tat = now + interval (a fresh key); on conflict the existing row moves to
    max(tat, now) + interval only WHERE that stays within its window — the GCRA test-and-set as one
    conditional statement, so concurrent requests (processes, threads) can never pass the limit.
    Keys are sorted so that concurrent multi-row upserts lock rows in one order (no deadlocks).
    """
    t = cast(Table, GuardCounter.__table__)
    rows = sorted(
        ({"key": c.key, "tat_us": now + c.interval_us, "window_us": c.burst_us} for c in checks),
        key=lambda r: str(r["key"]),
    )
    stmt = dialect_insert(conn, t).values(rows)
    proposed = stmt.excluded
    start = case((t.c.tat_us > now, t.c.tat_us), else_=now)
    moved = start + (proposed.tat_us - now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.key],
        set_={"tat_us": moved, "window_us": proposed.window_us},
        where=moved - now <= proposed.window_us,
    )
    return set(conn.execute(stmt.returning(t.c.key)).scalars())


def _db_distinct(conn: Connection, sets: Sequence[Distinct], now: int) -> list[int | None]:
    """Per set: retry-after µs when its subject already served `limit` other customers within the window."""
    t = GuardSighting.__table__
    window = max(d.window_us for d in sets)
    rows = conn.execute(
        select(t.c.subject, t.c.customer_id, t.c.seen_us).where(
            t.c.workspace_id == sets[0].workspace_id,
            t.c.subject.in_([d.subject for d in sets]),
            t.c.seen_us > now - window,
        )
    ).all()
    out: list[int | None] = []
    for d in sets:
        seen = [at for subject, customer, at in rows if subject == d.subject and customer != d.customer_id]
        seen = [at for at in seen if at > now - d.window_us]
        out.append(max(1, min(seen) + d.window_us - now) if len(seen) >= d.limit else None)
    return out


def _db_record_sightings(conn: Connection, sets: Sequence[Distinct], now: int) -> None:
    t = GuardSighting.__table__
    rows = {(d.workspace_id, d.subject, d.customer_id) for d in sets}
    values = [{"workspace_id": w, "subject": s, "customer_id": c, "seen_us": now} for w, s, c in sorted(rows)]
    stmt = dialect_insert(conn, t).values(values)
    unique = ["workspace_id", "subject", "customer_id"]
    conn.execute(stmt.on_conflict_do_update(index_elements=unique, set_={"seen_us": stmt.excluded.seen_us}))


def _db_run(conn: Connection, checks: Sequence[Check], sets: Sequence[Distinct], now: int) -> tuple[int, int]:
    # Reads first (distinct sets, peeks), then one upsert for every consumed key. Unlike the Redis script this
    # is not all-or-nothing: when one key refuses, the others of the same request have still counted the hit
    # (conservative: a refused flood still spends its quota). Sightings are written only on success.
    if sets:
        for j, retry in enumerate(_db_distinct(conn, sets, now)):
            if retry is not None:
                return len(checks) + j + 1, retry
    peeks = [c for c in checks if not c.consume]
    if peeks:
        tats = _tats(conn, [c.key for c in peeks])
        for c in peeks:
            retry = gcra(tats.get(c.key, 0), now, c)[0]
            if retry is not None:
                return checks.index(c) + 1, retry
    consume = {c.key: c for c in checks if c.consume}
    if consume:
        allowed = _db_consume(conn, list(consume.values()), now)
        refused = [c for c in consume.values() if c.key not in allowed]
        if refused:
            tats = _tats(conn, [c.key for c in refused])
            c = refused[0]
            return checks.index(c) + 1, gcra(tats.get(c.key, 0), now, c)[0] or 1
    if sets:
        _db_record_sightings(conn, sets, now)
    return 0, 0


def own_transaction(conn: Connection | None) -> AbstractContextManager[Connection]:
    """The caller's connection, or a short transaction of our own that commits at once."""
    # Counting commits on its own: a refused or failed request rolls back, its attempt must still count.
    return nullcontext(conn) if conn is not None else _counting_transaction()


@contextmanager
def _counting_transaction() -> Iterator[Connection]:
    with get_engine().begin() as conn:
        if conn.dialect.name == "postgresql":
            # A counter lost in a crash only forgives a few attempts; waiting for the WAL flush on every
            # member action would cost ~4 ms each (measured), so this transaction does not wait for it.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        yield conn


def run(
    checks: Sequence[Check], sets: Sequence[Distinct] = (), *, conn: Connection | None = None, now: int | None = None
) -> tuple[int, float]:
    """Apply checks and sets on the configured backend: (0, 0) when allowed, else (1-based index, retry-after s)."""
    when = now_us() if now is None else now
    url = get_settings().redis_url
    if url:
        try:
            index, retry = _redis_run(sync_redis(url), checks, sets, when)
            return index, retry / US
        except REDIS_DOWN as exc:
            # Members keep being protected (more slowly) while Redis is away; counts restart when it is back.
            log.warning("guard: Redis unreachable (%s), counting in the database", exc)
    with own_transaction(conn) as c:
        index, retry = _db_run(c, checks, sets, when)
    return index, retry / US


def _check(key: str, limit: int, window_s: float) -> Check:
    return Check(key=key, limit=limit, window_us=int(window_s * US))


def hit(key: str, *, limit: int, window_s: float, now: int | None = None) -> float | None:
    """Count one hit of key; None when within `limit` per `window_s`, else seconds until one more would pass."""
    if limit <= 0:
        return None
    index, retry = run([_check(key, limit, window_s)], now=now)
    return retry if index else None


async def ahit(redis: Any, key: str, *, limit: int, window_s: float, now: int | None = None) -> float | None:
    """hit() for async hot paths on a `redis.asyncio` client: one EVALSHA round trip."""
    if limit <= 0:
        return None
    index, retry = await arun(redis, [_check(key, limit, window_s)], now_us() if now is None else now)
    return retry / US if index else None


def sweep(*, now: int | None = None) -> int:
    """Delete database counters and sightings that no longer matter (expired); returns rows deleted."""
    when = now_us() if now is None else now
    horizon = when - 24 * 3600 * US  # the longest window a rule may have
    with get_engine().begin() as conn:
        gone = conn.execute(delete(GuardCounter).where(GuardCounter.tat_us < when)).rowcount
        gone += conn.execute(delete(GuardSighting).where(GuardSighting.seen_us < horizon)).rowcount
    return int(gone)


class LocalLimiter:
    """GCRA in this process's memory: the free first line of the member middleware (per process, not shared)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def hit(self, key: str, *, limit: int, window_s: float, now: int | None = None) -> float | None:
        """Like hit(), in memory (the same GCRA arithmetic, inlined: this runs on every member request)."""
        if limit <= 0:
            return None
        window = int(window_s * US)
        interval = max(1, window // limit)
        when = now_us() if now is None else now
        with self._lock:
            new_tat = max(self._tats.get(key, 0), when) + interval
            over = new_tat - when - interval * limit
            if over > 0:
                return over / US
            if len(self._tats) >= self._max_keys:
                self._prune(when)
            self._tats[key] = new_tat
        return None

    def load(self, key: str, *, window_s: float, now: int | None = None) -> float:
        """How much of the key's burst is in use here (0 idle … 1 at the limit)."""
        when = now_us() if now is None else now
        return max(0, self._tats.get(key, 0) - when) / (window_s * US)

    def _prune(self, now: int) -> None:
        # Expired keys mean nothing; if a flood of live keys remains, dropping them only forgives some clients.
        self._tats = {k: v for k, v in self._tats.items() if v > now}
        if len(self._tats) >= self._max_keys:
            self._tats.clear()

    def clear(self) -> None:
        """Forget every key (tests)."""
        with self._lock:
            self._tats.clear()
