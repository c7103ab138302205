"""Segment discovery in a real browser: Debian's chromium (Playwright) against uvicorn with the demo data.

Log in, open discovery from the segments list, start a run and watch the page follow the background job
until the proposals appear, read a card, save it under a new name and land on the new static segment.
The screenshot goes to docs/img/ with SHEQUN_SCREENSHOTS=1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

# Importing the console browser test skips this module too when chromium or playwright is missing.
from tests.browser import test_console_browser as base
from tests.browser.serve import serve, server_env

from playwright.sync_api import Page, expect  # isort: skip  (only importable once the line above has not skipped)

pytestmark = pytest.mark.browser
IMG, MISSING, ROOT = base.IMG, base.MISSING, base.ROOT
page = base.page  # the same guarded chromium page fixture, on this module's server

DEMO_EMAIL, DEMO_PASSWORD = "owner@shequn.local", "shequn-demo-2026"  # what `shequn demo` creates


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn (with its embedded job worker) serving the real app on a fresh SQLite file holding the demo brand."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("discovery-var")
    env = server_env(var)
    subprocess.run(
        [sys.executable, "-m", "shequn.cli.main", "demo", "--customers", "400"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    with serve(env, var) as url:
        yield url


def test_discover_read_a_proposal_and_save_it(server: str, page: Page) -> None:
    page.goto(server + "/segments")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fsegments$"))
    page.fill("input[name=email]", DEMO_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("分群")

    page.click("#discover-segments")
    expect(page).to_have_url(re.compile(r"/segments/discover$"))
    expect(page.locator("h1")).to_have_text("发现分群")
    expect(page.locator("#discover-none")).to_be_visible()
    expect(page.locator("#discover-k")).to_have_value("auto")

    # Start a run: the page follows the background job (htmx polling) until the proposals replace the progress.
    page.click("#discover-start")
    expect(page).to_have_url(re.compile(r"/segments/discover\?job=\d+$"))
    job = re.search(r"job=(\d+)", page.url)[1]  # type: ignore[index]
    result = page.locator(f"#discovery-result[data-state=done][data-job='{job}']")
    expect(result).to_be_visible(timeout=120_000)
    expect(page.locator("#discover-progress")).to_have_count(0)
    cards = page.locator("#discover-clusters article.disc-card")
    count = cards.count()
    assert 3 <= count <= 7  # k chosen by silhouette among 3–7
    expect(page.locator("#discover-silhouette tr.chosen")).to_have_count(1)
    expect(page.locator("#discover-silhouette")).to_contain_text(f"{count} ✓")
    sizes = [int(cards.nth(i).get_attribute("data-size") or "0") for i in range(count)]
    analysed = page.locator("#discover-summary").inner_text()
    assert f"分析了 {sum(sizes):,} 位客户" in analysed

    first = cards.first
    expect(first.locator(".disc-name")).not_to_be_empty()
    expect(first.locator("dd[data-field=avg_spent]")).to_contain_text("¥")
    expect(first.locator(".disc-cats table.bars tr").first).to_be_visible()  # the demo shop sells tea categories
    expect(first.locator(".disc-cities table.bars tr").first).to_be_visible()
    proposed = first.locator("input[name=name]").input_value()
    assert proposed and proposed == first.locator(".disc-name").inner_text()
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / "console-discovery.png"), full_page=True)

    # Reopening the page shows the latest finished run without starting another.
    page.goto(server + "/segments/discover")
    expect(page.locator("#discover-clusters article.disc-card")).to_have_count(count)

    # Save the first proposal under a name of our own and land on the new static segment.
    first = page.locator("#discover-clusters article.disc-card").first
    first.locator("input[name=name]").fill("发现：头部客户")
    first.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/segments/\d+\?done=created$"))
    expect(page.locator("h1")).to_contain_text("发现：头部客户")
    expect(page.locator(".page-head .badge")).to_have_text("静态")
    expect(page.locator("#segment-size")).to_have_attribute("data-count", str(sizes[0]))
    expect(page.locator("#members tbody tr")).to_have_count(min(50, sizes[0]))
