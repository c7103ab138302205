"""The Redis side of flash sales: one Lua script decides a claim atomically; reservations go out on a stream.

Keys of a sale (the `{id}` hash tag keeps them in one cluster slot):
  fs:{id}:meta   hash  ws, sale, start, end (epoch ms), limit, ttl (s), price (fen), status, left (units)
  fs:{id}:cust   hash  customer → units held (reserved or paid)
  fs:{id}:idem   hash  "customer:Idempotency-Key" → reservation ref
  fs:{id}:resv   hash  ref → "customer|qty|expires_ms|amount|state|created_ms|idem_key"
  fs:{id}:stats  hash  outcome → attempts, "m:<epoch minute>:<outcome>" → attempts
and one stream `fs:stream` the consumer (consumer.py) writes to the database from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

STREAM = "fs:stream"
GROUP = "flash-writers"

CLAIM_LUA = """
local m = redis.call('HMGET', KEYS[1], 'ws', 'start', 'end', 'limit', 'ttl', 'price', 'status', 'left')
if not m[1] or m[1] ~= ARGV[6] then return {'not_found'} end
local cust = ARGV[2]
local qty = tonumber(ARGV[3])
local ikey = ''
if ARGV[4] ~= '' then
  ikey = cust .. ':' .. ARGV[4]
  local prev = redis.call('HGET', KEYS[3], ikey)
  if prev then return {'replay', prev, redis.call('HGET', KEYS[4], prev) or ''} end
end
local now = tonumber(ARGV[1])
local outcome = 'ok'
if m[7] ~= 'live' then outcome = 'ended'
elseif now < tonumber(m[2]) then outcome = 'not_started'
elseif now >= tonumber(m[3]) then outcome = 'ended'
elseif tonumber(redis.call('HGET', KEYS[2], cust) or '0') + qty > tonumber(m[4]) then outcome = 'limit_reached'
elseif tonumber(m[8]) < qty then outcome = 'sold_out'
end
redis.call('HINCRBY', KEYS[5], outcome, 1)
redis.call('HINCRBY', KEYS[5], 'm:' .. ARGV[7] .. ':' .. outcome, 1)
if outcome ~= 'ok' then return {outcome} end
redis.call('HINCRBY', KEYS[1], 'left', -qty)
redis.call('HINCRBY', KEYS[2], cust, qty)
local rec = cust .. '|' .. qty .. '|' .. (now + tonumber(m[5]) * 1000) .. '|' .. (tonumber(m[6]) * qty)
  .. '|reserved|' .. now .. '|' .. ARGV[4]
redis.call('HSET', KEYS[4], ARGV[5], rec)
if ikey ~= '' then redis.call('HSET', KEYS[3], ikey, ARGV[5]) end
redis.call('XADD', KEYS[6], '*', 'sale', ARGV[8], 'ws', ARGV[6], 'ref', ARGV[5], 'rec', rec)
return {'ok', ARGV[5], rec}
"""

# Close a reservation (paid / expired / cancelled); stock and the customer's count come back unless paid.
CLOSE_LUA = """
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then return 0 end
local cust, qty, exp, amount, state, rest = string.match(rec, '^([^|]*)|(%d+)|(%d+)|(%d+)|(%a+)|(.*)$')
if state ~= 'reserved' then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], cust .. '|' .. qty .. '|' .. exp .. '|' .. amount .. '|' .. ARGV[2] .. '|' .. rest)
if ARGV[2] ~= 'paid' then
  redis.call('HINCRBY', KEYS[1], 'left', tonumber(qty))
  redis.call('HINCRBY', KEYS[2], cust, -tonumber(qty))
end
return 1
"""

CLAIM_SHA = hashlib.sha1(CLAIM_LUA.encode()).hexdigest()
CLOSE_SHA = hashlib.sha1(CLOSE_LUA.encode()).hexdigest()


def keys(sale_id: int) -> tuple[str, str, str, str, str]:
    """meta, cust, idem, resv and stats keys of a sale."""
    p = f"fs:{{{sale_id}}}:"
    return p + "meta", p + "cust", p + "idem", p + "resv", p + "stats"


@dataclass(frozen=True)
class RedisRecord:
    """A reservation as the Redis hash holds it."""

    customer_id: int
    qty: int
    expires_at: datetime
    amount: int
    state: str
    created_at: datetime
    idem_key: str


def ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(dt.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """An aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(value / 1000, UTC)


def parse_record(rec: str | bytes) -> RedisRecord:
    """Decode a "customer|qty|expires|amount|state|created|idem" record."""
    text = rec.decode() if isinstance(rec, bytes) else rec
    cust, qty, exp, amount, state, created, idem = text.split("|", 6)
    return RedisRecord(int(cust), int(qty), from_ms(int(exp)), int(amount), state, from_ms(int(created)), idem)


def claim_args(
    *, sale_id: int, workspace_id: int, customer_id: int, qty: int, idem_key: str, ref: str, now_ms: int
) -> list[Any]:
    """KEYS and ARGV of the claim script, flattened for EVALSHA."""
    meta, cust, idem, resv, stats = keys(sale_id)
    return [
        6,
        meta,
        cust,
        idem,
        resv,
        stats,
        STREAM,
        now_ms,
        customer_id,
        qty,
        idem_key,
        ref,
        workspace_id,
        now_ms // 60000,
        sale_id,
    ]


@lru_cache(maxsize=4)
def client(url: str) -> Any:
    """A process-wide synchronous Redis client (connection pool inside)."""
    import redis

    return redis.Redis.from_url(url)


def run_script(r: Any, sha: str, script: str, args: list[Any]) -> Any:
    """EVALSHA, loading the script once if this Redis has not seen it."""
    from redis.exceptions import NoScriptError

    try:
        return r.evalsha(sha, *args)
    except NoScriptError:
        return r.eval(script, *args)


async def arun_script(r: Any, sha: str, script: str, args: list[Any]) -> Any:
    """run_script on a redis.asyncio client."""
    from redis.exceptions import NoScriptError

    try:
        return await r.evalsha(sha, *args)
    except NoScriptError:
        return await r.eval(script, *args)


def close_reservation(r: Any, *, sale_id: int, ref: str, state: str) -> bool:
    """Mark a reserved reservation paid/expired/cancelled in Redis (returning stock unless paid); idempotent."""
    meta, cust, _idem, resv, _stats = keys(sale_id)
    return bool(run_script(r, CLOSE_SHA, CLOSE_LUA, [3, meta, cust, resv, ref, state]))


def load_sale(
    r: Any,
    *,
    sale_id: int,
    workspace_id: int,
    starts_at: datetime,
    ends_at: datetime,
    limit: int,
    ttl_min: int,
    price: int,
    status: str,
    left: int,
    holdings: dict[int, int],
) -> None:
    """Put (or refresh) a sale's terms in Redis; stock and holdings only if Redis has none yet (first load)."""
    meta, cust, *_ = keys(sale_id)
    fresh = not r.hexists(meta, "left")
    pipe = r.pipeline(transaction=True)
    pipe.hset(
        meta,
        mapping={
            "ws": workspace_id,
            "sale": sale_id,
            "start": ms(starts_at),
            "end": ms(ends_at),
            "limit": limit,
            "ttl": ttl_min * 60,
            "price": price,
            "status": "live" if status == "published" else status,
        },
    )
    pipe.hsetnx(meta, "left", left)
    if fresh and holdings:
        pipe.hset(cust, mapping={str(k): v for k, v in holdings.items()})
    pipe.execute()


def stock_left(r: Any, sale_id: int) -> int | None:
    """Units Redis still has for the sale (None when it is not loaded)."""
    value = r.hget(keys(sale_id)[0], "left")
    return None if value is None else int(value)


def read_stats(r: Any, sale_id: int) -> dict[str, int]:
    """The sale's attempt counters as Redis holds them."""
    raw = r.hgetall(keys(sale_id)[4])
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def read_record(r: Any, sale_id: int, ref: str) -> RedisRecord | None:
    """One reservation record from Redis."""
    raw = r.hget(keys(sale_id)[3], ref)
    return None if raw is None else parse_record(raw)


def forget_sale(r: Any, sale_id: int) -> None:
    """Delete a sale's keys (tests, and a sale deleted as a draft)."""
    r.delete(*keys(sale_id))
