"""Console communities: list and create, every tab renders, member actions, policies, appeals, CSV, roles."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from shequn.community import service as community_service
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_customers
from tests.integration.test_console import add_operator, login


def _create(client, csrf: str, **extra: str):
    data = {"csrf": csrf, "name": "茶友品鉴群", "platform": "wecom_group", "visibility": "public", "capacity": "300"}
    return client.post("/communities", data={**data, **extra}, follow_redirects=False)


def test_console_communities_flow(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    assert "社群" in client.get("/").text  # the nav entry
    assert client.get("/communities").status_code == 200
    r = _create(client, csrf)
    assert r.status_code == 303
    cid = int(re.search(r"/communities/(\d+)", r.headers["location"]).group(1))
    dup = _create(client, csrf)
    assert "error=" in dup.headers["location"]
    assert "已有同名社群" in client.get(dup.headers["location"]).text
    assert _create(client, "wrong-token", name="x").status_code == 403

    ws = tenant.workspace_id
    a, b = make_customers(db, ws, 2)
    community_service.join_community(db, workspace_id=ws, community_id=cid, customer_id=a, source="h5")
    # XSS in a nickname and in evidence renders as text.
    m = community_service.join_community(
        db, workspace_id=ws, community_id=cid, customer_id=b, source="h5", nickname="<script>alert(1)</script>"
    )
    community_service.update_policy(db, workspace_id=ws, community_id=cid, kind="probation", enabled=False, config={})
    db.commit()
    try:
        community_service.check_can_post(
            db, workspace_id=ws, community_id=cid, customer_id=b, text="<img src=x onerror=alert(1)> 加微信 abc12345"
        )
    except community_service.PolicyViolation as exc:
        db.commit()
        enforcement_id = exc.details["enforcement_id"]
    community_service.appeal_enforcement(db, workspace_id=ws, customer_id=b, enforcement_id=enforcement_id, text="误伤")
    community_service.record_activity(db, workspace_id=ws, community_id=cid, customer_id=a, kind="post")
    db.commit()

    for tab in ("overview", "members", "history", "moderation", "settings"):
        page = client.get(f"/communities/{cid}", params={"tab": tab})
        assert page.status_code == 200, (tab, page.text[:300])
        assert "<script>alert(1)</script>" not in page.text and "<img src=x" not in page.text
    members = client.get(f"/communities/{cid}", params={"tab": "members"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in members
    assert 'id="members-chart"' in client.get(f"/communities/{cid}").text
    assert "误伤" in client.get(f"/communities/{cid}", params={"tab": "moderation"}).text
    assert "1 条申诉待处理" in client.get("/communities").text

    r = client.post(
        f"/communities/{cid}/members/{m.id}/mute", data={"csrf": csrf, "minutes": "5"}, follow_redirects=False
    )
    assert r.status_code == 303 and "done=member_mute" in r.headers["location"]
    db.expire_all()
    assert community_service.get_member(db, workspace_id=ws, community_id=cid, member_id=m.id).status == "muted"
    r = client.post(
        f"/communities/{cid}/enforcements/{enforcement_id}/accept", data={"csrf": csrf}, follow_redirects=False
    )
    assert "done=enforcement_accept" in r.headers["location"]

    r = client.post(
        f"/communities/{cid}/policies/spam",
        data={"csrf": csrf, "enabled": "on", "cfg.links": "on", "cfg.mute_at": "2", "cfg.remove_at": "1"},
        follow_redirects=False,
    )
    assert "error=" in r.headers["location"]  # remove_at below mute_at
    r = client.post(
        f"/communities/{cid}/policies/banned_words",
        data={"csrf": csrf, "enabled": "on", "cfg.words": "假货\n刷单，代购"},
        follow_redirects=False,
    )
    assert "done=policy_saved" in r.headers["location"]
    c = community_service.get_community(db, workspace_id=ws, community_id=cid)
    cfg = {k: v for k, _, v in community_service.effective_policies(db, c)}
    assert cfg["banned_words"]["words"] == ["假货", "刷单", "代购"]

    r = client.post(
        f"/communities/{cid}/settings",
        data={"csrf": csrf, "name": "茶友品鉴群", "visibility": "private", "rules_text": "禁止广告", "capacity": ""},
        follow_redirects=False,
    )
    assert "done=saved" in r.headers["location"]
    db.expire_all()
    c = community_service.get_community(db, workspace_id=ws, community_id=cid)
    assert c.visibility == "private" and c.rules_text == "禁止广告" and c.capacity is None

    csv_data = "群昵称,微信号\n小茶,tea_lover1\n坏行,\n".encode("gbk")
    r = client.post(
        f"/communities/{cid}/import",
        data={"csrf": csrf},
        files={"file": ("m.csv", csv_data, "text/csv")},
        follow_redirects=False,
    )
    assert "done=imported" in r.headers["location"]
    assert "新进群 1" in client.get(r.headers["location"]).text


def test_console_viewer_reads_but_cannot_change_and_isolation(
    client, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    ws = tenant.workspace_id
    c = community_service.create_community(db, workspace_id=ws, name="新品体验官", visibility="private")
    (a,) = make_customers(db, ws, 1)
    m = community_service.join_community(db, workspace_id=ws, community_id=c.id, customer_id=a, source="h5")
    foreign = community_service.create_community(db, workspace_id=other_tenant.workspace_id, name="别家的群")
    db.commit()
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    page = client.get(f"/communities/{c.id}", params={"tab": "members"})
    assert page.status_code == 200 and 'data-action="approve"' not in page.text
    assert 'id="new-community"' not in client.get("/communities").text
    r = client.post(f"/communities/{c.id}/members/{m.id}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get(f"/communities/{foreign.id}").status_code == 404
    assert "别家的群" not in client.get("/communities").text
