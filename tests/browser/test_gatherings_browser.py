"""A gathering in real browsers: Debian's chromium (Playwright) against uvicorn on SQLite.

Two phones register for a one-seat meetup (an impatient double tap registers once; the second phone lands on
the waitlist), the first cancels with two taps and the second is promoted, then staff at the desk type the
promoted member's code (checked in), type it again (already checked in) and a wrong one; the member rates the
gathering. Screenshots go to docs/img/ with SHEQUN_SCREENSHOTS=1.
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
IMG, MISSING, ROOT = base.IMG, base.MISSING, base.ROOT
SHOTS = os.environ.get("SHEQUN_SCREENSHOTS") == "1"
EMAIL, PASSWORD = "owner@gathering.test", "gathering-pass-2026"

SEED = """
import json
from datetime import timedelta
from shequn.community.gatherings import service as gatherings
from shequn.community.gatherings.schemas import GatheringIn
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.migrate import upgrade
from shequn.identity import service as identity_service

upgrade()
with session_scope() as db:
    _, ws = identity_service.bootstrap_owner(db, email="EMAIL", password="PASSWORD",
        name="Owner", workspace_slug="tea", workspace_name="山茶小铺")
    start = utcnow() + timedelta(minutes=30)
    g = gatherings.create_gathering(db, workspace_id=ws.id, data=GatheringIn(
        title="白茶围炉品鉴", city="上海", venue="静安体验店", address="南京西路 1266 号",
        starts_at=start, ends_at=start + timedelta(hours=2), capacity=1, agenda="14:00 签到\\n14:30 品鉴"))
    gatherings.publish_gathering(db, workspace_id=ws.id, gathering_id=g.id)
    print(json.dumps({"gathering_id": g.id}))
""".replace("EMAIL", EMAIL).replace("PASSWORD", PASSWORD)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """uvicorn on a free port over a fresh SQLite file holding one published one-seat meetup."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("gathering-var")
    db_path = var / "shequn.db"
    env = server_env(var)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], env=env, check=True, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    gathering_id = int(json.loads(seeded.stdout.strip().splitlines()[-1])["gathering_id"])
    with serve(env, var) as url:
        yield url, gathering_id, db_path


@pytest.fixture(scope="module")
def browser(server: tuple[str, int, Path]) -> Iterator[Browser]:
    """One chromium for the two phones and the desk."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(base.CHROMIUM), args=base.CHROMIUM_ARGS)
        yield b
        b.close()


def _guarded(browser: Browser, url: str, problems: list[str], *, phone: bool) -> Page:
    """A page (phone-sized or desktop) that refuses any request leaving 127.0.0.1 and records page errors."""
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


def _count(db_path: Path, sql: str, *args: object) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _register(pg: Page, url: str, gid: int, name: str) -> None:
    pg.goto(f"{url}/m/tea/g/{gid}")
    expect(pg.locator("[data-title]")).to_have_text("白茶围炉品鉴")
    pg.fill("input[name=name]", name)
    pg.locator("[data-register] button[type=submit]").dblclick()  # an impatient double tap
    expect(pg).to_have_url(re.compile(rf"/m/tea/g/{gid}/ticket$"))


def test_register_waitlist_promotion_desk_and_feedback(server: tuple[str, int, Path], browser: Browser) -> None:
    url, gid, db_path = server
    problems: list[str] = []
    first, second = (_guarded(browser, url, problems, phone=True) for _ in range(2))

    _register(first, url, gid, "小满")
    expect(first.locator("[data-reg-status=confirmed]")).to_be_visible()
    expect(first.locator("[data-code]")).to_have_text(re.compile(r"^[2-9A-HJKMNP-Z]{6}$"))
    expect(first.locator("[data-qr] svg")).to_be_visible()
    assert _count(db_path, "SELECT COUNT(*) FROM gathering_registrations") == 1
    assert _count(db_path, "SELECT COUNT(*) FROM customers") == 1

    _register(second, url, gid, "阿青")
    expect(second.locator("[data-reg-status=waitlisted]")).to_contain_text("候补第 1 位")
    if SHOTS:
        second.screenshot(path=str(IMG / "m-gathering-waitlist.png"), full_page=True)

    # The first phone cancels: one tap opens the question, the second confirms.
    first.click("[data-cancel-open]")
    first.click("[data-cancel] button[type=submit]")
    expect(first).to_have_url(re.compile(rf"/m/tea/g/{gid}$"))
    second.reload()
    expect(second.locator("[data-reg-status=confirmed]")).to_be_visible()
    code = second.locator("[data-code]").inner_text().strip()

    desk = _guarded(browser, url, problems, phone=False)
    desk.goto(f"{url}/login")
    desk.fill("input[name=email]", EMAIL)
    desk.fill("input[name=password]", PASSWORD)
    desk.click("button[type=submit]")
    desk.goto(f"{url}/gatherings/{gid}/desk")
    desk.fill("#desk-code", code.lower())
    desk.click("#desk-submit")
    expect(desk.locator("[data-result=ok]")).to_contain_text("阿青 签到成功")
    expect(desk.locator("#desk-recent")).to_contain_text("阿青")
    expect(desk.locator("#desk-code")).to_have_value("")  # ready for the next person
    desk.fill("#desk-code", code)
    desk.click("#desk-submit")
    expect(desk.locator("[data-result=already_checked_in]")).to_be_visible()
    desk.fill("#desk-code", "ZZZZZZ")
    desk.click("#desk-submit")
    expect(desk.locator("[data-result=checkin_code_invalid]")).to_contain_text("签到码无效")
    if SHOTS:
        desk.screenshot(path=str(IMG / "console-gathering-desk-browser.png"))
    assert _count(db_path, "SELECT COUNT(*) FROM gathering_checkins") == 1

    second.reload()
    expect(second.locator("[data-checked-in]")).to_be_visible()
    second.select_option("select[name=rating]", "5")
    second.fill("textarea[name=comment]", "<b>很棒</b>，下次还来")
    second.click("[data-feedback] button[type=submit]")
    expect(second.locator("[data-feedback-done]")).to_contain_text("★★★★★")
    assert _count(db_path, "SELECT COUNT(*) FROM gathering_feedback") == 1

    desk.goto(f"{url}/gatherings/{gid}")
    expect(desk.locator("[data-fig=checked_in]")).to_have_text("1")
    expect(desk.locator("#comments")).to_contain_text("<b>很棒</b>")  # shown as text, never as markup
    assert problems == [], problems
