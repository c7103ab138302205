"""Guard pieces without a database: GCRA arithmetic, public IPs, Retry-After on member 429s, config."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from shequn.member.ratelimit import MemberRateLimitMiddleware
from shequn.promotions.guard import config, limits
from shequn.promotions.guard.policy import public_ip, valid_rule


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(
    limit=st.integers(1, 500),
    window_ms=st.integers(100, 3_600_000),
    gaps=st.lists(st.one_of(st.just(0), st.integers(0, 2_000_000)), min_size=1, max_size=80),
)
def test_gcra_is_a_bucket_of_limit_refilled_at_limit_per_window(limit: int, window_ms: int, gaps: list[int]) -> None:
    """Any span of t µs admits at most limit + t // interval hits (never more than `limit` at one instant)."""
    check = limits.Check("k", limit, window_ms * 1000)
    tat, now, admitted = 0, 1_000_000_000, []
    for gap in gaps:
        now += gap
        retry, new_tat = limits.gcra(tat, now, check)
        if retry is None:
            tat = new_tat
            admitted.append(now)
        else:
            assert retry > 0
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= limit + (admitted[j] - admitted[i]) // check.interval_us


def test_public_ip() -> None:
    assert public_ip("203.0.113.4") == "203.0.113.4"
    assert public_ip("10.1.2.3") == "10.1.2.3"  # private networks are real clients behind NAT
    assert public_ip("2001:db8::0:1") == "2001:db8::1"
    assert public_ip("127.0.0.1") is None and public_ip("::1") is None
    assert public_ip("testclient") is None and public_ip("") is None and public_ip(None) is None


def test_valid_rules() -> None:
    assert valid_rule("*", "burst") and not valid_rule("*", "customer")
    assert valid_rule("coupon.code", "fail_device") and not valid_rule("coupon.code", "burst")


def test_config_defaults_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHEQUN_GUARD_MEMBER_IP_LIMIT", "SHEQUN_GUARD_MEMBER_DEVICE_LIMIT", "SHEQUN_GUARD_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    config.reset()
    cfg = config.member_limits()
    assert (cfg.ip_limit, cfg.device_limit, cfg.window_s) == (1200, 600, 60) and config.checks_enabled()
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "lots")
    monkeypatch.setenv("SHEQUN_GUARD_ENABLED", "0")
    config.reset()
    assert config.member_limits().ip_limit == 1200 and not config.checks_enabled()
    config.reset()


def _route_429(body: dict[str, object]) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raw = orjson.dumps(body)
        await send({"type": "http.response.start", "status": 429, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": raw})

    return app


def _call(app: object, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [],
        "client": ("127.0.0.1", 1),
        "query_string": b"",
    }
    asyncio.run(MemberRateLimitMiddleware(app)(scope, receive, send))  # type: ignore[arg-type]
    return sent


def test_retry_after_header_added_to_a_member_route_429() -> None:
    sent = _call(_route_429({"code": "guard_rate_limited", "details": {"retry_after": 7}}), "/api/v1/m/coupons/claim")
    assert (b"retry-after", b"7") in sent[0]["headers"]
    sent = _call(_route_429({"code": "other", "details": None}), "/api/v1/m/x")
    assert all(k != b"retry-after" for k, _ in sent[0]["headers"])
    assert orjson.loads(sent[1]["body"])["code"] == "other"
