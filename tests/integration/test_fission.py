"""Invites end to end: limits and expiry, every invite error, idempotent joins, QR codes, H5 pages, isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.community import service as community_service
from shequn.community.fission import service as fission
from shequn.community.fission.errors import InviteDisabled, InviteExpired, InviteSelf, InviteUsedUp
from shequn.community.fission.models import Invite, InviteUse
from shequn.core.clock import utcnow
from tests.conftest import Tenant


def customers(db: Session, workspace_id: int, n: int, prefix: str = "f") -> list[int]:
    """n new customers of the workspace."""
    people: list[CustomerIn | None] = [
        CustomerIn(identities=[IdentityIn("wechat", "openid", f"{prefix}-{i}")], name=f"好友{i}") for i in range(n)
    ]
    ids = [i for i in audience_service.resolve_customers(db, workspace_id=workspace_id, people=people).ids if i]
    assert len(ids) == n
    return ids


def community(db: Session, workspace_id: int, **values: Any) -> community_service.Community:
    """A public community unless told otherwise."""
    return community_service.create_community(
        db, workspace_id=workspace_id, **{"name": "绿茶品鉴群", "platform": "wecom_group", **values}
    )


def member_of(db: Session, ws: int, community_id: int, customer_id: int) -> None:
    """Seat a customer directly (an existing member who will invite others)."""
    community_service.join_community(
        db, workspace_id=ws, community_id=community_id, customer_id=customer_id, source="manual", approved=True
    )


def _uses(db: Session, invite_id: int) -> tuple[int, int]:
    db.expire_all()
    inv = db.get(Invite, invite_id)
    assert inv is not None
    rows = db.scalar(select(func.count()).select_from(InviteUse).where(InviteUse.invite_id == invite_id))
    return inv.uses, int(rows or 0)


def test_invite_errors_and_limits(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    a, b, d, e = customers(db, ws, 4)
    once = fission.create_invite(db, workspace_id=ws, community_id=c.id, max_uses=1)
    old = fission.create_invite(db, workspace_id=ws, community_id=c.id, expires_at=utcnow() + timedelta(seconds=1))
    off = fission.create_invite(db, workspace_id=ws, community_id=c.id)
    fission.disable_invite(db, workspace_id=ws, invite_id=off.id)
    db.commit()
    assert 6 <= len(once.code) <= 8 and once.code.isalnum()
    assert len(fission.mini_program_scene(once)) <= 32

    fission.join_by_invite(db, workspace_id=ws, code=once.code, customer_id=a)
    db.commit()
    with pytest.raises(InviteUsedUp):
        fission.join_by_invite(db, workspace_id=ws, code=once.code, customer_id=b)
    db.rollback()
    old.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    with pytest.raises(InviteExpired):
        fission.join_by_invite(db, workspace_id=ws, code=old.code, customer_id=b)
    db.rollback()
    with pytest.raises(InviteDisabled):
        fission.join_by_invite(db, workspace_id=ws, code=off.code, customer_id=b)
    db.rollback()
    # A member retrying a used-up link gets their membership back without error or a second use.
    again = fission.join_by_invite(db, workspace_id=ws, code=once.code, customer_id=a)
    assert again.already_member and _uses(db, once.id) == (1, 1)
    # Self-invite refused on a personal link.
    mine = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=a)
    assert fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=a).id == mine.id
    community_service.leave_community(db, workspace_id=ws, community_id=c.id, customer_id=a)
    db.commit()
    with pytest.raises(InviteSelf):
        fission.join_by_invite(db, workspace_id=ws, code=mine.code, customer_id=a)
    db.rollback()
    assert community_service.get_membership(db, workspace_id=ws, community_id=c.id, customer_id=d) is None
    assert e not in (a, b, d)


def test_full_and_private_communities_through_invites(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    full = community(db, ws, name="满员群", capacity=1)
    secret = community(db, ws, name="私密群", visibility="private")
    a, b, x, y = customers(db, ws, 4)
    to_full = fission.create_invite(db, workspace_id=ws, community_id=full.id)
    plain = fission.create_invite(db, workspace_id=ws, community_id=secret.id)
    pre = fission.create_invite(db, workspace_id=ws, community_id=secret.id, pre_approved=True)
    db.commit()
    fission.join_by_invite(db, workspace_id=ws, code=to_full.code, customer_id=a)
    db.commit()
    with pytest.raises(community_service.CommunityFull):
        fission.join_by_invite(db, workspace_id=ws, code=to_full.code, customer_id=b)
    db.rollback()
    assert _uses(db, to_full.id) == (1, 1)  # the refused join used nothing
    assert fission.join_by_invite(db, workspace_id=ws, code=plain.code, customer_id=x).member.status == "pending"
    assert fission.join_by_invite(db, workspace_id=ws, code=pre.code, customer_id=y).member.status == "active"
    db.commit()


def test_operator_api_create_list_disable_qr(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    db.commit()
    h = tenant.headers()
    expires = (utcnow() + timedelta(days=3)).isoformat()
    r = client.post(
        f"/api/v1/communities/{c.id}/invites",
        json={"label": "海报", "max_uses": 2, "expires_at": expires, "pre_approved": True},
        headers=h,
    )
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["url"].endswith(f"/m/{tenant.slug}/i/{inv['code']}") and inv["status"] == "active"
    assert inv["scene"] == f"i={inv['code']}"
    qr = client.get(f"/api/v1/invites/{inv['id']}/qr.svg?download=1", headers=h)
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content and "attachment" in qr.headers["content-disposition"]
    assert [i["id"] for i in client.get(f"/api/v1/communities/{c.id}/invites", headers=h).json()] == [inv["id"]]
    bad = client.post(f"/api/v1/communities/{c.id}/invites", json={"max_uses": 0}, headers=h)
    assert bad.status_code == 422
    past = client.post(
        f"/api/v1/communities/{c.id}/invites",
        json={"expires_at": (utcnow() - timedelta(days=1)).isoformat()},
        headers=h,
    )
    assert past.status_code == 422
    viewer = client.post(f"/api/v1/invites/{inv['id']}/disable", headers=tenant.headers("viewer"))
    assert viewer.status_code == 403
    off = client.post(f"/api/v1/invites/{inv['id']}/disable", headers=h)
    assert off.json()["status"] == "disabled"
    join = client.post(f"/api/v1/m/invites/{inv['code']}/join", json={"name": "小李"})
    assert join.status_code == 410 and join.json()["code"] == "invite_disabled"
    assert join.json()["message"] == "邀请链接已被停用"


def test_member_join_by_invite_api_is_idempotent(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws, rules_text="禁止发广告")
    (host,) = customers(db, ws, 1)
    member_of(db, ws, c.id, host)
    db.commit()
    mine = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    info = client.get(f"/api/v1/m/invites/{mine.code}").json()
    assert info["community_name"] == "绿茶品鉴群" and info["members_count"] == 1

    # A retried request (same Idempotency-Key, the first reply lost on the way) replays the first answer.
    client.get(f"/m/{tenant.slug}/i/{mine.code}")  # the page visit sets the device cookie
    key = {"Idempotency-Key": "join-1"}
    first = client.post(f"/api/v1/m/invites/{mine.code}/join", json={"name": "小王"}, headers=key)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "active" and first.json()["referral_id"]
    client.cookies.delete("shequn_member")
    replay = client.post(f"/api/v1/m/invites/{mine.code}/join", json={"name": "小王"}, headers=key)
    assert replay.json() == first.json() and replay.headers.get("idempotent-replayed") == "true"
    # A second tap (new key) from the signed-in member: already a member, no second use.
    client.post(f"/api/v1/m/invites/{mine.code}/join", json={"name": "小王"}, headers={"Idempotency-Key": "j-1b"})
    second = client.post(f"/api/v1/m/invites/{mine.code}/join", json={}, headers={"Idempotency-Key": "join-2"})
    assert second.status_code == 200 and second.json()["already_member"] is True
    assert _uses(db, mine.id) == (1, 1)
    # A double-submitted newcomer form from the same device (the cookie of the first reply lost) is the same person.
    client.cookies.delete("shequn_member")
    third = client.post(f"/api/v1/m/invites/{mine.code}/join", json={"name": "小王"})
    assert third.status_code == 200 and third.json()["already_member"] is True
    assert _uses(db, mine.id) == (1, 1)
    db.expire_all()
    assert community_service.get_community(db, workspace_id=ws, community_id=c.id).members_count == 2

    # Newcomers must give a name; an expired link refuses without creating anyone.
    client.cookies.clear()
    nameless = client.post(f"/api/v1/m/invites/{mine.code}/join", json={"name": "  "})
    assert nameless.status_code == 422 and nameless.json()["code"] == "invite_name_required"
    gone = fission.create_invite(db, workspace_id=ws, community_id=c.id, expires_at=utcnow() + timedelta(seconds=5))
    db.commit()
    gone.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    before = audience_service.customer_counts(db, workspace_id=ws)
    r = client.post(f"/api/v1/m/invites/{gone.code}/join", json={"name": "迟到的人"})
    assert r.status_code == 410 and r.json()["code"] == "invite_expired"
    assert audience_service.customer_counts(db, workspace_id=ws) == before
    assert client.post("/api/v1/m/invites/zzzzzzz/join", json={"name": "x"}).json()["code"] == "invite_not_found"


def test_h5_invite_pages_render_safely(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws, name="<script>alert(1)</script>群", theme="喝茶", rules_text="<b>不许</b>发广告")
    (host,) = customers(db, ws, 1)
    member_of(db, ws, c.id, host)
    db.commit()
    mine = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=host)
    db.commit()
    page = client.get(f"/m/{tenant.slug}/i/{mine.code}", headers={"User-Agent": "Mozilla/5.0 iPhone"})
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "&lt;b&gt;不许&lt;/b&gt;" in page.text and 'data-api="/api/v1/m/invites/' in page.text
    client.head(f"/m/{tenant.slug}/i/{mine.code}")
    client.get(f"/m/{tenant.slug}/i/{mine.code}", headers={"User-Agent": "Feishu LarkUrl2Card"})
    db.expire_all()
    assert db.get(Invite, mine.id).opens == 1  # type: ignore[union-attr]  # crawlers and HEAD do not count
    r = client.post(f"/api/v1/m/invites/{mine.code}/join", json={"name": "<img src=x onerror=alert(1)>"})
    assert r.status_code == 200
    done = client.get(r.json()["next"])
    assert done.status_code == 200 and "data-joined" in done.text
    my = client.get(f"/m/{tenant.slug}/invite/{c.id}")
    assert my.status_code == 200 and "<svg" in my.text and "<img src=x" not in my.text
    assert client.get(f"/m/{tenant.slug}/i/nope123").status_code == 404
    client.cookies.clear()
    assert client.get(f"/m/{tenant.slug}/invite/{c.id}").status_code == 401


def test_workspace_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = community(db, ws)
    db.commit()
    inv = fission.create_invite(db, workspace_id=ws, community_id=c.id)
    db.commit()
    h = other_tenant.headers()
    assert client.get(f"/api/v1/invites/{inv.id}", headers=h).status_code == 404
    assert client.post(f"/api/v1/invites/{inv.id}/disable", headers=h).status_code == 404
    assert client.get(f"/api/v1/communities/{c.id}/invites", headers=h).status_code == 404
    assert client.post(f"/api/v1/communities/{c.id}/invites", json={}, headers=h).status_code == 404
    assert client.get(f"/api/v1/communities/{c.id}/referral-tree", headers=h).status_code == 404
    assert client.get("/api/v1/fission/report", headers=h).json()["links"] == 0
    # The H5 link of one brand does not open under another brand's slug.
    assert client.get(f"/m/{other_tenant.slug}/i/{inv.code}").status_code == 404
