"""Console fission pages: report with tree, invites (create, QR, disable), rules, fraud review, roles, isolation."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from shequn.community.fission import service as fission
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login
from tests.integration.test_fission import community, customers, member_of


def _tree(db: Session, ws: int) -> tuple[int, list[int]]:
    c = community(db, ws, name="<i>茶</i>友群")
    people = customers(db, ws, 4, prefix="con")
    member_of(db, ws, c.id, people[0])
    db.commit()
    for inviter, invitee in [(0, 1), (1, 2), (0, 3)]:
        link = fission.personal_invite(db, workspace_id=ws, community_id=c.id, customer_id=people[inviter])
        fission.join_by_invite(
            db,
            workspace_id=ws,
            code=link.code,
            customer_id=people[invitee],
            nickname=f"好友{invitee}",
            device_id="same",
        )
        db.commit()
    return c.id, people


def test_console_fission_pages(client, db: Session, tenant: Tenant) -> None:
    cid, people = _tree(db, tenant.workspace_id)
    csrf = login(client)
    home = client.get("/")
    assert 'href="/fission"' in home.text
    page = client.get(f"/fission?community={cid}")
    assert page.status_code == 200
    assert "<i>茶</i>" not in page.text and "&lt;i&gt;茶&lt;/i&gt;" in page.text
    assert 'id="referral-tree"' in page.text and f'data-customer="{people[2]}"' in page.text
    assert "K 因子" in page.text and "<svg" in page.text

    r = client.post(
        "/fission/invites",
        data={
            "csrf": csrf,
            "community_id": str(cid),
            "label": "门店海报",
            "max_uses": "50",
            "expires_on": "2099-01-01",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    listing = client.get(f"/fission/invites?community={cid}")
    assert "门店海报" in listing.text
    invite = next(i for i in fission.list_invites(db, workspace_id=tenant.workspace_id) if i.label == "门店海报")
    qr = client.get(f"/fission/invites/{invite.id}/qr.svg")
    assert qr.status_code == 200 and qr.content.startswith(b"<svg")
    bad = client.post("/fission/invites", data={"csrf": csrf, "community_id": str(cid), "max_uses": "0"})
    assert bad.status_code == 422 and 'id="fission-error"' in bad.text
    no_csrf = client.post(f"/fission/invites/{invite.id}/disable", data={})
    assert no_csrf.status_code == 403
    off = client.post(f"/fission/invites/{invite.id}/disable", data={"csrf": csrf}, follow_redirects=False)
    assert off.status_code == 303
    db.expire_all()
    assert fission.get_invite(db, workspace_id=tenant.workspace_id, invite_id=invite.id).status == "disabled"

    rule = client.post(
        "/fission/rewards/rules",
        data={
            "csrf": csrf,
            "name": "邀2人",
            "community_id": str(cid),
            "invitees_required": "2",
            "stay_days": "0",
            "reward_kind": "badge",
            "reward_value": "达人",
        },
        follow_redirects=False,
    )
    assert rule.status_code == 303
    client.post("/fission/rewards/qualify", data={"csrf": csrf})
    rewards = client.get("/fission/rewards")
    assert "邀2人" in rewards.text and 'id="rewards"' not in rewards.text  # one valid invitee: the other is suspect

    fraud = client.get("/fission/fraud")
    flags = re.findall(r'data-flag="(\d+)"', fraud.text)
    assert flags  # the second invitee shared the first one's device
    done = client.post(f"/fission/fraud/{flags[0]}/review", data={"csrf": csrf, "decision": "clear"})
    assert done.status_code == 200 and "已处理" in done.text
    assert 'id="rewards"' in client.get("/fission/rewards").text  # cleared: the second invitee counts
    saved = client.post("/fission/fraud/settings", data={"csrf": csrf, "burst_joins": "5", "burst_minutes": "3"})
    assert saved.status_code == 200
    assert fission.get_settings(db, workspace_id=tenant.workspace_id).burst_joins == 5


def test_console_fission_roles_and_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    cid, _ = _tree(db, tenant.workspace_id)
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    assert client.get("/fission/invites").status_code == 200
    assert 'id="new-invite"' not in client.get("/fission/invites").text
    denied = client.post("/fission/invites", data={"csrf": csrf, "community_id": str(cid)})
    assert denied.status_code == 403
    client.cookies.clear()
    login(client, "owner-b@example.com", "password-123")
    other = client.get(f"/fission?community={cid}")
    assert other.status_code == 200 and 'data-customer="' not in other.text  # not their community: ignored
    invite = fission.list_invites(db, workspace_id=tenant.workspace_id)[0]
    assert client.get(f"/fission/invites/{invite.id}/qr.svg").status_code == 404
