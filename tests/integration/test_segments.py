"""Segments end to end: rules over the API, incremental refresh on new orders, history, export, discovery."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import CustomerChange, SegmentChange, Tag
from shequn.core.clock import utcnow
from shequn.core.models import JobRun
from tests.conftest import Tenant
from tests.integration.test_commerce_api import order

GREEN_TWICE = {"type": "purchase", "category": "绿茶", "metric": "count", "op": "gte", "value": 2}


def _buyer(i: int, city: str = "杭州") -> dict[str, Any]:
    return {
        "identities": [{"source": "wechat", "kind": "openid", "value": f"oid-{i}"}],
        "name": f"客户{i}",
        "city": city,
        "phone": f"1380013{i:04d}",
        "phone_verified": True,
    }


def _push(client: Any, tenant: Tenant, oid: str, i: int, total: int = 12800, **extra: Any) -> None:
    r = client.post(
        "/api/v1/orders", json=order(oid, total=total, customer=_buyer(i), **extra), headers=tenant.headers()
    )
    assert r.status_code in (200, 201), r.text


def _job(db: Session, job_id: int) -> JobRun:
    db.expire_all()
    job = db.get(JobRun, job_id)
    assert job is not None
    return job


def _segment(client: Any, tenant: Tenant, name: str, rule: dict[str, Any], kind: str = "dynamic") -> dict[str, Any]:
    r = client.post("/api/v1/segments", json={"name": name, "rule": rule, "kind": kind}, headers=tenant.headers())
    assert r.status_code == 201, r.text
    return r.json()


def test_new_order_moves_only_that_customer_in_without_a_full_rebuild(client, db: Session, tenant: Tenant) -> None:
    _push(client, tenant, "A-1", 1)
    _push(client, tenant, "B-1", 2)
    seg = _segment(client, tenant, "绿茶复购", GREEN_TWICE)
    snap = _segment(client, tenant, "绿茶复购快照", GREEN_TWICE, kind="static")
    assert seg["members_count"] == 0 and snap["members_count"] == 0
    full_jobs = db.scalar(select(func.count()).select_from(JobRun).where(JobRun.kind == "audience.refresh_segments"))

    _push(client, tenant, "A-2", 1)  # customer 1's second green-tea order

    got = client.get(f"/api/v1/segments/{seg['id']}", headers=tenant.headers()).json()
    assert got["members_count"] == 1
    members = client.get(f"/api/v1/segments/{seg['id']}/members", headers=tenant.headers()).json()
    assert [m["name"] for m in members["items"]] == ["客户1"]
    assert members["items"][0]["phone_masked"].startswith("138") and "****" in members["items"][0]["phone_masked"]
    history = client.get(f"/api/v1/segments/{seg['id']}/history", headers=tenant.headers()).json()
    assert [(h["entered"], h["cause"]) for h in history] == [(True, "incremental")]
    # Only the changed customer was re-evaluated: an incremental job ran, no full refresh was queued.
    assert (
        db.scalar(select(func.count()).select_from(JobRun).where(JobRun.kind == "audience.refresh_segments"))
        == full_jobs
    )
    incremental = db.scalars(select(JobRun).where(JobRun.kind == "audience.apply_customer_changes")).all()
    assert incremental and incremental[-1].status == "succeeded" and incremental[-1].result["customers"] == 1
    # A snapshot does not follow.
    assert client.get(f"/api/v1/segments/{snap['id']}", headers=tenant.headers()).json()["members_count"] == 0

    # A refund drops the order from the facts: the customer leaves, and history says so.
    _push(client, tenant, "A-2", 1, status="refunded", updated="2026-05-02T10:00:00+08:00", refunded=12800)
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=tenant.headers()).json()["members_count"] == 0
    history = client.get(f"/api/v1/segments/{seg['id']}/history", headers=tenant.headers()).json()
    assert [h["entered"] for h in history] == [False, True]
    sizes = client.get(f"/api/v1/segments/{seg['id']}/profile", headers=tenant.headers()).json()["sizes"]
    assert [s[1] for s in sizes] == [0, 1, 0]


def test_full_refresh_matches_incremental_state(client, db: Session, tenant: Tenant) -> None:
    for i in range(6):
        for k in range(i % 3 + 1):
            _push(client, tenant, f"F-{i}-{k}", i, total=5000 * (i + 1))
    seg = _segment(client, tenant, "大客户", {"type": "attr", "field": "total_spent", "op": "gte", "value": 40000})
    before = client.get(f"/api/v1/segments/{seg['id']}/members?limit=100", headers=tenant.headers()).json()
    r = client.post(f"/api/v1/segments/{seg['id']}/refresh", headers=tenant.headers("operator"))
    assert r.status_code == 202, r.text
    job = _job(db, r.json()["id"])
    assert job.status == "succeeded" and job.result["entered"] == 0 and job.result["left"] == 0
    after = client.get(f"/api/v1/segments/{seg['id']}/members?limit=100", headers=tenant.headers()).json()
    assert {m["id"] for m in before["items"]} == {m["id"] for m in after["items"]} and after["total"] > 0
    assert client.post(f"/api/v1/segments/{seg['id']}/refresh", headers=tenant.headers("viewer")).status_code == 403


def test_bad_rules_get_field_level_errors_and_never_everyone(client, db: Session, tenant: Tenant) -> None:
    h = tenant.headers()
    cases: list[tuple[Any, str, str]] = [
        ({"type": "attr", "field": "shoe_size", "op": "eq", "value": 42}, "rule.field", "unknown_field"),
        ({"type": "attr", "field": "total_spent", "op": "contains", "value": "x"}, "rule.op", "bad_operator"),
        ({"type": "attr", "field": "city", "op": "eq", "value": 3}, "rule.value", "bad_value"),
        ({"type": "and", "rules": []}, "rule.rules", "empty_group"),
        ({"type": "or"}, "rule.rules", "empty_group"),
        ({"type": "tag", "tag_id": 999999, "op": "has"}, "rule.tag_id", "unknown_tag"),
        ({"type": "segment", "segment_id": 999999, "op": "in"}, "rule.segment_id", "unknown_segment"),
        ({"type": "event", "event": "share", "days": 0, "op": "gte", "value": 1}, "rule.days", "bad_value"),
        ({"type": "magic"}, "rule.type", "unknown_rule_type"),
    ]
    deep: dict[str, Any] = {"type": "attr", "field": "city", "op": "eq", "value": "杭州"}
    for _ in range(8):
        deep = {"type": "not", "rule": deep}
    cases.append((deep, "rule" + ".rule" * 6, "rule_too_deep"))
    for rule, field, code in cases:
        r = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=h)
        assert r.status_code == 422, (rule, r.text)
        details = r.json()["details"]
        assert any(d["field"] == field and d.get("code") == code for d in details), (rule, details)
        assert client.post("/api/v1/segments", json={"name": "x", "rule": rule}, headers=h).status_code == 422
    # A deleted tag is named as such.
    tag = Tag(workspace_id=tenant.workspace_id, name="旧标签", kind="manual", deleted_at=utcnow())
    db.add(tag)
    db.commit()
    r = client.post(
        "/api/v1/segments/preview", json={"rule": {"type": "tag", "tag_id": tag.id, "op": "has"}}, headers=h
    )
    assert r.status_code == 422 and r.json()["details"][0]["code"] == "deleted_tag"


def test_segment_references_self_cycles_and_deletion(client, db: Session, tenant: Tenant) -> None:
    _push(client, tenant, "S-1", 1)
    _push(client, tenant, "S-2", 2, total=99900)
    hz = _segment(client, tenant, "杭州", {"type": "attr", "field": "city", "op": "eq", "value": "杭州"})
    big = _segment(
        client,
        tenant,
        "杭州大客户",
        {
            "type": "and",
            "rules": [
                {"type": "segment", "segment_id": hz["id"], "op": "in"},
                {"type": "attr", "field": "total_spent", "op": "gte", "value": 50000},
            ],
        },
    )
    assert big["members_count"] == 1
    # Self reference and cycles are refused with the path of the leaf.
    r = client.patch(
        f"/api/v1/segments/{big['id']}",
        json={"rule": {"type": "segment", "segment_id": big["id"], "op": "not_in"}},
        headers=tenant.headers(),
    )
    assert r.status_code == 422 and r.json()["details"][0]["code"] == "self_reference"
    r = client.patch(
        f"/api/v1/segments/{hz['id']}",
        json={"rule": {"type": "segment", "segment_id": big["id"], "op": "in"}},
        headers=tenant.headers(),
    )
    assert r.status_code == 422 and r.json()["details"][0]["code"] == "segment_cycle"
    # A segment in use cannot be deleted; once unused it can.
    assert client.delete(f"/api/v1/segments/{hz['id']}", headers=tenant.headers()).status_code == 409
    assert client.delete(f"/api/v1/segments/{big['id']}", headers=tenant.headers()).status_code == 204
    assert client.delete(f"/api/v1/segments/{hz['id']}", headers=tenant.headers()).status_code == 204
    assert client.get(f"/api/v1/segments/{hz['id']}", headers=tenant.headers()).status_code == 404
    # Names are unique among live segments.
    _segment(client, tenant, "同名", {"type": "attr", "field": "city", "op": "eq", "value": "杭州"})
    r = client.post(
        "/api/v1/segments",
        json={"name": "同名", "rule": {"type": "attr", "field": "city", "op": "eq", "value": "x"}},
        headers=tenant.headers(),
    )
    assert r.status_code == 409


def test_workspaces_are_isolated_and_roles_apply(client, tenant: Tenant, other_tenant: Tenant) -> None:
    _push(client, tenant, "I-1", 1)
    seg = _segment(client, tenant, "全部买家", {"type": "attr", "field": "orders_count", "op": "gte", "value": 1})
    assert seg["members_count"] == 1
    other = other_tenant.headers()
    for path in ("", "/members", "/history", "/profile", "/export.csv", "/audience.csv?source=wechat"):
        assert client.get(f"/api/v1/segments/{seg['id']}{path}", headers=other).status_code == 404, path
    assert client.patch(f"/api/v1/segments/{seg['id']}", json={"name": "x"}, headers=other).status_code == 404
    assert client.delete(f"/api/v1/segments/{seg['id']}", headers=other).status_code == 404
    preview = client.post(
        "/api/v1/segments/preview",
        json={"rule": {"type": "attr", "field": "orders_count", "op": "gte", "value": 1}},
        headers=other,
    ).json()
    assert preview["count"] == 0
    assert client.get("/api/v1/segments", headers=other).json() == []
    # Viewers read but do not write; analysts export.
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=tenant.headers("viewer")).status_code == 200
    r = client.post("/api/v1/segments", json={"name": "v", "rule": seg["rule"]}, headers=tenant.headers("viewer"))
    assert r.status_code == 403
    assert client.get(f"/api/v1/segments/{seg['id']}/export.csv", headers=tenant.headers("viewer")).status_code == 403


def test_export_masks_pii_and_audience_lists_platform_ids(client, tenant: Tenant) -> None:
    for i in range(3):
        _push(client, tenant, f"E-{i}", i)
    seg = _segment(client, tenant, "导出", {"type": "attr", "field": "city", "op": "in", "value": ["杭州"]})
    r = client.get(f"/api/v1/segments/{seg['id']}/export.csv", headers=tenant.headers("analyst"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeffid,name,phone_masked")
    lines = text.strip().splitlines()
    assert len(lines) == 4
    assert "13800130001" not in text and "138****0001" in text
    audience = client.get(f"/api/v1/segments/{seg['id']}/audience.csv?source=wechat", headers=tenant.headers())
    rows = audience.text.strip().splitlines()
    assert rows[0] == "customer_id,source,kind,value" and sorted(r.split(",")[3] for r in rows[1:]) == [
        "oid-0",
        "oid-1",
        "oid-2",
    ]


def test_profile_describes_members(client, tenant: Tenant) -> None:
    for i in range(4):
        _push(client, tenant, f"P-{i}", i, total=10000 * (i + 1))
    client.post("/api/v1/rfm/refresh", headers=tenant.headers())
    seg = _segment(client, tenant, "画像", {"type": "attr", "field": "orders_count", "op": "gte", "value": 1})
    p = client.get(f"/api/v1/segments/{seg['id']}/profile", headers=tenant.headers()).json()
    assert p["size"] == 4 and p["buyers"] == 4 and p["total_spent"] == 100000 and p["avg_spent"] == 25000
    assert p["cities"][0] == {"key": "杭州", "label": "杭州", "count": 4, "amount": 100000}
    assert p["categories"][0]["key"] == "绿茶" and p["categories"][0]["count"] == 4
    assert sum(g["count"] for g in p["rfm"]) == 4


def test_merge_moves_activity_and_the_loser_leaves_segments(client, db: Session, tenant: Tenant) -> None:
    # Two customers on different platforms, later linked by the same verified phone.
    a = {"identities": [{"source": "taobao", "kind": "buyer_nick", "value": "tb-a"}], "name": "甲"}
    b = {"identities": [{"source": "youzan", "kind": "customer_id", "value": "yz-b"}], "name": "乙"}
    for oid, cust in (("M-1", a), ("M-2", b)):
        r = client.post("/api/v1/orders", json=order(oid, customer=cust), headers=tenant.headers())
        assert r.status_code in (200, 201), r.text
    seg = _segment(client, tenant, "绿茶两单", GREEN_TWICE)
    one = _segment(
        client, tenant, "绿茶一单", {"type": "purchase", "category": "绿茶", "op": "eq", "value": 1, "metric": "count"}
    )
    assert seg["members_count"] == 0 and one["members_count"] == 2
    phone = {"phone": "13900139000", "phone_verified": True}
    for oid, cust in (("M-3", {**a, **phone}), ("M-4", {**b, **phone})):
        r = client.post(
            "/api/v1/orders",
            json=order(oid, customer=cust, status="pending_payment", total=100),
            headers=tenant.headers(),
        )
        assert r.status_code in (200, 201), r.text
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=tenant.headers()).json()["members_count"] == 1
    assert client.get(f"/api/v1/segments/{one['id']}", headers=tenant.headers()).json()["members_count"] == 0
    left = db.scalars(
        select(SegmentChange).where(SegmentChange.segment_id == one["id"], SegmentChange.entered.is_(False))
    )
    assert len(left.all()) == 2
    assert db.scalar(select(func.count()).select_from(CustomerChange)) > 0


def test_discovery_proposes_named_clusters_and_saves_one(client, db: Session, tenant: Tenant) -> None:
    for i in range(40):
        big = i < 10
        for k in range(4 if big else 1):
            _push(client, tenant, f"D-{i}-{k}", i, total=80000 if big else 3000)
    r = client.post("/api/v1/segments/discover", json={}, headers=tenant.headers("analyst"))
    assert r.status_code == 202, r.text
    run = _job(db, r.json()["id"])
    assert run.status == "succeeded", run.error
    result = run.result
    assert result["customers"] == 40 and 3 <= result["k"] <= 7
    clusters = result["clusters"]
    assert sum(c["size"] for c in clusters) == 40
    top = clusters[0]  # sorted by spend: the big spenders come first
    assert top["avg_spent"] >= 200000 and top["name_zh"] and top["name_en"]
    r = client.post(
        "/api/v1/segments/discover/save",
        json={"job_id": run.id, "cluster": top["cluster"], "name": top["name_zh"]},
        headers=tenant.headers("operator"),
    )
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["kind"] == "static" and saved["members_count"] == top["size"]
    r = client.post(f"/api/v1/segments/{saved['id']}/refresh", headers=tenant.headers())
    assert r.status_code == 422  # a discovered snapshot has no rule to re-run


def test_nightly_job_recomputes_date_dependent_features(client, db: Session, tenant: Tenant) -> None:
    from shequn.audience import tasks

    for i in range(3):
        _push(client, tenant, f"N-{i}", i)
    tasks._nightly()
    tasks._nightly()  # the same day twice queues one job per workspace (idempotency key)
    runs = db.scalars(select(JobRun).where(JobRun.kind == tasks.NIGHTLY_JOB)).all()
    assert len(runs) == 1 and runs[0].status == "succeeded", runs[0].error
    assert runs[0].result["rfm"] == 3
    # RFM moved every score, so the epoch bump queued a full segment refresh.
    assert db.scalars(select(JobRun).where(JobRun.kind == "audience.refresh_segments")).all()
