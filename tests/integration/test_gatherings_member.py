"""Member H5 and member API of gatherings: newcomer sign-up and retry, ticket with QR, cancel with promotion,
self check-in (online tap, offline venue key), feedback only by attendees, members-only visibility, escaping,
login required and isolation between brands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer
from shequn.community import service as community_service
from shequn.community.gatherings import service
from shequn.community.gatherings.models import Gathering, GatheringRegistration
from shequn.community.gatherings.schemas import GatheringIn
from shequn.core.clock import utcnow
from tests.conftest import Tenant
from tests.integration.test_gatherings import people

MAPI = "/api/v1/m/gatherings"


def gathering(db: Session, tenant: Tenant, *, start_in: timedelta = timedelta(minutes=30), **extra: Any) -> Gathering:
    start = utcnow() + start_in
    values: dict[str, Any] = {"title": "白茶品鉴会", "city": "上海", "address": "南京西路 1266 号", **extra}
    if values.get("mode") == "online":
        values = {"join_url": "https://live.example.com/x", **values, "city": "", "address": ""}
    g = service.create_gathering(
        db,
        workspace_id=tenant.workspace_id,
        data=GatheringIn(starts_at=start, ends_at=start + timedelta(hours=2), **values),
    )
    service.publish_gathering(db, workspace_id=tenant.workspace_id, gathering_id=g.id)
    db.commit()
    return g


def sign_in(client: Any, tenant: Tenant, customer_id: int) -> None:
    """Sign a customer in on the H5 pages through a one-time link."""
    client.cookies.clear()
    res = client.post("/api/v1/member-links", json={"customer_id": customer_id}, headers=tenant.headers("operator"))
    parts = urlsplit(res.json()["url"])
    assert client.get(f"{parts.path}?{parts.query}", follow_redirects=False).status_code == 303


def _customers(db: Session, tenant: Tenant) -> int:
    return int(
        db.scalar(select(func.count()).select_from(Customer).where(Customer.workspace_id == tenant.workspace_id)) or 0
    )


def test_newcomer_registers_sees_ticket_and_a_retry_doubles_nothing(client, db: Session, tenant: Tenant) -> None:
    g = gathering(db, tenant, title="<script>alert(1)</script>白茶")
    page = client.get(f"/m/{tenant.slug}/g/{g.id}")
    assert page.status_code == 200 and "data-register" in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    listing = client.get(f"/m/{tenant.slug}/g")
    assert f'data-gathering="{g.id}"' in listing.text

    body = {"workspace": tenant.slug, "name": "小白", "phone": "13900001234"}
    first = client.post(f"{MAPI}/{g.id}/register", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["already_registered"] is False and out["registration"]["status"] == "confirmed"
    assert out["next"] == f"/m/{tenant.slug}/g/{g.id}/ticket"
    assert out["registration"]["phone_masked"] == "139****1234"
    # The same action retried (its session cookie now set, so the middleware sees a new credential):
    # the endpoint itself is safe to retry and answers with the first registration.
    again = client.post(f"{MAPI}/{g.id}/register", json=body, headers={"Idempotency-Key": "k1"})
    assert again.json()["already_registered"] is True
    assert again.json()["registration"]["id"] == out["registration"]["id"]

    # The reply was lost and the page retried without the key, as a stranger (no session cookie yet):
    # the same device within minutes is the same person — no second customer, no second registration.
    client.cookies.delete("shequn_member")
    retry = client.post(f"{MAPI}/{g.id}/register", json=body)
    assert retry.status_code == 200 and retry.json()["already_registered"] is True
    assert retry.json()["registration"]["id"] == out["registration"]["id"]
    assert _customers(db, tenant) == 1

    ticket = client.get(f"/m/{tenant.slug}/g/{g.id}/ticket")
    assert ticket.status_code == 200
    assert out["registration"]["code"] in ticket.text and "<svg" in ticket.text and "data-qr" in ticket.text
    api_ticket = client.get(f"{MAPI}/{g.id}/ticket").json()
    assert f"/gatherings/{g.id}/scan?t=" in api_ticket["checkin_url"]
    assert api_ticket["qr_svg"].startswith("<svg")
    mine = client.get(f"{MAPI}/mine").json()
    assert [r["gathering_id"] for r in mine] == [g.id]


def test_member_cancel_promotes_and_checkin_and_feedback(client, db: Session, tenant: Tenant) -> None:
    g = gathering(db, tenant, mode="online", format="live", capacity=1)
    a, b = people(db, tenant, 2)
    sign_in(client, tenant, a)
    assert (
        client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug}).json()["registration"]["status"]
        == "confirmed"
    )
    # Online join link only for the confirmed.
    assert client.get(f"{MAPI}/{g.id}/ticket").json()["join_url"] == "https://live.example.com/x"
    sign_in(client, tenant, b)
    waiting = client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug}).json()["registration"]
    assert waiting["status"] == "waitlisted" and waiting["waitlist_position"] == 1
    assert client.get(f"{MAPI}/{g.id}/ticket").json()["join_url"] == ""
    early = client.post(f"{MAPI}/{g.id}/feedback", json={"rating": 5})
    assert early.status_code == 403 and early.json()["code"] == "feedback_not_allowed"
    refused = client.post(f"{MAPI}/{g.id}/checkin", json={})
    assert refused.json()["code"] == "registration_not_confirmed"

    sign_in(client, tenant, a)
    cancelled = client.post(f"{MAPI}/{g.id}/cancel", headers={"Idempotency-Key": "c1"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["late_cancel"] is True  # within 24 h of the start
    assert client.post(f"{MAPI}/{g.id}/cancel").json()["status"] == "cancelled"  # again: no change

    sign_in(client, tenant, b)
    ticket = client.get(f"/m/{tenant.slug}/g/{g.id}/ticket").text
    assert 'data-reg-status="confirmed"' in ticket and "/checkin" in ticket  # promoted; online tap offered
    ok = client.post(f"{MAPI}/{g.id}/checkin", json={}, headers={"Idempotency-Key": "in-1"})
    assert ok.status_code == 200 and ok.json()["method"] == "self"
    replay = client.post(f"{MAPI}/{g.id}/checkin", json={}, headers={"Idempotency-Key": "in-1"})
    assert replay.status_code == 200 and replay.headers.get("idempotent-replayed") == "true"
    assert client.post(f"{MAPI}/{g.id}/checkin", json={}).json()["code"] == "already_checked_in"

    fb = client.post(f"{MAPI}/{g.id}/feedback", json={"rating": 4, "comment": "<img src=x onerror=alert(1)>不错"})
    assert fb.status_code == 201 and fb.json()["rating"] == 4
    assert client.post(f"{MAPI}/{g.id}/feedback", json={"rating": 5}).json()["code"] == "feedback_exists"
    assert client.post(f"{MAPI}/{g.id}/feedback", json={"rating": 6}).status_code == 422
    assert "data-feedback-done" in client.get(f"/m/{tenant.slug}/g/{g.id}/ticket").text


def test_offline_self_checkin_needs_the_venue_key(client, db: Session, tenant: Tenant) -> None:
    g = gathering(db, tenant)
    (a,) = people(db, tenant, 1)
    sign_in(client, tenant, a)
    client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug})
    assert client.post(f"{MAPI}/{g.id}/checkin", json={"key": "guess"}).json()["code"] == "checkin_code_invalid"
    key = service.venue_key(g)
    page = client.get(f"/m/{tenant.slug}/g/{g.id}/checkin", params={"k": key})
    assert page.status_code == 200 and key in page.text
    ok = client.post(f"{MAPI}/{g.id}/checkin", json={"key": key})
    assert ok.status_code == 200


def test_members_only_gatherings(client, db: Session, tenant: Tenant) -> None:
    community = community_service.create_community(db, workspace_id=tenant.workspace_id, name="白茶同好会")
    db.commit()
    g = gathering(db, tenant, title="会员专场", visibility="members", community_id=community.id)
    a, b = people(db, tenant, 2)
    community_service.join_community(
        db, workspace_id=tenant.workspace_id, community_id=community.id, customer_id=a, source="manual"
    )
    db.commit()
    sign_in(client, tenant, b)
    assert "会员专场" not in client.get(f"/m/{tenant.slug}/g").text
    hidden = client.get(f"/m/{tenant.slug}/g/{g.id}")
    assert hidden.status_code == 404 and "活动不存在" in hidden.text
    assert client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug}).status_code == 404
    client.cookies.clear()
    stranger = client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug, "name": "路人"})
    assert stranger.status_code == 404
    before = _customers(db, tenant)
    assert before == 2  # no customer was created for the refused stranger

    sign_in(client, tenant, a)
    assert "会员专场" in client.get(f"/m/{tenant.slug}/g").text
    r = client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug})
    assert r.status_code == 200 and r.json()["registration"]["status"] == "confirmed"
    # Check-in counts as community activity (the audience event community.checkin).
    code = r.json()["registration"]["code"]
    assert (
        client.post(f"/api/v1/gatherings/{g.id}/checkins", json={"code": code}, headers=tenant.headers()).status_code
        == 200
    )
    membership = community_service.get_membership(
        db, workspace_id=tenant.workspace_id, community_id=community.id, customer_id=a
    )
    db.refresh(membership)
    assert membership is not None and membership.last_active_at is not None


def test_login_required_and_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    g = gathering(db, tenant)
    theirs = gathering(db, other_tenant, title="别家活动")
    assert client.get(f"{MAPI}/{g.id}/ticket").json()["code"] == "member_login_required"
    assert client.post(f"{MAPI}/{g.id}/cancel").status_code == 401
    assert client.get(f"/m/{tenant.slug}/g/{g.id}/ticket").status_code == 401
    (a,) = people(db, tenant, 1)
    sign_in(client, tenant, a)
    # Another brand's gathering is not there for this member: not in the list, no ticket, no check-in.
    assert "别家活动" not in client.get(f"/m/{tenant.slug}/g").text
    assert client.get(f"/m/{tenant.slug}/g/{theirs.id}").status_code == 404
    assert client.get(f"{MAPI}/{theirs.id}/ticket").status_code == 404
    assert client.post(f"{MAPI}/{theirs.id}/checkin", json={}).status_code == 404
    # Registering there under the other brand's slug does not use this session: a newcomer needs a name.
    r = client.post(f"{MAPI}/{theirs.id}/register", json={"workspace": other_tenant.slug})
    assert r.status_code == 422
    assert client.post(f"{MAPI}/{theirs.id}/register", json={"workspace": tenant.slug}).status_code == 404
    assert db.scalar(select(func.count()).select_from(GatheringRegistration)) == 0


def test_a_cancelled_gathering_says_so_on_the_ticket(client, db: Session, tenant: Tenant) -> None:
    g = gathering(db, tenant)
    a, b = people(db, tenant, 2)
    sign_in(client, tenant, a)
    client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug})
    service.cancel_gathering(db, workspace_id=tenant.workspace_id, gathering_id=g.id, reason="台风")
    db.commit()
    ticket = client.get(f"/m/{tenant.slug}/g/{g.id}/ticket").text
    assert "data-gathering-cancelled" in ticket and "data-code" not in ticket and "data-cancel" not in ticket
    assert f'data-gathering="{g.id}"' not in client.get(f"/m/{tenant.slug}/g").text  # no longer open
    sign_in(client, tenant, b)
    r = client.post(f"{MAPI}/{g.id}/register", json={"workspace": tenant.slug})
    assert r.status_code == 409 and r.json()["code"] == "gathering_not_open"
