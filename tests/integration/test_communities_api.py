"""Communities over HTTP: CRUD, roles, workspace isolation, member actions, history, sync, CSV, health."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shequn.community import service as community_service
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_customers

API = "/api/v1/communities"


def _create(client: Any, tenant: Tenant, **body: Any) -> dict[str, Any]:
    r = client.post(API, json={"name": "茶友品鉴群", "platform": "wecom_group", **body}, headers=tenant.headers())
    assert r.status_code == 201, r.text
    return r.json()


def test_crud_validation_and_roles(client, tenant: Tenant) -> None:
    c = _create(client, tenant, visibility="private", capacity=200, rules_text="1. 友善交流\n2. 禁止广告")
    assert c["members_count"] == 0 and c["visibility"] == "private"
    dup = client.post(API, json={"name": "茶友品鉴群"}, headers=tenant.headers())
    assert dup.status_code == 409 and dup.json()["code"] == "community_name_taken"
    bad = client.post(API, json={"name": "x", "mode": "partner"}, headers=tenant.headers())
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "partner_name"
    bad_platform = client.post(API, json={"name": "y", "platform": "myspace"}, headers=tenant.headers())
    assert bad_platform.status_code == 422

    viewer = client.post(API, json={"name": "z"}, headers=tenant.headers("viewer"))
    assert viewer.status_code == 403
    assert client.get(API, headers=tenant.headers("viewer")).json()[0]["id"] == c["id"]
    denied = client.patch(f"{API}/{c['id']}", json={"theme": "龙井"}, headers=tenant.headers("viewer"))
    assert denied.status_code == 403

    r = client.patch(f"{API}/{c['id']}", json={"theme": "龙井", "capacity": None}, headers=tenant.headers("operator"))
    assert r.status_code == 200 and r.json()["theme"] == "龙井" and r.json()["capacity"] is None
    assert client.get(API, params={"q": "品鉴"}, headers=tenant.headers()).json()[0]["id"] == c["id"]
    assert client.get(API, params={"platform": "qq_group"}, headers=tenant.headers()).json() == []


def test_workspace_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    c = _create(client, tenant)
    (cid,) = make_customers(db, tenant.workspace_id, 1)
    community_service.join_community(
        db, workspace_id=tenant.workspace_id, community_id=c["id"], customer_id=cid, source="h5"
    )
    db.commit()
    h = other_tenant.headers()
    assert client.get(f"{API}/{c['id']}", headers=h).status_code == 404
    assert client.get(f"{API}/{c['id']}/members", headers=h).status_code == 404
    assert client.patch(f"{API}/{c['id']}", json={"theme": "x"}, headers=h).status_code == 404
    assert client.post(f"{API}/{c['id']}/members", json={"customer_id": cid}, headers=h).status_code == 404
    assert client.get(API, headers=h).json() == []
    assert client.get("/api/v1/community-enforcements", headers=h).json() == []
    # Another workspace's customer cannot be added to this workspace's community either.
    (foreign,) = make_customers(db, other_tenant.workspace_id, 1, prefix="other")
    db.commit()
    r = client.post(f"{API}/{c['id']}/members", json={"customer_id": foreign}, headers=tenant.headers())
    assert r.status_code == 404


def test_member_actions_history_and_retry(client, db: Session, tenant: Tenant) -> None:
    c = _create(client, tenant, visibility="private", capacity=2)
    a, b, d = make_customers(db, tenant.workspace_id, 3)
    ws = tenant.workspace_id
    pending = community_service.join_community(db, workspace_id=ws, community_id=c["id"], customer_id=a, source="h5")
    db.commit()
    base = f"{API}/{c['id']}/members"
    listed = client.get(base, params={"status": "pending"}, headers=tenant.headers()).json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "成员0"

    key = tenant.headers("operator", **{"Idempotency-Key": "approve-1"})
    first = client.post(f"{base}/{pending.id}/approve", headers=key)
    again = client.post(f"{base}/{pending.id}/approve", headers=key)  # a retry replays, never approves twice
    assert first.status_code == 200 and first.json()["status"] == "active"
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    assert client.post(f"{base}/{pending.id}/approve", headers=tenant.headers()).status_code == 409

    added = client.post(base, json={"customer_id": b, "role": "admin", "nickname": "茶小二"}, headers=tenant.headers())
    assert added.status_code == 201 and added.json()["role"] == "admin" and added.json()["status"] == "active"
    full = client.post(base, json={"customer_id": d}, headers=tenant.headers())
    assert full.status_code == 409 and full.json()["code"] == "community_full"

    mid = added.json()["id"]
    muted = client.post(f"{base}/{mid}/mute", json={"minutes": 10, "reason": "刷屏"}, headers=tenant.headers())
    assert muted.json()["status"] == "muted"
    assert client.post(f"{base}/{mid}/unmute", headers=tenant.headers()).json()["status"] == "active"
    assert (
        client.put(f"{base}/{mid}/role", json={"role": "member"}, headers=tenant.headers()).json()["role"] == "member"
    )
    removed = client.post(f"{base}/{mid}/remove", json={"reason": "广告"}, headers=tenant.headers())
    assert removed.json()["status"] == "removed"
    assert client.post(f"{base}/{mid}/restore", headers=tenant.headers()).json()["status"] == "active"
    assert client.post(f"{base}/{mid}/mute", json={}, headers=tenant.headers("viewer")).status_code == 403

    hist = client.get(f"{API}/{c['id']}/history", params={"member_id": mid}, headers=tenant.headers()).json()
    assert [h["action"] for h in reversed(hist)] == [
        "joined",
        "role_changed",
        "muted",
        "unmuted",
        "role_changed",
        "removed",
        "restored",
    ]
    enf = client.get("/api/v1/community-enforcements", params={"community_id": c["id"]}, headers=tenant.headers())
    assert [e["action"] for e in enf.json()] == ["remove", "mute"]
    assert client.get(f"{API}/{c['id']}", headers=tenant.headers()).json()["members_count"] == 2


def test_sync_webhook_is_idempotent_by_event_id(client, tenant: Tenant) -> None:
    c = _create(client, tenant, visibility="private")
    url = f"{API}/{c['id']}/sync"
    events = {
        "events": [
            {"id": "e1", "type": "member_joined", "member": {"external_userid": "wmABC", "nickname": "小茶"}},
            {"id": "e2", "type": "member_joined", "member": {"unionid": "oU-1", "nickname": "阿龙"}},
            {"id": "e3", "type": "member_joined", "member": {"nickname": "无名"}},
        ]
    }
    r = client.post(url, json=events, headers=tenant.headers("operator"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "joined": 2,
        "left": 0,
        "unchanged": 0,
        "duplicates": 0,
        "errors": [{"event_id": "e3", "code": "no_identity"}],
    }
    again = client.post(url, json=events, headers=tenant.headers("operator")).json()
    assert again["joined"] == 0 and again["duplicates"] == 2
    left = {"events": [{"id": "e4", "type": "member_left", "member": {"external_userid": "wmABC"}}]}
    assert client.post(url, json=left, headers=tenant.headers()).json()["left"] == 1
    got = client.get(f"{API}/{c['id']}", headers=tenant.headers()).json()
    assert got["members_count"] == 1
    members = client.get(f"{API}/{c['id']}/members", params={"status": "left"}, headers=tenant.headers()).json()
    assert [m["nickname"] for m in members["items"]] == ["小茶"]
    assert client.post(url, json=left, headers=tenant.headers("viewer")).status_code == 403


def test_csv_import_gbk_bad_rows_and_full_list(client, tenant: Tenant) -> None:
    c = _create(client, tenant)
    url = f"{API}/{c['id']}/members/import"
    rows = [
        "群昵称,微信号,unionid,手机号,入群时间",
        "小茶,tea_lover1,,13800138000,2026-03-01 10:00",
        "阿龙,,oU-9,,2026/03/02",
        "坏日期,dragon2,,,昨天",
        "没身份,,,,2026-03-03",
        "",
    ]
    data = "\r\n".join(rows).encode("gbk")
    r = client.post(url, files={"file": ("群成员.csv", data, "text/csv")}, headers=tenant.headers("operator"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["joined"] == 2 and body["left"] == 0
    assert body["errors"] == [{"line": 4, "code": "bad_joined_at"}, {"line": 5, "code": "no_identity"}]
    members = client.get(f"{API}/{c['id']}/members", headers=tenant.headers()).json()["items"]
    by_nick = {m["nickname"]: m for m in members}
    assert by_nick["小茶"]["joined_at"].startswith("2026-03-01T02:00")  # 10:00 Asia/Shanghai
    assert by_nick["小茶"]["phone_masked"].startswith("138") and "0013800" not in by_nick["小茶"]["phone_masked"]
    assert by_nick["小茶"]["join_source"] == "csv"

    # The next export no longer lists 阿龙: with full_list the missing member is marked left.
    second = "群昵称,微信号\n小茶,tea_lover1\n".encode()
    r2 = client.post(url, files={"file": ("b.csv", second, "text/csv")}, headers=tenant.headers())
    assert r2.json()["unchanged"] == 1 and r2.json()["left"] == 1
    assert client.get(f"{API}/{c['id']}", headers=tenant.headers()).json()["members_count"] == 1
    no_ids = client.post(url, files={"file": ("c.csv", b"name,city\nA,B\n", "text/csv")}, headers=tenant.headers())
    assert no_ids.json()["errors"][0]["code"] == "no_id_column"
    viewer = client.post(url, files={"file": ("b.csv", second, "text/csv")}, headers=tenant.headers("viewer"))
    assert viewer.status_code == 403


def test_policies_enforcement_appeal_and_health_over_http(client, db: Session, tenant: Tenant) -> None:
    c = _create(client, tenant)
    ws = tenant.workspace_id
    pol = client.get(f"{API}/{c['id']}/policies", headers=tenant.headers()).json()
    assert {p["kind"] for p in pol} == {"spam", "banned_words", "frequency", "probation"}
    r = client.put(
        f"{API}/{c['id']}/policies/spam", json={"enabled": True, "config": {"mute_at": 1}}, headers=tenant.headers()
    )
    assert r.status_code == 200 and r.json()["config"]["mute_at"] == 1 and r.json()["config"]["remove_at"] == 3
    bad = client.put(f"{API}/{c['id']}/policies/spam", json={"config": {"x": 1}}, headers=tenant.headers())
    assert bad.status_code == 422
    a, b = make_customers(db, ws, 2)
    for cid in (a, b):
        community_service.join_community(db, workspace_id=ws, community_id=c["id"], customer_id=cid, source="h5")
    db.commit()
    try:
        community_service.check_can_post(
            db, workspace_id=ws, community_id=c["id"], customer_id=a, text="加微信 abc12345"
        )
    except community_service.PolicyViolation as exc:
        db.commit()
        enforcement_id = exc.details["enforcement_id"]
    for _ in range(3):
        community_service.record_activity(db, workspace_id=ws, community_id=c["id"], customer_id=b, kind="post")
    community_service.record_activity(db, workspace_id=ws, community_id=c["id"], customer_id=b, kind="checkin")
    db.commit()

    appeal = client.post(
        f"/api/v1/community-enforcements/{enforcement_id}/appeal",
        params={"customer_id": a},
        json={"text": "误判"},
        headers=tenant.headers(),
    )
    assert appeal.status_code == 200 and appeal.json()["appeal_status"] == "pending"
    queue = client.get("/api/v1/community-enforcements", params={"appeal_status": "pending"}, headers=tenant.headers())
    assert [e["id"] for e in queue.json()] == [enforcement_id]
    decided = client.post(
        f"/api/v1/community-enforcements/{enforcement_id}/decision", json={"accept": False}, headers=tenant.headers()
    )
    assert decided.json()["appeal_status"] == "rejected" and decided.json()["status"] == "active"
    undo = client.post(f"/api/v1/community-enforcements/{enforcement_id}/undo", headers=tenant.headers())
    assert undo.json()["status"] == "undone"

    h = client.get(f"{API}/{c['id']}/health", headers=tenant.headers()).json()
    assert h["members"] == 2 and h["active_7d"] == 1 and h["active_rate_7d"] == 0.5
    assert h["posts_by_day"][-1][1] == 3 and h["activity_by_kind"] == {"post": 3, "checkin": 1}
    assert h["members_by_day"][-1][1] == 2 and h["joined_30d"] == 2
    assert h["top_contributors"][0]["customer_id"] == b and h["top_contributors"][0]["count"] == 4
