"""Joins under concurrency (threads with their own sessions, SQLite and PostgreSQL): capacity holds, one row,
one history entry and one member_joined signal per member, counts stay exact."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.models import CommunityMember, CommunityMemberChange
from shequn.core import signals
from shequn.core.db import new_session
from shequn.core.errors import ShequnError
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_community, make_customers

THREADS = 10


def _race(calls: list[Callable[[Session], Any]]) -> list[Any]:
    """Run each call in its own thread and session, released together; returns status or error code."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[Session], Any]) -> Any:
        session = new_session()
        try:
            barrier.wait()
            out = call(session)
            session.commit()
            return out
        except ShequnError as exc:
            session.rollback()
            return exc.code
        finally:
            session.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _join(ws: int, community_id: int, customer_id: int) -> Callable[[Session], str]:
    def call(session: Session) -> str:
        member = community_service.join_community(
            session, workspace_id=ws, community_id=community_id, customer_id=customer_id, source="h5"
        )
        return member.status

    return call


def test_concurrent_joins_never_exceed_capacity(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws, capacity=4)
    people = make_customers(db, ws, THREADS)
    db.commit()
    results = _race([_join(ws, c.id, p) for p in people])
    assert sorted(results) == ["active"] * 4 + ["community_full"] * (THREADS - 4)
    db.expire_all()
    seated = db.scalar(
        select(func.count()).where(CommunityMember.community_id == c.id, CommunityMember.status == "active")
    )
    rows = db.scalar(select(func.count()).where(CommunityMember.community_id == c.id))
    assert seated == 4 and rows == 4  # a refused join leaves no row behind
    assert community_service.get_community(db, workspace_id=ws, community_id=c.id).members_count == 4


def test_the_same_customer_joining_at_once_is_one_member_one_signal(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = make_community(db, ws)
    (p,) = make_customers(db, ws, 1)
    db.commit()
    got: list[signals.Signal] = []
    lock = threading.Lock()

    def receiver(signal: signals.Signal) -> None:
        with lock:
            got.append(signal)

    signals.connect(community_service.MEMBER_JOINED, receiver)
    try:
        results = _race([_join(ws, c.id, p) for _ in range(6)])
    finally:
        signals.disconnect(community_service.MEMBER_JOINED, receiver)
    assert results == ["active"] * 6
    db.expire_all()
    assert db.scalar(select(func.count()).where(CommunityMember.community_id == c.id)) == 1
    assert db.scalar(select(func.count()).where(CommunityMemberChange.community_id == c.id)) == 1
    assert len(got) == 1
    assert community_service.get_community(db, workspace_id=ws, community_id=c.id).members_count == 1
