"""Flash sales with their neighbours: the guard (blacklist, rate limit) on both claim paths, imported paid
orders paying reservations, the campaign summary and the demo layer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.commerce.models import Order
from shequn.identity.service import Actor
from shequn.promotions.common import demo_steps, summarize_campaign
from shequn.promotions.flash import service
from shequn.promotions.flash.models import FlashReservation
from shequn.promotions.guard import service as guard_service
from tests.conftest import Tenant
from tests.integration import test_flash
from tests.integration.test_console import push_order
from tests.integration.test_flash import claim, customers, make_sale, member_token, settle

engine = test_flash.engine  # the claim-engine fixture (SQL, or Redis when a test Redis is set)


def test_blocked_member_is_refused_on_both_paths(client: Any, db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    bad, good = customers(db, tenant, 2)
    sid = make_sale(db, ws, stock=5, limit=1)
    guard_service.add_block(db, Actor(workspace_id=ws, role="owner"), kind="customer", value=str(bad), reason="刷单")
    db.commit()
    r = client.post(f"/api/v1/m/flash/{sid}/claim", headers={"Authorization": f"Member {member_token(db, ws, bad)}"})
    assert r.status_code == 403 and r.json()["code"] == "guard_blocked"
    ok = client.post(f"/api/v1/m/flash/{sid}/claim", headers={"Authorization": f"Member {member_token(db, ws, good)}"})
    assert ok.status_code == 201
    settle(engine)
    sale = service.get_sale(db, workspace_id=ws, sale_id=sid)
    service.sync_outcomes(db, sale)
    db.commit()
    assert service.outcome_totals(db, sale_id=sid).get("blocked") == 1


def test_rapid_claims_are_rate_limited(client: Any, db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    (cid,) = customers(db, tenant, 1)
    sid = make_sale(db, ws, stock=5, limit=1)
    owner = Actor(workspace_id=ws, role="owner")
    guard_service.set_override(db, owner, action="flash.claim", rule="customer", limit=3, window_ms=60_000)
    db.commit()
    headers = {"Authorization": f"Member {member_token(db, ws, cid)}"}
    codes = [client.post(f"/api/v1/m/flash/{sid}/claim", headers=headers).status_code for _ in range(3)]
    assert codes == [201, 409, 409]
    limited = client.post(f"/api/v1/m/flash/{sid}/claim", headers=headers)
    assert limited.status_code == 429 and limited.json()["details"]["retry_after"] >= 1
    assert "retry-after" in limited.headers


def test_imported_paid_order_pays_the_reservation(client: Any, db: Session, tenant: Tenant, engine: str) -> None:
    ws = tenant.workspace_id
    push_order(client, tenant, order_id="T-0001", status="pending_payment")
    buyer = db.scalar(select(Order.customer_id).where(Order.source_order_id == "T-0001"))
    assert buyer is not None
    sid = make_sale(db, ws, stock=3, limit=1)  # SKU TEA-001
    won = claim(db, ws, sid, buyer)
    assert won.reservation is not None
    settle(engine)
    line = {"sku": "TEA-001", "title": "明前龙井 秒杀", "quantity": 1, "unit_price": 9900}
    push_order(client, tenant, order_id="T-0002", total=9900, subtotal=9900, line_items=[line])
    db.expire_all()
    row = db.scalar(select(FlashReservation).where(FlashReservation.ref == won.reservation.ref))
    assert row is not None and row.state == "paid" and row.order_ref == "api:T-0002"


def test_paid_orders_pay_only_their_buyers_matching_reservations(
    client: Any, db: Session, tenant: Tenant, engine: str
) -> None:
    ws = tenant.workspace_id
    b_id = {"source": "api", "kind": "customer_id", "value": "b-2"}
    other = {"name": "李四", "phone": "13900001111", "identities": [b_id]}
    push_order(client, tenant, order_id="A-0", status="pending_payment")
    push_order(client, tenant, order_id="B-0", status="pending_payment", customer=other, phone="13900001111")
    a, b = (db.scalar(select(Order.customer_id).where(Order.source_order_id == k)) for k in ("A-0", "B-0"))
    assert a is not None and b is not None and a != b
    sid = make_sale(db, ws, stock=3, limit=1)  # SKU TEA-001
    won_a, won_b = claim(db, ws, sid, a), claim(db, ws, sid, b)
    assert won_a.reservation is not None and won_b.reservation is not None
    settle(engine)
    sale_line = {"sku": "TEA-001", "title": "明前龙井 秒杀", "quantity": 1, "unit_price": 9900}
    push_order(client, tenant, order_id="A-1", total=9900, subtotal=9900, line_items=[sale_line])
    push_order(client, tenant, order_id="B-1", customer=other, phone="13900001111")  # another SKU
    ids = list(db.scalars(select(Order.id).where(Order.source_order_id.in_(["A-1", "B-1"]))))
    assert service.match_paid_orders(db, workspace_id=ws, order_ids=ids) == 0  # A's is paid, B's has no match
    db.expire_all()
    states = dict(db.execute(select(FlashReservation.customer_id, FlashReservation.state)).tuples().all())
    assert states == {a: "paid", b: "reserved"}
    push_order(client, tenant, order_id="B-2", customer=other, phone="13900001111", line_items=[sale_line])
    db.expire_all()
    refs = dict(db.execute(select(FlashReservation.customer_id, FlashReservation.order_ref)).tuples().all())
    assert refs == {a: "api:A-1", b: "api:B-2"}


def test_campaign_summary_and_demo_layer(db: Session, tenant: Tenant) -> None:
    from datetime import timedelta

    from shequn.core.clock import utcnow
    from shequn.promotions.campaigns.models import Campaign

    now = utcnow()
    camp = Campaign(workspace_id=tenant.workspace_id, name="双十一", starts_at=now, ends_at=now + timedelta(days=3))
    db.add(camp)
    db.commit()
    (a,) = customers(db, tenant, 1)
    steps = dict(demo_steps())
    counts = steps["flash_sale"](db, workspace_id=tenant.workspace_id, campaign_id=camp.id)
    db.commit()
    assert counts["flash_sales"] == 1 and counts["flash_claims"] == 1
    assert steps["flash_sale"](db, workspace_id=tenant.workspace_id, campaign_id=camp.id)["flash_sales"] == 0
    rows = [
        s
        for s in summarize_campaign(db, workspace_id=tenant.workspace_id, campaign_id=camp.id)
        if s.kind == "flash_sale"
    ]
    assert len(rows) == 1 and rows[0].wins == 1 and rows[0].redemptions == 1 and rows[0].status == "live"
    assert rows[0].console_url.startswith("/flash-sales/") and a
