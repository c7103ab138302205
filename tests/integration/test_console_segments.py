"""Console segments: list, builder + live preview, detail, CSV export, roles and isolation (real app, real DB)."""

from __future__ import annotations

import json
import re

from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core import jobs
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login, push_order

HANGZHOU_RULE = {
    "type": "and",
    "rules": [
        {"type": "attr", "field": "city", "op": "in", "value": ["杭州"]},
        {"type": "attr", "field": "total_spent", "op": "gte", "value": 10000},
    ],
}


def _people(client, tenant: Tenant) -> None:
    """Three buyers: two in 杭州 (¥123.45 and ¥50.00), one in 上海 (¥300.00)."""
    push_order(client, tenant, "S-1", phone="13812345678")
    push_order(
        client,
        tenant,
        "S-2",
        phone="13900001111",
        total=5000,
        subtotal=5000,
        customer={"name": "李雷", "phone": "13900001111", "city": "杭州", "email": "lilei@example.com"},
        line_items=[{"sku": "TEA-2", "title": "茉莉花茶", "quantity": 1, "unit_price": 5000, "category": "花茶"}],
    )
    push_order(
        client,
        tenant,
        "S-3",
        phone="13700002222",
        total=30000,
        subtotal=30000,
        customer={"name": "韩梅梅", "phone": "13700002222", "city": "上海", "email": "hmm@example.com"},
        line_items=[{"sku": "TEA-3", "title": "大红袍", "quantity": 1, "unit_price": 30000, "category": "乌龙茶"}],
    )


def _preview(client, csrf: str, rule: object):
    return client.post("/segments/preview", json={"rule": rule}, headers={"X-CSRF-Token": csrf})


def _create(client, csrf: str, name: str, rule: object, kind: str = "dynamic", follow: bool = False):
    return client.post(
        "/segments/new",
        data={"csrf": csrf, "name": name, "description": "测试分群", "kind": kind, "rule": json.dumps(rule)},
        follow_redirects=follow,
    )


def _count(html: str) -> int:
    match = re.search(r'id="rb-count" data-count="(\d+)"', html)
    assert match, html[:500]
    return int(match.group(1))


def test_list_builder_save_and_detail(client, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    listing = client.get("/segments")
    assert listing.status_code == 200 and "还没有分群" in listing.text and 'href="/segments/new"' in listing.text
    assert '<li><a href="/segments"' in client.get("/").text  # the nav link

    builder = client.get("/segments/new")
    assert builder.status_code == 200
    for text in ('id="rule-builder"', 'id="rb-config"', "/static/js/rule-builder.js", "/static/css/segments.css"):
        assert text in builder.text, text
    config = json.loads(
        re.search(r'<script type="application/json" id="rb-config">(.*?)</script>', builder.text, re.S)[1]
    )
    fields = {f["name"]: f for f in config["fields"]}
    assert fields["total_spent"]["money"] and fields["total_spent"]["label"] == "累计消费"
    assert {"value": "important_value", "label": "重要价值客户"} in fields["rfm_group"]["choices"]
    assert [c["value"] for c in fields["lifecycle"]["choices"]][:2] == ["new", "active"]
    assert config["ops"]["date"] == ["within_days", "before_days", "is_set", "is_not_set"]
    assert "杭州" in config["cities"] and "花茶" in config["categories"]

    r = _create(client, csrf, "杭州高消费", HANGZHOU_RULE)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    assert re.fullmatch(r"/segments/\d+\?done=created", url)
    page = client.get(url)
    assert page.status_code == 200
    assert "杭州高消费" in page.text and "分群已创建" in page.text and "测试分群" in page.text
    assert 'id="segment-size" data-count="1"' in page.text
    assert "王小明" in page.text and "138****5678" in page.text and "13812345678" not in page.text
    assert "李雷" not in page.text  # ¥50 is below the ¥100 threshold
    assert "进入" in page.text and "创建时计算" in page.text  # membership history
    assert "累计消费 ≥ ¥100.00" in page.text and "城市 是其中之一 杭州" in page.text  # the rule in words
    assert '<svg class="chart line"' in page.text
    assert 'href="/segments/' in page.text and "export.csv" in page.text
    assert ('id="segment-profile"' in page.text) == hasattr(audience_service, "segment_profile")

    listing = client.get("/segments").text
    row = next(tr for tr in listing.split("<tr") if "杭州高消费" in tr)
    assert "动态" in row and re.search(r"data-members>1<", row) and "/refresh" in row and "/delete" in row


def test_preview_count_matches_the_service(client, db: Session, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    rules = [
        HANGZHOU_RULE,
        {"type": "attr", "field": "orders_count", "op": "gte", "value": 1},
        {"type": "or", "rules": [{"type": "attr", "field": "city", "op": "eq", "value": "上海"}, HANGZHOU_RULE]},
        {"type": "not", "rule": HANGZHOU_RULE},
        {"type": "purchase", "category": "花茶", "days": 3650, "metric": "count", "op": "gte", "value": 1},
    ]
    for rule in rules:
        r = _preview(client, csrf, rule)
        assert r.status_code == 200, r.text
        expected, _ = audience_service.preview(db, workspace_id=tenant.workspace_id, rule=rule)
        assert _count(r.text) == expected, rule
        assert "<html" not in r.text
    everyone = _preview(client, csrf, rules[1]).text
    assert _count(everyone) == 3
    assert "138****5678" in everyone and "13812345678" not in everyone and "lilei@example.com" not in everyone
    assert everyone.index("韩梅梅") < everyone.index("王小明") < everyone.index("李雷")  # biggest spenders first
    # Without script the form field works too.
    form = client.post("/segments/preview", data={"csrf": csrf, "rule": json.dumps(HANGZHOU_RULE)})
    assert form.status_code == 200 and _count(form.text) == 1


def test_preview_shows_field_errors_where_they_belong(client, tenant: Tenant) -> None:
    csrf = login(client)
    bad = {
        "type": "and",
        "rules": [
            {"type": "attr", "field": "city", "op": "eq", "value": "杭州"},
            {"type": "attr", "field": "total_spent", "op": "within_days", "value": 3},
            {"type": "and", "rules": []},
        ],
    }
    r = _preview(client, csrf, bad)
    assert r.status_code == 200 and 'data-state="invalid"' in r.text
    assert re.findall(r'data-field="([^"]+)"', r.text) == ["rule.rules[1].op", "rule.rules[2].rules"]
    assert "请选择有效的比较方式" in r.text and "条件组至少需要一个条件" in r.text
    assert 'id="rb-count"' not in r.text
    # References are checked once the shape is right.
    dangling = {"type": "or", "rules": [bad["rules"][0], {"type": "segment", "segment_id": 999999, "op": "in"}]}
    r = _preview(client, csrf, dangling)
    assert (
        'data-state="invalid"' in r.text
        and 'data-field="rule.rules[1].segment_id"' in r.text
        and "分群不存在" in r.text
    )
    junk = client.post(
        "/segments/preview", content=b"{not json", headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    )
    assert 'data-state="invalid"' in junk.text and 'data-field="rule"' in junk.text
    client.post("/lang", data={"lang": "en", "csrf": csrf})
    english = _preview(client, csrf, bad).text
    assert "operator must be one of" in english and "The rule has problems" in english
    # CSRF is required like every console POST.
    assert client.post("/segments/preview", json={"rule": HANGZHOU_RULE}).status_code == 403


def test_save_problems_reshow_the_builder(client, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    r = _create(client, csrf, "", HANGZHOU_RULE)
    assert r.status_code == 422 and 'id="name-error"' in r.text and "名称需为 1–100 个字符" in r.text
    assert "杭州" in r.text  # the rule typed is kept
    r = _create(client, csrf, "坏规则", {"type": "and", "rules": [{"type": "attr", "field": "nope", "op": "eq"}]})
    assert r.status_code == 422 and 'data-field="rule.rules[0].field"' in r.text and "未知的客户属性" in r.text
    r = client.post("/segments/new", data={"csrf": csrf, "name": "坏 JSON", "kind": "dynamic", "rule": "{oops"})
    assert r.status_code == 422 and "不是有效的 JSON" in r.text and "{oops" in r.text
    assert _create(client, csrf, "唯一", HANGZHOU_RULE).status_code == 303
    r = _create(client, csrf, "唯一", HANGZHOU_RULE)
    assert r.status_code == 409 and "已有同名分群" in r.text
    assert client.get("/segments").text.count('class="seg-name"') == 1


def test_edit_refresh_and_static_segments(client, db: Session, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    sid = int(re.search(r"/segments/(\d+)", _create(client, csrf, "杭州", HANGZHOU_RULE).headers["location"])[1])
    edit = client.get(f"/segments/{sid}/edit")
    assert edit.status_code == 200 and f'action="/segments/{sid}/edit"' in edit.text and "total_spent" in edit.text
    wider = {"type": "attr", "field": "city", "op": "in", "value": ["杭州", "上海"]}
    r = client.post(
        f"/segments/{sid}/edit",
        data={"csrf": csrf, "name": "杭州和上海", "description": "", "rule": json.dumps(wider)},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "分群已保存" in r.text and 'data-count="3"' in r.text
    assert "全量刷新" in r.text  # the rule change refreshed it

    r = client.post(f"/segments/{sid}/refresh", data={"csrf": csrf, "back": "detail"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/segments/{sid}?done=refresh"
    queued = [
        j for j in jobs.list_jobs(db, workspace_id=tenant.workspace_id, limit=20) if j.params == {"segment_id": sid}
    ]
    assert queued and queued[0].kind == audience_service.SEGMENT_REFRESH_JOB
    assert client.get(r.headers["location"]).text.count('<circle class="dot"') >= 3  # one point per refresh

    static = _create(client, csrf, "快照", HANGZHOU_RULE, kind="static")
    static_id = int(re.search(r"/segments/(\d+)", static.headers["location"])[1])
    page = client.get(f"/segments/{static_id}")
    assert "静态" in page.text and f"/segments/{static_id}/refresh" not in page.text
    r = client.post(f"/segments/{static_id}/refresh", data={"csrf": csrf})
    assert r.status_code == 409 and "不会刷新" in r.text
    locked = client.get(f"/segments/{static_id}/edit").text
    assert "规则不能再修改" in locked and "readonly" in locked and '"readonly": true' in locked
    r = client.post(
        f"/segments/{static_id}/edit",
        data={"csrf": csrf, "name": "快照改名", "rule": json.dumps(wider)},
        follow_redirects=True,
    )
    assert "快照改名" in r.text and 'data-count="1"' in r.text  # the snapshot keeps its members and rule
    assert (
        audience_service.get_segment(db, workspace_id=tenant.workspace_id, segment_id=static_id).rule == HANGZHOU_RULE
    )


def test_delete_refuses_a_segment_others_use(client, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    base = int(re.search(r"/segments/(\d+)", _create(client, csrf, "基础", HANGZHOU_RULE).headers["location"])[1])
    user_rule = {"type": "segment", "segment_id": base, "op": "not_in"}
    user = int(re.search(r"/segments/(\d+)", _create(client, csrf, "引用者", user_rule).headers["location"])[1])
    r = client.post(f"/segments/{base}/delete", data={"csrf": csrf})
    assert r.status_code == 409 and 'id="segments-error"' in r.text and "引用者" in r.text and "基础" in r.text
    assert client.post(f"/segments/{user}/delete", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    r = client.post(f"/segments/{base}/delete", data={"csrf": csrf}, follow_redirects=True)
    assert r.status_code == 200 and "分群已删除" in r.text and "基础" not in r.text
    assert client.get(f"/segments/{base}").status_code == 404


def test_other_workspaces_segment_is_a_404(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    push_order(client, other_tenant, "B-1")
    foreign = audience_service.create_segment(
        db, workspace_id=other_tenant.workspace_id, name="别人的分群", rule=HANGZHOU_RULE
    )
    db.commit()
    csrf = login(client)
    for path in ("", "/edit", "/export.csv"):
        r = client.get(f"/segments/{foreign.id}{path}")
        assert r.status_code == 404 and "页面不存在" in r.text and "别人的分群" not in r.text, path
    for path in ("/edit", "/refresh", "/delete"):
        assert client.post(f"/segments/{foreign.id}{path}", data={"csrf": csrf, "name": "x"}).status_code == 404
    assert "别人的分群" not in client.get("/segments").text
    assert "别人的分群" not in client.get("/segments/new").text  # not offered in the segment condition
    r = _preview(client, csrf, {"type": "segment", "segment_id": foreign.id, "op": "in"})
    assert 'data-state="invalid"' in r.text and 'data-field="rule.segment_id"' in r.text
    assert audience_service.get_segment(db, workspace_id=other_tenant.workspace_id, segment_id=foreign.id)


def test_roles_viewers_and_analysts_cannot_write(client, db: Session, tenant: Tenant) -> None:
    _people(client, tenant)
    seg = audience_service.create_segment(db, workspace_id=tenant.workspace_id, name="只读", rule=HANGZHOU_RULE)
    db.commit()
    add_operator(db, tenant, "viewer@example.com", "viewer")
    add_operator(db, tenant, "analyst@example.com", "analyst")
    for email, can_export in (("viewer@example.com", False), ("analyst@example.com", True)):
        client.cookies.clear()
        csrf = login(client, email, "password-456")
        listing = client.get("/segments").text
        assert "只读" in listing and 'id="new-segment"' not in listing and "/delete" not in listing
        builder = client.get("/segments/new").text
        assert 'id="readonly-note"' in builder and 'id="save-segment"' not in builder
        assert _preview(client, csrf, HANGZHOU_RULE).status_code == 200  # exploring is reading
        detail = client.get(f"/segments/{seg.id}").text
        assert "/delete" not in detail and "/refresh" not in detail and ("export.csv" in detail) == can_export
        assert _create(client, csrf, "不许", HANGZHOU_RULE).status_code == 403
        for action in ("refresh", "delete", "edit"):
            r = client.post(f"/segments/{seg.id}/{action}", data={"csrf": csrf, "name": "x"})
            assert r.status_code == 403 and "text/html" in r.headers["content-type"], action
        assert client.get(f"/segments/{seg.id}/export.csv").status_code == (200 if can_export else 403)
    assert audience_service.get_segment(db, workspace_id=tenant.workspace_id, segment_id=seg.id).name == "只读"


def test_export_csv_is_masked_with_bom(client, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    everyone = {"type": "attr", "field": "orders_count", "op": "gte", "value": 1}
    sid = re.search(r"/segments/(\d+)", _create(client, csrf, "全部买家", everyone).headers["location"])[1]
    r = client.get(f"/segments/{sid}/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="segment-{sid}-members.csv"' in r.headers["content-disposition"]
    assert r.content.startswith("\ufeff".encode())
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == (
        "id,name,phone_masked,email_masked,province,city,orders_count,total_spent,last_order_at,rfm_group,lifecycle"
    )
    assert len(lines) == 4
    wang = next(line for line in lines if "王小明" in line).split(",")
    assert wang[2:4] == ["138****5678", "x***@example.com"] and wang[5] == "杭州" and wang[7] == "123.45"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", wang[8])
    body = r.content.decode("utf-8-sig")
    for secret in ("13812345678", "13900001111", "xiaoming@example.com", "lilei@example.com"):
        assert secret not in body
    audit = client.get("/audit").text
    assert "segment.exported" in audit and "segment.created" in audit


def test_customer_360_lists_the_customers_segments(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    _create(client, csrf, "杭州高消费", HANGZHOU_RULE)
    _create(client, csrf, "上海", {"type": "attr", "field": "city", "op": "eq", "value": "上海"})
    wang = client.get("/api/v1/customers", params={"q": "13812345678"}, headers=tenant.headers()).json()["items"][0]
    page = client.get(f"/customers/{wang['id']}").text
    assert f'hx-get="/customers/{wang["id"]}/segments"' in page
    card = client.get(f"/customers/{wang['id']}/segments")
    assert card.status_code == 200 and "<html" not in card.text
    assert "杭州高消费" in card.text and "上海" not in card.text
    push_order(client, other_tenant, "B-9")
    foreign = client.get("/api/v1/customers", headers=other_tenant.headers()).json()["items"][0]["id"]
    assert client.get(f"/customers/{foreign}/segments").status_code == 404


def test_segments_pages_in_english_and_offline(client, tenant: Tenant) -> None:
    _people(client, tenant)
    csrf = login(client)
    sid = re.search(r"/segments/(\d+)", _create(client, csrf, "Hangzhou", HANGZHOU_RULE).headers["location"])[1]
    client.post("/lang", data={"lang": "en", "csrf": csrf})
    external = re.compile(r'(?:src|href)="(?:https?:)?//', re.I)
    for path, expected in (
        ("/segments", "Refresh time"),
        ("/segments/new", "Live preview"),
        (f"/segments/{sid}", "Membership history"),
        (f"/segments/{sid}/edit", "Save segment"),
    ):
        r = client.get(path)
        assert r.status_code == 200 and expected in r.text, path
        assert not external.search(r.text), path
    builder = client.get("/segments/new").text
    assert "Total spend" in builder and "Champions (important value)" in builder
    assert client.get("/static/js/rule-builder.js").status_code == 200
    assert client.get("/static/css/segments.css").status_code == 200


def test_every_condition_type_is_offered_and_said_in_words(client, db: Session, tenant: Tenant) -> None:
    _people(client, tenant)
    tag = audience_service.create_tag(db, workspace_id=tenant.workspace_id, name="老茶客")
    base = audience_service.create_segment(db, workspace_id=tenant.workspace_id, name="基础", rule=HANGZHOU_RULE)
    db.commit()
    csrf = login(client)
    config = client.get("/segments/new").text
    assert f'{{"id": {tag.id}, "name": "老茶客"}}' in config and '"name": "基础"' in config
    rule = {
        "type": "or",
        "rules": [
            {"type": "tag", "tag_id": tag.id, "op": "has"},
            {"type": "purchase", "category": "绿茶", "days": 90, "metric": "amount", "op": "gte", "value": 10000},
            {"type": "event", "event": "share", "days": 30, "op": "gte", "value": 3},
            {"type": "not", "rule": {"type": "segment", "segment_id": base.id, "op": "in"}},
            {"type": "attr", "field": "last_order_at", "op": "within_days", "value": 30},
            {"type": "attr", "field": "rfm_group", "op": "in", "value": ["important_value", "general_keep"]},
            {"type": "attr", "field": "platforms", "op": "contains", "value": "wechat"},
            {"type": "attr", "field": "orders_count", "op": "between", "value": [2, 5]},
        ],
    }
    preview = _preview(client, csrf, rule)
    assert 'data-state="ok"' in preview.text
    r = _create(client, csrf, "各种条件", rule, follow=True)
    assert r.status_code == 200 and "分群已创建" in r.text
    words = r.text[r.text.index('id="segment-rule"') :]
    for text in (
        "满足任一条件（或）",
        "有标签「老茶客」",
        "最近 90 天 · 品类「绿茶」 · 金额 ≥ ¥100.00",
        "最近 30 天 · 事件「share」 · 次数 ≥ 3",
        '非</span> <span class="rw-leaf">属于分群「基础」',
        "最近下单 在最近 30 天内",
        "RFM 分层 是其中之一 重要价值客户、一般保持客户",
        "所在平台 包含 微信",
        "订单数 介于 2 至 5",
    ):
        assert text in words, text


def test_profile_block_renders_once_audience_offers_it(client, db: Session, tenant: Tenant, monkeypatch) -> None:
    from shequn.audience import profiles

    monkeypatch.setattr(audience_service, "segment_profile", profiles.segment_profile, raising=False)
    _people(client, tenant)
    audience_service.refresh_rfm(db, workspace_id=tenant.workspace_id)
    db.commit()
    csrf = login(client)
    everyone = {"type": "attr", "field": "orders_count", "op": "gte", "value": 1}
    page = _create(client, csrf, "全部买家", everyone, follow=True).text
    block = page[page.index('id="segment-profile"') : page.index('id="members"')]
    assert "RFM 分层" in block and "城市分布" in block and "偏好品类" in block
    assert "杭州" in block and "上海" in block and "¥300.00" in block  # cities by members, categories by spend
