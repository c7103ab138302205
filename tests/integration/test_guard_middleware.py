"""Member rate-limit middleware: per-IP and per-device 429s in the request's locale, with Retry-After."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shequn.core.settings import get_settings
from shequn.promotions.guard import config, limits
from tests.conftest import REDIS_URL

# The middleware touches no database: SQLite only (the PostgreSQL variant would add nothing but set-up time).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def fresh_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests change SHEQUN_GUARD_* after the app exists: re-read them on every call, and forget them after."""
    monkeypatch.setattr(config, "member_limits", config._read_member_limits)
    yield
    config.reset()


@pytest.fixture
def app(backend: str) -> object:
    """The real app."""
    from shequn.app import create_app

    return create_app()


def _client(app: object, ip: str = "203.0.113.9") -> TestClient:
    return TestClient(app, client=(ip, 40000))  # type: ignore[arg-type]


def test_ip_limit_answers_429_localized_with_retry_after(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "3")
    with _client(app) as c:
        codes = [c.get("/api/v1/m/me").status_code for _ in range(3)]
        assert 429 not in codes
        r = c.get("/api/v1/m/me")
        assert r.status_code == 429
        body = r.json()
        assert body["code"] == "guard_member_rate_limited" and body["details"]["retry_after"] >= 1
        assert "请求过于频繁" in body["message"]  # zh-CN by default
        assert int(r.headers["retry-after"]) == body["details"]["retry_after"]
        en = c.get("/api/v1/m/me", headers={"Accept-Language": "en-US,en;q=0.9"})
        assert en.status_code == 429 and en.json()["message"].startswith("Too many requests")
        assert c.get("/m/brand-a/", params={"lang": "en"}).status_code == 429  # pages too
        assert c.get("/healthz").status_code == 200  # not a member path
    with _client(app, ip="203.0.113.10") as other:  # another address has its own budget
        assert other.get("/api/v1/m/me").status_code != 429


def test_device_limit_counts_the_returning_device(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_DEVICE_LIMIT", "2")
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "0")
    with _client(app) as c:
        c.get("/api/v1/m/me")  # first visit: gets the cookie, not yet a returning device
        assert [c.get("/api/v1/m/me").status_code == 429 for _ in range(3)] == [False, False, True]
    with _client(app) as fresh:  # a new device (new cookie jar) is not limited
        assert fresh.get("/api/v1/m/me").status_code != 429


def test_loopback_and_zero_limits_are_not_limited(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "1")
    with _client(app, ip="127.0.0.1") as c:
        assert all(c.get("/api/v1/m/me").status_code != 429 for _ in range(5))
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "0")
    with _client(app) as c:
        assert all(c.get("/api/v1/m/me").status_code != 429 for _ in range(5))


def test_trusted_proxy_uses_the_forwarded_address(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "1")
    monkeypatch.setenv("SHEQUN_GUARD_TRUST_PROXY", "1")
    with _client(app, ip="127.0.0.1") as c:
        hop = {"X-Forwarded-For": "10.9.9.9, 198.51.100.4"}
        assert c.get("/api/v1/m/me", headers=hop).status_code != 429
        assert c.get("/api/v1/m/me", headers=hop).status_code == 429
        assert c.get("/api/v1/m/me", headers={"X-Forwarded-For": "198.51.100.5"}).status_code != 429


@pytest.fixture
def shared_redis(backend: str) -> Iterator[str]:
    if not REDIS_URL:
        pytest.skip("needs SHEQUN_TEST_REDIS_URL")
    os.environ["SHEQUN_REDIS_URL"] = REDIS_URL
    get_settings.cache_clear()
    limits.sync_redis(REDIS_URL).flushdb()
    try:
        yield REDIS_URL
    finally:
        os.environ.pop("SHEQUN_REDIS_URL", None)
        get_settings.cache_clear()


def test_redis_limit_is_shared_between_processes(shared_redis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two app instances stand for two server processes: their in-memory lines differ, Redis is shared."""
    from shequn.app import create_app

    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "4")
    with _client(create_app()) as one, _client(create_app()) as two:
        codes = [c.get("/api/v1/m/me").status_code for c in (one, two, one, two, one)]
    assert codes.count(429) == 1 and codes[-1] == 429


def test_unreachable_redis_keeps_the_in_process_line(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "2")
    monkeypatch.setenv("SHEQUN_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        with _client(app) as c:
            codes = [c.get("/api/v1/m/me").status_code for _ in range(3)]
        assert 500 not in codes and codes[-1] == 429
    finally:
        monkeypatch.delenv("SHEQUN_REDIS_URL")
        get_settings.cache_clear()


def test_cold_clients_cost_no_redis_round_trip(shared_redis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a client using 1/8 of its burst in this process is checked on Redis."""
    from shequn.app import create_app

    monkeypatch.setenv("SHEQUN_GUARD_MEMBER_IP_LIMIT", "80")
    client = limits.sync_redis(shared_redis)
    with _client(create_app()) as c:
        for _ in range(5):
            c.get("/api/v1/m/me")
        assert client.keys("g:m:*") == []
        for _ in range(10):
            c.get("/api/v1/m/me")
        assert client.keys("g:m:ip:*") != []
