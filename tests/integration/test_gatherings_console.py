"""Console gatherings: create/edit/publish/cancel through the forms, the detail page with registrations and
figures, the check-in desk (wrong, good, reused code), the scan page, export, roles and isolation."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy.orm import Session

from shequn.community.gatherings import service
from shequn.community.gatherings.models import Gathering, GatheringRegistration
from shequn.core.clock import utcnow
from shequn.core.fmt import zone
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login
from tests.integration.test_gatherings import people


def _local(minutes: int) -> str:
    """A datetime-local value in the workspace zone (Asia/Shanghai), minutes from now."""
    return (utcnow() + timedelta(minutes=minutes)).astimezone(zone("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def _form(csrf: str, **extra: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "title": "白茶围炉 <b>品鉴</b>",
        "mode": "offline",
        "format": "meetup",
        "visibility": "public",
        "city": "上海",
        "venue": "静安体验店",
        "address": "南京西路 1266 号",
        "starts_at": _local(30),
        "ends_at": _local(150),
        "capacity": "2",
        "checkin_opens_minutes": "60",
        "waitlist_enabled": "on",
        **extra,
    }


def _created_id(location: str) -> int:
    match = re.match(r"/gatherings/(\d+)\?done=created", location)
    assert match, location
    return int(match.group(1))


def test_create_publish_register_and_desk(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    assert '<a href="/gatherings"' in client.get("/").text  # the nav entry
    assert client.get("/gatherings").status_code == 200
    form = client.get("/gatherings/new")
    assert form.status_code == 200 and 'name="starts_at"' in form.text

    bad = client.post("/gatherings/new", data=_form(csrf, ends_at=_local(10)))
    assert bad.status_code == 422 and 'data-error-for="ends_at"' in bad.text
    r = client.post("/gatherings/new", data=_form(csrf), follow_redirects=False)
    assert r.status_code == 303
    gid = _created_id(r.headers["location"])
    g = db.get(Gathering, gid)
    assert g is not None and g.status == "draft" and g.capacity == 2
    # The typed local time (Shanghai) was stored as UTC.
    assert abs((g.starts_at - (utcnow() + timedelta(minutes=30))).total_seconds()) < 90

    page = client.get(f"/gatherings/{gid}")
    assert "白茶围炉 &lt;b&gt;品鉴&lt;/b&gt;" in page.text and "<b>品鉴</b>" not in page.text
    r = client.post(f"/gatherings/{gid}/publish", data={"csrf": csrf}, follow_redirects=True)
    assert r.status_code == 200 and 'id="open-desk"' in r.text and 'id="venue-qr"' in r.text

    a, b, c = people(db, tenant, 3)
    codes = [
        service.register(db, workspace_id=tenant.workspace_id, gathering_id=gid, customer_id=x).registration.code
        for x in (a, b, c)
    ]
    db.commit()
    page = client.get(f"/gatherings/{gid}?status=waitlisted").text
    assert page.count('data-status="waitlisted"') == 1 and "data-position>#1" in page

    desk = client.get(f"/gatherings/{gid}/desk")
    assert desk.status_code == 200 and 'id="desk-code"' in desk.text
    wrong = client.post(f"/gatherings/{gid}/desk", data={"csrf": csrf, "code": "ZZZZZZ"})
    assert wrong.status_code == 422 and 'data-result="checkin_code_invalid"' in wrong.text
    ok = client.post(
        f"/gatherings/{gid}/desk", data={"csrf": csrf, "code": codes[0].lower()}, headers={"HX-Request": "true"}
    )
    assert ok.status_code == 200 and 'data-result="ok"' in ok.text and "茶友0" in ok.text
    assert "<html" not in ok.text  # htmx gets only the result panel (and the recent list out of band)
    again = client.post(
        f"/gatherings/{gid}/desk", data={"csrf": csrf, "code": codes[0]}, headers={"HX-Request": "true"}
    )
    assert 'data-result="already_checked_in"' in again.text
    waiting = client.post(
        f"/gatherings/{gid}/desk", data={"csrf": csrf, "code": codes[2]}, headers={"HX-Request": "true"}
    )
    assert 'data-result="registration_not_confirmed"' in waiting.text
    no_csrf = client.post(f"/gatherings/{gid}/desk", data={"code": codes[1]})
    assert no_csrf.status_code == 403

    # Scanning b's QR opens the scan page; the button checks them in.
    reg_b = db.query(GatheringRegistration).filter_by(customer_id=b).one()
    token = service.ticket_token(reg_b)
    scan = client.get(f"/gatherings/{gid}/scan", params={"t": token})
    assert scan.status_code == 200 and "茶友1" in scan.text and 'id="scan-check-in"' in scan.text
    assert client.get(f"/gatherings/{gid}/scan", params={"t": token + "x"}).status_code == 422
    done = client.post(f"/gatherings/{gid}/scan", data={"csrf": csrf, "t": token})
    assert done.status_code == 200 and 'data-result="ok"' in done.text

    detail = client.get(f"/gatherings/{gid}").text
    assert 'data-fig="checked_in">2<' in detail
    csv_text = client.get(f"/gatherings/{gid}/registrations.csv").text
    assert "138****0000" in csv_text and len(csv_text.strip().splitlines()) == 4


def test_edit_cancel_registration_and_gathering(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    gid = _created_id(
        client.post("/gatherings/new", data=_form(csrf, capacity="1"), follow_redirects=False).headers["location"]
    )
    client.post(f"/gatherings/{gid}/publish", data={"csrf": csrf})
    a, b = people(db, tenant, 2)
    ra = service.register(db, workspace_id=tenant.workspace_id, gathering_id=gid, customer_id=a).registration
    service.register(db, workspace_id=tenant.workspace_id, gathering_id=gid, customer_id=b)
    db.commit()
    r = client.post(f"/gatherings/{gid}/registrations/{ra.id}/cancel", data={"csrf": csrf}, follow_redirects=True)
    assert "候补已自动递补" in r.text
    db.expire_all()
    assert db.query(GatheringRegistration).filter_by(customer_id=b).one().status == "confirmed"

    edit = client.get(f"/gatherings/{gid}/edit")
    assert edit.status_code == 200 and 'value="1"' in edit.text
    low = client.post(f"/gatherings/{gid}/edit", data=_form(csrf, capacity="5", title="改名"), follow_redirects=True)
    assert low.status_code == 200 and "改名" in low.text
    r = client.post(f"/gatherings/{gid}/cancel", data={"csrf": csrf, "reason": "台风"}, follow_redirects=True)
    assert "台风" in r.text and 'id="gathering-status">已取消' in r.text
    again = client.post(f"/gatherings/{gid}/publish", data={"csrf": csrf}, follow_redirects=True)
    assert 'id="gathering-error"' in again.text


def test_roles_and_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    start = utcnow() + timedelta(days=1)
    from shequn.community.gatherings.schemas import GatheringIn

    mine = service.create_gathering(
        db,
        workspace_id=tenant.workspace_id,
        data=GatheringIn(title="本品牌", city="杭州", address="x", starts_at=start, ends_at=start + timedelta(hours=1)),
    )
    theirs = service.create_gathering(
        db,
        workspace_id=other_tenant.workspace_id,
        data=GatheringIn(
            title="别家活动", city="杭州", address="x", starts_at=start, ends_at=start + timedelta(hours=1)
        ),
    )
    db.commit()
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    listing = client.get("/gatherings?tab=all")
    assert "本品牌" in listing.text and "别家活动" not in listing.text and 'id="new-gathering"' not in listing.text
    assert client.get(f"/gatherings/{theirs.id}").status_code == 404
    assert client.get("/gatherings/new").status_code == 403
    assert client.get(f"/gatherings/{mine.id}/desk").status_code == 403
    assert client.post(f"/gatherings/{mine.id}/publish", data={"csrf": csrf}).status_code == 403
    assert client.get(f"/gatherings/{mine.id}/registrations.csv").status_code == 403
    db.expire_all()
    assert db.get(Gathering, mine.id).status == "draft"  # type: ignore[union-attr]
