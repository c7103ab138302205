"""Console /guard: chart and flagged events, blacklist add/remove (masked), limit overrides, viewer read-only."""

from __future__ import annotations

import contextlib
import re

import pytest
from sqlalchemy.orm import Session

from shequn.promotions.guard import service
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login


def _refuse(db: Session, tenant: Tenant, device: str, times: int = 9) -> None:
    for _ in range(times):
        with contextlib.suppress(service.RateLimited):
            service.check_member_action(
                db, workspace_id=tenant.workspace_id, action="lottery.draw", customer_id=3, device_id=device
            )


def test_flags_chart_filters_and_block_from_a_flag(client, db: Session, tenant: Tenant) -> None:
    device = "dev-" + "x" * 30
    _refuse(db, tenant, device, times=12)  # a machine-speed burst: refusals from the 9th on
    csrf = login(client)
    page = client.get("/guard")
    assert page.status_code == 200
    assert "<svg" in page.text and 'data-action="lottery.draw"' in page.text
    assert device not in page.text and "device:dev-xx…xx" in page.text  # shortened
    assert "guard-flags" in page.text
    assert 'data-flag="' not in client.get("/guard", params={"reason": "blocked"}).text
    assert 'data-flag="' in client.get("/guard", params={"action": "lottery.draw", "reason": "too_fast"}).text
    flag_id = re.search(r'data-flag="(\d+)"', page.text)
    assert flag_id
    r = client.post(f"/guard/flags/{flag_id.group(1)}/block", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert service.is_blocked(db, workspace_id=tenant.workspace_id, device_id=device)
    listing = client.get("/guard/blacklist")
    assert "已加入黑名单" not in listing.text  # notice only after the redirect
    assert device not in listing.text and "dev-xx…xx" in listing.text


def test_blacklist_add_phone_remove_and_errors(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    r = client.post(
        "/guard/blacklist", data={"csrf": csrf, "kind": "phone_hash", "value": "13912345678"}, follow_redirects=True
    )
    assert r.status_code == 200 and "139****5678" in r.text and "13912345678" not in r.text
    assert "Owner" in r.text.split('id="guard-blocks"')[1]  # who added it
    block_id = re.search(r'data-block="(\d+)"', r.text)
    assert block_id
    bad = client.post("/guard/blacklist", data={"csrf": csrf, "kind": "ip", "value": "nope"})
    assert bad.status_code == 422 and 'id="guard-error"' in bad.text
    gone = client.post(f"/guard/blacklist/{block_id.group(1)}/remove", data={"csrf": csrf}, follow_redirects=True)
    assert gone.status_code == 200 and 'data-block="' not in gone.text


def test_limits_form_saves_and_resets(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    page = client.get("/guard/limits")
    assert page.status_code == 200 and 'data-rule="*|burst"' in page.text
    r = client.post(
        "/guard/limits",
        data={"csrf": csrf, "limit:coupon.code|fail_customer": "5", "window:coupon.code|fail_customer": "300"},
        follow_redirects=True,
    )
    assert r.status_code == 200
    rules = service.effective_rules(db, workspace_id=tenant.workspace_id, action="coupon.code")
    assert (rules["fail_customer"].limit, rules["fail_customer"].window_ms) == (5, 300_000)
    bad = client.post("/guard/limits", data={"csrf": csrf, "limit:*|burst": "x", "window:*|burst": "1"})
    assert bad.status_code == 422
    client.post("/guard/limits", data={"csrf": csrf, "reset": "coupon.code|fail_customer"})
    db.expire_all()
    rules = service.effective_rules(db, workspace_id=tenant.workspace_id, action="coupon.code")
    assert rules["fail_customer"].limit == 10


def test_viewer_sees_but_cannot_write(client, db: Session, tenant: Tenant) -> None:
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    for path in ("/guard", "/guard/blacklist", "/guard/limits"):
        page = client.get(path)
        assert page.status_code == 200
        assert 'id="guard-add"' not in page.text
    assert client.post("/guard/blacklist", data={"csrf": csrf, "kind": "ip", "value": "203.0.113.2"}).status_code == 403
    r = client.post("/guard/limits", data={"csrf": csrf, "limit:*|burst": "1", "window:*|burst": "1"})
    assert r.status_code == 403
    assert not service.list_overrides(db, workspace_id=tenant.workspace_id)


@pytest.mark.parametrize("path", ["/guard", "/guard/blacklist", "/guard/limits"])
def test_pages_render_in_english(client, tenant: Tenant, path: str) -> None:
    login(client)
    client.cookies.set("shequn_lang", "en")
    page = client.get(path, params={"lang": "en"})
    assert page.status_code == 200
