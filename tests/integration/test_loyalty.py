"""Loyalty points ledger: exactly-once movements, never below zero (also under thread races), operator API,
roles and workspace isolation, and a hypothesis property (balance = sum of deltas, never negative)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from shequn.audience.models import Customer
from shequn.core.db import new_session
from shequn.loyalty import service
from shequn.loyalty.errors import BadPointsAmount, InsufficientPoints
from tests.conftest import Tenant

API = "/api/v1"


def customers(db: Session, workspace_id: int, n: int, prefix: str = "积分") -> list[int]:
    """n customers of a workspace."""
    rows = [Customer(workspace_id=workspace_id, name=f"{prefix}{i}", phone_masked=f"139****{i:04d}") for i in range(n)]
    db.add_all(rows)
    db.commit()
    return [c.id for c in rows]


def test_award_and_spend_happen_once_per_reason_and_ref(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    (cid,) = customers(db, ws, 1)
    assert service.get_balance(db, workspace_id=ws, customer_id=cid) == 0
    assert service.award_points(db, workspace_id=ws, customer_id=cid, points=100, reason="order", ref="o1") == 100
    assert service.award_points(db, workspace_id=ws, customer_id=cid, points=100, reason="order", ref="o1") == 100
    assert service.spend_points(db, workspace_id=ws, customer_id=cid, points=30, reason="lottery_draw", ref="d1") == 70
    assert service.spend_points(db, workspace_id=ws, customer_id=cid, points=30, reason="lottery_draw", ref="d1") == 70
    db.commit()
    with pytest.raises(InsufficientPoints):
        service.spend_points(db, workspace_id=ws, customer_id=cid, points=71, reason="lottery_draw", ref="d2")
    db.rollback()
    with pytest.raises(BadPointsAmount):
        service.award_points(db, workspace_id=ws, customer_id=cid, points=0, reason="order", ref="o2")
    rows, total = service.list_entries(db, workspace_id=ws, customer_id=cid)
    assert total == 2
    assert [(r.delta, r.balance_after) for r in rows] == [(-30, 70), (100, 100)]
    assert service.get_totals(db, workspace_id=ws, customer_id=cid) == (70, 100, 30)


def test_concurrent_spends_never_go_below_zero_and_retries_spend_once(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    (cid,) = customers(db, ws, 1)
    service.award_points(db, workspace_id=ws, customer_id=cid, points=50, reason="adjust", ref="seed")
    db.commit()
    # 10 distinct spends of 10 (only 5 fit) plus 6 retries of one same spend key (counts once).
    refs = [f"s{i}" for i in range(10)] + ["same"] * 6
    barrier = threading.Barrier(len(refs))

    def spend(ref: str) -> str:
        session = new_session()
        try:
            barrier.wait()
            service.spend_points(session, workspace_id=ws, customer_id=cid, points=10, reason="lottery_draw", ref=ref)
            session.commit()
            return "ok"
        except InsufficientPoints:
            session.rollback()
            return "insufficient"
        finally:
            session.close()

    with ThreadPoolExecutor(max_workers=len(refs)) as pool:
        results = list(pool.map(spend, refs))
    db.expire_all()
    rows, total = service.list_entries(db, workspace_id=ws, customer_id=cid, limit=100)
    spends = [r for r in rows if r.delta < 0]
    assert len(spends) == 5 and total == 6
    assert service.get_balance(db, workspace_id=ws, customer_id=cid) == 0
    assert sum(r.delta for r in rows) == 0
    assert results.count("insufficient") >= 5
    assert sorted(r.balance_after for r in spends) == [0, 10, 20, 30, 40]


def test_points_api_adjust_audit_roles_and_isolation(
    client: Any, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    (cid,) = customers(db, tenant.workspace_id, 1)
    (other,) = customers(db, other_tenant.workspace_id, 1)
    body = {"customer_id": cid, "delta": 40, "note": "补发", "ref": "ticket-1"}
    r = client.post(f"{API}/points/adjust", json=body, headers=tenant.headers("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == 40 and r.json()["created"] is True
    again = client.post(f"{API}/points/adjust", json=body, headers=tenant.headers("operator"))
    assert again.json()["balance"] == 40 and again.json()["created"] is False
    r = client.post(f"{API}/points/adjust", json={"customer_id": cid, "delta": -41}, headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "points_insufficient"
    r = client.post(f"{API}/points/adjust", json={"customer_id": cid, "delta": 0}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "delta"
    # A viewer reads but cannot write.
    assert client.post(f"{API}/points/adjust", json=body, headers=tenant.headers("viewer")).status_code == 403
    got = client.get(f"{API}/customers/{cid}/points", headers=tenant.headers("viewer")).json()
    assert got["balance"] == 40 and got["entries"][0]["note"] == "补发" and got["entries_total"] == 1
    # Workspace B can neither read nor change A's customer's points.
    assert client.get(f"{API}/customers/{cid}/points", headers=other_tenant.headers()).status_code == 404
    r = client.post(f"{API}/points/adjust", json={"customer_id": cid, "delta": 5}, headers=other_tenant.headers())
    assert r.status_code == 404
    assert client.get(f"{API}/customers/{other}/points", headers=other_tenant.headers()).json()["balance"] == 0
    audit = client.get(f"{API}/audit", headers=tenant.headers()).json()
    assert [a["action"] for a in audit["items"]].count("points.adjust") == 1


MOVES = st.lists(st.tuples(st.integers(-60, 60).filter(lambda d: d != 0), st.integers(0, 8)), min_size=1, max_size=30)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(moves=MOVES)
def test_balance_is_the_sum_of_deltas_and_never_negative(
    db: Session, tenant: Tenant, moves: list[tuple[int, int]]
) -> None:
    ws = tenant.workspace_id
    (cid,) = customers(db, ws, 1, prefix="h")
    expected, seen = 0, set()
    for delta, ref in moves:
        key = ("in" if delta > 0 else "out", ref)
        try:
            if delta > 0:
                service.award_points(db, workspace_id=ws, customer_id=cid, points=delta, reason="t_in", ref=str(ref))
            else:
                service.spend_points(db, workspace_id=ws, customer_id=cid, points=-delta, reason="t_out", ref=str(ref))
            db.commit()
            if key not in seen:
                expected += delta
                seen.add(key)
        except InsufficientPoints:
            db.rollback()
            assert key not in seen and expected + delta < 0
        balance = service.get_balance(db, workspace_id=ws, customer_id=cid)
        assert balance == expected >= 0
    rows, _ = service.list_entries(db, workspace_id=ws, customer_id=cid, limit=1000)
    assert sum(r.delta for r in rows) == expected
    running = 0
    for r in reversed(rows):
        running += r.delta
        assert r.balance_after == running >= 0
