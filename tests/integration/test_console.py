"""The operators' console: login, CSRF, roles, isolation, languages, masking, imports (real app, real DB)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from shequn.core.settings import get_settings
from shequn.identity import service as identity_service
from tests.conftest import Tenant, make_tenant

OWNER = ("owner-a@example.com", "password-123")
PHONE = "13812345678"
CSV_HEAD = (
    "source_order_id,status,total,created_at,buyer_id,buyer_name,phone,city,sku,title,quantity,unit_price,category\n"
)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no csrf field on the page"
    return match.group(1)


def login(client, email: str = OWNER[0], password: str = OWNER[1], next: str = "/") -> str:
    """Log in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"email": email, "password": password, "csrf": _csrf(page.text), "next": next},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf(client.get("/").text)


def add_operator(db: Session, tenant: Tenant, email: str, role: str) -> None:
    op = identity_service.create_operator(db, email=email, name=role.title(), password="password-456")
    identity_service.add_member(db, workspace_id=tenant.workspace_id, operator_id=op.id, role=role)
    db.commit()


def push_order(client, tenant: Tenant, order_id: str = "T-1001", phone: str = PHONE, **extra) -> dict:
    body = {
        "source": "api",
        "source_order_id": order_id,
        "status": "paid",
        "total": 12345,
        "subtotal": 12345,
        "created_at": "2026-10-05T10:00:00+08:00",
        "paid_at": "2026-10-05T10:05:00+08:00",
        "line_items": [
            {"sku": "TEA-1", "title": "明前龙井 250g", "quantity": 1, "unit_price": 12345, "category": "绿茶"}
        ],
        "customer": {
            "name": "王小明",
            "phone": phone,
            "city": "杭州",
            "email": "xiaoming@example.com",
            "identities": [{"source": "api", "kind": "customer_id", "value": "buyer-77"}],
        },
        **extra,
    }
    r = client.post("/api/v1/orders", json=body, headers=tenant.headers("owner"))
    assert r.status_code == 200, r.text
    return r.json()


def test_login_wrong_password_shows_error(client, tenant: Tenant) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    r = client.post("/login", data={"email": OWNER[0], "password": "wrong-one", "csrf": _csrf(page.text)})
    assert r.status_code == 401
    assert "邮箱或密码错误" in r.text
    assert "shequn_session" not in r.cookies


def test_login_sets_httponly_cookie_and_redirects_to_next(client, tenant: Tenant) -> None:
    page = client.get("/login?next=/customers")
    r = client.post(
        "/login",
        data={"email": OWNER[0], "password": OWNER[1], "csrf": _csrf(page.text), "next": "/customers"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/customers"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("shequn_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/" in cookie
    assert client.get("/customers").status_code == 200


def test_login_form_needs_its_csrf_token_and_next_stays_on_site(client, tenant: Tenant) -> None:
    r = client.post("/login", data={"email": OWNER[0], "password": OWNER[1], "csrf": "forged"})
    assert r.status_code == 403 and "页面已过期" in r.text
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"email": OWNER[0], "password": OWNER[1], "csrf": _csrf(page.text), "next": "//evil.example.com/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_pages_redirect_to_login_when_logged_out(client, backend: str) -> None:
    r = client.get("/customers?city=杭州", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=%2Fcustomers")
    r = client.get("/imports/1/progress", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.headers["HX-Redirect"].startswith("/login")


def test_every_page_renders_with_real_figures(client, tenant: Tenant) -> None:
    push_order(client, tenant)
    push_order(client, tenant, order_id="T-1002", total=20000, subtotal=20000, status="completed")
    login(client)
    home = client.get("/")
    assert home.status_code == 200
    assert "概览" in home.text and "<svg" in home.text and "月度成交额" in home.text
    assert "¥323.45" in home.text  # GMV from fen: 12345 + 20000
    assert "¥161.72" in home.text  # AOV: 32345 // 2
    assert "100.0%" in home.text  # the one buyer bought twice
    for path, expected in [
        ("/customers", "王小明"),
        ("/products", "商品"),
        ("/orders", "T-1002"),
        ("/imports", "开始导入"),
        ("/settings", "owner-a@example.com"),
        ("/settings/tokens", "API 令牌"),
        ("/audit", "orders.pushed"),
    ]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert expected in r.text, path
    nav = re.findall(r'<li><a href="([^"]+)"', home.text)
    assert nav == [
        *("/", "/customers", "/tags", "/segments", "/communities", "/fission", "/ugc", "/gatherings"),
        *("/campaigns", "/coupons", "/flash-sales", "/lotteries", "/quizzes", "/challenges", "/guard"),
        *("/products", "/orders", "/imports", "/settings", "/audit"),
    ]
    for href in nav:
        assert client.get(href).status_code == 200


def test_customer_360_and_order_detail(client, tenant: Tenant) -> None:
    push_order(client, tenant)
    login(client)
    listing = client.get("/customers", params={"q": PHONE})
    match = re.search(r'href="/customers/(\d+)"', listing.text)
    assert match, "search by phone found nobody"
    page = client.get(f"/customers/{match.group(1)}")
    assert page.status_code == 200
    for text in ("王小明", "杭州", "T-1001", "¥123.45", "绿茶", "买家 ID", "buyer-77", "时间线"):
        assert text in page.text, text
    order_link = re.search(r'href="/orders/(\d+)"', page.text)
    assert order_link
    order = client.get(f"/orders/{order_link.group(1)}")
    assert order.status_code == 200 and "明前龙井 250g" in order.text and "¥123.45" in order.text
    assert client.get("/orders", params={"q": "T-1001"}).text.count('href="/orders/') == 1
    assert client.get("/orders", params={"status": "refunded"}).text.count('href="/orders/') == 0


def test_phone_is_never_shown_unmasked(client, tenant: Tenant) -> None:
    push_order(client, tenant)
    login(client)
    cid = re.search(r'href="/customers/(\d+)"', client.get("/customers").text).group(1)
    oid = re.search(r'href="/orders/(\d+)"', client.get("/orders").text).group(1)
    # A phone search echoes what the operator typed (search box, URLs) and nothing else.
    search = client.get("/customers", params={"q": PHONE}).text
    assert "138****5678" in search
    search = search.replace(f'value="{PHONE}"', "").replace(f"q={PHONE}", "")
    pages = [
        client.get("/customers").text,
        search,
        client.get(f"/customers/{cid}").text,
        client.get(f"/orders/{oid}").text,
        client.get("/orders").text,
    ]
    for html in pages:
        assert PHONE not in html
        assert "xiaoming@example.com" not in html
    assert "138****5678" in pages[0] and "138****5678" in pages[2] and "x***@example.com" in pages[2]


def test_other_workspaces_customer_is_a_404_page(client, tenant: Tenant, other_tenant: Tenant) -> None:
    push_order(client, other_tenant, order_id="B-1")
    r = client.get("/api/v1/customers", headers=other_tenant.headers("owner"))
    foreign_id = r.json()["items"][0]["id"]
    foreign_order = client.get("/api/v1/orders", headers=other_tenant.headers("owner")).json()["items"][0]["id"]
    login(client)
    for path in (f"/customers/{foreign_id}", f"/orders/{foreign_order}", "/customers/999999", "/imports/424242"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "text/html" in r.headers["content-type"] and "页面不存在" in r.text and "王小明" not in r.text
    # Look for the id as page text: a random CSRF token in the page may contain the characters "B-1".
    assert ">B-1<" not in client.get("/orders").text


def test_csrf_is_required_on_every_post(client, tenant: Tenant) -> None:
    csrf = login(client)
    r = client.post("/imports", files={"file": ("a.csv", CSV_HEAD.encode(), "text/csv")})
    assert r.status_code == 403 and "页面已过期" in r.text
    r = client.post("/lang", data={"lang": "en", "csrf": "not-the-token"})
    assert r.status_code == 403
    r = client.post("/logout", data={})
    assert r.status_code == 403
    # the htmx header works in place of the form field
    r = client.post("/lang", data={"lang": "en"}, headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert r.status_code == 303


def test_viewer_sees_no_import_form_and_cannot_post_one(client, db: Session, tenant: Tenant) -> None:
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    page = client.get("/imports")
    assert page.status_code == 200 and 'action="/imports"' not in page.text and "开始导入" not in page.text
    r = client.post(
        "/imports",
        data={"csrf": csrf, "kind": "orders"},
        files={"file": ("a.csv", (CSV_HEAD + "V-1,paid,100,2026-10-01,,,,,X,Tea,1,100,\n").encode())},
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    home = client.get("/").text
    assert 'href="/audit"' not in home
    assert client.get("/audit").status_code == 403
    assert client.get("/settings/tokens").status_code == 403
    assert "邀请成员" not in client.get("/settings").text
    assert client.post("/settings/tokens", data={"csrf": csrf, "name": "x", "role": "viewer"}).status_code == 403


def test_language_switch_changes_strings(client, tenant: Tenant) -> None:
    assert "Log in to the console" in client.get("/login?lang=en").text
    csrf = login(client)
    assert "Overview" in client.get("/").text  # the language chosen on the login page carries over
    r = client.post("/lang", data={"lang": "zh-CN", "csrf": csrf, "next": "/customers"}, follow_redirects=False)
    assert r.headers["location"] == "/customers"
    page = client.get("/customers").text
    assert "客户" in page and "Customers</a>" not in page and '<html lang="zh-CN">' in page
    client.post("/lang", data={"lang": "en", "csrf": csrf})
    page = client.get("/customers").text
    assert "Customers" in page and "Total spend" in page and '<html lang="en">' in page
    assert client.cookies.get("shequn_lang") == "en"


def test_logout_ends_the_session(client, tenant: Tenant) -> None:
    csrf = login(client)
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_workspace_switch_only_to_own_workspaces(client, db: Session, tenant: Tenant) -> None:
    other = make_tenant(db, "brand-c", "owner-c@example.com")
    third = make_tenant(db, "brand-d", "owner-d@example.com")
    identity_service.add_member(db, workspace_id=other.workspace_id, operator_id=tenant.owner_id, role="analyst")
    db.commit()
    push_order(client, other, order_id="C-77")
    csrf = login(client)
    assert "Brand-C" in client.get("/").text
    r = client.post("/workspace", data={"workspace_id": other.workspace_id, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert "C-77" in client.get("/orders").text
    assert 'action="/imports"' not in client.get("/imports").text  # analysts do not import
    r = client.post("/workspace", data={"workspace_id": third.workspace_id, "csrf": csrf})
    assert r.status_code == 404
    assert "C-77" in client.get("/orders").text  # still in brand-c


def _upload(client, csrf: str, name: str, data: bytes, source: str = "", kind: str = "orders"):
    return client.post(
        "/imports",
        data={"csrf": csrf, "source": source, "shop_id": "main", "kind": kind},
        files={"file": (name, data, "text/csv")},
        follow_redirects=False,
    )


def test_import_upload_progress_counts_and_error_report(client, tenant: Tenant) -> None:
    csrf = login(client)
    rows = [
        "S-1,paid,19900,2026-09-01 10:00:00,b-1,李雷,13900001111,上海,TEA-1,白毫银针,1,19900,白茶",
        "S-2,shipped,5000,2026-09-02 11:00:00,b-2,韩梅梅,,北京,TEA-2,茉莉花茶,2,2500,花茶",
        "S-3,paid,oops,2026-09-03,b-3,坏行,,广州,TEA-3,坏数据,1,100,红茶",
    ]
    r = _upload(client, csrf, "orders.csv", (CSV_HEAD + "\n".join(rows) + "\n").encode())
    assert r.status_code == 303, r.text
    job_url = r.headers["location"]
    assert re.fullmatch(r"/imports/\d+", job_url)
    page = client.get(job_url)
    assert page.status_code == 200
    assert "已完成" in page.text and 'hx-trigger="every 1s"' not in page.text
    counts = dict(re.findall(r'data-count="(\w+)">([\d,]+)<', page.text))
    assert counts == {"received": "3", "created": "2", "updated": "0", "unchanged": "0", "failed": "1"}
    assert "S-3" in page.text and "total" in page.text  # the row error table
    fragment = client.get(job_url + "/progress")
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="job-progress"' in fragment.text
    csv_r = client.get(job_url + "/errors.csv")
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    lines = csv_r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "行号,字段,原因,订单号" and lines[1].startswith("4,total,") and lines[1].endswith(",S-3")
    listing = client.get("/imports").text
    assert "orders.csv" in listing and job_url in listing
    assert "李雷" in client.get("/customers").text
    assert "139****1111" in client.get("/customers", params={"q": "13900001111"}).text


def test_import_shows_whole_file_errors_translated(client, tenant: Tenant) -> None:
    csrf = login(client)
    r = _upload(client, csrf, "bad.csv", b"source_order_id,status\nX-1,paid\n", source="shequn")
    page = client.get(r.headers["location"]).text
    assert "文件无法导入" in page and "缺少必需的列：total, created_at" in page and "文件被拒绝" in page


def test_empty_and_too_large_uploads_show_form_errors(client, tenant: Tenant, monkeypatch) -> None:
    csrf = login(client)
    r = _upload(client, csrf, "empty.csv", b"")
    assert r.status_code == 422 and "文件为空" in r.text and 'action="/imports"' in r.text
    r = client.post("/imports", data={"csrf": csrf, "kind": "orders"})
    assert r.status_code == 422 and "请选择要导入的文件" in r.text
    monkeypatch.setenv("SHEQUN_MAX_UPLOAD_MB", "1")
    get_settings.cache_clear()
    try:
        r = _upload(client, csrf, "big.csv", CSV_HEAD.encode() + b"x" * (1024 * 1024 + 10))
        assert r.status_code == 413 and "文件或请求过大" in r.text and "Traceback" not in r.text
    finally:
        monkeypatch.delenv("SHEQUN_MAX_UPLOAD_MB")
        get_settings.cache_clear()


def test_tokens_created_shown_once_and_revoked(client, tenant: Tenant) -> None:
    csrf = login(client)
    r = client.post("/settings/tokens", data={"csrf": csrf, "name": "有赞同步", "role": "operator"})
    assert r.status_code == 200
    secret = re.search(r'<code id="token-secret">([^<]+)</code>', r.text).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page = client.get("/settings/tokens").text
    assert "有赞同步" in page and secret not in page
    row = next(tr for tr in page.split("<tr") if "有赞同步" in tr)
    token_id = re.search(r'action="/settings/tokens/(\d+)/revoke"', row).group(1)
    r = client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_invite_operator_and_audit_log(client, tenant: Tenant) -> None:
    csrf = login(client)
    r = client.post(
        "/settings/team",
        data={
            "csrf": csrf,
            "email": "new-op@example.com",
            "name": "小李",
            "password": "password-789",
            "role": "operator",
        },
        follow_redirects=True,
    )
    assert r.status_code == 200 and "new-op@example.com" in r.text and "运营" in r.text
    r = client.post(
        "/settings/team",
        data={"csrf": csrf, "email": "weak@example.com", "name": "x", "password": "short", "role": "viewer"},
    )
    assert r.status_code == 422 and "密码" in r.text
    audit = client.get("/audit").text
    assert "operator.invited" in audit and "operator.login" in audit


def test_workspace_settings_and_team_management(client, db, tenant: Tenant) -> None:
    csrf = login(client)
    bad = client.post(
        "/settings/workspace",
        data={"csrf": csrf, "name": "山茶集", "timezone": "Nowhere/City", "currency": "CNY", "locale": "zh-CN"},
    )
    assert bad.status_code == 422 and "timezone" in bad.text
    ok = client.post(
        "/settings/workspace",
        data={"csrf": csrf, "name": "山茶集旗舰店", "timezone": "Asia/Singapore", "currency": "sgd", "locale": "en"},
        follow_redirects=True,
    )
    assert ok.status_code == 200 and "山茶集旗舰店" in ok.text and "Asia/Singapore" in ok.text and "SGD" in ok.text
    add_operator(db, tenant, "helper@example.com", "viewer")
    helper = identity_service.get_operator_by_email(db, "helper@example.com")
    r = client.post(f"/settings/team/{helper.id}/role", data={"csrf": csrf, "role": "analyst"}, follow_redirects=True)
    assert r.status_code == 200
    assert identity_service.get_role(db, workspace_id=tenant.workspace_id, operator_id=helper.id) == "analyst"
    own = client.post(f"/settings/team/{tenant.owner_id}/role", data={"csrf": csrf, "role": "viewer"})
    assert own.status_code == 403  # nobody changes their own role
    r = client.post(f"/settings/team/{helper.id}/remove", data={"csrf": csrf}, follow_redirects=True)
    assert r.status_code == 200 and "helper@example.com" not in r.text
    assert client.post(f"/settings/team/{helper.id}/remove", data={"csrf": "wrong"}).status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/customers?page=abc&min_spent=xx&min_orders=-1&sort=bogus", "/orders?status=nope&page=999", "/products?page=0"],
)
def test_junk_query_parameters_do_not_break_pages(client, tenant: Tenant, path: str) -> None:
    login(client)
    assert client.get(path).status_code == 200


def test_no_page_loads_anything_from_the_internet(client, tenant: Tenant) -> None:
    """Offline deployments: every script, style and icon is served by shequn itself (no CDN)."""
    external = re.compile(r'(?:src|href)="(?:https?:)?//', re.I)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert not external.search(docs.text), external.findall(docs.text)
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.content  # gzip decoded by the client
    assert client.get("/redoc").status_code == 404
    assert not external.search(client.get("/login").text)
    login(client)
    for path in ("/", "/customers", "/products", "/orders", "/imports", "/settings", "/settings/tokens", "/audit"):
        html = client.get(path).text
        assert not external.search(html), (path, external.findall(html))


def test_rfm_on_overview_list_and_360(client, db, tenant: Tenant) -> None:
    from shequn.audience import service as audience_service

    push_order(client, tenant, "RFM-1")
    audience_service.refresh_rfm(db, workspace_id=tenant.workspace_id)
    db.commit()
    login(client)
    assert "RFM 客户分层" in client.get("/").text
    listing = client.get("/customers?rfm_group=important_value")
    assert listing.status_code == 200 and "重要价值客户" in listing.text
    cid = client.get("/api/v1/customers", headers=tenant.headers()).json()["items"][0]["id"]
    page = client.get(f"/customers/{cid}").text
    assert "R5 F5 M5" in page and "重要价值客户" in page
    assert client.get("/customers?rfm_group=bogus").status_code == 200
