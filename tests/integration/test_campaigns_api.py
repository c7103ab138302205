"""Campaigns over the operator API: validation naming fields (zh-CN/en), status by time, targets in the
workspace, publish/cancel, audit, roles and workspace isolation (real app, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.core.clock import utcnow
from shequn.identity.models import AuditLog
from shequn.promotions.campaigns import service
from tests.conftest import Tenant

API = "/api/v1/campaigns"
CITY_RULE = {"type": "and", "rules": [{"type": "attr", "field": "city", "op": "in", "value": ["杭州"]}]}


def body(**extra: Any) -> dict[str, Any]:
    """A valid campaign running from an hour ago for a week unless told otherwise."""
    start = extra.pop("starts_at", utcnow() - timedelta(hours=1))
    return {
        "name": "双11 茶友节",
        "goal": "conversion",
        "starts_at": start.isoformat(),
        "ends_at": extra.pop("ends_at", start + timedelta(days=7)).isoformat(),
        "budget_fen": 500_000,
        "channels": ["wecom_group", "h5"],
        "kpis": {"participants": 1000, "gmv_fen": 5_000_000},
        **extra,
    }


def make(client: Any, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    r = client.post(API, json=body(**extra), headers=tenant.headers())
    assert r.status_code == 201, r.text
    return r.json()


def targets(db: Session, tenant: Tenant) -> tuple[int, int]:
    """A segment and a community of the tenant."""
    seg = audience_service.create_segment(db, workspace_id=tenant.workspace_id, name="杭州茶友", rule=CITY_RULE)
    com = community_service.create_community(db, workspace_id=tenant.workspace_id, name="白茶群")
    db.commit()
    return seg.id, com.id


def test_create_read_list_and_choices(client, db: Session, tenant: Tenant) -> None:
    seg_id, com_id = targets(db, tenant)
    c = make(client, tenant, target_segment_id=seg_id, target_community_id=com_id, channels=["h5", "h5", "sms"])
    assert c["status"] == "draft" and c["spent_fen"] == 0 and c["channels"] == ["h5", "sms"]
    assert client.get(f"{API}/{c['id']}", headers=tenant.headers("viewer")).json()["name"] == "双11 茶友节"
    listed = client.get(API, headers=tenant.headers("viewer")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == c["id"]
    choices = service.list_campaign_choices(db, workspace_id=tenant.workspace_id)
    assert choices == [(c["id"], "双11 茶友节")]
    got = service.get_campaign(db, workspace_id=tenant.workspace_id, campaign_id=c["id"])
    assert got.target_segment_id == seg_id
    actions = db.scalars(select(AuditLog.action).where(AuditLog.workspace_id == tenant.workspace_id)).all()
    assert "campaign.create" in actions


def test_validation_names_each_field_in_both_locales(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    foreign_seg, foreign_com = targets(db, other_tenant)
    start = utcnow()
    bad = body(
        name="  ",
        goal="fame",
        starts_at=start,
        ends_at=start - timedelta(days=1),
        budget_fen=-1,
        target_segment_id=foreign_seg,
        target_community_id=foreign_com,
        channels=["fax"],
        kpis={"likes": 5},
    )
    r = client.post(API, json=bad, headers=tenant.headers(**{"Accept-Language": "en"}))
    assert r.status_code == 422
    err = r.json()
    assert err["code"] == "campaign_invalid"
    fields = {d["field"] for d in err["details"]}
    assert fields == {
        "name",
        "goal",
        "ends_at",
        "budget_fen",
        "target_segment_id",
        "target_community_id",
        "channels",
        "kpis",
    }
    assert "Target segment" in err["message"] and "End" in err["message"]
    zh = client.post(API, json=bad, headers=tenant.headers(**{"Accept-Language": "zh-CN"})).json()
    assert "目标人群" in zh["message"] and "结束时间" in zh["message"] and "预算" in zh["message"]
    naive = client.post(API, json={**body(), "starts_at": "2026-11-01T10:00:00"}, headers=tenant.headers())
    assert naive.status_code == 422 and naive.json()["details"][0]["field"] == "starts_at"
    ancient = {**body(), "starts_at": "0001-01-01T00:00:00+00:01"}
    r = client.post(API, json=ancient, headers=tenant.headers())
    assert r.status_code == 422 and [d["field"] for d in r.json()["details"]] == ["starts_at"]
    negative_kpi = client.post(API, json=body(kpis={"claims": -3}), headers=tenant.headers()).json()
    assert [d["field"] for d in negative_kpi["details"]] == ["kpis"]
    assert client.get(API, headers=tenant.headers()).json()["total"] == 0


def test_status_follows_dates_once_published(client, db: Session, tenant: Tenant) -> None:
    now = utcnow()
    future = make(client, tenant, name="年货节", starts_at=now + timedelta(days=3))
    running = make(client, tenant, name="茶友节", starts_at=now - timedelta(days=1))
    past = make(client, tenant, name="618", starts_at=now - timedelta(days=30), ends_at=now - timedelta(days=20))
    h = tenant.headers()
    assert {c["status"] for c in (future, running, past)} == {"draft"}
    statuses = {
        c["name"]: client.post(f"{API}/{c['id']}/publish", headers=h).json()["status"] for c in (future, running, past)
    }
    assert statuses == {"年货节": "scheduled", "茶友节": "running", "618": "ended"}
    again = client.post(f"{API}/{running['id']}/publish", headers=h)
    assert again.status_code == 409 and again.json()["code"] == "campaign_bad_transition"
    for status, names in {"scheduled": ["年货节"], "running": ["茶友节"], "ended": ["618"], "draft": []}.items():
        got = client.get(API, params={"status": status}, headers=h).json()["items"]
        assert [c["name"] for c in got] == names
    # moving the dates moves the status
    moved = client.patch(
        f"{API}/{future['id']}",
        json={"starts_at": (now - timedelta(hours=1)).isoformat()},
        headers=h,
    ).json()
    assert moved["status"] == "running"
    cancelled = client.post(f"{API}/{running['id']}/cancel", headers=h).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    closed = client.patch(f"{API}/{running['id']}", json={"name": "x"}, headers=h)
    assert closed.status_code == 409 and closed.json()["code"] == "campaign_closed"
    assert client.post(f"{API}/{running['id']}/cancel", headers=h).status_code == 409
    published_at_once = make(client, tenant, name="会员日", publish=True)
    assert published_at_once["status"] == "running"
    choices = [name for _, name in service.list_campaign_choices(db, workspace_id=tenant.workspace_id)]
    assert "茶友节" not in choices and set(choices) == {"年货节", "618", "会员日"}  # cancelled ones are not offered


def test_create_replayed_with_the_same_idempotency_key_makes_one(client, tenant: Tenant) -> None:
    h = tenant.headers(**{"Idempotency-Key": "campaign-create-1"})
    payload = body()
    first = client.post(API, json=payload, headers=h)
    again = client.post(API, json=payload, headers=h)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert client.get(API, headers=tenant.headers()).json()["total"] == 1
    unknown = client.patch(f"{API}/{first.json()['id']}", json={"colour": "red"}, headers=tenant.headers())
    assert unknown.status_code == 422 and unknown.json()["details"][0]["field"] == "colour"


def test_update_checks_fields_and_clears_targets(client, db: Session, tenant: Tenant) -> None:
    seg_id, com_id = targets(db, tenant)
    c = make(client, tenant, target_segment_id=seg_id, target_community_id=com_id)
    h = tenant.headers()
    r = client.patch(f"{API}/{c['id']}", json={"goal": "nope", "kpis": {"new_members": 200}}, headers=h)
    assert r.status_code == 422 and [d["field"] for d in r.json()["details"]] == ["goal"]
    r = client.patch(f"{API}/{c['id']}", json={"ends_at": c["starts_at"]}, headers=h)
    assert [d["field"] for d in r.json()["details"]] == ["ends_at"]
    r = client.patch(f"{API}/{c['id']}", json={"budget_fen": None, "target_segment_id": None}, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["budget_fen"] is None and got["target_segment_id"] is None and got["target_community_id"] == com_id
    assert got["name"] == "双11 茶友节"


def test_budget_cannot_drop_below_spend(client, db: Session, tenant: Tenant) -> None:
    c = make(client, tenant, budget_fen=10_000)
    service.charge_budget(db, workspace_id=tenant.workspace_id, campaign_id=c["id"], amount_fen=6_000)
    db.commit()
    r = client.patch(f"{API}/{c['id']}", json={"budget_fen": 5_000}, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "budget_fen"
    r = client.patch(f"{API}/{c['id']}", json={"budget_fen": 6_000}, headers=tenant.headers())
    assert r.status_code == 200 and r.json()["budget_fen"] == 6_000 and r.json()["spent_fen"] == 6_000


def test_viewer_cannot_write(client, tenant: Tenant) -> None:
    c = make(client, tenant)
    v = tenant.headers("viewer")
    assert client.post(API, json=body(), headers=v).status_code == 403
    assert client.patch(f"{API}/{c['id']}", json={"name": "x"}, headers=v).status_code == 403
    assert client.post(f"{API}/{c['id']}/publish", headers=v).status_code == 403
    assert client.post(f"{API}/{c['id']}/cancel", headers=v).status_code == 403
    assert client.get(f"{API}/{c['id']}", headers=v).json()["name"] == "双11 茶友节"


def test_workspace_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    c = make(client, tenant)
    o = other_tenant.headers()
    assert client.get(f"{API}/{c['id']}", headers=o).status_code == 404
    assert client.patch(f"{API}/{c['id']}", json={"name": "x"}, headers=o).status_code == 404
    assert client.post(f"{API}/{c['id']}/publish", headers=o).status_code == 404
    assert client.post(f"{API}/{c['id']}/cancel", headers=o).status_code == 404
    assert client.get(API, headers=o).json()["total"] == 0
    assert service.list_campaign_choices(db, workspace_id=other_tenant.workspace_id) == []
    service.charge_budget(db, workspace_id=other_tenant.workspace_id, campaign_id=c["id"], amount_fen=0)
    assert client.get(f"{API}/{c['id']}", headers=tenant.headers()).json()["status"] == "draft"


def test_migration_matches_the_model(backend: str) -> None:
    """Migration 0016 builds exactly the campaign table the model describes."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shequn.core.db import get_engine
    from shequn.models_registry import Base

    with get_engine().connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff = compare_metadata(ctx, Base.metadata)
    mine = [d for d in diff if "promo_campaigns" in repr(d)]
    assert mine == []
