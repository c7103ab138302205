"""Member sign-in on the H5 pages: one-time links, sessions, newcomers, the device cookie, isolation."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.models import Customer, MemberSession
from shequn.audience.schemas import CustomerIn, IdentityIn
from tests.conftest import Tenant


def _customer(db: Session, tenant: Tenant, name: str = "李小茶") -> int:
    c = Customer(workspace_id=tenant.workspace_id, name=name)
    db.add(c)
    db.commit()
    return c.id


def _link(client, tenant: Tenant, customer_id: int, nxt: str = "") -> str:
    res = client.post(
        "/api/v1/member-links", json={"customer_id": customer_id, "next": nxt}, headers=tenant.headers("operator")
    )
    assert res.status_code == 200, res.text
    parts = urlsplit(res.json()["url"])
    return f"{parts.path}?{parts.query}"


def test_a_link_signs_in_once_and_opens_the_member_api(client, db: Session, tenant: Tenant) -> None:
    cid = _customer(db, tenant)
    assert client.get("/api/v1/m/me").json()["code"] == "member_login_required"
    path = _link(client, tenant, cid, nxt=f"/m/{tenant.slug}/g")
    res = client.get(path, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"/m/{tenant.slug}/g"
    me = client.get("/api/v1/m/me")
    assert me.status_code == 200 and me.json()["name"] == "李小茶" and me.json()["communities"] == []
    # The token is stored hashed; the cookie value is nowhere in the table.
    token = client.cookies.get("shequn_member")
    assert token and db.query(MemberSession).filter(MemberSession.token_hash == token).count() == 0

    # The same link a second time (forwarded to someone else) signs nobody in.
    client.cookies.clear()
    again = client.get(path, follow_redirects=False)
    assert again.status_code == 401 and "已被使用" in again.text
    assert client.get("/api/v1/m/me").status_code == 401


def test_bad_links_and_foreign_next_paths(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    cid = _customer(db, tenant)
    assert client.get(f"/m/{tenant.slug}/auth?ticket=forged").status_code == 401
    # A link of brand A does not sign in on brand B's pages.
    path = _link(client, tenant, cid)
    token = path.split("ticket=")[1]
    assert client.get(f"/m/{other_tenant.slug}/auth?ticket={token}").status_code == 401
    # next must stay inside the brand's member pages.
    res = client.post(
        "/api/v1/member-links",
        json={"customer_id": cid, "next": "https://evil.example/"},
        headers=tenant.headers("operator"),
    )
    assert "next=" not in res.json()["url"]
    # Another workspace's customer id is not found; a viewer may not issue links.
    other = client.post("/api/v1/member-links", json={"customer_id": cid}, headers=other_tenant.headers("owner"))
    assert other.status_code == 404
    viewer = client.post("/api/v1/member-links", json={"customer_id": cid}, headers=tenant.headers("viewer"))
    assert viewer.status_code == 403
    assert client.get("/m/no-such-brand/").status_code == 404


def test_sign_out_kills_the_session(client, db: Session, tenant: Tenant) -> None:
    cid = _customer(db, tenant)
    client.get(_link(client, tenant, cid))
    assert client.get("/api/v1/m/me").status_code == 200
    token = client.cookies.get("shequn_member")
    client.post(f"/m/{tenant.slug}/logout", follow_redirects=False)
    assert client.get("/api/v1/m/me", headers={"Authorization": f"Member {token}"}).status_code == 401


def test_newcomers_get_a_customer_and_an_unverified_phone_never_merges(db: Session, tenant: Tenant) -> None:
    phone_owner = audience_service.resolve_customers(
        db,
        workspace_id=tenant.workspace_id,
        people=[
            CustomerIn(
                identities=[IdentityIn("taobao", "buyer_nick", "tea_fan")],
                phone="13812345678",
                phone_verified=True,
            )
        ],
    ).ids[0]
    ident, token = audience_service.sign_in_newcomer(
        db, workspace_id=tenant.workspace_id, name="  王 小明 ", phone="138 1234 5678", device_id="dev-1"
    )
    db.commit()
    assert ident.customer_id != phone_owner and ident.name == "王 小明" and ident.phone_masked.startswith("138")
    assert "5678" in ident.phone_masked and "1234" not in ident.phone_masked
    assert audience_service.customer_phone_hash(
        db, workspace_id=tenant.workspace_id, customer_id=ident.customer_id
    ) == audience_service.customer_phone_hash(db, workspace_id=tenant.workspace_id, customer_id=phone_owner)
    assert audience_service.customer_device_ids(
        db, workspace_id=tenant.workspace_id, customer_id=ident.customer_id
    ) == {"dev-1"}
    found = audience_service.get_member_session(db, token=token)
    assert found is not None and found.customer_id == ident.customer_id


@pytest.mark.parametrize(
    ("name", "phone", "field"), [("", None, "name"), ("x" * 41, None, "name"), ("阿明", "12", "phone")]
)
def test_newcomer_validation_names_the_field(
    db: Session, tenant: Tenant, name: str, phone: str | None, field: str
) -> None:
    from shequn.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        audience_service.sign_in_newcomer(db, workspace_id=tenant.workspace_id, name=name, phone=phone, device_id="d")
    assert err.value.details[0]["field"] == field


def test_member_pages_set_a_device_cookie_and_render(client, db: Session, tenant: Tenant) -> None:
    res = client.get(f"/m/{tenant.slug}/")
    assert res.status_code == 200 and "shequn_device=" in res.headers.get("set-cookie", "")
    assert "/mstatic/m.css" in res.text and "cdn" not in res.text.lower()
    device = client.cookies.get("shequn_device")
    again = client.get(f"/m/{tenant.slug}/")
    assert "shequn_device=" not in again.headers.get("set-cookie", "") and client.cookies.get("shequn_device") == device
    assert client.get("/mstatic/m.js").status_code == 200
    # Console pages get no device cookie.
    assert "shequn_device" not in client.get("/healthz").headers.get("set-cookie", "")


def test_a_member_sees_and_appeals_their_moderation_actions(client, db: Session, tenant: Tenant) -> None:
    from tests.integration.test_communities_policies import _post, _setup

    ws = tenant.workspace_id
    c, cid = _setup(db, ws, spam={"mute_at": 2, "remove_at": 3, "mute_minutes": 30})
    warned = _post(db, ws, c, cid, "加微信 tea_shop88 领优惠券")
    assert warned is not None and warned["action"] == "warn"
    client.get(_link(client, tenant, cid))
    mine = client.get("/api/v1/m/enforcements").json()
    assert [(e["action"], e["appeal_status"]) for e in mine] == [("warn", "none")]
    page = client.get(f"/m/{tenant.slug}/")
    assert "data-notices" in page.text and f"/api/v1/m/enforcements/{mine[0]['id']}/appeal" in page.text
    url = f"/api/v1/m/enforcements/{mine[0]['id']}/appeal"
    assert client.post(url, json={"text": ""}).status_code == 422
    res = client.post(url, json={"text": "我只是分享，不是广告"}, headers={"Idempotency-Key": "appeal-1"})
    assert res.status_code == 200 and res.json()["appeal_status"] == "pending"
    replay = client.post(url, json={"text": "我只是分享，不是广告"}, headers={"Idempotency-Key": "appeal-1"})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert client.post(url, json={"text": "再申诉一次"}).status_code >= 400  # once only
    queue = community_service_queue(db, ws)
    assert [e.appeal_text for e in queue] == ["我只是分享，不是广告"]
    # Someone else's enforcement is not theirs to appeal.
    other = Customer(workspace_id=ws, name="路人")
    db.add(other)
    db.commit()
    client.cookies.clear()
    client.get(_link(client, tenant, other.id))
    assert client.post(url, json={"text": "x"}).status_code == 404


def community_service_queue(db: Session, ws: int) -> list:
    """The operators' appeal queue."""
    from shequn.community import service as community_service

    return community_service.list_enforcements(db, workspace_id=ws, appeal_status="pending")
