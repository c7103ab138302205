"""check_member_action: blacklist, rate limits, guessing limits, bot-like bursts, flags, workspace isolation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.identity.service import Actor
from shequn.promotions.guard import limits, service
from shequn.promotions.guard.errors import Blocked, GuessingLimited, RateLimited, TooFast
from shequn.promotions.guard.policy import ACTIONS
from tests.conftest import Tenant
from tests.integration import test_guard_limits

US = limits.US
store = test_guard_limits.store  # the counter-store fixture: database, and Redis when configured
PH7 = "7" * 64  # a phone hash (hex of a keyed SHA-256)


class Clock:
    """A settable clock for the counters (microseconds)."""

    def __init__(self) -> None:
        self.t = 1_800_000_000 * US

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += int(seconds * US)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, store: str) -> Iterator[Clock]:
    """A fixed clock, on each counter store (database, and Redis when configured)."""
    c = Clock()
    monkeypatch.setattr(limits, "now_us", c)
    yield c


def _actor(tenant: Tenant, role: str = "owner") -> Actor:
    return Actor(workspace_id=tenant.workspace_id, role=role, operator_id=tenant.owner_id)


def _check(db: Session, tenant: Tenant, action: str = "coupon.claim", customer: int | None = 1, **kw: str) -> None:
    service.check_member_action(db, workspace_id=tenant.workspace_id, action=action, customer_id=customer, **kw)


def test_blacklist_blocks_every_action(db: Session, tenant: Tenant) -> None:
    """Each kind of entry alone refuses every action kind (the counters are not involved: one store)."""
    values = {"customer": "7", "device": "dev-7", "phone_hash": PH7, "ip": "203.0.113.7"}
    ident = {"device_id": "dev-7", "phone_hash": PH7, "ip": "203.0.113.7"}
    ws = tenant.workspace_id
    for kind, value in values.items():
        block = service.add_block(db, _actor(tenant), kind=kind, value=value, reason="fraud ring")
        db.commit()
        for action in ACTIONS:
            with pytest.raises(Blocked):
                _check(db, tenant, action, customer=7, **ident)
        assert service.is_blocked(
            db, workspace_id=ws, customer_id=7, device_id="dev-7", phone_hash=PH7, ip="203.0.113.7"
        )
        # Another identity is not blocked.
        _check(db, tenant, "coupon.claim", customer=8, device_id="dev-8", phone_hash="8" * 64, ip="203.0.113.8")
        service.remove_block(db, _actor(tenant), block_id=block.id)
        db.commit()
    flags, total = service.list_flags(db, workspace_id=ws, reason="blocked", limit=100)
    assert total == 4 * len(ACTIONS) and all(f.count == 1 for f in flags)


def test_expired_block_no_longer_blocks(clock: Clock, db: Session, tenant: Tenant) -> None:
    service.add_block(db, _actor(tenant), kind="device", value="d1", until=utcnow() - timedelta(seconds=1))
    db.commit()
    _check(db, tenant, device_id="d1")
    assert not service.is_blocked(db, workspace_id=tenant.workspace_id, device_id="d1")


def test_rate_limit_per_customer_with_retry_after(clock: Clock, db: Session, tenant: Tenant) -> None:
    for _ in range(20):  # coupon.claim: 20 per minute per customer
        _check(db, tenant)
        clock.advance(0.12)  # under one refill (3 s) overall, over the burst pace (0.1 s)
    with pytest.raises(RateLimited) as exc:
        _check(db, tenant)
    assert exc.value.status_code == 429 and exc.value.details["rule"] == "customer"
    assert 1 <= exc.value.details["retry_after"] <= 60
    _check(db, tenant, customer=2)  # another customer is unaffected
    clock.advance(exc.value.details["retry_after"])
    _check(db, tenant)


def test_guessing_limit_after_failures(clock: Clock, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    for _ in range(10):  # 10 wrong codes per 10 minutes
        _check(db, tenant, "coupon.code", device_id="dev-g")
        service.record_failure(db, workspace_id=ws, action="coupon.code", customer_id=1, device_id="dev-g")
        clock.advance(1)
    with pytest.raises(GuessingLimited) as exc:
        _check(db, tenant, "coupon.code", device_id="dev-g")
    assert exc.value.code == "guard_code_guessing" and exc.value.details["rule"] == "fail_customer"
    # The same device with another account is still refused (per-device failures).
    with pytest.raises(GuessingLimited):
        _check(db, tenant, "coupon.code", customer=2, device_id="dev-g")
    clock.advance(61)  # one failure slot frees per minute
    _check(db, tenant, "coupon.code", device_id="dev-g")


def test_burst_from_one_device_is_too_fast(clock: Clock, db: Session, tenant: Tenant) -> None:
    for _ in range(8):
        _check(db, tenant, "lottery.draw", device_id="bot")
        clock.advance(0.01)
    with pytest.raises(TooFast) as exc:
        _check(db, tenant, "lottery.draw", device_id="bot")
    assert exc.value.details["rule"] == "burst"
    clock.advance(0.5)  # human pace again
    _check(db, tenant, "lottery.draw", device_id="bot")


def test_many_customers_on_one_device_is_too_fast(clock: Clock, db: Session, tenant: Tenant) -> None:
    for customer in (1, 2, 3):
        _check(db, tenant, "challenge.vote", customer=customer, device_id="farm")
        clock.advance(1)
    _check(db, tenant, "challenge.vote", customer=2, device_id="farm")  # a known customer again is fine
    with pytest.raises(TooFast) as exc:
        _check(db, tenant, "challenge.vote", customer=4, device_id="farm")
    assert exc.value.details["rule"] == "device_customers"
    clock.advance(601)
    _check(db, tenant, "challenge.vote", customer=4, device_id="farm")


def test_overrides_change_limits_per_workspace(clock: Clock, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    service.set_override(db, _actor(tenant), action="quiz.answer", rule="customer", limit=2, window_ms=60_000)
    db.commit()
    for _ in range(2):
        _check(db, tenant, "quiz.answer")
        clock.advance(1)
    with pytest.raises(RateLimited):
        _check(db, tenant, "quiz.answer")
    for _ in range(5):  # the other workspace keeps the default and its own counters
        _check(db, other_tenant, "quiz.answer")
        clock.advance(1)
    service.delete_override(db, _actor(tenant), action="quiz.answer", rule="customer")
    db.commit()
    _check(db, tenant, "quiz.answer")


def test_blocks_are_per_workspace(clock: Clock, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    service.add_block(db, _actor(tenant), kind="customer", value="5")
    db.commit()
    with pytest.raises(Blocked):
        _check(db, tenant, customer=5)
    _check(db, other_tenant, customer=5)
    assert service.list_blocks(db, workspace_id=other_tenant.workspace_id)[1] == 0


def test_concurrent_checks_never_exceed_the_limit(store: str, backend: str, db: Session, tenant: Tenant) -> None:
    """Threads with their own sessions (like concurrent requests): exactly `limit` pass."""
    import threading

    from shequn.core.db import new_session

    service.set_override(db, _actor(tenant), action="coupon.claim", rule="customer", limit=15, window_ms=3_600_000)
    service.set_override(db, _actor(tenant), action="*", rule="burst", limit=0, window_ms=1000)
    db.commit()
    passed: list[int] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        with new_session() as s:
            for _ in range(6):
                try:
                    service.check_member_action(
                        s, workspace_id=tenant.workspace_id, action="coupon.claim", customer_id=9
                    )
                    passed.append(1)
                except RateLimited:
                    pass

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(passed) == 15


def test_check_after_a_write_in_the_same_session(clock: Clock, db: Session, tenant: Tenant) -> None:
    """On SQLite a second connection would wait for the session's write lock: the check must not hang."""
    service.add_block(db, _actor(tenant), kind="device", value="other")
    db.flush()  # the session now holds the write lock (SQLite)
    _check(db, tenant, device_id="dev-w")
    service.record_failure(db, workspace_id=tenant.workspace_id, action="coupon.code", customer_id=1)
    db.commit()


def test_disabled_by_environment(clock: Clock, db: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    service.add_block(db, _actor(tenant), kind="customer", value="1")
    db.commit()
    monkeypatch.setenv("SHEQUN_GUARD_ENABLED", "0")
    for _ in range(50):
        _check(db, tenant)


def test_block_from_flag_is_scoped(clock: Clock, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    from shequn.promotions.guard.errors import FlagNotFound

    for _ in range(9):
        with contextlib.suppress(TooFast):
            _check(db, tenant, "quiz.answer", device_id="d-flag")
    flag = service.list_flags(db, workspace_id=tenant.workspace_id)[0][0]
    with pytest.raises(FlagNotFound):
        service.block_flag_subject(db, _actor(other_tenant), flag_id=flag.id)
    block = service.block_flag_subject(db, _actor(tenant), flag_id=flag.id, days=1)
    db.commit()
    assert (block.kind, block.value) == ("device", "d-flag")
    with pytest.raises(Blocked):
        _check(db, tenant, "coupon.claim", customer=99, device_id="d-flag")


def test_viewer_cannot_change_blacklist_or_limits(db: Session, tenant: Tenant) -> None:
    from shequn.core.errors import PermissionDenied

    viewer = _actor(tenant, "viewer")
    with pytest.raises(PermissionDenied):
        service.add_block(db, viewer, kind="ip", value="203.0.113.3")
    with pytest.raises(PermissionDenied):
        service.set_override(db, viewer, action="quiz.answer", rule="customer", limit=1, window_ms=1000)


def test_demo_step_and_sweep(db: Session, tenant: Tenant) -> None:
    from shequn.promotions.guard import tasks

    counts = tasks.demo_step(db, workspace_id=tenant.workspace_id, campaign_id=None)
    db.commit()
    assert counts["guard_blocks"] == 3 and counts["guard_flags"] > 10
    hourly = service.hourly_counts(db, workspace_id=tenant.workspace_id)
    assert sum(sum(v.values()) for v in hourly.values()) > 0
    tasks.sweep()
