"""Console segment discovery: run k-means, follow the job, read the proposals, save one (real app, real DB)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core import jobs
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login, push_order

CARD = re.compile(r'<article class="card disc-card" data-cluster="(\d+)" data-size="(\d+)">')
# (city, category, unit price in fen, orders each, days since the last order)
PROFILES = (
    ("上海", "乌龙茶", 68000, 4, 5),
    ("杭州", "花茶", 3900, 1, 300),
    ("北京", "绿茶", 15800, 2, 45),
)
PER_PROFILE = 14  # 42 buyers


def _buyers(client, tenant: Tenant) -> int:
    """Three kinds of buyer pushed through the orders API: big repeat spenders, one-off cheap ones, the middle."""
    now = datetime.now(UTC)
    n = 0
    for p, (city, category, price, orders, days) in enumerate(PROFILES):
        for i in range(PER_PROFILE):
            phone = f"139{p:02d}{i:06d}"
            for o in range(orders):
                at = (now - timedelta(days=days + 20 * o + i % 3)).isoformat()
                total = price + 100 * i
                push_order(
                    client,
                    tenant,
                    f"D-{p}-{i}-{o}",
                    phone=phone,
                    total=total,
                    subtotal=total,
                    created_at=at,
                    paid_at=at,
                    customer={
                        "name": f"客户{p}{i:02d}",
                        "phone": phone,
                        "city": city,
                        "identities": [{"source": "api", "kind": "customer_id", "value": f"buyer-{p}-{i}"}],
                    },
                    line_items=[
                        {"sku": f"SKU-{p}", "title": category, "quantity": 1, "unit_price": total, "category": category}
                    ],
                )
            n += 1
    return n


def _start(client, csrf: str, k: str = "auto"):
    return client.post("/segments/discover", data={"csrf": csrf, "k": k}, follow_redirects=False)


def _cards(html: str) -> dict[int, int]:
    return {int(c): int(s) for c, s in CARD.findall(html)}


def _run(client, csrf: str, k: str = "auto") -> tuple[int, str]:
    r = _start(client, csrf, k)
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/segments/discover\?job=(\d+)", r.headers["location"])
    assert match, r.headers["location"]
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    return int(match[1]), page.text


def _save(client, csrf: str, job_id: int, cluster: int, name: str, follow: bool = False):
    return client.post(
        "/segments/discover/save",
        data={"csrf": csrf, "job_id": str(job_id), "cluster": str(cluster), "name": name},
        follow_redirects=follow,
    )


def test_viewer_sees_the_page_and_the_segments_list_links_it(client, db: Session, tenant: Tenant) -> None:
    add_operator(db, tenant, "viewer@example.com", "viewer")
    login(client, "viewer@example.com", "password-456")
    assert 'href="/segments/discover"' in client.get("/segments").text
    page = client.get("/segments/discover")
    assert page.status_code == 200
    for text in (
        "发现分群",
        'id="discover-form"',
        'name="k"',
        "自动（按轮廓系数在 3–7 中选）",
        'value="12"',
        "还没有发现结果",
    ):
        assert text in page.text, text
    assert 'value="13"' not in page.text and "hx-trigger" not in page.text
    assert client.get("/segments/discover?job=junk").status_code == 200  # junk query parameters are ignored


def test_discovery_shows_cards_and_saving_makes_a_static_segment(client, db: Session, tenant: Tenant) -> None:
    buyers = _buyers(client, tenant)
    csrf = login(client)
    job_id, html = _run(client, csrf)
    job = jobs.get_job(db, workspace_id=tenant.workspace_id, job_id=job_id)
    assert job is not None and job.status == "succeeded" and job.params == {"k": None}
    result = job.result
    assert result["customers"] == buyers and 3 <= result["k"] <= 7

    cards = _cards(html)
    assert len(cards) == len(result["clusters"]) == result["k"] and sum(cards.values()) == buyers
    assert 'data-state="done"' in html and "hx-trigger" not in html  # finished: no more polling
    assert f"分析了 {buyers} 位客户" in html and f"分成 {result['k']} 群" in html
    silhouette = html[html.index('id="discover-silhouette"') : html.index('id="discover-clusters"')]
    assert len(re.findall(r"<tr[^>]*data-k=", silhouette)) == len(result["silhouette"])
    assert f'class="chosen" data-k="{result["k"]}"' in silhouette
    richest = result["clusters"][0]  # clusters come sorted by average spend
    first = html[html.index(f'data-cluster="{richest["cluster"]}"') :]
    first = first[: first.index("</article>")]
    yuan, fen = divmod(richest["avg_spent"], 100)
    assert f"¥{yuan:,}.{fen:02d}" in first and richest["name_zh"] in first and "上海" in first
    assert "乌龙茶" in first and f"{richest['top_categories'][0]['share'] * 100:.1f}%" in first
    assert f"{richest['median_recency_days']} 天" in first and 'svg class="hbar"' in first
    assert f'value="{richest["name_zh"]}"' in first and 'action="/segments/discover/save"' in first
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html, re.I)  # vendored assets only

    # The page shows the latest run when opened again, and in English with the English names.
    assert _cards(client.get("/segments/discover").text) == cards
    client.post("/lang", data={"lang": "en", "csrf": csrf})
    english = client.get("/segments/discover").text
    assert "Silhouette by k" in english and f"{buyers} customers analysed" in english
    assert richest["name_en"] in english and "Save as segment" in english
    client.post("/lang", data={"lang": "zh-CN", "csrf": csrf})

    r = _save(client, csrf, job_id, richest["cluster"], "发现：上海高价值")
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/segments/(\d+)\?done=created", r.headers["location"])
    assert match
    seg = audience_service.get_segment(db, workspace_id=tenant.workspace_id, segment_id=int(match[1]))
    assert seg.kind == "static" and seg.name == "发现：上海高价值"
    assert seg.members_count == cards[richest["cluster"]] == richest["size"]
    page = client.get(r.headers["location"]).text
    assert "分群已创建" in page and f'id="segment-size" data-count="{richest["size"]}"' in page and "静态" in page
    audit = client.get("/audit").text
    assert "segment.created" in audit and "discovery_job" in audit


def test_a_fixed_k_has_no_silhouette_table(client, tenant: Tenant) -> None:
    _buyers(client, tenant)
    csrf = login(client)
    _, html = _run(client, csrf, "3")
    assert len(_cards(html)) == 3 and 'id="discover-silhouette"' not in html
    assert '<option value="3" selected>' in html  # the form keeps the k of the run shown
    bad = _start(client, csrf, "13")
    assert bad.status_code == 422 and 'id="discover-form-error"' in bad.text and "2–12" in bad.text
    assert _start(client, csrf, "1").status_code == 422


def test_too_few_customers_is_said_in_the_page(client, tenant: Tenant) -> None:
    for i in range(3):
        buyer = {
            "name": "少",
            "phone": f"1380000000{i}",
            "identities": [{"source": "api", "kind": "customer_id", "value": f"f-{i}"}],
        }
        push_order(client, tenant, f"F-{i}", phone=f"1380000000{i}", customer=buyer)
    csrf = login(client)
    job_id, html = _run(client, csrf)
    assert 'id="discover-error"' in html and "至少需要 20 位" in html
    assert 'data-state="too_few"' in html and "hx-trigger" not in html  # retrying will not help: stop polling
    fragment = client.get(f"/segments/discover/jobs/{job_id}")
    assert fragment.status_code == 200 and "<html" not in fragment.text and "至少需要 20 位" in fragment.text
    client.post("/lang", data={"lang": "en", "csrf": csrf})
    assert "Too few customers" in client.get("/segments/discover").text


def test_progress_is_polled_until_the_job_finishes(client, db: Session, tenant: Tenant, monkeypatch) -> None:
    _buyers(client, tenant)
    csrf = login(client)
    monkeypatch.setattr(jobs, "_dispatch", lambda job_id: None)  # leave the job queued, as a busy worker would
    job_id, html = _run(client, csrf)
    assert 'id="discover-progress"' in html and f'hx-get="/segments/discover/jobs/{job_id}"' in html
    assert 'hx-trigger="every 1s"' in html and "排队中" in html and "还没有发现结果" not in html
    again = _start(client, csrf)  # a second click while it waits shows the same run
    assert again.headers["location"] == f"/segments/discover?job={job_id}"
    fragment = client.get(f"/segments/discover/jobs/{job_id}").text
    assert "<html" not in fragment and 'hx-trigger="every 1s"' in fragment
    assert _save(client, csrf, job_id, 0, "太早").status_code == 422  # nothing to save yet

    jobs.run_job(job_id)
    done = client.get(f"/segments/discover/jobs/{job_id}").text
    assert "hx-trigger" not in done and 'data-state="done"' in done and len(_cards(done)) >= 3
    assert 'action="/segments/discover/save"' in done


def test_save_problems_are_shown_on_the_card(client, db: Session, tenant: Tenant) -> None:
    _buyers(client, tenant)
    csrf = login(client)
    job_id, html = _run(client, csrf, "3")
    cluster = next(iter(_cards(html)))
    assert _save(client, csrf, job_id, cluster, "唯一的名字").status_code == 303
    taken = _save(client, csrf, job_id, cluster, "唯一的名字")
    assert taken.status_code == 409 and f'id="save-error-{cluster}"' in taken.text and "已有同名分群" in taken.text
    empty = _save(client, csrf, job_id, cluster, "   ")
    assert empty.status_code == 422 and f'id="save-error-{cluster}"' in empty.text
    missing = _save(client, csrf, job_id, 42, "不存在的群")
    assert (
        missing.status_code == 422 and 'id="discover-save-error"' in missing.text and "没有这个候选群" in missing.text
    )
    assert [s.name for s in audience_service.list_segments(db, workspace_id=tenant.workspace_id)] == ["唯一的名字"]
    assert (
        client.post("/segments/discover/save", data={"job_id": str(job_id), "cluster": "0", "name": "x"}).status_code
        == 403
    )


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_readers_run_discovery_but_cannot_save(client, db: Session, tenant: Tenant, role: str) -> None:
    _buyers(client, tenant)
    add_operator(db, tenant, f"{role}@example.com", role)
    csrf = login(client, f"{role}@example.com", "password-456")
    job_id, html = _run(client, csrf, "3")
    assert len(_cards(html)) == 3 and 'id="discover-readonly"' in html
    assert 'action="/segments/discover/save"' not in html and 'name="name"' not in html
    r = _save(client, csrf, job_id, next(iter(_cards(html))), "不许保存")
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert audience_service.list_segments(db, workspace_id=tenant.workspace_id) == []


def test_another_workspaces_run_is_a_404(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    _buyers(client, other_tenant)
    api = client.post("/api/v1/segments/discover", json={"k": 3}, headers=other_tenant.headers())
    assert api.status_code == 202, api.text
    foreign = api.json()["id"]
    assert jobs.get_job(db, workspace_id=other_tenant.workspace_id, job_id=foreign).status == "succeeded"
    name = jobs.get_job(db, workspace_id=other_tenant.workspace_id, job_id=foreign).result["clusters"][0]["name_zh"]
    csrf = login(client)
    for path in (f"/segments/discover?job={foreign}", f"/segments/discover/jobs/{foreign}"):
        r = client.get(path)
        assert r.status_code == 404 and "页面不存在" in r.text and name not in r.text, path
    assert _save(client, csrf, foreign, 0, "偷来的").status_code == 404
    own = client.get("/segments/discover").text  # this workspace has no run: nothing of the other's shows
    assert "还没有发现结果" in own and 'data-cluster="' not in own
    # A job of this workspace that is not a discovery is not one either.
    other_kind = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind=audience_service.RFM_JOB, params={})
    db.commit()
    assert client.get(f"/segments/discover?job={other_kind.id}").status_code == 404
    assert _save(client, csrf, other_kind.id, 0, "不是发现").status_code == 404
    assert audience_service.list_segments(db, workspace_id=tenant.workspace_id) == []
    assert audience_service.list_segments(db, workspace_id=other_tenant.workspace_id) == []
