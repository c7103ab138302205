"""The lottery wheel in a real browser: Debian's chromium (Playwright, phone viewport) against uvicorn on SQLite.

A signed-in member spins: the wheel turns to the server's result, today's free draws go down, a second spin
is refused with a clear message, a draw bought with points spends them; the console's lottery page shows the
chart, expected vs observed and the commitment. No request leaves 127.0.0.1. With SHEQUN_SCREENSHOTS=1 the
console page goes to docs/img/promotions-lottery.png.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# Importing the console browser test skips this module too when chromium or playwright is missing.
from tests.browser import test_console_browser as base
from tests.browser.serve import serve, server_env

from playwright.sync_api import Browser, Page, expect, sync_playwright  # isort: skip  (importable once the line above has not skipped)

pytestmark = pytest.mark.browser
ROOT, MISSING = base.ROOT, base.MISSING
SHOTS = os.environ.get("SHEQUN_SCREENSHOTS") == "1"
EMAIL, PASSWORD = "owner@lottery.test", "lottery-pass-2026"

SEED = """
import json
from datetime import timedelta
from shequn.audience import service as audience_service
from shequn.audience.models import Customer
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.migrate import upgrade
from shequn.identity import service as identity_service
from shequn.promotions.lottery import demo

upgrade()
with session_scope() as db:
    _, ws = identity_service.bootstrap_owner(db, email="EMAIL", password="PASSWORD",
        name="Owner", workspace_slug="tea", workspace_name="山茶小铺")
    db.add_all([Customer(workspace_id=ws.id, name="茶友" + str(i), phone_masked="138****0000") for i in range(40)])
    db.flush()
    demo.demo_step(db, workspace_id=ws.id, campaign_id=None)
    db.commit()
    me = Customer(workspace_id=ws.id, name="小满", phone_masked="139****0001")
    db.add(me)
    db.flush()
    from shequn.loyalty import service as loyalty
    loyalty.award_points(db, workspace_id=ws.id, customer_id=me.id, points=120, reason="adjust", ref="browser")
    ticket, _ = audience_service.issue_member_ticket(db, workspace_id=ws.id, customer_id=me.id)
    from sqlalchemy import select
    from shequn.promotions.lottery.models import Lottery
    lid = db.scalar(select(Lottery.id).where(Lottery.name == demo.RUNNING))
    db.commit()
    print(json.dumps({"lottery": lid, "ticket": ticket}))
""".replace("EMAIL", EMAIL).replace("PASSWORD", PASSWORD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """uvicorn on a free port over a fresh SQLite file with the demo lotteries and one member with points."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("lottery-var")
    env = server_env(var)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], env=env, check=True, cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])
    with serve(env, var) as url:
        yield url, ids


def _page(browser: Browser, url: str, problems: list[str], *, phone: bool) -> Page:
    """A phone- or desktop-sized page that refuses requests leaving 127.0.0.1 and records page errors."""
    options: dict[str, Any] = {"locale": "zh-CN", "device_scale_factor": 1}
    if phone:
        options.update(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    else:
        options.update(viewport={"width": 1400, "height": 900})
    pg = browser.new_context(**options).new_page()

    def guard(route: Any, request: Any) -> None:
        if request.url.startswith(url) or request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"outside request: {request.url}")
            route.abort()

    pg.route("**/*", guard)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.set_default_timeout(15_000)
    return pg


def test_spin_refuse_buy_and_console(server: tuple[str, dict[str, Any]]) -> None:
    url, ids = server
    lid = ids["lottery"]
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(base.CHROMIUM), args=base.CHROMIUM_ARGS)
        phone = _page(browser, url, problems, phone=True)
        phone.goto(f"{url}/m/tea/auth?ticket={ids['ticket']}&next=/m/tea/lottery/{lid}")
        expect(phone.locator("[data-wheel] path")).to_have_count(4)  # no coupon template in this brand
        expect(phone.locator("[data-free-left]")).to_have_text("1")
        phone.click("[data-draw]")
        expect(phone.locator("[data-result]")).to_be_visible(timeout=10_000)
        expect(phone.locator("[data-free-left]")).to_have_text("0")
        transform = phone.locator(".lot-rotor").evaluate("el => el.style.transform")
        assert transform.startswith("rotate(")
        phone.click("[data-draw]")
        expect(phone.locator("[data-error]")).to_contain_text("今天的免费次数已用完")
        before = int(phone.locator("[data-points]").inner_text())
        phone.click("[data-buy]")
        expect(phone.locator("[data-points]")).not_to_have_text(str(before), timeout=10_000)
        after = int(phone.locator("[data-points]").inner_text())
        assert after in (before - 50, before - 50 + 100)  # spent 50; the wheel may have landed on "100 积分"

        console = _page(browser, url, problems, phone=False)
        console.goto(f"{url}/login")
        console.fill("input[name=email]", EMAIL)
        console.fill("input[name=password]", PASSWORD)
        console.click("button[type=submit]")
        console.goto(f"{url}/lotteries/{lid}")
        expect(console.locator("#per-day svg.chart")).to_be_visible()
        expect(console.locator("#commitment")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
        expect(console.locator("#prize-stats [data-observed]").first).to_contain_text("%")
        if SHOTS:
            console.screenshot(path=str(ROOT / "docs" / "img" / "promotions-lottery.png"), full_page=True)
            phone.screenshot(path=str(ROOT / "docs" / "img" / "promotions-lottery-h5.png"), full_page=True)
        browser.close()
    assert problems == [], problems
