"""The flash-sale claim's fast path: a small ASGI dispatcher in front of the FastAPI stack (see app.ShequnApp).

`POST /api/v1/m/flash/{sale_id}/claim` with Redis configured is answered here, without routing, dependency
injection, body models or the idempotency middleware's two database writes:
  1. the member session: looked up once through the audience service, then cached by the SHA-256 of its
     token in Redis for SESSION_REDIS_S seconds (shared by every server process) and in this process for
     SESSION_CACHE_S seconds. An entry older than REFRESH_AFTER_S is reloaded in the background while the
     cached one keeps answering (refresh-ahead): without it every session primed by the same page-view burst
     expired in the same second and the claims behind them queued on database look-ups (bench_flash: 10 s
     at half the throughput and p99 ~100 ms, every minute). So a member who signed out or was blocked may
     still claim for up to a minute; the stock script still enforces stock and the per-customer limit,
     which is what must never be wrong;
  2. the guard: its blacklist verdict is cached with the session, its per-customer flash.claim rule (the
     workspace's override or the default) runs on its async limiter `promotions.guard.limits.ahit` (one EVALSHA);
     per-IP and per-device limits stay with the member rate-limit middleware outside this one;
  3. the claim script (one EVALSHA), which also honours the Idempotency-Key (a replay returns the same
     reservation);
  4. a reply encoded by orjson (refusals pre-encoded per outcome and locale).
Everything else, and every request without Redis, goes to the app unchanged (the documented route). In
front of it only the member device cookie and the member rate limits (per IP and device) run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import anyio.to_thread
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from shequn.audience import service as audience_service
from shequn.core.db import new_session
from shequn.core.i18n import negotiate, translate
from shequn.core.settings import get_settings
from shequn.promotions.flash import redis_store
from shequn.promotions.flash import service as flash_service
from shequn.promotions.flash.claims import decode_script_result, new_ref
from shequn.promotions.guard import limits as guard_limits
from shequn.promotions.guard import service as guard_service

PREFIX = "/api/v1/m/flash/"
SUFFIX = "/claim"
MEMBER_COOKIE = "shequn_member"  # member.web's cookie (the member tier sits above promotions)
SESSION_CACHE_S = 10.0
SESSION_REDIS_S = 60.0
SESSION_KEY = "fs:ms:"
REFRESH_AFTER_S = 40.0
REFRESH_LOCK = "fs:msr:"
REFRESH_BATCH = 100
SESSION_CACHE_MAX = 200_000
REDIS_CONNECTIONS = 64
DB_LOOKUPS = 8
ACTION = "flash.claim"
_JSON = [(b"content-type", b"application/json")]
log = logging.getLogger(__name__)


class _Member:
    """A member as the fast path needs them: who, blocked or not, and their claim rate limit."""

    __slots__ = ("blocked", "customer_id", "limit", "window_ms", "workspace_id")

    def __init__(self, workspace_id: int, customer_id: int, blocked: bool, limit: int, window_ms: int) -> None:
        self.workspace_id, self.customer_id, self.blocked = workspace_id, customer_id, blocked
        self.limit, self.window_ms = limit, window_ms


def _load_member(token: str) -> _Member | None:
    """The member of a session token, the guard's blacklist verdict and the workspace's flash.claim limit."""
    return _load_members([token])[token]


def _load_members(tokens: list[str]) -> dict[str, _Member | None]:
    """_load_member for many tokens: a handful of queries per workspace, not per token."""
    out: dict[str, _Member | None] = {}
    with new_session() as db:
        idents = audience_service.get_member_sessions(db, tokens=tokens)
        by_ws: dict[int, list[int]] = {}
        for ident in idents.values():
            if ident is not None:
                by_ws.setdefault(ident.workspace_id, []).append(ident.customer_id)
        blocked: dict[int, set[int]] = {}
        rules: dict[int, tuple[int, int]] = {}
        for ws, customer_ids in by_ws.items():
            blocked[ws] = guard_service.blocked_customers(db, workspace_id=ws, customer_ids=customer_ids)
            rule = guard_service.effective_rules(db, workspace_id=ws, action=ACTION).get("customer")
            rules[ws] = (rule.limit, rule.window_ms) if rule is not None else (0, 0)
        db.commit()  # get_member_sessions may touch last_seen_at
    for token, ident in idents.items():
        if ident is None:
            out[token] = None
            continue
        ws, cid = ident.workspace_id, ident.customer_id
        out[token] = _Member(ws, cid, cid in blocked[ws], *rules[ws])
    return out


def _load_sale(workspace_id: int, sale_id: int) -> bool:
    """Put a published sale of this brand into Redis from the database (False: none such)."""
    with new_session() as db:
        return flash_service.load_into_redis(db, workspace_id=workspace_id, sale_id=sale_id)


def session_key(token: str) -> str:
    """The Redis key caching a member session for the fast path."""
    return SESSION_KEY + hashlib.sha256(token.encode()).hexdigest()


def prime_session(token: str) -> bool:
    """Cache a member's session for the fast path before they claim (the flash page view does this)."""
    url = get_settings().redis_url
    if not url or not token or len(token) > 200:
        return False
    member = _load_member(token)
    if member is None:
        return False
    redis_store.client(url).set(session_key(token), _encode_member(member), ex=int(SESSION_REDIS_S))
    return True


def _encode_member(member: _Member | None) -> str:
    """The cached form: when it was loaded (unix seconds), then the member or '-' for no member."""
    if member is None:
        return f"{int(time.time())}|-"
    m = member
    return f"{int(time.time())}|{m.workspace_id}:{m.customer_id}:{int(m.blocked)}:{m.limit}:{m.window_ms}"


def _decode_member(raw: bytes | str) -> tuple[float, _Member | None]:
    """When a cached entry was loaded, and its member."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    loaded, _, body = text.partition("|")
    if body == "-" or not body:
        return float(loaded or 0), None
    ws, cid, blocked, limit, window_ms = body.split(":")
    return float(loaded), _Member(int(ws), int(cid), blocked == "1", int(limit), int(window_ms))


def _token(headers: list[tuple[bytes, bytes]]) -> tuple[str, bytes, str]:
    """Member token, Idempotency-Key and Accept-Language of a request."""
    token, key, lang = "", b"", ""
    for name, value in headers:
        if name == b"authorization":
            v = value.decode("latin-1")
            if v[:7].lower() == "member ":
                token = v[7:].strip()
        elif name == b"cookie" and not token:
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == MEMBER_COOKIE:
                    token = v
        elif name == b"idempotency-key":
            key = value
        elif name == b"accept-language":
            lang = value.decode("latin-1")
    return token, key, lang


def claim_sale_id(scope: Scope) -> int | None:
    """The sale of a member claim this fast path answers (Redis configured), else None."""
    path = scope.get("path", "")
    if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(PREFIX):
        return None
    if not path.endswith(SUFFIX) or not get_settings().redis_url:
        return None
    middle = path[len(PREFIX) : -len(SUFFIX)]
    return int(middle) if middle.isdigit() and len(middle) <= 18 else None


class FlashClaimFastPath:
    """Answers flash claims straight from Redis; passes every other request through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._sessions: dict[str, tuple[float, _Member | None]] = {}
        self._clients: dict[int, Any] = {}
        self._errors: dict[tuple[str, str], bytes] = {}
        self._lookup_gates: dict[int, asyncio.Semaphore] = {}
        self._stale: dict[int, set[str]] = {}
        self._refreshers: dict[int, asyncio.Task[None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sale_id = claim_sale_id(scope)
        if sale_id is None:
            await self.app(scope, receive, send)
            return
        await self._claim(sale_id, scope, receive, send)

    # --- pieces -------------------------------------------------------------------------------

    def _redis(self) -> Any:
        """One redis.asyncio client per event loop (a client's connections belong to the loop that made them)."""
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            import redis.asyncio

            # A blocking pool: a burst beyond REDIS_CONNECTIONS waits for a free connection instead of failing.
            pool: Any = redis.asyncio.BlockingConnectionPool.from_url(
                get_settings().redis_url, max_connections=REDIS_CONNECTIONS, timeout=10
            )
            client = redis.asyncio.Redis(connection_pool=pool)
            self._clients[loop_id] = client
        return client

    async def _member(self, token: str) -> _Member | None:
        """In-process cache, then the Redis cache shared by every server process, then the database."""
        if not token or len(token) > 200:
            return None
        now = time.monotonic()
        hit = self._sessions.get(token)
        if hit is not None and now - hit[0] < SESSION_CACHE_S:
            return hit[1]
        redis = self._redis()
        key = session_key(token)
        raw = await redis.get(key)
        if raw is not None:
            loaded, member = _decode_member(raw)
            if member is not None and time.time() - loaded > REFRESH_AFTER_S:
                self._refresh_later(token)
        else:
            async with self._lookups():  # a cold burst must not take every database connection
                member = await anyio.to_thread.run_sync(_load_member, token)
            ttl = SESSION_REDIS_S if member is not None else SESSION_CACHE_S
            await redis.set(key, _encode_member(member), ex=int(ttl))
        if len(self._sessions) >= SESSION_CACHE_MAX:
            self._sessions.clear()
        self._sessions[token] = (now, member)
        return member

    def _refresh_later(self, token: str) -> None:
        """Queue a session for reloading by this event loop's background refresher (started on demand)."""
        loop = asyncio.get_running_loop()
        self._stale.setdefault(id(loop), set()).add(token)
        task = self._refreshers.get(id(loop))
        if task is None or task.done():
            self._refreshers[id(loop)] = loop.create_task(self._refresh(id(loop)))

    async def _refresh(self, loop_id: int) -> None:
        """Reload queued sessions in batches; claims keep using the cached entries meanwhile."""
        stale = self._stale[loop_id]
        redis = self._redis()
        while stale:
            batch = [stale.pop() for _ in range(min(REFRESH_BATCH, len(stale)))]
            try:
                # One process reloads a token; the other finds the lock taken and leaves it (one round trip).
                async with redis.pipeline(transaction=False) as pipe:
                    for token in batch:
                        pipe.set(REFRESH_LOCK + session_key(token), 1, nx=True, ex=int(SESSION_CACHE_S))
                    won = await pipe.execute()
                mine = [t for t, ok in zip(batch, won, strict=True) if ok]
                if not mine:
                    continue
                async with self._lookups():
                    members = await anyio.to_thread.run_sync(_load_members, mine)
                async with redis.pipeline(transaction=False) as pipe:
                    for token, member in members.items():
                        ttl = SESSION_REDIS_S if member is not None else SESSION_CACHE_S
                        pipe.set(session_key(token), _encode_member(member), ex=int(ttl))
                    await pipe.execute()
                now = time.monotonic()
                for token, member in members.items():
                    self._sessions[token] = (now, member)
            except Exception:  # the entries then expire and the next claim loads them itself
                log.exception("flash fast path: refreshing %d member sessions failed", len(batch))

    def _lookups(self) -> asyncio.Semaphore:
        """At most DB_LOOKUPS session look-ups at once per event loop (the engine's pool holds 30)."""
        loop_id = id(asyncio.get_running_loop())
        gate = self._lookup_gates.get(loop_id)
        if gate is None:
            gate = self._lookup_gates[loop_id] = asyncio.Semaphore(DB_LOOKUPS)
        return gate

    def _error(self, code: str, lang: str) -> bytes:
        locale = negotiate(lang or None)
        body = self._errors.get((code, locale))
        if body is None:
            body = orjson.dumps({"code": code, "message": translate(f"error.{code}", locale), "details": None})
            self._errors[(code, locale)] = body
        return body

    @staticmethod
    async def _reply(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [*_JSON, (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
        await send({"type": "http.response.body", "body": body})

    # --- the claim ----------------------------------------------------------------------------

    async def _claim(self, sale_id: int, scope: Scope, receive: Receive, send: Send) -> None:
        token, key_raw, lang = _token(scope["headers"])
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > 4096:
                await self._reply(send, 413, self._error("too_large", lang))
                return
        qty = 1
        if body.strip():
            try:
                data = orjson.loads(body)
                qty = data.get("qty", 1) if isinstance(data, dict) else -1
            except orjson.JSONDecodeError:
                qty = -1
            if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 1000:
                details = [{"field": "qty", "message": "an integer from 1 to 1000", "type": "value_error"}]
                out = {
                    "code": "validation_failed",
                    "message": translate("error.validation_failed", negotiate(lang or None)),
                    "details": details,
                }
                await self._reply(send, 422, orjson.dumps(out))
                return
        key = key_raw.decode("latin-1").strip()
        if len(key) > 64 or "|" in key:
            await self._reply(send, 400, self._error("bad_idempotency_key", lang))
            return
        member = await self._member(token)
        if member is None:
            await self._reply(send, 401, self._error("member_login_required", lang))
            return
        redis = self._redis()
        stats = redis_store.keys(sale_id)[4]
        if member.blocked:
            await _count(redis, stats, "blocked")
            await self._reply(send, 403, self._error("guard_blocked", lang))
            return
        if member.limit > 0:  # the guard's per-customer rule for flash.claim (workspace override or default)
            bucket = f"g:{ACTION}:customer:{member.workspace_id}:{member.customer_id}"
            retry = await guard_limits.ahit(redis, bucket, limit=member.limit, window_s=member.window_ms / 1000)
            if retry is not None:
                await _count(redis, stats, "rate_limited")
                await _rate_limited(send, lang, retry)
                return
        ref = new_ref()
        args = redis_store.claim_args(
            sale_id=sale_id,
            workspace_id=member.workspace_id,
            customer_id=member.customer_id,
            qty=qty,
            idem_key=key,
            ref=ref,
            now_ms=int(time.time() * 1000),
        )
        raw = await redis_store.arun_script(redis, redis_store.CLAIM_SHA, redis_store.CLAIM_LUA, args)
        result = decode_script_result(raw, sale_id=sale_id, ref=ref)
        if result.outcome == "not_found":
            # Not in Redis yet (published before Redis was configured, or Redis restarted): load it from the
            # database once and retry; a draft, missing or other brand's sale stays not found.
            async with self._lookups():
                ws = member.workspace_id
                loaded = await anyio.to_thread.run_sync(lambda: _load_sale(ws, sale_id))
            if loaded:
                raw = await redis_store.arun_script(redis, redis_store.CLAIM_SHA, redis_store.CLAIM_LUA, args)
                result = decode_script_result(raw, sale_id=sale_id, ref=ref)
        if result.outcome == "not_found":
            await self._reply(send, 404, self._error("flash_sale_not_found", lang))
            return
        if result.outcome != "ok" or result.reservation is None:
            await self._reply(send, 409, self._error(f"flash_{result.outcome}", lang))
            return
        payload = {"outcome": "ok", "replay": result.replay, "reservation": result.reservation.as_dict()}
        extra = [(b"idempotent-replayed", b"true")] if result.replay else None
        await self._reply(send, 200 if result.replay else 201, orjson.dumps(payload), extra)


async def _rate_limited(send: Send, lang: str, retry: float) -> None:
    """The guard's 429 (same code and details as guard.check_member_action raises on the documented route)."""
    seconds = max(1, int(retry + 0.999))
    body = {
        "code": "guard_rate_limited",
        "message": translate("error.guard_rate_limited", negotiate(lang or None), seconds=seconds),
        "details": {"retry_after": seconds, "rule": "customer", "action": "flash.claim"},
    }
    await FlashClaimFastPath._reply(send, 429, orjson.dumps(body), [(b"retry-after", str(seconds).encode())])


async def _count(redis: Any, stats: str, outcome: str) -> None:
    """Count a refusal the script never saw, like the script counts its own outcomes."""
    minute = int(time.time() // 60)
    await redis.hincrby(stats, outcome, 1)
    await redis.hincrby(stats, f"m:{minute}:{outcome}", 1)
