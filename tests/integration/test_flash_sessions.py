"""The flash fast path's member sessions: batch look-ups agree with single ones, and a stale cached session is
reloaded in the background (refresh-ahead) while the cached one keeps answering."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.models import Customer
from shequn.promotions.flash import claims, hotpath, redis_store
from shequn.promotions.guard import service as guard_service
from tests.conftest import REDIS_URL, REQUIRE_SERVICES, Tenant
from tests.integration.test_flash import customers, make_sale, member_token, no_redis, use_redis


@pytest.fixture
def redis_engine() -> Iterator[str]:
    """The Redis engine (which the fast path needs) on an empty test Redis db."""
    if not REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("SHEQUN_REQUIRE_SERVICES=1 but SHEQUN_TEST_REDIS_URL is not set")
        pytest.skip("SHEQUN_TEST_REDIS_URL not set")
    claims.clear_caches()
    use_redis(REDIS_URL)
    try:
        yield "redis"
    finally:
        no_redis()
        claims.clear_caches()


def test_batch_session_lookup_matches_single_lookups(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a, b, c, d, survivor = customers(db, tenant, 5, prefix="会话")
    tokens = {name: member_token(db, ws, cid) for name, cid in (("a", a), ("b", b), ("c", c), ("d", d))}
    audience_service.end_member_session(db, token=tokens["c"])  # signed out
    db.execute(update(Customer).where(Customer.id == d).values(merged_into_id=survivor))  # merged away
    db.commit()
    blocked = client.post("/api/v1/guard/blocks", json={"kind": "customer", "value": str(b)}, headers=tenant.headers())
    assert blocked.status_code == 201, blocked.text
    asked = [*tokens.values(), "unknown-token", ""]

    batch = audience_service.get_member_sessions(db, tokens=asked)
    assert batch == {t: audience_service.get_member_session(db, token=t) for t in asked}
    assert batch[tokens["c"]] is None and batch["unknown-token"] is None and batch[""] is None
    assert batch[tokens["a"]] is not None and batch[tokens["a"]].customer_id == a
    assert batch[tokens["d"]] is not None and batch[tokens["d"]].customer_id == survivor
    assert guard_service.blocked_customers(db, workspace_id=ws, customer_ids=[a, b, survivor]) == {b}

    members = hotpath._load_members(asked)
    assert members["unknown-token"] is None and members[tokens["c"]] is None
    ma, mb = members[tokens["a"]], members[tokens["b"]]
    assert ma is not None and not ma.blocked and ma.customer_id == a and ma.limit > 0
    assert mb is not None and mb.blocked


@pytest.mark.redis
def test_stale_session_is_refreshed_in_the_background(
    redis_engine: str, client: Any, db: Session, tenant: Tenant
) -> None:
    ws = tenant.workspace_id
    a, b = customers(db, tenant, 2, prefix="刷新")
    sid = make_sale(db, ws, stock=10, limit=5)
    token = member_token(db, ws, a)
    url = f"/api/v1/m/flash/{sid}/claim"
    assert hotpath.prime_session(token)
    r = redis_store.client(REDIS_URL)
    key = hotpath.session_key(token)
    # The cached entry says "not blocked" and was loaded 50 s ago; the database now says blocked.
    loaded, member = hotpath._decode_member(r.get(key))
    assert member is not None and not member.blocked and time.time() - loaded < 5
    r.set(key, hotpath._encode_member(member).replace(f"{int(loaded)}|", f"{int(time.time() - 50)}|", 1), ex=60)
    block = client.post("/api/v1/guard/blocks", json={"kind": "customer", "value": str(a)}, headers=tenant.headers())
    assert block.status_code == 201

    first = client.post(url, headers={"Authorization": f"Member {token}", "Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text  # answered from the cached entry, not after a database look-up
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fresh_loaded, fresh = hotpath._decode_member(r.get(key))
        if fresh_loaded > loaded - 1 and fresh is not None and fresh.blocked:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the stale session was not reloaded in the background")
    again = client.post(url, headers={"Authorization": f"Member {token}", "Idempotency-Key": "k2"})
    assert again.status_code == 403 and again.json()["code"] == "guard_blocked"
    # Another member's fresh entry is not reloaded (no refresh lock taken for it).
    other = member_token(db, ws, b)
    assert hotpath.prime_session(other)
    assert client.post(url, headers={"Authorization": f"Member {other}"}).status_code == 201
    assert r.get(hotpath.REFRESH_LOCK + hotpath.session_key(other)) is None
