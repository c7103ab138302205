"""Console flash-sale pages: list, create (errors beside fields), publish, live panel with the oversell check,
frozen fields after publishing, a viewer cannot write."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.fmt import zone
from shequn.promotions.flash import service
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login
from tests.integration.test_flash import claim, customers


def _local(minutes: int) -> str:
    return (utcnow() + timedelta(minutes=minutes)).astimezone(zone("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def _form(csrf: str, **extra: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "title": "明前龙井 秒杀",
        "sku": "TEA-001",
        "flash_price": "99.00",
        "original_price": "199.00",
        "stock": "5",
        "per_customer_limit": "1",
        "starts_at": _local(-1),
        "ends_at": _local(60),
        "reservation_ttl_min": "15",
        "preregistration": "on",
        **extra,
    }


def test_console_create_publish_and_watch(client: Any, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    assert "秒杀" in client.get("/flash-sales").text
    bad = client.post("/flash-sales/new", data=_form(csrf, ends_at=_local(-30)))
    assert bad.status_code == 422 and 'id="form-error"' in bad.text
    r = client.post("/flash-sales/new", data=_form(csrf), follow_redirects=False)
    assert r.status_code == 303, r.text
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    sale = service.get_sale(db, workspace_id=tenant.workspace_id, sale_id=sid)
    assert sale.flash_price == 9900 and sale.original_price == 19900 and sale.status == "draft"
    assert client.post(f"/flash-sales/{sid}/publish", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    (a,) = customers(db, tenant, 1)
    assert claim(db, tenant.workspace_id, sid, a).outcome == "ok"
    assert claim(db, tenant.workspace_id, sid, a).outcome == "limit_reached"
    page = client.get(f"/flash-sales/{sid}")
    assert page.status_code == 200
    assert 'data-left="4"' in page.text and 'data-ok="1"' in page.text
    assert "进行中" in page.text and "超出限购" in page.text
    live = client.get(f"/flash-sales/{sid}/live")
    assert live.status_code == 200 and 'id="flash-live"' in live.text
    listing = client.get("/flash-sales")
    assert f'data-sale="{sid}"' in listing.text
    edit = client.get(f"/flash-sales/{sid}/edit")
    assert edit.status_code == 200 and re.search(r'name="stock"[^>]*disabled', edit.text)
    saved = client.post(
        f"/flash-sales/{sid}/edit", data=_form(csrf, title="龙井 限时秒杀", stock="99"), follow_redirects=False
    )
    assert saved.status_code == 303
    db.expire_all()
    sale = service.get_sale(db, workspace_id=tenant.workspace_id, sale_id=sid)
    assert sale.title == "龙井 限时秒杀" and sale.stock == 5


def test_console_viewer_cannot_write(client: Any, db: Session, tenant: Tenant) -> None:
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    assert client.get("/flash-sales").status_code == 200
    assert client.post("/flash-sales/new", data=_form(csrf)).status_code == 403
    assert client.get("/flash-sales/new").status_code == 403
