"""Gatherings under concurrency: capacity never exceeded, one registration per customer, promotions in order
(threads with their own sessions on the real database: SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community.gatherings import service
from shequn.community.gatherings.models import Gathering, GatheringRegistration
from shequn.community.gatherings.schemas import GatheringIn
from shequn.core.clock import utcnow
from shequn.core.db import new_session
from tests.conftest import Tenant
from tests.integration.test_gatherings import people

THREADS = 12


def _gathering(db: Session, tenant: Tenant, capacity: int, waitlist: bool = True) -> int:
    start = utcnow() + timedelta(days=2)
    g = service.create_gathering(
        db,
        workspace_id=tenant.workspace_id,
        data=GatheringIn(
            title="并发品鉴会",
            city="杭州",
            address="龙井路 88 号",
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            capacity=capacity,
            waitlist_enabled=waitlist,
        ),
    )
    service.publish_gathering(db, workspace_id=tenant.workspace_id, gathering_id=g.id)
    db.commit()
    return g.id


def _race(calls: list[Callable[[Session], Any]]) -> list[Any]:
    """Run each call in its own thread and session, all released at once; returns results or exceptions."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[Session], Any]) -> Any:
        session = new_session()
        try:
            barrier.wait()
            out = call(session)
            session.commit()
            return out
        except Exception as exc:
            session.rollback()
            return exc
        finally:
            session.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _counts(db: Session, gid: int) -> dict[str, int]:
    db.expire_all()
    rows = db.execute(
        select(GatheringRegistration.status, func.count())
        .where(GatheringRegistration.gathering_id == gid)
        .group_by(GatheringRegistration.status)
    ).all()
    return {status: int(n) for status, n in rows}


def test_concurrent_registrations_never_exceed_capacity(db: Session, tenant: Tenant) -> None:
    gid = _gathering(db, tenant, capacity=4)
    customers = people(db, tenant, THREADS)
    ws = tenant.workspace_id

    def registering(cid: int) -> Callable[[Session], Any]:
        return lambda s: service.register(s, workspace_id=ws, gathering_id=gid, customer_id=cid).registration.status

    results = _race([registering(c) for c in customers])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(results).count("confirmed") == 4
    assert _counts(db, gid) == {"confirmed": 4, "waitlisted": THREADS - 4}
    g = db.get(Gathering, gid)
    assert g is not None and (g.seats_taken, g.waitlist_count) == (4, THREADS - 4)


def test_concurrent_registrations_without_waitlist(db: Session, tenant: Tenant) -> None:
    gid = _gathering(db, tenant, capacity=3, waitlist=False)
    customers = people(db, tenant, THREADS)
    ws = tenant.workspace_id
    results = _race(
        [
            (lambda cid: lambda s: service.register(s, workspace_id=ws, gathering_id=gid, customer_id=cid))(c)
            for c in customers
        ]
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == THREADS - 3 and {getattr(r, "code", "") for r in refused} == {"gathering_full"}
    assert _counts(db, gid) == {"confirmed": 3}
    g = db.get(Gathering, gid)
    assert g is not None and (g.seats_taken, g.waitlist_count) == (3, 0)


def test_same_customer_racing_gets_one_registration(db: Session, tenant: Tenant) -> None:
    gid = _gathering(db, tenant, capacity=10)
    (cid,) = people(db, tenant, 1)
    ws = tenant.workspace_id
    results = _race(
        [lambda s: service.register(s, workspace_id=ws, gathering_id=gid, customer_id=cid) for _ in range(8)]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.already_registered for r in results) == [False] + [True] * 7
    assert len({r.registration.id for r in results}) == 1
    assert _counts(db, gid) == {"confirmed": 1}
    g = db.get(Gathering, gid)
    assert g is not None and g.seats_taken == 1  # the losers' seats were given back with their savepoints


def test_concurrent_cancellations_promote_in_order_once_each(db: Session, tenant: Tenant) -> None:
    gid = _gathering(db, tenant, capacity=4)
    customers = people(db, tenant, 10)
    ws = tenant.workspace_id
    regs = [service.register(db, workspace_id=ws, gathering_id=gid, customer_id=c).registration for c in customers]
    db.commit()
    confirmed = [r.id for r in regs if r.status == "confirmed"]
    waiting = [r.customer_id for r in regs if r.status == "waitlisted"]
    assert len(confirmed) == 4 and len(waiting) == 6

    results = _race(
        [
            (lambda rid: lambda s: service.cancel_registration(s, workspace_id=ws, registration_id=rid, by="member"))(r)
            for r in confirmed[:3]
        ]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert _counts(db, gid) == {"confirmed": 4, "cancelled": 3, "waitlisted": 3}
    promoted = set(
        db.scalars(
            select(GatheringRegistration.customer_id).where(
                GatheringRegistration.gathering_id == gid, GatheringRegistration.promoted_at.is_not(None)
            )
        )
    )
    assert promoted == set(waiting[:3])  # the first three in line, nobody twice
    g = db.get(Gathering, gid)
    assert g is not None and (g.seats_taken, g.waitlist_count) == (4, 3)


def test_same_code_at_two_desks_checks_in_once(db: Session, tenant: Tenant) -> None:
    start = utcnow() + timedelta(minutes=20)
    g = service.create_gathering(
        db,
        workspace_id=tenant.workspace_id,
        data=GatheringIn(title="签到", city="杭州", address="x", starts_at=start, ends_at=start + timedelta(hours=1)),
    )
    service.publish_gathering(db, workspace_id=tenant.workspace_id, gathering_id=g.id)
    (cid,) = people(db, tenant, 1)
    code = service.register(db, workspace_id=tenant.workspace_id, gathering_id=g.id, customer_id=cid).registration.code
    db.commit()
    ws, gid = tenant.workspace_id, g.id
    results = _race([lambda s: service.check_in(s, workspace_id=ws, gathering_id=gid, code=code) for _ in range(6)])
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 1
    assert {getattr(r, "code", "") for r in results if isinstance(r, Exception)} == {"already_checked_in"}
