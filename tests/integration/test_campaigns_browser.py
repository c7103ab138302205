"""The campaign page in a real browser (Debian's chromium through Playwright, uvicorn on SQLite): its live part
refreshes by htmx polling — a budget charge made elsewhere shows up without a reload — and nothing is fetched
from outside 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

# Importing the console browser test skips this module too when chromium or playwright is missing.
from tests.browser import test_console_browser as base
from tests.browser.serve import serve, server_env

from playwright.sync_api import expect, sync_playwright  # isort: skip  (importable once the line above has not skipped)

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@campaign.test", "campaign-pass-2026"

SEED = """
import json
from datetime import timedelta
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.migrate import upgrade
from shequn.identity import service as identity_service
from shequn.promotions.campaigns import service as campaigns
from shequn.promotions.campaigns.schemas import CampaignIn

upgrade()
with session_scope() as db:
    _, ws = identity_service.bootstrap_owner(db, email="EMAIL", password="PASSWORD",
        name="Owner", workspace_slug="tea", workspace_name="山茶小铺")
    start = utcnow() - timedelta(hours=1)
    c = campaigns.create_campaign(db, workspace_id=ws.id, data=CampaignIn(
        name="双11 茶友节", starts_at=start, ends_at=start + timedelta(days=7), budget_fen=100_000,
        kpis={"participants": 100}, publish=True))
    print(json.dumps({"workspace_id": ws.id, "campaign_id": c.id}))
""".replace("EMAIL", EMAIL).replace("PASSWORD", PASSWORD)

CHARGE = """
import sys
from shequn.core.db import session_scope
from shequn.promotions.campaigns import service as campaigns

with session_scope() as db:
    campaigns.charge_budget(db, workspace_id=int(sys.argv[1]), campaign_id=int(sys.argv[2]), amount_fen=12_300)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int], dict[str, str]]]:
    """uvicorn on a free port over a fresh SQLite file holding one running campaign with a ¥1,000 budget."""
    if base.MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(base.MISSING)} is missing")
    var = tmp_path_factory.mktemp("campaign-var")
    env = server_env(var)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], env=env, check=True, cwd=base.ROOT, capture_output=True, text=True, timeout=120
    )
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])
    with serve(env, var) as url:
        yield url, ids, env


def test_live_part_refreshes_without_reload(server: tuple[str, dict[str, int], dict[str, str]]) -> None:
    url, ids, env = server
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(base.CHROMIUM), args=base.CHROMIUM_ARGS)
        pg = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900}).new_page()

        def guard(route, request) -> None:  # type: ignore[no-untyped-def]
            if request.url.startswith(url) or request.url.startswith("data:"):
                route.continue_()
            else:
                problems.append(f"outside request: {request.url}")
                route.abort()

        pg.route("**/*", guard)
        pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        pg.goto(f"{url}/login")
        pg.fill("input[name=email]", EMAIL)
        pg.fill("input[name=password]", PASSWORD)
        pg.click("button[type=submit]")
        pg.wait_for_url(f"{url}/")
        pg.goto(f"{url}/campaigns/{ids['campaign_id']}")
        spent = pg.locator("[data-budget=spent]")
        expect(spent).to_have_text("¥0.00")
        pg.evaluate("window.__stillHere = true")
        args = [str(ids["workspace_id"]), str(ids["campaign_id"])]
        subprocess.run([sys.executable, "-c", CHARGE, *args], env=env, check=True, cwd=base.ROOT, timeout=60)
        expect(spent).to_have_text("¥123.00", timeout=25_000)  # the next poll (every 10 s) brings it
        assert pg.evaluate("window.__stillHere === true")  # swapped in place, not reloaded
        expect(pg.locator("#campaign-live")).to_have_count(1)
        browser.close()
    assert problems == []
