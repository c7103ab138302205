"""Tracked-event ingest end to end: resolution by id or identity, idempotent retries, field-level
errors with all-or-nothing batches, activity fed to audience (segments, interests), isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.analytics.models import Event
from shequn.audience import service as audience_service
from shequn.audience.models import Customer, CustomerActivity, CustomerTag
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.core.clock import utcnow
from tests.conftest import Tenant
from tests.integration.test_tags import _ids, _push


def _event(event_id: str, name: str = "share", **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "name": name, "occurred_at": utcnow().isoformat(), **extra}


def _count(db: Session, workspace_id: int) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)) or 0


def _activity(db: Session, customer_id: int) -> list[tuple[str, str, int, int]]:
    db.expire_all()
    rows = db.execute(
        select(CustomerActivity.kind, CustomerActivity.ref, CustomerActivity.day, CustomerActivity.count)
        .where(CustomerActivity.customer_id == customer_id, CustomerActivity.kind.in_(("event", "engage")))
        .order_by(CustomerActivity.kind, CustomerActivity.ref)
    )
    return [(k, r, d, n) for k, r, d, n in rows]


def test_events_resolve_customers_and_retries_do_not_double_count(client, db: Session, tenant: Tenant) -> None:
    _push(client, tenant, "E-1", 1)
    _push(client, tenant, "E-2", 2)
    ids = _ids(db, tenant.workspace_id)
    when = utcnow() - timedelta(days=2)
    batch = {
        "events": [
            _event("ev-1", customer_id=ids["客户1"], occurred_at=when.isoformat(), props={"category": "绿茶"}),
            _event("ev-2", identity={"source": "wechat", "kind": "openid", "value": "oid-2"}, props={"page": "/a"}),
            _event("ev-3", "page_view", identity={"source": "wechat", "kind": "openid", "value": "stranger"}),
            _event("ev-4", "page_view"),  # anonymous
            _event("ev-1", customer_id=ids["客户1"]),  # the same event id again within the batch
            _event("ev-5", identity={"source": "phone", "kind": "phone", "value": "+86 138-0013-0001"}),
        ]
    }
    r = client.post("/api/v1/events", json=batch, headers=tenant.headers("operator"))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 1, "unresolved": 1}
    assert _count(db, tenant.workspace_id) == 5
    day = audience_service.epoch_day(when)
    today = audience_service.epoch_day(utcnow())
    assert _activity(db, ids["客户1"]) == [
        ("engage", "绿茶", day, 1),
        ("event", "share", day, 1),
        ("event", "share", today, 1),
    ]
    assert _activity(db, ids["客户2"]) == [("event", "share", today, 1)]
    stored = db.scalar(select(Event).where(Event.event_key == "ev-2"))
    assert stored is not None and stored.customer_id == ids["客户2"] and stored.props == {"page": "/a"}
    assert db.scalar(select(Event.customer_id).where(Event.event_key == "ev-3")) is None

    # A retried batch (say after a timeout) is all duplicates and changes nothing.
    r = client.post("/api/v1/events", json=batch, headers=tenant.headers("operator"))
    assert r.json() == {"accepted": 0, "duplicates": 6, "unresolved": 0}
    assert _count(db, tenant.workspace_id) == 5
    assert _activity(db, ids["客户2"]) == [("event", "share", today, 1)]

    # Segments see the events through the activity table.
    seg = client.post(
        "/api/v1/segments",
        json={"name": "分享者", "rule": {"type": "event", "event": "share", "days": 7, "op": "gte", "value": 2}},
        headers=tenant.headers(),
    )
    assert seg.status_code == 201, seg.text
    assert seg.json()["members_count"] == 1

    # Engagement feeds interests: 1 point a day old is ≥ 1.0 only while fresh; two engagements do it.
    more = {
        "events": [_event(f"eng-{k}", "read", customer_id=ids["客户2"], props={"category": "白茶"}) for k in range(2)]
    }
    assert client.post("/api/v1/events", json=more, headers=tenant.headers()).json()["accepted"] == 2
    audience_service.refresh_interests(db, workspace_id=tenant.workspace_id)
    db.commit()
    white = db.scalar(
        select(CustomerTag.weight).where(CustomerTag.customer_id == ids["客户2"], CustomerTag.source == "interest")
    )
    assert white == 2.0


def test_bad_events_are_rejected_with_field_errors_and_nothing_is_written(
    client, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    _push(client, tenant, "X-1", 1)
    ours = _ids(db, tenant.workspace_id)["客户1"]
    h = other_tenant.headers()
    good = _event("ok-1")
    cases: list[tuple[dict[str, Any], str]] = [
        (_event("b-1", ""), "events[1].name"),
        (_event("b-2", customer_id=ours), "events[1].customer_id"),  # another workspace's customer
        (_event("b-3", occurred_at="2026-01-01T10:00:00"), "events[1].occurred_at"),  # no time zone
        (_event("b-4", occurred_at=(utcnow() + timedelta(days=3)).isoformat()), "events[1].occurred_at"),
        (_event("b-5", identity={"source": "x", "kind": "phone_hash", "value": "abc"}), "events[1].identity.kind"),
        (
            _event("b-6", customer_id=1, identity={"source": "wechat", "kind": "openid", "value": "o"}),
            "events[1].identity",
        ),
        (_event("b-7", props={"category": "长" * 65}), "events[1].props.category"),
        (_event("b-8", props={"blob": "x" * 9000}), "events[1].props"),
        ({**_event("b-9"), "surprise": 1}, "events[1].surprise"),
        (_event("b\x00", "share"), "events[1].event_id"),
    ]
    for bad, field in cases:
        r = client.post("/api/v1/events", json={"events": [good, bad]}, headers=h)
        assert r.status_code == 422, (field, r.text)
        assert field in [d["field"] for d in r.json()["details"]], (field, r.json())
    assert _count(db, other_tenant.workspace_id) == 0  # all or nothing: the good event was not kept either
    too_many = {"events": [_event(f"n-{i}") for i in range(1001)]}
    assert client.post("/api/v1/events", json=too_many, headers=h).status_code == 422
    assert client.post("/api/v1/events", json={"events": []}, headers=h).status_code == 422
    assert (
        client.post("/api/v1/events", json={"events": [good]}, headers=other_tenant.headers("viewer")).status_code
        == 403
    )

    # Event ids are scoped by workspace: the same id in two workspaces is two events.
    assert client.post("/api/v1/events", json={"events": [good]}, headers=h).json()["accepted"] == 1
    assert client.post("/api/v1/events", json={"events": [good]}, headers=tenant.headers()).json()["accepted"] == 1
    assert _activity(db, ours) == []  # the other workspace's event never touched our customer


def test_deleting_a_customer_keeps_its_events(client, db: Session, tenant: Tenant) -> None:
    people = [CustomerIn(identities=[IdentityIn("wechat", "openid", "gone")], name="走了")]
    cid = audience_service.resolve_customers(db, workspace_id=tenant.workspace_id, people=people).ids[0]
    db.commit()
    ident = {"source": "wechat", "kind": "openid", "value": "gone"}
    r = client.post("/api/v1/events", json={"events": [_event("d-1", identity=ident)]}, headers=tenant.headers())
    assert r.json() == {"accepted": 1, "duplicates": 0, "unresolved": 0}
    assert cid is not None
    db.execute(Customer.__table__.delete().where(Customer.id == cid))
    db.commit()
    db.expire_all()
    kept = db.scalar(select(Event).where(Event.event_key == "d-1"))
    assert kept is not None and kept.customer_id is None  # ON DELETE SET NULL
