"""Flash sales on both engines (SQL on SQLite/PostgreSQL, Redis script when configured): outcomes, replays,
expiry, payment, the stream writer, pre-registration, isolation and roles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.models import Customer
from shequn.core.clock import utcnow
from shequn.core.settings import get_settings
from shequn.promotions.flash import claims, consumer, redis_store, service
from shequn.promotions.flash.errors import ReservationExpired
from shequn.promotions.flash.models import FlashCustomerCount, FlashReservation, FlashSale
from shequn.promotions.flash.schemas import SaleIn
from tests.conftest import REDIS_URL, REQUIRE_SERVICES, Tenant


def use_redis(url: str) -> None:
    """Switch this process to the Redis engine on an empty Redis db."""
    os.environ["SHEQUN_REDIS_URL"] = url
    get_settings.cache_clear()
    redis_store.client(url).flushdb()


def no_redis() -> None:
    """Back to the embedded SQL engine."""
    os.environ.pop("SHEQUN_REDIS_URL", None)
    get_settings.cache_clear()


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
def engine(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """The claim engine under test: the embedded SQL one, or the Redis script (when a test Redis is set)."""
    claims.clear_caches()
    if request.param == "redis":
        if not REDIS_URL:
            if REQUIRE_SERVICES:
                pytest.fail("SHEQUN_REQUIRE_SERVICES=1 but SHEQUN_TEST_REDIS_URL is not set")
            pytest.skip("SHEQUN_TEST_REDIS_URL not set")
        use_redis(REDIS_URL)
    try:
        yield request.param
    finally:
        no_redis()
        claims.clear_caches()


def customers(db: Session, tenant: Tenant, n: int, prefix: str = "抢购客") -> list[int]:
    """n customers of the tenant."""
    rows = [
        Customer(workspace_id=tenant.workspace_id, name=f"{prefix}{i}", phone_masked="138****0000") for i in range(n)
    ]
    db.add_all(rows)
    db.commit()
    return [c.id for c in rows]


def member_token(db: Session, workspace_id: int, customer_id: int) -> str:
    """A member session token for a customer."""
    ticket, _ = audience_service.issue_member_ticket(db, workspace_id=workspace_id, customer_id=customer_id)
    token = audience_service.redeem_member_ticket(db, workspace_id=workspace_id, ticket=ticket, device_id="dev-t")
    db.commit()
    return token


def make_sale(
    db: Session,
    workspace_id: int,
    *,
    stock: int = 5,
    limit: int = 2,
    starts: datetime | None = None,
    minutes: int = 60,
    ttl: int = 15,
    publish: bool = True,
) -> int:
    """A published sale that is live now unless told otherwise."""
    start = starts or utcnow() - timedelta(minutes=1)
    sale = service.create_sale(
        db,
        workspace_id=workspace_id,
        data=SaleIn(
            title="明前龙井 秒杀",
            sku="TEA-001",
            flash_price=9900,
            original_price=19900,
            stock=stock,
            per_customer_limit=limit,
            starts_at=start,
            ends_at=start + timedelta(minutes=minutes),
            reservation_ttl_min=ttl,
        ),
    )
    if publish:
        service.publish_sale(db, workspace_id=workspace_id, sale_id=sale.id)
    db.commit()
    return sale.id


def settle(engine: str) -> None:
    """Let the Redis engine's stream writer catch up (the SQL engine is durable at once)."""
    if engine == "redis":
        consumer.drain()


def claim(db: Session, ws: int, sale_id: int, cid: int, **kw: Any) -> claims.ClaimResult:
    """One claim as a request would make it (its own unit of work)."""
    result = service.claim(db, workspace_id=ws, sale_id=sale_id, customer_id=cid, **kw)
    db.commit()
    return result


def test_outcomes_window_limit_stock_and_replay(db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    a, b, c = customers(db, tenant, 3)
    start = utcnow() + timedelta(minutes=10)
    sid = make_sale(db, ws, stock=3, limit=2, starts=start, minutes=30)
    assert claim(db, ws, sid, a, now=start - timedelta(seconds=1)).outcome == "not_started"
    t = start + timedelta(seconds=1)
    first = claim(db, ws, sid, a, idem_key="k1", now=t)
    assert first.outcome == "ok" and first.reservation is not None and not first.replay
    again = claim(db, ws, sid, a, idem_key="k1", now=t)
    assert again.replay and again.reservation is not None and again.reservation.ref == first.reservation.ref
    assert claim(db, ws, sid, a, idem_key="k2", now=t).outcome == "ok"
    assert claim(db, ws, sid, a, idem_key="k3", now=t).outcome == "limit_reached"
    # A replay of an earlier key still answers with its reservation even at the limit.
    assert claim(db, ws, sid, a, idem_key="k1", now=t).reservation.ref == first.reservation.ref  # type: ignore[union-attr]
    assert claim(db, ws, sid, b, now=t).outcome == "ok"
    assert claim(db, ws, sid, c, now=t).outcome == "sold_out"
    assert claim(db, ws, sid, c, now=start + timedelta(minutes=31)).outcome == "ended"
    settle(engine)
    db.expire_all()
    sale = db.get(FlashSale, sid)
    assert sale is not None and sale.sold == 3
    check = service.oversell_check(db, sale)
    assert check.ok and check.reserved == 3
    if engine == "redis":
        assert check.redis_left == 0
        service.sync_outcomes(db, sale)
        db.commit()
    totals = service.outcome_totals(db, sale_id=sid)
    assert totals["ok"] == 3 and totals["sold_out"] == 1 and totals["limit_reached"] == 1
    assert totals["not_started"] == 1 and totals["ended"] == 1


def test_expired_reservation_returns_stock_and_cannot_be_paid(db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    a, b = customers(db, tenant, 2)
    sid = make_sale(db, ws, stock=1, limit=1, ttl=1)
    won = claim(db, ws, sid, a)
    assert won.reservation is not None
    assert claim(db, ws, sid, b).outcome == "sold_out"
    settle(engine)
    later = utcnow() + timedelta(minutes=2)
    assert service.expire_due(db, now=later) == 1
    db.commit()
    with pytest.raises(ReservationExpired):
        service.pay_reservation(db, workspace_id=ws, ref=won.reservation.ref)
    db.rollback()
    # The unit went back: someone else can win it, and the first customer may claim again.
    assert claim(db, ws, sid, b).outcome == "ok"
    settle(engine)
    db.expire_all()
    sale = db.get(FlashSale, sid)
    assert sale is not None
    check = service.oversell_check(db, sale)
    assert check.ok and sale.sold == 1 and check.reserved == 1
    assert db.scalar(select(FlashCustomerCount.qty).where(FlashCustomerCount.customer_id == a)) == 0


def test_pay_confirms_once_and_cancel_returns_stock(db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    a, b = customers(db, tenant, 2)
    sid = make_sale(db, ws, stock=2, limit=1)
    ra = claim(db, ws, sid, a).reservation
    rb = claim(db, ws, sid, b).reservation
    assert ra is not None and rb is not None
    paid = service.pay_reservation(db, workspace_id=ws, ref=ra.ref, order_ref="tmall:1001")
    db.commit()
    assert paid.state == "paid"
    assert service.pay_reservation(db, workspace_id=ws, ref=ra.ref).state == "paid"  # retry-safe
    service.cancel_reservation(db, workspace_id=ws, ref=rb.ref, customer_id=b)
    db.commit()
    settle(engine)
    db.expire_all()
    sale = db.get(FlashSale, sid)
    assert sale is not None and sale.sold == 1 and sale.paid_units == 1
    check = service.oversell_check(db, sale)
    assert check.ok and check.paid == 1 and check.reserved == 0
    if engine == "redis":
        assert check.redis_left == 1
        rec = redis_store.read_record(redis_store.client(REDIS_URL), sid, ra.ref)
        assert rec is not None and rec.state == "paid"


def test_member_claim_over_http(client: Any, db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    a, b = customers(db, tenant, 2)
    sid = make_sale(db, ws, stock=1, limit=1)
    ta, tb = member_token(db, ws, a), member_token(db, ws, b)
    url = f"/api/v1/m/flash/{sid}/claim"
    assert client.post(url, json={}).status_code == 401
    r1 = client.post(url, json={"qty": 1}, headers={"Authorization": f"Member {ta}", "Idempotency-Key": "tap-1"})
    assert r1.status_code == 201, r1.text
    ref = r1.json()["reservation"]["ref"]
    r2 = client.post(url, json={"qty": 1}, headers={"Authorization": f"Member {ta}", "Idempotency-Key": "tap-1"})
    assert r2.status_code in (200, 201) and r2.json()["reservation"]["ref"] == ref
    r3 = client.post(url, headers={"Authorization": f"Member {tb}", "Accept-Language": "en"})
    assert r3.status_code == 409 and r3.json()["code"] == "flash_sold_out"
    assert r3.json()["message"] == "Sold out"
    r4 = client.post(url, headers={"Authorization": f"Member {ta}"})
    assert r4.status_code == 409 and r4.json()["code"] == "flash_limit_reached"
    bad = client.post(url, json={"qty": 0}, headers={"Authorization": f"Member {ta}"})
    assert bad.status_code == 422
    stock = client.get(f"/api/v1/m/flash/{sid}/stock", params={"ws": tenant.slug})
    assert stock.status_code == 200 and stock.json()["left"] == 0
    assert "max-age=1" in stock.headers["cache-control"]
    mine = client.get(f"/api/v1/m/flash/reservations/{ref}", headers={"Authorization": f"Member {ta}"})
    assert mine.status_code == 200 and mine.json()["state"] == "reserved"
    assert (
        client.get(f"/api/v1/m/flash/reservations/{ref}", headers={"Authorization": f"Member {tb}"}).status_code == 404
    )
    pay_url = f"/api/v1/flash-sales/reservations/{ref}/pay"
    assert client.post(pay_url, json={}, headers=tenant.headers("viewer")).status_code == 403
    pay = client.post(pay_url, json={"order_ref": "yz:9"}, headers=tenant.headers())
    assert pay.status_code == 200 and pay.json()["state"] == "paid"
    check = client.get(f"/api/v1/flash-sales/{sid}/check", headers=tenant.headers())
    assert check.status_code == 200 and check.json()["ok"] and check.json()["paid"] == 1


def test_operator_api_lifecycle_roles_and_isolation(
    client: Any, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    start = utcnow() + timedelta(hours=1)
    body = {
        "title": "白茶饼 秒杀",
        "sku": "TEA-009",
        "flash_price": 5900,
        "stock": 10,
        "per_customer_limit": 1,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    }
    assert client.post("/api/v1/flash-sales", json=body, headers=tenant.headers("viewer")).status_code == 403
    bad = client.post("/api/v1/flash-sales", json={**body, "ends_at": start.isoformat()}, headers=tenant.headers())
    assert bad.status_code == 422
    created = client.post("/api/v1/flash-sales", json=body, headers=tenant.headers())
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["phase"] == "draft"
    pub = client.post(f"/api/v1/flash-sales/{sid}/publish", headers=tenant.headers())
    assert pub.status_code == 200 and pub.json()["phase"] == "scheduled"
    frozen = client.patch(f"/api/v1/flash-sales/{sid}", json={"stock": 20}, headers=tenant.headers())
    assert frozen.status_code == 409 and frozen.json()["code"] == "flash_not_editable"
    ok = client.patch(f"/api/v1/flash-sales/{sid}", json={"title": "白茶饼 限时秒杀"}, headers=tenant.headers())
    assert ok.status_code == 200
    assert client.post(f"/api/v1/flash-sales/{sid}/cancel", headers=tenant.headers("viewer")).status_code == 403
    # Workspace B sees nothing of A's sale, and its member cannot claim it.
    assert client.get(f"/api/v1/flash-sales/{sid}", headers=other_tenant.headers()).status_code == 404
    assert client.post(f"/api/v1/flash-sales/{sid}/cancel", headers=other_tenant.headers()).status_code == 404
    assert client.get("/api/v1/flash-sales", headers=other_tenant.headers()).json()["total"] == 0
    assert client.get(f"/api/v1/flash-sales/{sid}/reservations", headers=other_tenant.headers()).status_code == 404
    assert client.get(f"/api/v1/flash-sales/{sid}/check", headers=other_tenant.headers()).status_code == 404
    (cb,) = customers(db, other_tenant, 1)
    tb = member_token(db, other_tenant.workspace_id, cb)
    r = client.post(f"/api/v1/m/flash/{sid}/claim", headers={"Authorization": f"Member {tb}"})
    assert r.status_code == 404
    assert client.get(f"/api/v1/m/flash/{sid}/stock", params={"ws": other_tenant.slug}).status_code == 404
    listed = client.get("/api/v1/flash-sales", headers=tenant.headers("viewer"))
    assert listed.status_code == 200 and listed.json()["total"] == 1


def test_stream_writer_recovers_pending_entries(db: Session, tenant: Tenant, engine: str, monkeypatch: Any) -> None:
    if engine != "redis":
        pytest.skip("the stream exists only on the Redis engine")
    ws = tenant.workspace_id
    ids = customers(db, tenant, 4)
    sid = make_sale(db, ws, stock=10, limit=1)
    for cid in ids:
        assert claim(db, ws, sid, cid).outcome == "ok"
    r = redis_store.client(REDIS_URL)
    consumer.ensure_group(r)
    # A consumer that read the entries and died before writing them: they stay pending under its name.
    got = r.xreadgroup(redis_store.GROUP, "dead-worker", {redis_store.STREAM: ">"}, count=100)
    assert len(got[0][1]) == 4
    monkeypatch.setattr(consumer, "RECLAIM_IDLE_MS", 0)
    assert consumer.drain() == 4
    assert consumer.drain() == 0  # written once: a second pass inserts nothing
    db.expire_all()
    assert db.scalar(select(func.count(FlashReservation.id)).where(FlashReservation.sale_id == sid)) == 4
    assert r.xpending(redis_store.STREAM, redis_store.GROUP)["pending"] == 0
    sale = db.get(FlashSale, sid)
    assert sale is not None and sale.sold == 4 and redis_store.stock_left(r, sid) == 6
    assert consumer.trim_stream() == 3 and r.xlen(redis_store.STREAM) == 1  # acknowledged entries go
    from shequn.promotions.flash import tasks

    tasks.sweep()  # the every-minute job runs clean on a drained stream


def test_preregistration_reminds_once(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a, b = customers(db, tenant, 2)
    start = utcnow() + timedelta(minutes=30)
    sid = make_sale(db, ws, starts=start)
    assert service.preregister(db, workspace_id=ws, sale_id=sid, customer_id=a) is True
    assert service.preregister(db, workspace_id=ws, sale_id=sid, customer_id=a) is False
    service.preregister(db, workspace_id=ws, sale_id=sid, customer_id=b)
    db.commit()
    assert service.send_due_reminders(db, now=start - timedelta(minutes=20)) == 0  # too early
    assert service.send_due_reminders(db, now=start - timedelta(minutes=5)) == 2
    assert service.send_due_reminders(db, now=start - timedelta(minutes=4)) == 0  # once
    db.commit()
    from shequn.core.outbox import OutboxMessage

    kinds = db.scalars(select(OutboxMessage.kind).where(OutboxMessage.workspace_id == ws)).all()
    assert sorted(kinds) == ["flash.reminder", "flash.reminder"]


def test_redis_restart_reloads_stock_and_holdings(db: Session, tenant: Tenant, engine: str) -> None:
    if engine != "redis":
        pytest.skip("Redis engine only")
    ws = tenant.workspace_id
    a, b, c = customers(db, tenant, 3)
    sid = make_sale(db, ws, stock=3, limit=1)
    assert claim(db, ws, sid, a).outcome == "ok"
    consumer.drain()
    r = redis_store.client(REDIS_URL)
    r.flushdb()  # Redis lost its data (restart without persistence): the next claim reloads from the database
    assert claim(db, ws, sid, a).outcome == "limit_reached"  # a's holding came back
    assert claim(db, ws, sid, b).outcome == "ok"
    assert claim(db, ws, sid, c).outcome == "ok"
    assert claim(db, ws, sid, c).outcome == "limit_reached"
    (d,) = customers(db, tenant, 1, "后来")
    assert claim(db, ws, sid, d).outcome == "sold_out"
    consumer.drain()
    db.expire_all()
    sale = db.get(FlashSale, sid)
    assert sale is not None and sale.sold == 3 and redis_store.stock_left(r, sid) == 0
