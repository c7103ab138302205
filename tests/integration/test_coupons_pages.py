"""Coupon pages: console (list, form, detail with results, codes, export, fan-out progress, roles, isolation) and
member H5 + member API (claim, replayed key, code entry, guessing limited, my coupons)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.fmt import zone
from shequn.promotions.coupons import service
from shequn.promotions.coupons.models import CouponCode, CouponGrant, CouponTemplate
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login
from tests.integration.test_coupons import people, template
from tests.integration.test_coupons_fanout import segment
from tests.integration.test_gatherings_member import sign_in

MAPI = "/api/v1/m/coupons"


def _local(minutes: int) -> str:
    return (utcnow() + timedelta(minutes=minutes)).astimezone(zone("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def _form(csrf: str, **extra: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "name": "春茶 <b>满减</b>",
        "kind": "threshold",
        "amount": "30",
        "min_order": "199",
        "scope": "all",
        "validity": "fixed",
        "code_mode": "unique",
        "starts_at": _local(-60),
        "ends_at": _local(60 * 24 * 7),
        "per_customer_limit": "1",
        "total_stock": "100",
        "budget": "3000",
        **extra,
    }


def test_console_create_activate_codes_export_and_fanout(client: Any, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    assert client.get("/coupons").status_code == 200
    assert 'name="starts_at"' in client.get("/coupons/new").text
    bad = client.post("/coupons/new", data=_form(csrf, min_order="20"))
    assert bad.status_code == 422 and 'data-error-for="min_order"' in bad.text
    r = client.post("/coupons/new", data=_form(csrf), follow_redirects=False)
    assert r.status_code == 303, r.text
    match = re.match(r"/coupons/(\d+)\?done=created", r.headers["location"])
    assert match
    tid = int(match.group(1))
    tpl = db.get(CouponTemplate, tid)
    assert tpl is not None and tpl.amount_fen == 3000 and tpl.min_order_fen == 19900 and tpl.budget_fen == 300000
    page = client.get(f"/coupons/{tid}")
    assert "春茶 &lt;b&gt;满减&lt;/b&gt;" in page.text and "<b>满减</b>" not in page.text
    assert client.post(f"/coupons/{tid}/status", data={"csrf": csrf, "status": "active"}).status_code == 200
    r = client.post(f"/coupons/{tid}/codes", data={"csrf": csrf, "count": "20"})
    assert r.status_code == 200 and "20" in r.text
    code = db.scalar(select(CouponCode.code).where(CouponCode.template_id == tid).limit(1))
    assert code is not None
    (cid, *others) = people(db, tenant, 4)
    db.expire_all()
    service.claim_by_code(db, workspace_id=tenant.workspace_id, code=code, customer_id=cid)
    db.commit()
    csv_text = client.get(f"/coupons/{tid}/codes.csv").text
    assert csv_text.count("\n") == 21 and code not in csv_text and f"{code[:2]}******{code[-2:]}" in csv_text
    sid = segment(db, tenant, [cid, *others])
    r = client.post(f"/coupons/{tid}/fanout", data={"csrf": csrf, "segment_id": str(sid)}, follow_redirects=True)
    assert r.status_code == 200 and 'data-status="succeeded"' in r.text
    assert 'data-count="issued">3<' in r.text and 'data-count="already_held">1<' in r.text
    listing = client.get("/coupons").text
    assert f'data-coupon="{tid}"' in listing
    detail = client.get(f"/coupons/{tid}").text
    assert 'id="fig-issued">4<' in detail and "<svg" in detail


def test_console_roles_and_isolation(client: Any, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    mine = template(db, tenant, name="本品牌券")
    theirs = template(db, other_tenant, name="别家券")
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    listing = client.get("/coupons")
    assert "本品牌券" in listing.text and "别家券" not in listing.text and 'id="new-coupon"' not in listing.text
    assert client.get(f"/coupons/{theirs}").status_code == 404
    assert client.get("/coupons/new").status_code == 403
    assert client.post(f"/coupons/{mine}/status", data={"csrf": csrf, "status": "ended"}).status_code == 403
    assert client.get(f"/coupons/{mine}/codes.csv").status_code == 403
    db.expire_all()
    assert db.get(CouponTemplate, mine).status == "active"  # type: ignore[union-attr]


def test_member_claims_with_a_replayed_key_and_sees_my_coupons(client: Any, db: Session, tenant: Tenant) -> None:
    tid = template(db, tenant, name="新客 <i>券</i>", per_customer_limit=2, total_stock=10)
    (cid,) = people(db, tenant, 1)
    page = client.get(f"/m/{tenant.slug}/coupons")
    assert page.status_code == 200 and "data-signin" in page.text and "&lt;i&gt;" in page.text
    # The member tab bar leads here from every member page, marked current on this one.
    assert f'<a href="/m/{tenant.slug}/coupons" aria-current="page">领券</a>' in page.text
    home = client.get(f"/m/{tenant.slug}/g").text
    assert f'<a href="/m/{tenant.slug}/coupons" >领券</a>' in home
    assert client.post(f"{MAPI}/{tid}/claim").status_code == 401
    sign_in(client, tenant, cid)
    assert [o["id"] for o in client.get(MAPI).json()] == [tid]
    h = {"Idempotency-Key": "tap-1"}
    first = client.post(f"{MAPI}/{tid}/claim", headers=h)
    assert first.status_code == 201, first.text
    assert client.post(f"{MAPI}/{tid}/claim", headers=h).json() == first.json()
    second = client.post(f"{MAPI}/{tid}/claim", headers={"Idempotency-Key": "tap-2"})
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    over = client.post(f"{MAPI}/{tid}/claim", headers={"Idempotency-Key": "tap-3"})
    assert over.status_code == 409 and over.json()["code"] == "coupon_limit_reached"
    assert len(client.get(f"{MAPI}/mine").json()) == 2
    page = client.get(f"/m/{tenant.slug}/coupons")
    assert page.text.count("data-grant=") == 2
    db.expire_all()
    assert db.get(CouponTemplate, tid).issued_count == 2  # type: ignore[union-attr]


def test_member_code_entry_and_guessing_is_rate_limited(
    client: Any, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    template(db, tenant, code_mode="public", public_code="SPRING8")
    template(db, other_tenant, code_mode="public", public_code="THEIRS")
    (cid,) = people(db, tenant, 1)
    sign_in(client, tenant, cid)
    ok = client.post(f"{MAPI}/code", json={"code": " spring8 "})
    assert ok.status_code == 201, ok.text
    assert client.post(f"{MAPI}/code", json={"code": "THEIRS"}).json()["code"] == "coupon_code_invalid"
    codes = []
    for i in range(14):
        r = client.post(f"{MAPI}/code", json={"code": f"GUESS{i:03d}"})
        codes.append(r.status_code)
    assert codes[0] == 404 and 429 in codes, codes
    assert db.scalar(select(CouponGrant.id).where(CouponGrant.customer_id == cid).limit(1)) is not None


def test_member_cannot_claim_another_brands_coupon(
    client: Any, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = template(db, other_tenant, name="别家券")
    (cid,) = people(db, tenant, 1)
    sign_in(client, tenant, cid)
    r = client.post(f"{MAPI}/{theirs}/claim", headers={"Idempotency-Key": "x-1"})
    assert r.status_code == 404 and r.json()["code"] == "coupon_template_not_found"
    assert client.get(MAPI).json() == [] and client.get(f"{MAPI}/mine").json() == []
    db.expire_all()
    assert db.get(CouponTemplate, theirs).issued_count == 0  # type: ignore[union-attr]
