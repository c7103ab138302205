"""The demo brand's promotions layer: after the commerce and community demo jobs, a running "双11 茶友节"
campaign holds every registered promotions demo step's activities and a past 618 campaign shows its tagged
orders; the campaign pages render; a rerun adds nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.commerce import service as commerce_service
from shequn.core.clock import utcnow
from shequn.core.jobs import enqueue_job
from shequn.core.models import JobRun
from shequn.promotions import demo
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.campaigns.tasks import DEMO_JOB
from shequn.promotions.common import demo_steps, summarize_campaign
from tests.conftest import Tenant
from tests.integration.test_console import login


def _campaigns(db: Session, ws: int) -> dict[str, campaigns_service.Campaign]:
    rows, _ = campaigns_service.list_campaigns(db, workspace_id=ws, limit=50)
    return {c.name: c for c in rows}


def test_demo_chain_builds_campaigns_with_every_step_once(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    end = utcnow().astimezone(demo.CST).replace(hour=0, minute=0, second=0, microsecond=0)
    enqueue_job(
        db,
        workspace_id=ws,
        kind=commerce_service.DEMO_JOB,
        params={"customers": 300, "months": 12, "seed": 11, "end": end.isoformat()},
    )
    db.commit()
    db.expire_all()
    failed = db.scalars(select(JobRun).where(JobRun.status != "succeeded")).all()
    assert not failed, [(j.kind, j.error) for j in failed]
    runs = db.scalars(select(JobRun).where(JobRun.kind == DEMO_JOB)).all()
    assert len(runs) == 1  # chained once, after the community demo
    result = runs[0].result
    steps = [name for name, _ in demo_steps()]
    for name in steps:
        assert name in result and "error" not in result[name], (name, result[name])

    campaigns = _campaigns(db, ws)
    main, past = campaigns[demo.DOUBLE11], campaigns[demo.SIX18]
    assert campaigns_service.status_of(main) == "running" and campaigns_service.status_of(past) == "ended"
    assert main.target_segment_id and main.target_community_id and main.budget_fen
    activities = summarize_campaign(db, workspace_id=ws, campaign_id=main.id)
    results = campaigns_service.campaign_results(db, workspace_id=ws, campaign_id=main.id)
    assert results.actuals["participants"] == sum(a.participants for a in activities)
    assert results.actuals["claims"] == sum(a.actions for a in activities)
    assert results.actuals["redemptions"] == sum(a.redemptions for a in activities)
    assert results.actuals["gmv_fen"] >= sum(a.gmv_fen for a in activities)
    assert dict(results.funnel)["targeted"] > 0 and results.audience_source == "segment"

    login(client)
    page = client.get(f"/campaigns/{main.id}")
    assert page.status_code == 200 and demo.DOUBLE11 in page.text and 'id="campaign-live"' in page.text
    for a in activities:
        assert f'data-activity="{a.kind}-{a.id}"' in page.text, a
    past_results = campaigns_service.campaign_results(db, workspace_id=ws, campaign_id=past.id)
    assert past_results.actuals["orders"] > 0 and past_results.tagged_gmv_fen > 0  # 618-tagged demo orders
    past_page = client.get(f"/campaigns/{past.id}")
    assert past_page.status_code == 200 and '<svg class="chart"' in past_page.text
    assert "hx-trigger" not in past_page.text and 'hx-trigger="every 10s"' in page.text  # long over: no polling
    listing = client.get("/campaigns").text
    assert demo.DOUBLE11 in listing and demo.SIX18 in listing

    # A rerun (e.g. the job retried) adds no campaign and no activity.
    enqueue_job(db, workspace_id=ws, kind=DEMO_JOB, params={})
    db.commit()
    db.expire_all()
    again = db.scalars(select(JobRun).where(JobRun.kind == DEMO_JOB).order_by(JobRun.id.desc())).first()
    assert again is not None and again.status == "succeeded" and again.result["created"] is False
    assert len(_campaigns(db, ws)) == 2
    later = summarize_campaign(db, workspace_id=ws, campaign_id=main.id)
    assert sorted((a.kind, a.id) for a in later) == sorted((a.kind, a.id) for a in activities)
