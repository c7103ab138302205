"""Console campaigns: the form (errors beside their fields, segment and community selects), the list with its
status filter, the campaign page with live results (KPIs, budget burn, funnel, tagged orders per day, the
activities registered kinds report), the htmx live part, publish/cancel, viewer and isolation."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.models import Customer
from shequn.community import service as community_service
from shequn.core.clock import utcnow
from shequn.core.fmt import zone
from shequn.promotions.campaigns import service
from shequn.promotions.common import summarize_campaign
from tests.conftest import Tenant
from tests.integration.test_campaigns_api import body
from tests.integration.test_console import add_operator, login, push_order

CITY_RULE = {"type": "and", "rules": [{"type": "attr", "field": "city", "op": "in", "value": ["杭州"]}]}


def _local(hours: float) -> str:
    """A datetime-local value in the workspace zone (Asia/Shanghai), hours from now."""
    return (utcnow() + timedelta(hours=hours)).astimezone(zone("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def _form(csrf: str, **extra: object) -> dict[str, object]:
    return {
        "csrf": csrf,
        "name": "双11 茶友节 <b>返场</b>",
        "goal": "conversion",
        "starts_at": _local(-48),
        "ends_at": _local(24 * 7),
        "budget": "2000",
        "channels": ["wecom_group", "h5"],
        "kpi_participants": "500",
        "kpi_gmv_fen": "1000",
        "kpi_orders": "4",
        "utm_campaign": "double11_test",
        **extra,
    }


def test_form_list_page_and_live_results(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    seg = audience_service.create_segment(db, workspace_id=tenant.workspace_id, name="杭州茶友", rule=CITY_RULE)
    com = community_service.create_community(db, workspace_id=tenant.workspace_id, name="白茶品鉴群")
    db.commit()
    form = client.get("/campaigns/new")
    assert form.status_code == 200 and "杭州茶友" in form.text and "白茶品鉴群" in form.text

    bad = client.post(
        "/campaigns/new", data=_form(csrf, ends_at=_local(-72), budget="-5", kpi_claims="abc", goal="fame")
    )
    assert bad.status_code == 422
    for field in ("ends_at", "budget_fen", "kpis", "goal"):
        assert f'data-error-for="{field}"' in bad.text, field
    assert "必须晚于开始时间" in bad.text

    r = client.post(
        "/campaigns/new",
        data=_form(csrf, target_segment_id=str(seg.id), target_community_id=str(com.id)),
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    match = re.match(r"/campaigns/(\d+)\?done=created", r.headers["location"])
    assert match
    cid = int(match.group(1))
    c = service.get_campaign(db, workspace_id=tenant.workspace_id, campaign_id=cid)
    assert c.budget_fen == 200_000 and c.kpis == {"participants": 500, "gmv_fen": 100_000, "orders": 4}
    assert c.channels == ["wecom_group", "h5"] and c.target_segment_id == seg.id

    # Real data the page must show: budget spent by a charge, two tagged paid orders, a new community member.
    service.charge_budget(db, workspace_id=tenant.workspace_id, campaign_id=cid, amount_fen=50_000)
    db.commit()
    now = utcnow().astimezone(zone("Asia/Shanghai"))
    for i, total in enumerate((12_300, 45_600)):
        push_order(
            client,
            tenant,
            order_id=f"D11-{i}",
            phone=f"1380013800{i}",
            total=total,
            subtotal=total,
            created_at=now.isoformat(),
            paid_at=now.isoformat(),
            attribution={"utm_campaign": "double11_test", "utm_source": "wechat"},
        )
    push_order(client, tenant, order_id="OTHER", phone="13800138009", created_at=now.isoformat())
    buyer = db.query(Customer).filter(Customer.workspace_id == tenant.workspace_id).first()
    assert buyer is not None
    community_service.add_member(db, workspace_id=tenant.workspace_id, community_id=com.id, customer_id=buyer.id)
    db.commit()

    publish = client.post(f"/campaigns/{cid}/publish", data={"csrf": csrf}, follow_redirects=False)
    assert publish.headers["location"] == f"/campaigns/{cid}?done=published"
    page = client.get(f"/campaigns/{cid}")
    assert page.status_code == 200
    text = page.text
    assert "双11 茶友节 &lt;b&gt;返场&lt;/b&gt;" in text and "<b>返场" not in text  # escaped
    assert 'id="campaign-status">进行中' in text
    assert "企业微信群" in text and "杭州茶友" in text and "白茶品鉴群" in text
    assert 'hx-trigger="every 10s"' in text and f'hx-get="/campaigns/{cid}/live"' in text
    assert "¥500.00" in text and "¥2,000.00" in text and "25.0%" in text  # spent, budget, burn
    assert "¥579.00" in text  # tagged GMV: 123 + 456 (the untagged order does not count)
    assert re.search(r'data-kpi="orders">.*?<div class="value">2</div>', text, re.S)
    assert re.search(r'data-kpi="new_members">.*?<div class="value">1</div>', text, re.S)
    assert '<svg class="chart"' in text  # tagged orders per day
    activities = summarize_campaign(db, workspace_id=tenant.workspace_id, campaign_id=cid)
    for a in activities:
        assert f'data-activity="{a.kind}-{a.id}"' in text
    if not activities:
        assert "该活动下还没有玩法" in text

    for lang, word in (("en", "Budget burn"), ("zh-CN", "预算消耗")):  # every string has both languages
        client.post("/lang", data={"lang": lang}, headers={"X-CSRF-Token": csrf})
        for path in (f"/campaigns/{cid}", "/campaigns", f"/campaigns/{cid}/edit"):
            shown = client.get(path).text
            assert "campaign." not in shown, (lang, path, re.findall(r"campaign\.[a-z_.]+", shown)[:5])
        assert word in client.get(f"/campaigns/{cid}").text

    live = client.get(f"/campaigns/{cid}/live")
    assert live.status_code == 200 and live.text.lstrip().startswith("{#") is False
    assert 'id="campaign-live"' in live.text and "<html" not in live.text and "¥500.00" in live.text

    results = client.get(f"/api/v1/campaigns/{cid}/results", headers=tenant.headers("viewer")).json()
    assert results["budget"]["spent_fen"] == 50_000 and results["budget"]["remaining_fen"] == 150_000
    assert {k["metric"]: k["actual"] for k in results["kpis"]}["orders"] == 2
    assert results["funnel"]["gmv_fen"] == 57_900
    assert sum(d["orders"] for d in results["days"]) == 2

    listing = client.get("/campaigns", params={"status": "running"})
    assert f'data-campaign="{cid}"' in listing.text
    assert f'data-campaign="{cid}"' not in client.get("/campaigns", params={"status": "draft"}).text

    edit = client.get(f"/campaigns/{cid}/edit")
    assert edit.status_code == 200 and 'value="2000"' in edit.text and 'value="1000"' in edit.text
    saved = client.post(f"/campaigns/{cid}/edit", data=_form(csrf, budget="400"), follow_redirects=False)
    assert saved.status_code == 422 and 'data-error-for="budget_fen"' in saved.text  # below the ¥500 spent
    saved = client.post(f"/campaigns/{cid}/edit", data=_form(csrf, budget=""), follow_redirects=False)
    assert saved.status_code == 303
    db.expire_all()
    assert service.get_campaign(db, workspace_id=tenant.workspace_id, campaign_id=cid).budget_fen is None

    cancel = client.post(f"/campaigns/{cid}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert cancel.headers["location"] == f"/campaigns/{cid}?done=cancelled"
    gone = client.get(f"/campaigns/{cid}").text
    assert "已取消" in gone and "hx-trigger" not in gone  # nothing moves any more: no polling


def test_viewer_sees_but_cannot_write(client, db: Session, tenant: Tenant) -> None:
    r = client.post("/api/v1/campaigns", json=body(), headers=tenant.headers())
    cid = r.json()["id"]
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    page = client.get(f"/campaigns/{cid}")
    assert page.status_code == 200 and "双11 茶友节" in page.text
    assert 'id="edit-campaign"' not in page.text and 'id="publish-campaign"' not in page.text
    assert 'id="new-campaign"' not in client.get("/campaigns").text
    assert client.get("/campaigns/new").status_code == 403
    assert client.get(f"/campaigns/{cid}/edit").status_code == 403
    assert client.post("/campaigns/new", data=_form(csrf)).status_code == 403
    assert client.post(f"/campaigns/{cid}/publish", data={"csrf": csrf}).status_code == 403
    assert client.post(f"/campaigns/{cid}/cancel", data={"csrf": csrf}).status_code == 403
    db.expire_all()
    assert service.get_campaign(db, workspace_id=tenant.workspace_id, campaign_id=cid).status == "draft"


def test_other_workspace_cannot_see_or_change(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    r = client.post("/api/v1/campaigns", json=body(), headers=other_tenant.headers())
    foreign = r.json()["id"]
    csrf = login(client)
    for path in (f"/campaigns/{foreign}", f"/campaigns/{foreign}/live", f"/campaigns/{foreign}/edit"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/campaigns/{foreign}/cancel", data={"csrf": csrf}).status_code == 404
    assert client.post(f"/campaigns/{foreign}/edit", data=_form(csrf)).status_code == 404
    assert 'data-campaign="' not in client.get("/campaigns").text
    assert client.get(f"/api/v1/campaigns/{foreign}/results", headers=tenant.headers()).status_code == 404
    assert service.get_campaign(db, workspace_id=other_tenant.workspace_id, campaign_id=foreign).status == "draft"
