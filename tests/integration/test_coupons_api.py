"""Coupons through the operator API: redemption (API and imported orders), reversal, replay, roles, isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.commerce.models import Order
from shequn.core.clock import utcnow
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.campaigns.schemas import CampaignIn
from shequn.promotions.coupons import service
from shequn.promotions.coupons.models import CouponCode, CouponGrant, CouponTemplate
from tests.conftest import Tenant
from tests.integration.test_coupons import people


def tpl_body(**extra: Any) -> dict[str, Any]:
    now = utcnow()
    body: dict[str, Any] = {
        "name": "满199减30",
        "kind": "threshold",
        "amount_fen": 3000,
        "min_order_fen": 19900,
        "starts_at": (now - timedelta(days=300)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
    }
    body.update(extra)
    return body


def make(client: Any, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    r = client.post("/api/v1/coupons/templates", json=tpl_body(**extra), headers=tenant.headers("operator"))
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = client.post(f"/api/v1/coupons/templates/{tid}/status", json={"status": "active"}, headers=tenant.headers())
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_create_validates_fields_by_name(client: Any, tenant: Tenant) -> None:
    r = client.post("/api/v1/coupons/templates", json=tpl_body(min_order_fen=1000), headers=tenant.headers("operator"))
    assert r.status_code == 422 and r.json()["code"] == "coupon_invalid"
    assert "min_order_fen" in r.text
    r = client.post("/api/v1/coupons/templates", json=tpl_body(kind="percent"), headers=tenant.headers("operator"))
    assert r.status_code == 422 and "percent_off" in r.text


def test_campaign_link_must_be_a_campaign_of_this_workspace(
    client: Any, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = campaigns_service.create_campaign(
        db,
        workspace_id=other_tenant.workspace_id,
        data=CampaignIn(name="别家活动", starts_at=utcnow(), ends_at=utcnow() + timedelta(days=3)),
    )
    db.commit()
    for campaign_id in (theirs.id, 999_999):  # another brand's campaign, or none at all (was a 500)
        r = client.post("/api/v1/coupons/templates", json=tpl_body(campaign_id=campaign_id), headers=tenant.headers())
        assert r.status_code == 422 and r.json()["code"] == "coupon_invalid", r.text
        assert "campaign_id" in r.text
    t = make(client, tenant)
    r = client.patch(f"/api/v1/coupons/templates/{t['id']}", json={"campaign_id": theirs.id}, headers=tenant.headers())
    assert r.status_code == 422 and "campaign_id" in r.text
    assert client.get(f"/api/v1/coupons/templates/{t['id']}", headers=tenant.headers()).json()["campaign_id"] is None


def test_redeem_by_api_checks_threshold_and_replays(client: Any, db: Session, tenant: Tenant) -> None:
    t = make(client, tenant)
    (cid,) = people(db, tenant, 1)
    r = client.post(
        f"/api/v1/coupons/templates/{t['id']}/grants",
        json={"customer_id": cid, "source_ref": "crm-1"},
        headers=tenant.headers("operator"),
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    low = {"order_ref": "SO-1", "amount_fen": 15000, "grant_ids": [gid]}
    r = client.post("/api/v1/coupons/redeem", json=low, headers=tenant.headers("operator"))
    assert r.status_code == 409 and r.json()["code"] == "coupon_not_applicable"
    ok = {"order_ref": "SO-2", "amount_fen": 25000, "grant_ids": [gid], "customer_id": cid}
    h = tenant.headers("operator", **{"Idempotency-Key": "redeem-so-2"})
    first = client.post("/api/v1/coupons/redeem", json=ok, headers=h)
    assert first.status_code == 200, first.text
    assert first.json()["discount_fen"] == 3000
    again = client.post("/api/v1/coupons/redeem", json=ok, headers=h)
    assert again.status_code == 200 and again.json() == first.json()
    # Same order without the key is still retry-safe; another order cannot use the spent coupon.
    assert client.post("/api/v1/coupons/redeem", json=ok, headers=tenant.headers()).json()["discount_fen"] == 3000
    other = {**ok, "order_ref": "SO-3"}
    r = client.post("/api/v1/coupons/redeem", json=other, headers=tenant.headers())
    assert r.status_code == 409 and r.json()["code"] == "coupon_not_usable"
    res = client.get(f"/api/v1/coupons/templates/{t['id']}/results", headers=tenant.headers("viewer")).json()
    assert res["redeemed"] == 1 and res["discount_fen"] == 3000 and res["gmv_fen"] == 25000
    tpl = db.get(CouponTemplate, t["id"])
    assert tpl is not None and tpl.committed_fen == 3000 and tpl.redeemed_count == 1
    # A refund reverses it: the coupon is open again and the committed value is its face again.
    r = client.post("/api/v1/coupons/reverse", json={"order_ref": "SO-2"}, headers=tenant.headers())
    assert r.json() == {"reversed": 1}
    db.expire_all()
    g = db.get(CouponGrant, gid)
    assert g is not None and g.state == "issued" and g.order_ref is None


def test_viewer_cannot_write_and_workspaces_are_isolated(
    client: Any, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    r = client.post("/api/v1/coupons/templates", json=tpl_body(), headers=tenant.headers("viewer"))
    assert r.status_code == 403
    t = make(client, tenant)
    (cid,) = people(db, tenant, 1)
    gid = client.post(
        f"/api/v1/coupons/templates/{t['id']}/grants",
        json={"customer_id": cid, "source_ref": "x"},
        headers=tenant.headers(),
    ).json()["id"]
    assert client.get(f"/api/v1/coupons/templates/{t['id']}", headers=other_tenant.headers()).status_code == 404
    r = client.patch(f"/api/v1/coupons/templates/{t['id']}", json={"name": "hijack"}, headers=other_tenant.headers())
    assert r.status_code == 404
    body = {"order_ref": "B-1", "amount_fen": 50000, "grant_ids": [gid]}
    assert client.post("/api/v1/coupons/redeem", json=body, headers=other_tenant.headers()).status_code == 404
    assert client.get("/api/v1/coupons/templates", headers=other_tenant.headers()).json()["total"] == 0
    r = client.get(f"/api/v1/coupons/templates/{t['id']}/codes.csv", headers=tenant.headers("viewer"))
    assert r.status_code == 403


def order(oid: str, status: str, **extra: Any) -> dict[str, Any]:
    body = {
        "source": "api",
        "shop_id": "main",
        "source_order_id": oid,
        "status": status,
        "subtotal": 26000,
        "discount": 3000,
        "total": 23000,
        "created_at": (utcnow() - timedelta(days=1)).isoformat(),
        "updated_at": extra.pop("updated_at", (utcnow() - timedelta(days=1)).isoformat()),
        "line_items": [{"sku": "TEA-1", "title": "龙井", "quantity": 1, "unit_price": 26000, "category": "绿茶"}],
        "customer": {"identities": [{"source": "api", "kind": "customer_id", "value": "c-9"}], "name": "王小明"},
    }
    body.update(extra)
    return body


def test_imported_order_redeems_public_and_unique_codes_and_refund_reverses(
    client: Any, db: Session, tenant: Tenant
) -> None:
    pub = make(client, tenant, code_mode="public", public_code="TEA30", stackable=True)
    uniq = make(
        client,
        tenant,
        name="八折",
        kind="percent",
        percent_off=20,
        max_discount_fen=2000,
        min_order_fen=0,
        amount_fen=0,
        code_mode="unique",
        stackable=True,
    )
    r = client.post(f"/api/v1/coupons/templates/{uniq['id']}/codes", json={"count": 5}, headers=tenant.headers())
    assert r.json() == {"generated": 5}
    # A first order creates the customer; they then claim both coupons.
    assert client.post("/api/v1/orders", json=order("P0", "paid"), headers=tenant.headers()).status_code == 200
    cid = db.scalar(select(Order.customer_id).where(Order.source_order_id == "P0"))
    assert cid is not None
    ws = tenant.workspace_id
    service.claim_by_code(db, workspace_id=ws, code="tea30", customer_id=cid)
    code = db.scalar(select(CouponCode.code).where(CouponCode.template_id == uniq["id"]).limit(1))
    assert code is not None
    service.claim_by_code(db, workspace_id=ws, code=code.lower(), customer_id=cid)
    db.commit()
    paid = order("P1", "paid", discount_codes=[{"code": "tea30", "amount": 3000}], attribution={"coupon_code": code})
    assert client.post("/api/v1/orders", json=paid, headers=tenant.headers()).status_code == 200
    db.expire_all()
    grants = list(db.scalars(select(CouponGrant).where(CouponGrant.customer_id == cid).order_by(CouponGrant.id)))
    assert [g.state for g in grants] == ["redeemed", "redeemed"]
    assert grants[0].discount_fen == 3000 and grants[0].order_ref == "api:P1"
    assert grants[1].discount_fen == 2000  # 20 % of the goods, capped at ¥20
    # Re-importing the same order (shipped) matches nothing twice.
    shipped = {**paid, "status": "shipped", "updated_at": utcnow().isoformat()}
    assert client.post("/api/v1/orders", json=shipped, headers=tenant.headers()).status_code == 200
    db.expire_all()
    assert db.get(CouponTemplate, pub["id"]).redeemed_count == 1  # type: ignore[union-attr]
    refunded = {
        **paid,
        "status": "refunded",
        "refunded": 23000,
        "updated_at": (utcnow() + timedelta(minutes=1)).isoformat(),
    }
    assert client.post("/api/v1/orders", json=refunded, headers=tenant.headers()).status_code == 200
    db.expire_all()
    grants = list(db.scalars(select(CouponGrant).where(CouponGrant.customer_id == cid).order_by(CouponGrant.id)))
    assert [g.state for g in grants] == ["issued", "issued"]
    tpl = db.get(CouponTemplate, pub["id"])
    assert tpl is not None and tpl.redeemed_count == 0 and tpl.discount_fen == 0
