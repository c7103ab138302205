"""The segment builder in a real browser: Debian's chromium (Playwright) against uvicorn with the demo data.

Log in, build a two-condition rule by clicking, watch the live count follow each change (and a field
error land on the condition that caused it), save, and land on the segment's page with its size.
Screenshots go to docs/img/ with SHEQUN_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
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
    """uvicorn serving the real app on a free port, on a fresh SQLite file holding the demo tea brand."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("segments-var")
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


def _count(page: Page) -> int:
    return int(page.locator("#rb-count").get_attribute("data-count") or "-1")


def _wait_for_count(page: Page, changed_from: int) -> int:
    """Wait until the live preview shows a count different from changed_from, and return it."""
    page.wait_for_function(
        "old => { const c = document.querySelector('#rb-result[data-state=ok] #rb-count');"
        " return c && c.dataset.count !== String(old) && !document.querySelector('#rb-preview.stale'); }",
        arg=changed_from,
    )
    return _count(page)


def test_build_preview_save_and_open_a_segment(server: str, page: Page) -> None:
    page.goto(server + "/segments")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fsegments$"))
    page.fill("input[name=email]", DEMO_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("分群")
    # The demo's own segments arrive by background jobs after the server starts; ours is added next to them.

    page.click("#new-segment")
    expect(page).to_have_url(re.compile(r"/segments/new$"))
    builder = page.locator("#rule-builder")
    expect(builder).to_have_attribute("data-ready", "1")
    expect(page.locator("#rb-result[data-state=ok] #rb-count")).to_be_visible()
    buyers = _count(page)
    assert buyers > 100  # the starter rule: everyone with an order

    # Condition 1: total spend ≥ ¥500 (typed in yuan, sent in fen).
    first = builder.locator(".rb-leaf").nth(0)
    first.locator("select[data-key=field]").select_option("total_spent")
    expect(first.locator("select[data-key=op]")).to_have_value("gte")
    first.locator("input[data-key=value]").fill("500")
    big_spenders = _wait_for_count(page, buyers)
    assert 0 < big_spenders < buyers
    expect(page.locator("#rb-result .rb-sample tbody tr")).to_have_count(min(10, big_spenders))
    expect(page.locator("#rb-result .rb-sample")).to_contain_text("****")  # masked phones

    # Condition 2: added empty, so the preview's field error lands on it (and only on it).
    builder.locator(".rb-group > .rb-add button[data-act=add-condition]").click()
    second = builder.locator(".rb-leaf").nth(1)
    expect(second.locator(".rb-errors")).to_contain_text("请填写有效的值")
    expect(second).to_have_class(re.compile(r"rb-invalid"))
    expect(first.locator(".rb-errors")).to_have_text("")

    # … then made a city condition: 杭州 or 上海.
    second.locator("select[data-key=field]").select_option("city")
    second.locator("select[data-key=op]").select_option("in")
    second.locator("input[data-key=value]").fill("杭州, 上海")
    both = _wait_for_count(page, big_spenders)
    assert 0 < both < big_spenders
    expect(second.locator(".rb-errors")).to_have_text("")
    rule = page.locator("#rule-json").input_value()
    assert '"total_spent"' in rule and '"value": 50000' in rule and '"杭州"' in rule and '"上海"' in rule

    page.fill("#segment-name", "杭沪高消费客户")
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / "console-segment-builder.png"), full_page=True)

    page.click("#save-segment")
    expect(page).to_have_url(re.compile(r"/segments/\d+\?done=created$"))
    expect(page.locator("h1")).to_contain_text("杭沪高消费客户")
    expect(page.locator("#segment-size")).to_have_attribute("data-count", str(both))
    expect(page.locator("#members tbody tr")).to_have_count(min(50, both))
    expect(page.locator("#history")).to_contain_text("进入")
    expect(page.locator("svg.chart.line circle.dot").first).to_be_visible()  # background refreshes may add more
    expect(page.locator("#segment-rule")).to_contain_text("累计消费 ≥ ¥500.00")
    page.screenshot(path=str(IMG / "console-segment.png"), full_page=True)

    # The list shows it with its size; a member's 360 lists the segment.
    page.click("nav.sidebar >> text=分群")
    expect(page.locator("table.segments-table")).to_contain_text("杭沪高消费客户")
    page.click("text=杭沪高消费客户")
    page.locator("#members tbody tr a").first.click()
    expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    expect(page.locator("#customer-segments")).to_contain_text("杭沪高消费客户")


def test_every_condition_type_and_the_json_view(server: str, page: Page) -> None:
    """Runs after the test above (same logged-in page, which also made the segment referenced here)."""
    page.goto(server + "/segments/new")
    builder = page.locator("#rule-builder")
    expect(builder).to_have_attribute("data-ready", "1")
    expect(page.locator("#rb-result[data-state=ok]")).to_be_visible()
    buyers = _count(page)

    # Purchase: amount spent on 绿茶 in the last 365 days ≥ ¥100.
    first = builder.locator(".rb-leaf").nth(0)
    first.locator("select[data-key=type]").select_option("purchase")
    first.locator("select[data-key=scope]").select_option("category")
    first.locator("input[data-key=category]").fill("绿茶")
    first.locator("input[data-key=days]").fill("365")
    first.locator("select[data-key=metric]").select_option("amount")
    first.locator("input[data-key=value]").fill("100")
    tea = _wait_for_count(page, buyers)
    rule = page.locator("#rule-json").input_value()
    assert '"category": "绿茶"' in rule and '"metric": "amount"' in rule and '"value": 10000' in rule

    # A nested group, negated, holding an RFM-group condition with checkboxes, OR a segment condition.
    builder.locator(".rb-group > .rb-add button[data-act=add-group]").click()
    inner = builder.locator(".rb-group .rb-group").first
    expect(inner.locator("select[data-key=op]").first).to_have_value("or")
    leaf = inner.locator(".rb-leaf").first
    leaf.locator("select[data-key=field]").select_option("rfm_group")
    leaf.locator("select[data-key=op]").select_option("in")
    leaf.locator("label", has_text="重要价值客户").locator("input").check()
    inner.locator(":scope > .rb-add button[data-act=add-condition]").click()
    other = inner.locator(".rb-leaf").nth(1)
    other.locator("select[data-key=type]").select_option("segment")
    expect(other.locator("select[data-key=segment_id]")).to_contain_text("杭沪高消费客户")
    inner.locator(":scope > .rb-group-head .rb-not input").check()
    expect(inner).to_have_class(re.compile(r"rb-negated"))
    _wait_for_count(page, tea)
    rule = page.locator("#rule-json").input_value()
    assert '"type": "not"' in rule and '"important_value"' in rule and '"type": "segment"' in rule

    # The JSON view drives the builder too.
    page.click("#rb-advanced summary")
    city = {"type": "and", "rules": [{"type": "attr", "field": "city", "op": "eq", "value": "杭州"}]}
    page.fill("#rule-json", json.dumps(city, ensure_ascii=False))
    expect(builder.locator(".rb-leaf")).to_have_count(1)
    expect(builder.locator(".rb-leaf select[data-key=field]")).to_have_value("city")
    expect(builder.locator(".rb-leaf input[data-key=value]")).to_have_value("杭州")
    page.fill("#rule-json", "{broken")
    expect(page.locator("#rb-json-error")).to_be_visible()
