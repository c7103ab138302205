"""Rate limits on member endpoints (pages and the member API), applied before any route runs.

First line: GCRA in this process's memory per client IP and per device cookie — no database query and no
network round trip, so a flood is refused at the cost of a dict lookup. With several server processes each
process keeps its own counts (a client spread over P processes may get up to P× the limit); when Redis is
configured a second, shared check runs on it (one EVALSHA for both keys) for clients already using 1/8 of
their burst in this process, so the limit then holds across processes (give or take limit/8 per process).
Limits come from SHEQUN_GUARD_MEMBER_* (see `promotions.guard.config`); loopback and non-IP client addresses
are not limited by IP (a reverse proxy on this host would otherwise make every member one).
Also adds a Retry-After header to any 429 a member route answers with {details: {retry_after}}.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shequn.core.i18n import translate
from shequn.core.settings import get_settings
from shequn.core.web import error_body, request_locale
from shequn.member.web import DEVICE_COOKIE, MEMBER_PREFIXES
from shequn.promotions.guard import config, limits
from shequn.promotions.guard.config import MemberLimits
from shequn.promotions.guard.policy import public_ip

CODE = "guard_member_rate_limited"
# A key goes to the shared Redis line only once this process has seen it use 1/8 of its burst: a member who
# browses normally costs no round trip, while a flood is shared after at most limit/8 requests per process.
SHARED_FROM = 0.125


def client_ip(scope: Scope, trust_proxy: bool) -> str | None:
    """The client's public address: the peer, or behind a trusted proxy the last X-Forwarded-For hop."""
    if trust_proxy:
        for key, value in scope.get("headers", []):
            if key == b"x-forwarded-for":
                hop = value.decode("latin-1").split(",")[-1].strip()
                return public_ip(hop)
    client = scope.get("client")
    return public_ip(client[0]) if client else None


def _sent_device(scope: Scope) -> str:
    """The device id the browser sent back (a first visit's fresh id is not a returning device yet)."""
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, v = part.strip().partition("=")
                if name == DEVICE_COOKIE and v == scope.get("state", {}).get("device_id"):
                    return v
    return ""


class MemberRateLimitMiddleware:
    """Limits requests to member paths per device and per IP; answers 429 {code, message, details} localized."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.local = limits.LocalLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(MEMBER_PREFIXES):
            await self.app(scope, receive, send)
            return
        cfg = config.member_limits()
        keys = self._keys(scope, cfg)
        retry = self._local(keys, cfg) if keys else None
        warm = [k for k in keys if self.local.load(k[0], window_s=cfg.window_s) >= SHARED_FROM] if keys else []
        if retry is None and warm and get_settings().redis_url:
            try:
                retry = await self._shared(warm, cfg)
            except limits.REDIS_DOWN:
                retry = None  # the in-process line above still holds; the shared one is back with Redis
        if retry is not None:
            await self._refuse(scope, send, retry)
            return
        await self.app(scope, receive, _with_retry_after(send))

    @staticmethod
    def _keys(scope: Scope, cfg: MemberLimits) -> list[tuple[str, int]]:
        keys: list[tuple[str, int]] = []
        ip = client_ip(scope, cfg.trust_proxy) if cfg.ip_limit else None
        if ip:
            keys.append((f"m:ip:{ip}", cfg.ip_limit))
        device = _sent_device(scope) if cfg.device_limit else ""
        if device:
            keys.append((f"m:dev:{device}", cfg.device_limit))
        return keys

    def _local(self, keys: list[tuple[str, int]], cfg: MemberLimits) -> float | None:
        for key, limit in keys:
            retry = self.local.hit(key, limit=limit, window_s=cfg.window_s)
            if retry is not None:
                return retry
        return None

    @staticmethod
    async def _shared(keys: list[tuple[str, int]], cfg: MemberLimits) -> float | None:
        window_us = cfg.window_s * limits.US
        checks = [limits.Check(key=f"g:{key}", limit=limit, window_us=window_us) for key, limit in keys]
        client = limits.async_redis(get_settings().redis_url)
        index, retry_us = await limits.arun(client, checks, limits.now_us())
        return retry_us / limits.US if index else None

    @staticmethod
    async def _refuse(scope: Scope, send: Send, retry: float) -> None:
        seconds = max(1, int(retry + 0.999))
        locale = request_locale(Request(scope))
        body = orjson.dumps(
            error_body(CODE, translate(f"error.{CODE}", locale, seconds=seconds), {"retry_after": seconds})
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(seconds).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_retry_after(send: Send) -> Send:
    """Hold a 429 start until its JSON body is known, then add Retry-After from details.retry_after."""
    held: list[Message] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 429:
            held.append(message)
            return
        if held and message["type"] == "http.response.body":
            start = held.pop()
            if not message.get("more_body"):
                start = _add_retry_after(start, message.get("body", b""))
            await send(start)
        await send(message)

    return wrapped


def _add_retry_after(start: Message, body: bytes) -> Message:
    headers = list(start.get("headers", []))
    if any(k.lower() == b"retry-after" for k, _ in headers):
        return start
    try:
        details = orjson.loads(body).get("details") or {}
        seconds = int(details["retry_after"]) if isinstance(details, dict) else 0
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        seconds = 0
    if seconds > 0:
        headers.append((b"retry-after", str(seconds).encode()))
    return {**start, "headers": headers}
