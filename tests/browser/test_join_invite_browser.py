"""Joining by invite on a phone: Debian's chromium (Playwright, mobile viewport) against uvicorn on SQLite.

Open a friend's invite link, read the community, type a name, double-tap join (it joins once), see
"joined", then open my own invite link with its QR code. Screenshots go to docs/img/ with SHEQUN_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Importing the console browser test skips this module too when chromium or playwright is missing.
from tests.browser import test_console_browser as base
from tests.browser.serve import serve, server_env

from playwright.sync_api import Page, expect, sync_playwright  # isort: skip  (importable once the line above has not skipped)

pytestmark = pytest.mark.browser
IMG, MISSING, ROOT = base.IMG, base.MISSING, base.ROOT

SEED = """
import json
from shequn.audience import service as audience_service
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.community import service as community_service
from shequn.community.fission import service as fission
from shequn.core.db import session_scope
from shequn.core.migrate import upgrade
from shequn.identity import service as identity_service

upgrade()
with session_scope() as db:
    _, ws = identity_service.bootstrap_owner(db, email="owner@invite.test", password="invite-pass-2026",
        name="Owner", workspace_slug="tea", workspace_name="山茶小铺")
    c = community_service.create_community(db, workspace_id=ws.id, name="山茶品鉴群", platform="wecom_group",
        theme="每周一起品一款好茶", rules_text="1. 友善交流\\n2. 不发广告")
    (host,) = audience_service.resolve_customers(db, workspace_id=ws.id,
        people=[CustomerIn(identities=[IdentityIn("wechat", "openid", "host")], name="阿青")]).ids
    community_service.join_community(db, workspace_id=ws.id, community_id=c.id, customer_id=host,
        source="manual", approved=True, nickname="阿青")
    link = fission.personal_invite(db, workspace_id=ws.id, community_id=c.id, customer_id=host)
    print(json.dumps({"code": link.code, "community_id": c.id, "invite_id": link.id}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, object], Path]]:
    """uvicorn on a free port over a fresh SQLite file holding one community and a member's invite link."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("invite-var")
    db_path = var / "shequn.db"
    env = server_env(var)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], env=env, check=True, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    with serve(env, var) as url:
        yield url, seed, db_path


@pytest.fixture(scope="module")
def phone(server: tuple[str, dict[str, object], Path]) -> Iterator[Page]:
    """A phone-sized chromium page that refuses (and records) any request leaving 127.0.0.1."""
    url = server[0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(base.CHROMIUM), args=base.CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        )
        pg = context.new_page()
        outside: list[str] = []
        problems: list[str] = []

        def guard(route, request) -> None:  # type: ignore[no-untyped-def]
            if request.url.startswith(url) or request.url.startswith("data:"):
                route.continue_()
            else:
                outside.append(request.url)
                route.abort()

        pg.route("**/*", guard)
        pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        pg.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
        pg.set_default_timeout(15_000)
        yield pg
        browser.close()
        assert outside == [], f"the member page tried to reach the internet: {outside}"
        assert problems == [], problems


def _count(db_path: Path, sql: str, *args: object) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_join_by_invite_then_share_my_own_link(server: tuple[str, dict[str, object], Path], phone: Page) -> None:
    url, seed, db_path = server
    code, cid = seed["code"], seed["community_id"]
    phone.goto(f"{url}/m/tea/i/{code}")
    expect(phone.locator("[data-community]")).to_have_text("山茶品鉴群")
    expect(phone.get_by_text("阿青 邀请你加入")).to_be_visible()
    expect(phone.get_by_text("不发广告")).to_be_visible()
    phone.screenshot(path=str(IMG / "m-invite.png"), full_page=True)

    phone.fill("input[name=name]", "小满")
    phone.fill("input[name=phone]", "13700001234")
    phone.locator("[data-join] button[type=submit]").dblclick()  # an impatient double tap
    expect(phone).to_have_url(re.compile(rf"/m/tea/i/{code}/done$"))
    expect(phone.locator("[data-joined]")).to_contain_text("已加入「山茶品鉴群」")
    phone.screenshot(path=str(IMG / "m-invite-joined.png"), full_page=True)
    assert _count(db_path, "SELECT uses FROM invites WHERE id = ?", seed["invite_id"]) == 1
    assert _count(db_path, "SELECT COUNT(*) FROM referrals WHERE community_id = ?", cid) == 1
    assert _count(db_path, "SELECT COUNT(*) FROM community_members WHERE community_id = ?", cid) == 2

    phone.click("[data-my-invite]")
    expect(phone).to_have_url(re.compile(rf"/m/tea/invite/{cid}$"))
    expect(phone.locator("[data-qr] svg")).to_be_visible()
    mine = phone.locator("[data-my-invite]").get_attribute("data-my-invite")
    assert mine and mine != code
    expect(phone.locator("[data-url]")).to_have_value(re.compile(rf"/m/tea/i/{mine}$"))
    phone.screenshot(path=str(IMG / "m-invite-mine.png"), full_page=True)

    # Opening the friend's link again says I am already in, and offers my own link instead of a form.
    phone.goto(f"{url}/m/tea/i/{code}")
    expect(phone.locator("[data-already]")).to_be_visible()
    expect(phone.locator("[data-join]")).to_have_count(0)
    # A wrong code answers 404 with a clear message in Chinese (fetched, so the 404 is not a console error).
    wrong = phone.request.get(f"{url}/m/tea/i/NOPE000")
    assert wrong.status == 404 and "邀请链接不存在或已失效" in wrong.text()
