"""The console in a real browser: Debian's chromium (Playwright) against uvicorn on 127.0.0.1 with SQLite.

Log in, upload an order file, watch the progress page finish, search a customer, open the 360, and keep
screenshots of the customer and overview pages (in docs/img/ with SHEQUN_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.serve import ROOT, serve, server_env

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE = os.environ.get("SHEQUN_REQUIRE_BROWSER") == "1"
try:
    from playwright.sync_api import Page, expect, sync_playwright

    # Two test processes share 2 cores with PostgreSQL: an htmx swap may take longer than the 5 s default.
    expect.set_options(timeout=15_000)
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

MISSING = [
    what
    for what, ok in (("/usr/bin/chromium", CHROMIUM.exists()), ("playwright", sync_playwright is not None))
    if not ok
]
if MISSING and not REQUIRE:
    pytest.skip(f"browser tests need {', '.join(MISSING)}", allow_module_level=True)

# Screenshots go to docs/img/ only when asked (SHEQUN_SCREENSHOTS=1), so a test run leaves the tree clean.
IMG = ROOT / "docs" / "img" if os.environ.get("SHEQUN_SCREENSHOTS") == "1" else Path(tempfile.mkdtemp(prefix="shots-"))
EMAIL, PASSWORD = "owner@browser.test", "browser-pass-2026"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KNOWN = {"name": "林语堂", "buyer": "b-0001", "phone": "13911112222", "order": "SQ-TEST-0001"}

CITIES = ["上海", "杭州", "北京", "广州", "深圳", "成都", "南京", "苏州", "武汉", "西安"]
FIRST = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["小明", "晓燕", "建国", "雨桐", "子涵", "思远", "婉清", "浩然", "佳怡", "一鸣", "若曦", "志强"]
PRODUCTS = [
    ("TEA-LJ-250", "明前龙井 250g", "绿茶", 26800),
    ("TEA-BL-100", "洞庭碧螺春 100g", "绿茶", 15800),
    ("TEA-DHP-200", "武夷大红袍 200g", "乌龙茶", 32800),
    ("TEA-TGY-250", "安溪铁观音 250g", "乌龙茶", 19800),
    ("TEA-BHYZ-100", "白毫银针 100g", "白茶", 39800),
    ("TEA-SMY-300", "寿眉饼 300g", "白茶", 12800),
    ("TEA-DHH-150", "滇红金芽 150g", "红茶", 16800),
    ("TEA-ZSXZ-200", "正山小种 200g", "红茶", 13800),
    ("TEA-MLH-100", "茉莉花茶 100g", "花茶", 6800),
    ("CUP-GW-01", "白瓷盖碗", "茶具", 8800),
]
STATUSES = ["completed"] * 14 + ["paid"] * 3 + ["shipped"] * 3 + ["refunded", "cancelled", "pending_payment"]
HEADER = (
    "source_order_id,status,total,created_at,buyer_id,buyer_name,phone,city,province,"
    "sku,title,quantity,unit_price,category"
)


def _orders_csv() -> bytes:
    """A year of a small tea shop's orders in the canonical CSV (money in fen), plus two bad rows."""
    rng = random.Random(7)
    buyers = [
        (f"b-{i:04d}", rng.choice(FIRST) + rng.choice(GIVEN), f"139{rng.randrange(10**8):08d}", rng.choice(CITIES))
        for i in range(2, 260)
    ]
    lines = [HEADER]
    start = datetime(2025, 12, 1, 9, 0)
    lines.append(
        f"{KNOWN['order']},completed,53600,2026-11-20 20:15:00,{KNOWN['buyer']},{KNOWN['name']},"
        f"{KNOWN['phone']},杭州,浙江,TEA-LJ-250,明前龙井 250g,2,26800,绿茶"
    )
    for n in range(2, 640):
        buyer_id, name, phone, city = rng.choice(buyers[: 60 + n // 3])
        when = start + timedelta(days=rng.randrange(355), minutes=rng.randrange(600))
        status = rng.choice(STATUSES)
        picks = rng.sample(PRODUCTS, rng.choice((1, 1, 1, 2)))
        qty = [rng.choice((1, 1, 2, 3)) for _ in picks]
        total = sum(p[3] * q for p, q in zip(picks, qty, strict=True))
        for (sku, title, category, price), q in zip(picks, qty, strict=True):
            lines.append(
                f"SQ-{n:06d},{status},{total},{when:%Y-%m-%d %H:%M:%S},{buyer_id},{name},{phone},{city},,"
                f"{sku},{title},{q},{price},{category}"
            )
    lines.append("SQ-BAD-1,paid,1000,not-a-date,b-9001,坏数据,,上海,,TEA-MLH-100,茉莉花茶 100g,1,1000,花茶")
    lines.append("SQ-BAD-2,paid,1000,2026-03-01,b-9002,坏数据,,上海,,TEA-MLH-100,茉莉花茶 100g,0,1000,花茶")
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn serving the real app (embedded job worker) on a free port against a fresh SQLite file."""
    if MISSING:
        pytest.fail(f"SHEQUN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} is missing")
    var = tmp_path_factory.mktemp("browser-var")
    env = server_env(var)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shequn.cli.main",
            "create-owner",
            "--email",
            EMAIL,
            "--password",
            PASSWORD,
            "--name",
            "店长",
            "--workspace-slug",
            "shancha",
            "--workspace-name",
            "山茶集",
        ],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    with serve(env, var) as base:
        yield base


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Page]:
    """A chromium page that refuses (and records) any request leaving 127.0.0.1."""
    assert sync_playwright is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", device_scale_factor=1)
        pg = context.new_page()
        outside: list[str] = []
        problems: list[str] = []

        def guard(route, request) -> None:  # type: ignore[no-untyped-def]
            if request.url.startswith(server) or request.url.startswith("data:"):
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
        assert outside == [], f"the console tried to reach the internet: {outside}"
        assert problems == [], problems


def test_import_search_and_customer_360(server: str, page: Page, tmp_path: Path) -> None:
    page.goto(server + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav.sidebar")).to_contain_text("概览")

    page.click("nav.sidebar >> text=导入")
    upload = tmp_path / "shancha-orders-2026.csv"
    upload.write_bytes(_orders_csv())
    page.set_input_files("input[name=file]", str(upload))
    page.select_option("select[name=source]", "shequn")
    page.click("form.upload button[type=submit]")
    expect(page).to_have_url(re.compile(r"/imports/\d+$"))
    expect(page.locator("#job-progress")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("[data-count=received]")).to_have_text("641")
    expect(page.locator("[data-count=failed]")).to_have_text("2")
    expect(page.locator("[data-count=created]")).to_have_text("639")
    expect(page.locator("#job-progress")).to_contain_text("SQ-BAD-1")
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / "console-import.png"), full_page=True)

    page.click("nav.sidebar a >> text=客户")
    expect(page).to_have_url(re.compile(r"/customers$"))
    # htmx binds the live search when its deferred script has run; typing before that goes unseen (CI, loaded).
    page.wait_for_load_state("load")
    page.fill("#q", KNOWN["name"])  # live search: htmx swaps the results without a submit
    results = page.locator("#results")
    expect(results).to_contain_text("共 1 条")
    expect(results).to_contain_text("139****2222")
    expect(results).not_to_contain_text(KNOWN["phone"])
    page.fill("#q", "")
    expect(results).to_contain_text("共 206 条")
    page.screenshot(path=str(IMG / "console-customers.png"))
    page.fill("#q", KNOWN["name"])
    expect(results).to_contain_text("共 1 条")
    results.locator(f"text={KNOWN['name']}").click()
    expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    expect(page.locator("h1")).to_contain_text(KNOWN["name"])
    expect(page.locator("main")).to_contain_text(KNOWN["order"])
    expect(page.locator("main")).to_contain_text("¥536.00")
    assert KNOWN["phone"] not in page.content()
    page.screenshot(path=str(IMG / "console-customer.png"), full_page=True)

    page.click(f"text={KNOWN['order']}")
    expect(page.locator("main")).to_contain_text("明前龙井 250g")

    # Typed before htmx has loaded (a slow phone or network): the search still runs once it has.
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)  # answered below, once the box is filled

    page.route("**/static/vendor/htmx.min.js*", hold)
    page.goto(server + "/customers", wait_until="commit")
    page.fill("#q", KNOWN["name"])
    page.wait_for_timeout(500)
    assert held, "the page did not ask for htmx"
    expect(page.locator("#results")).to_contain_text("共 206 条")  # nothing has searched yet
    page.unroute("**/static/vendor/htmx.min.js*", hold)
    for route in held:
        route.continue_()
    expect(page.locator("#results")).to_contain_text("共 1 条")

    page.click("nav.sidebar >> text=概览")
    expect(page.locator(".figures")).to_contain_text("¥")
    expect(page.locator("svg.chart rect.bar")).to_have_count(12)
    page.screenshot(path=str(IMG / "console-overview.png"), full_page=True)

    page.click("button[value=en]")
    expect(page.locator("nav.sidebar")).to_contain_text("Overview")
    expect(page.locator("main")).to_contain_text("GMV by month")
