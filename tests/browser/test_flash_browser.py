"""A flash sale in a real browser: Debian's chromium (Playwright, phone viewport) against uvicorn on SQLite.

Two phones join a live one-unit sale: the first double-taps the claim button and wins exactly one reservation
(with its pay-by countdown), the second is told it is sold out; the console's sale page shows the live stock
and a passing oversell check. With SHEQUN_SCREENSHOTS=1 the console page goes to docs/img/promotions-flash.png.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Importing the console browser test skips this module too when chromium or playwright is missing.
from tests.browser import test_console_browser as base
from tests.browser.serve import serve, server_env

from playwright.sync_api import Browser, Page, expect, sync_playwright  # isort: skip  (importable once the line above has not skipped)

pytestmark = pytest.mark.browser
ROOT, MISSING = base.ROOT, base.MISSING
SHOTS = os.environ.get("SHEQUN_SCREENSHOTS") == "1"
EMAIL, PASSWORD = "owner@flash.test", "flash-pass-2026"

SEED = """
import json
from datetime import timedelta
from shequn.audience.models import Customer
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.migrate import upgrade
from shequn.identity import service as identity_service
from shequn.promotions.flash import service as flash
from shequn.promotions.flash.schemas import SaleIn

upgrade()
with session_scope() as db:
    _, ws = identity_service.bootstrap_owner(db, email="EMAIL", password="PASSWORD",
        name="Owner", workspace_slug="tea", workspace_name="山茶小铺")
    now = utcnow()
    def sale(title, stock, limit):
        s = flash.create_sale(db, workspace_id=ws.id, data=SaleIn(title=title, sku="TEA-" + str(stock),
            flash_price=9900, original_price=19900, stock=stock, per_customer_limit=limit,
            starts_at=now - timedelta(minutes=3), ends_at=now + timedelta(hours=3), reservation_ttl_min=15))
        flash.publish_sale(db, workspace_id=ws.id, sale_id=s.id)
        return s.id
    busy = sale("明前龙井 250g 秒杀", 20, 2)
    one = sale("白毫银针 限量 1 饼", 1, 1)
    people = [Customer(workspace_id=ws.id, name="茶友" + str(i), phone_masked="138****0000") for i in range(14)]
    db.add_all(people)
    db.commit()
    for n, c in enumerate(people):
        for _ in range(1 + n % 3):
            r = flash.claim(db, workspace_id=ws.id, sale_id=busy, customer_id=c.id)
            db.commit()
            if r.outcome == "ok" and n % 2 == 0 and r.reservation is not None:
                flash.pay_reservation(db, workspace_id=ws.id, ref=r.reservation.ref, order_ref="tmall:" + str(n))
                db.commit()
    print(json.dumps({"busy": busy, "one": one}))
""".replace("EMAIL", EMAIL).replace("PASSWORD", PASSWORD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int], Path]]:
    """uvicorn on a free port over a fresh SQLite file with two live sales (one with claims already)."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("flash-var")
    env = server_env(var)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], env=env, check=True, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])
    with serve(env, var) as url:
        yield url, ids, var / "shequn.db"


@pytest.fixture(scope="module")
def browser(server: tuple[str, dict[str, int], Path]) -> Iterator[Browser]:
    """One chromium for the phones and the console."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(base.CHROMIUM), args=base.CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser: Browser, url: str, problems: list[str], *, phone: bool) -> Page:
    """A phone- or desktop-sized page that refuses requests leaving 127.0.0.1 and records page errors."""
    options: dict[str, Any] = {"locale": "zh-CN", "device_scale_factor": 1}
    if phone:
        options.update(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    else:
        options.update(viewport={"width": 1400, "height": 900})
    pg = browser.new_context(**options).new_page()

    def guard(route, request) -> None:  # type: ignore[no-untyped-def]
        if request.url.startswith(url) or request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"outside request: {request.url}")
            route.abort()

    pg.route("**/*", guard)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.set_default_timeout(15_000)
    return pg


def _join(pg: Page, url: str, sale_id: int, name: str) -> None:
    pg.goto(f"{url}/m/tea/flash/{sale_id}")
    pg.fill("[data-join] input[name=name]", name)
    pg.click("[data-join] button[type=submit]")
    expect(pg.locator("[data-claim]")).to_be_enabled()


def _count(db_path: Path, sql: str, *args: object) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_claim_page_double_tap_sold_out_and_console(server: tuple[str, dict[str, int], Path], browser: Browser) -> None:
    url, ids, db_path = server
    problems: list[str] = []
    first, second = (_page(browser, url, problems, phone=True) for _ in range(2))
    _join(first, url, ids["one"], "小满")
    expect(first.locator("[data-countdown]")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
    expect(first.locator("[data-stock]")).to_contain_text("剩余 1 件")
    first.locator("[data-claim]").dblclick()  # an impatient double tap claims once
    expect(first.locator("[data-reservation-list] li")).to_have_count(1)
    expect(first.locator("[data-pay-countdown]")).to_have_text(re.compile(r"00:1\d:\d\d"))
    assert _count(db_path, "SELECT COUNT(*) FROM promo_flash_reservations WHERE sale_id = ?", ids["one"]) == 1

    _join(second, url, ids["one"], "阿青")
    expect(second.locator("[data-stock]")).to_contain_text("已抢光")
    second.reload()
    expect(second.locator("[data-claim]")).to_be_disabled()

    console = _page(browser, url, problems, phone=False)
    console.goto(f"{url}/login")
    console.fill("input[name=email]", EMAIL)
    console.fill("input[name=password]", PASSWORD)
    console.click("button[type=submit]")
    console.goto(f"{url}/flash-sales/{ids['one']}")
    expect(console.locator("[data-left]")).to_have_attribute("data-left", "0")
    expect(console.locator("#flash-check [data-ok]")).to_have_attribute("data-ok", "1")
    console.goto(f"{url}/flash-sales/{ids['busy']}")
    expect(console.locator("#flash-outcomes")).to_contain_text("超出限购")
    if SHOTS:
        console.screenshot(path=str(ROOT / "docs" / "img" / "promotions-flash.png"), full_page=True)
        first.screenshot(path=str(ROOT / "docs" / "img" / "promotions-flash-h5.png"), full_page=True)
    assert problems == [], problems
