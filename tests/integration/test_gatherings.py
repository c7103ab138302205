"""Gatherings over the operator API: lifecycle, registration and waitlist, check-in, reminders, feedback,
attendance, export, roles and workspace isolation (real app, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer
from shequn.community.gatherings import service
from shequn.community.gatherings.models import (
    Gathering,
    GatheringCheckin,
    GatheringRegistration,
    GatheringReminder,
)
from shequn.core import signals
from shequn.core.clock import utcnow
from tests.conftest import Tenant

API = "/api/v1/gatherings"


def people(db: Session, tenant: Tenant, n: int, prefix: str = "茶友") -> list[int]:
    """n customers of the tenant (phones masked as the audience layer stores them)."""
    rows = [
        Customer(workspace_id=tenant.workspace_id, name=f"{prefix}{i}", phone_masked=f"138****{i:04d}")
        for i in range(n)
    ]
    db.add_all(rows)
    db.commit()
    return [c.id for c in rows]


def iso(dt: datetime) -> str:
    return dt.isoformat()


def make_gathering(client: Any, tenant: Tenant, *, publish: bool = True, **extra: Any) -> dict[str, Any]:
    """A meetup starting in 30 minutes (check-in already open) unless told otherwise."""
    start = extra.pop("starts_at", utcnow() + timedelta(minutes=30))
    body = {
        "title": "白茶品鉴会",
        "mode": "offline",
        "format": "meetup",
        "city": "上海",
        "address": "南京西路 1266 号",
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=2)),
        **extra,
    }
    r = client.post(API, json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["status"] == "draft"
    if publish:
        r = client.post(f"{API}/{g['id']}/publish", headers=tenant.headers())
        assert r.status_code == 200, r.text
        g = r.json()
    return g


def reg(client: Any, tenant: Tenant, gid: int, cid: int, **headers: str) -> Any:
    return client.post(f"{API}/{gid}/registrations", json={"customer_id": cid}, headers=tenant.headers(**headers))


def test_lifecycle_validation_and_transitions(client, tenant: Tenant) -> None:
    start = utcnow() + timedelta(days=2)
    bad = client.post(
        API,
        json={"title": "x", "mode": "online", "format": "meetup", "starts_at": iso(start), "ends_at": iso(start)},
        headers=tenant.headers(),
    )
    assert bad.status_code == 422
    naive = client.post(
        API,
        json={"title": "x", "starts_at": "2026-12-01T10:00:00", "ends_at": "2026-12-01T12:00:00"},
        headers=tenant.headers(),
    )
    assert naive.status_code == 422  # times must carry their zone
    backwards = client.post(
        API,
        json={"title": "x", "starts_at": iso(start), "ends_at": iso(start - timedelta(hours=1))},
        headers=tenant.headers(),
    )
    assert backwards.status_code == 422 and backwards.json()["details"][0]["field"] == "ends_at"

    online = client.post(
        API,
        json={
            "title": "直播沙龙",
            "mode": "online",
            "format": "live",
            "starts_at": iso(start),
            "ends_at": iso(start + timedelta(hours=1)),
        },
        headers=tenant.headers(),
    ).json()
    # An online gathering cannot be published without a link to join.
    r = client.post(f"{API}/{online['id']}/publish", headers=tenant.headers())
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "join_url"
    r = client.patch(f"{API}/{online['id']}", json={"join_url": "https://live.example.com/x"}, headers=tenant.headers())
    assert r.status_code == 200
    assert client.post(f"{API}/{online['id']}/publish", headers=tenant.headers()).json()["status"] == "published"
    again = client.post(f"{API}/{online['id']}/publish", headers=tenant.headers())
    assert again.status_code == 409 and again.json()["code"] == "gathering_bad_transition"
    r = client.post(f"{API}/{online['id']}/cancel", json={"reason": "嘉宾临时有事"}, headers=tenant.headers())
    assert r.json()["status"] == "cancelled" and r.json()["cancel_reason"] == "嘉宾临时有事"
    assert client.patch(f"{API}/{online['id']}", json={"title": "y"}, headers=tenant.headers()).status_code == 409

    listed = client.get(API, params={"status": "cancelled"}, headers=tenant.headers()).json()
    assert [g["id"] for g in listed["items"]] == [online["id"]]
    assert client.get(f"{API}/{online['id']}", headers=tenant.headers(lang="en")).json()["title"] == "直播沙龙"


def test_register_double_registration_and_waitlist_promotion_order(client, db: Session, tenant: Tenant) -> None:
    g = make_gathering(client, tenant, capacity=2, starts_at=utcnow() + timedelta(days=3))
    a, b, c, d, e = people(db, tenant, 5)
    first = reg(client, tenant, g["id"], a)
    assert first.status_code == 201 and first.json()["already_registered"] is False
    ticket = first.json()["registration"]
    assert ticket["status"] == "confirmed" and len(ticket["code"]) == 6
    assert not set(ticket["code"]) & set("0O1IL")

    double = reg(client, tenant, g["id"], a)
    assert double.status_code == 200 and double.json()["already_registered"] is True
    assert double.json()["registration"]["id"] == ticket["id"]

    second = reg(client, tenant, g["id"], b).json()["registration"]
    assert second["status"] == "confirmed"
    waits = [reg(client, tenant, g["id"], x).json()["registration"] for x in (c, d, e)]
    assert [w["status"] for w in waits] == ["waitlisted"] * 3
    assert [w["waitlist_position"] for w in waits] == [1, 2, 3]

    # b cancels: c (first in line) moves up; then a cancels: d moves up; e stays waiting, now first.
    r = client.post(f"{API}/{g['id']}/registrations/{second['id']}/cancel", headers=tenant.headers())
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = client.post(f"{API}/{g['id']}/registrations/{ticket['id']}/cancel", headers=tenant.headers())
    assert r.json()["cancelled_by"] == "operator"
    rows = client.get(f"{API}/{g['id']}/registrations", headers=tenant.headers()).json()["items"]
    status = {row["customer_id"]: (row["status"], row["waitlist_position"]) for row in rows}
    assert status == {
        a: ("cancelled", None),
        b: ("cancelled", None),
        c: ("confirmed", None),
        d: ("confirmed", None),
        e: ("waitlisted", 1),
    }
    got = client.get(f"{API}/{g['id']}", headers=tenant.headers()).json()
    assert (got["seats_taken"], got["waitlist_count"]) == (2, 1)
    promoted = [row for row in rows if row["promoted_at"]]
    assert {row["customer_id"] for row in promoted} == {c, d}

    # Cancelling twice changes nothing; a cancelled customer can come back (at the back of the queue).
    again = client.post(f"{API}/{g['id']}/registrations/{ticket['id']}/cancel", headers=tenant.headers())
    assert again.status_code == 200
    back = reg(client, tenant, g["id"], a).json()
    assert back["already_registered"] is False and back["registration"]["status"] == "waitlisted"
    assert back["registration"]["waitlist_position"] == 2 and back["registration"]["code"] == ticket["code"]

    # Raising the capacity promotes in order at once.
    r = client.patch(f"{API}/{g['id']}", json={"capacity": 4}, headers=tenant.headers())
    assert (r.json()["seats_taken"], r.json()["waitlist_count"]) == (4, 0)
    low = client.patch(f"{API}/{g['id']}", json={"capacity": 1}, headers=tenant.headers())
    assert low.status_code == 409 and low.json()["code"] == "gathering_capacity_below_confirmed"
    assert db.scalar(select(func.count()).select_from(GatheringRegistration)) == 5


def test_full_without_waitlist_and_closed_windows(client, db: Session, tenant: Tenant) -> None:
    a, b = people(db, tenant, 2)
    g = make_gathering(client, tenant, capacity=1, waitlist_enabled=False, starts_at=utcnow() + timedelta(days=1))
    assert reg(client, tenant, g["id"], a).status_code == 201
    full = reg(client, tenant, g["id"], b)
    assert full.status_code == 409 and full.json()["code"] == "gathering_full"
    assert "不设候补" in full.json()["message"]
    got = client.get(f"{API}/{g['id']}", headers=tenant.headers()).json()
    assert got["seats_taken"] == 1 and got["waitlist_count"] == 0  # the refused attempt left nothing behind

    draft = make_gathering(client, tenant, publish=False)
    assert reg(client, tenant, draft["id"], a).json()["code"] == "gathering_not_open"
    later = make_gathering(
        client,
        tenant,
        starts_at=utcnow() + timedelta(days=5),
        registration_opens_at=iso(utcnow() + timedelta(days=1)),
    )
    assert reg(client, tenant, later["id"], a).json()["code"] == "registration_not_open"
    closed = make_gathering(
        client,
        tenant,
        starts_at=utcnow() + timedelta(days=5),
        registration_closes_at=iso(utcnow() + timedelta(days=1)),
    )
    assert service.check_can_register is not None
    gathering = db.get(Gathering, closed["id"])
    assert gathering is not None
    gathering.registration_closes_at = utcnow() - timedelta(minutes=1)
    db.commit()
    assert reg(client, tenant, closed["id"], a).json()["code"] == "registration_closed"


def test_check_in_by_code_and_token_wrong_reused_waitlisted(client, db: Session, tenant: Tenant) -> None:
    a, b, c = people(db, tenant, 3)
    g = make_gathering(client, tenant, capacity=2)
    ra = reg(client, tenant, g["id"], a).json()["registration"]
    rb = reg(client, tenant, g["id"], b).json()["registration"]
    rc = reg(client, tenant, g["id"], c).json()["registration"]
    assert rc["status"] == "waitlisted"
    received: list[signals.Signal] = []
    signals.connect("gathering.checked_in", received.append)
    try:
        wrong = client.post(f"{API}/{g['id']}/checkins", json={"code": "ZZZZZZ"}, headers=tenant.headers())
        assert wrong.status_code == 422 and wrong.json()["code"] == "checkin_code_invalid"
        typed = ra["code"].lower()[:3] + "-" + ra["code"].lower()[3:]  # staff type it any which way
        ok = client.post(f"{API}/{g['id']}/checkins", json={"code": typed}, headers=tenant.headers())
        assert ok.status_code == 200, ok.text
        assert ok.json()["method"] == "code" and ok.json()["registration"]["checked_in_at"]
        reused = client.post(f"{API}/{g['id']}/checkins", json={"code": ra["code"]}, headers=tenant.headers())
        assert reused.status_code == 409 and reused.json()["code"] == "already_checked_in"
        assert reused.json()["details"]["name"] == "茶友0"

        regb = db.get(GatheringRegistration, rb["id"])
        assert regb is not None
        token = service.ticket_token(regb)
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        bad = client.post(f"{API}/{g['id']}/checkins", json={"token": forged}, headers=tenant.headers())
        assert bad.json()["code"] == "checkin_code_invalid"
        scanned = client.post(f"{API}/{g['id']}/checkins", json={"token": token}, headers=tenant.headers())
        assert scanned.status_code == 200 and scanned.json()["method"] == "qr"

        waiting = client.post(f"{API}/{g['id']}/checkins", json={"code": rc["code"]}, headers=tenant.headers())
        assert waiting.status_code == 409 and waiting.json()["code"] == "registration_not_confirmed"
        both = client.post(f"{API}/{g['id']}/checkins", json={"code": "A", "token": "1.x"}, headers=tenant.headers())
        assert both.status_code == 422
    finally:
        signals.disconnect("gathering.checked_in", received.append)
    assert db.scalar(select(func.count()).select_from(GatheringCheckin)) == 2
    assert [s.payload["customer_id"] for s in received] == [a, b]
    # A checked-in person cannot cancel any more.
    late = client.post(f"{API}/{g['id']}/registrations/{ra['id']}/cancel", headers=tenant.headers())
    assert late.json()["code"] == "registration_cancel_not_allowed"


def test_check_in_window(client, db: Session, tenant: Tenant) -> None:
    (a,) = people(db, tenant, 1)
    g = make_gathering(client, tenant, starts_at=utcnow() + timedelta(hours=5))
    code = reg(client, tenant, g["id"], a).json()["registration"]["code"]
    early = client.post(f"{API}/{g['id']}/checkins", json={"code": code}, headers=tenant.headers())
    assert early.status_code == 409 and early.json()["code"] == "checkin_not_open"
    with_key = service.check_window
    gathering = db.get(Gathering, g["id"])
    assert gathering is not None
    try:
        with_key(gathering, gathering.ends_at + timedelta(minutes=1))
    except Exception as exc:
        assert getattr(exc, "code", "") == "checkin_closed"
    else:
        raise AssertionError("check-in after the end must be refused")


def test_reminders_recorded_exactly_once(client, db: Session, tenant: Tenant) -> None:
    a, b, c = people(db, tenant, 3)
    start = utcnow() + timedelta(hours=20)
    g = make_gathering(client, tenant, capacity=2, starts_at=start)
    for x in (a, b, c):
        reg(client, tenant, g["id"], x)
    far = make_gathering(client, tenant, starts_at=utcnow() + timedelta(days=3))
    reg(client, tenant, far["id"], a)
    due: list[signals.Signal] = []
    signals.connect("gathering.reminder_due", due.append)
    try:
        assert service.record_due_reminders(db) == 2  # confirmed only; the waitlisted c gets none
        db.commit()
        assert service.record_due_reminders(db) == 0
        db.commit()
        # The sweep as the job runs it (immediate mode in tests): still nothing new.
        from shequn.community.gatherings.tasks import run_reminders

        assert run_reminders()["reminders"] == 0
        assert service.record_due_reminders(db, now=start - timedelta(minutes=50)) == 2
        db.commit()
        assert service.record_due_reminders(db, now=start - timedelta(minutes=10)) == 0
        db.commit()
    finally:
        signals.disconnect("gathering.reminder_due", due.append)
    kinds = sorted((s.payload["customer_id"], s.payload["kind"]) for s in due)
    assert kinds == sorted([(a, "24h"), (b, "24h"), (a, "1h"), (b, "1h")])
    assert db.scalar(select(func.count()).select_from(GatheringReminder)) == 4
    report = client.get(f"{API}/{g['id']}/report", headers=tenant.headers()).json()
    assert report["reminders"] == [
        {"kind": "24h", "due": 2, "sent": 0, "failed": 0},
        {"kind": "1h", "due": 2, "sent": 0, "failed": 0},
    ]
    first = db.scalars(select(GatheringReminder.id).order_by(GatheringReminder.id)).first()
    assert first is not None
    assert service.mark_reminder(db, workspace_id=tenant.workspace_id, reminder_id=first, status="sent")
    db.commit()
    report = client.get(f"{API}/{g['id']}/report", headers=tenant.headers()).json()
    assert report["reminders"][0]["sent"] == 1


def test_attendance_feedback_and_export(client, db: Session, tenant: Tenant) -> None:
    a, b, c, d = people(db, tenant, 4)
    g = make_gathering(client, tenant)
    codes = {x: reg(client, tenant, g["id"], x).json()["registration"] for x in (a, b, c, d)}
    for x in (a, b, c):
        client.post(f"{API}/{g['id']}/checkins", json={"code": codes[x]["code"]}, headers=tenant.headers())
    # d does not come: not a no-show until the gathering is over.
    before = client.get(f"{API}/{g['id']}/report", headers=tenant.headers()).json()["attendance"]
    assert (before["checked_in"], before["no_shows"]) == (3, 0)

    ws = tenant.workspace_id
    with_rating = {a: 5, b: 4, c: 2}
    for x, stars in with_rating.items():
        service.give_feedback(db, workspace_id=ws, gathering_id=g["id"], customer_id=x, rating=stars, comment="好")
    db.commit()
    for x, code in ((a, "feedback_exists"), (d, "feedback_not_allowed")):
        try:
            service.give_feedback(db, workspace_id=ws, gathering_id=g["id"], customer_id=x, rating=5)
        except Exception as exc:
            assert getattr(exc, "code", "") == code
            db.rollback()
        else:
            raise AssertionError(code)

    gathering = db.get(Gathering, g["id"])
    assert gathering is not None
    gathering.starts_at, gathering.ends_at = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=1)
    db.commit()
    assert service.finish_ended(db) == 1
    db.commit()
    report = client.get(f"{API}/{g['id']}/report", headers=tenant.headers()).json()
    assert report["attendance"] == {
        "registered": 4,
        "confirmed": 4,
        "waitlisted": 0,
        "cancelled": 0,
        "late_cancellations": 0,
        "checked_in": 3,
        "no_shows": 1,
        "attendance_rate": 0.75,
    }
    fb = report["feedback"]
    assert fb["count"] == 3 and fb["average"] == 3.67 and fb["nps"] == 0 and fb["response_rate"] == 1.0
    assert fb["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert client.get(f"{API}/{g['id']}", headers=tenant.headers()).json()["status"] == "finished"
    assert len(client.get(f"{API}/{g['id']}/feedback", headers=tenant.headers()).json()) == 3

    csv_text = client.get(f"{API}/{g['id']}/registrations.csv", headers=tenant.headers()).text
    lines = csv_text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("registration_id,name,phone_masked,status")
    assert len(lines) == 5 and "138****0000" in csv_text and "茶友0" in csv_text
    analyst = client.get(f"{API}/{g['id']}/registrations.csv", headers=tenant.headers("analyst"))
    assert analyst.status_code == 200
    assert client.get(f"{API}/{g['id']}/registrations.csv", headers=tenant.headers("viewer")).status_code == 403


def test_late_cancellation_counts(client, db: Session, tenant: Tenant) -> None:
    a, b = people(db, tenant, 2)
    g = make_gathering(client, tenant, starts_at=utcnow() + timedelta(hours=3))
    ra = reg(client, tenant, g["id"], a).json()["registration"]
    reg(client, tenant, g["id"], b)
    r = client.post(f"{API}/{g['id']}/registrations/{ra['id']}/cancel", headers=tenant.headers())
    assert r.json()["late_cancel"] is True
    att = client.get(f"{API}/{g['id']}/report", headers=tenant.headers()).json()["attendance"]
    assert (att["cancelled"], att["late_cancellations"]) == (1, 1)


def test_retry_with_idempotency_key_registers_once(client, db: Session, tenant: Tenant) -> None:
    (a,) = people(db, tenant, 1)
    g = make_gathering(client, tenant, capacity=5)
    first = reg(client, tenant, g["id"], a, **{"Idempotency-Key": "reg-1"})
    again = reg(client, tenant, g["id"], a, **{"Idempotency-Key": "reg-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    assert client.get(f"{API}/{g['id']}", headers=tenant.headers()).json()["seats_taken"] == 1


def test_roles_and_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    (a,) = people(db, tenant, 1)
    (z,) = people(db, other_tenant, 1)
    g = make_gathering(client, tenant)
    gid = g["id"]
    assert client.get(f"{API}/{gid}", headers=tenant.headers("viewer")).status_code == 200
    start = utcnow() + timedelta(days=1)
    body = {
        "title": "t",
        "city": "杭州",
        "address": "x",
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=1)),
    }
    assert client.post(API, json=body, headers=tenant.headers("viewer")).status_code == 403
    assert client.post(API, json=body, headers=tenant.headers("analyst")).status_code == 403
    assert client.post(API, json=body, headers=tenant.headers("operator")).status_code == 201
    assert reg(client, tenant, gid, a, Authorization=f"Bearer {tenant.tokens['viewer']}").status_code == 403

    code = reg(client, tenant, gid, a).json()["registration"]["code"]
    other = other_tenant.headers()
    for method, path, payload in (
        ("get", f"{API}/{gid}", None),
        ("patch", f"{API}/{gid}", {"title": "hijack"}),
        ("post", f"{API}/{gid}/publish", None),
        ("post", f"{API}/{gid}/cancel", None),
        ("get", f"{API}/{gid}/registrations", None),
        ("post", f"{API}/{gid}/checkins", {"code": code}),
        ("get", f"{API}/{gid}/report", None),
        ("get", f"{API}/{gid}/registrations.csv", None),
    ):
        r = getattr(client, method)(path, headers=other, **({"json": payload} if payload is not None else {}))
        assert r.status_code == 404, (method, path, r.status_code)
    # Another workspace's customer cannot be registered here, nor this one's there.
    assert reg(client, tenant, gid, z).status_code == 404
    assert client.get(API, headers=other).json()["total"] == 0
    gathering = db.get(Gathering, gid)
    assert gathering is not None and gathering.title == "白茶品鉴会" and gathering.status == "published"


def test_demo_gatherings(db: Session, tenant: Tenant) -> None:
    people(db, tenant, 30)
    made = service.ensure_demo_gatherings(db, workspace_id=tenant.workspace_id)
    db.commit()
    assert made["gatherings"] == 3
    assert service.ensure_demo_gatherings(db, workspace_id=tenant.workspace_id)["gatherings"] == 0
    rows, total = service.list_gatherings(db, workspace_id=tenant.workspace_id)
    assert total == 3
    by_title = {g.title: g for g in rows}
    tasting = by_title[service.ensure_demo_gatherings.__globals__["TASTING_TITLE"]]
    assert (tasting.seats_taken, tasting.waitlist_count) == (8, 4)
    past = by_title[service.ensure_demo_gatherings.__globals__["PAST_TITLE"]]
    att = service.attendance(db, workspace_id=tenant.workspace_id, gathering_id=past.id)
    assert past.status == "finished" and att.checked_in > 0 and att.no_shows >= 0
    assert service.feedback_summary(db, workspace_id=tenant.workspace_id, gathering_id=past.id).count > 0
    assert datetime.now(UTC) < by_title[service.ensure_demo_gatherings.__globals__["SALON_TITLE"]].starts_at


def test_demo_step_of_the_community_demo_job(db: Session, tenant: Tenant) -> None:
    from shequn.community import service as community_service
    from shequn.community import tasks as community_tasks
    from shequn.core.jobs import enqueue_job
    from shequn.core.models import JobRun

    people(db, tenant, 80)
    enqueue_job(db, workspace_id=tenant.workspace_id, kind=community_tasks.DEMO_JOB, params={"scale": 0.5})
    db.commit()
    db.expire_all()
    job = db.scalars(select(JobRun).where(JobRun.kind == community_tasks.DEMO_JOB)).one()
    assert job.status == "succeeded", job.error
    assert job.result["gatherings"]["gatherings"] == 3
    tea = [
        c for c in community_service.list_communities(db, workspace_id=tenant.workspace_id) if c.name == "茶友品鉴群"
    ]
    rows, _ = service.list_gatherings(db, workspace_id=tenant.workspace_id)
    assert tea and {g.community_id for g in rows} == {tea[0].id}
