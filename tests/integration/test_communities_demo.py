"""The community demo job: four communities with members, history, activity and enforcements, once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.commerce import service as commerce_service
from shequn.community import health, tasks
from shequn.community import service as community_service
from shequn.core import signals
from shequn.core.jobs import enqueue_job
from shequn.core.models import JobRun
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_customers


def test_demo_job_creates_communities_once_and_runs_later_steps(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    make_customers(db, ws, 150, prefix="demo")
    db.commit()
    seen: list[int] = []

    def step(session: Session, workspace_id: int) -> dict[str, Any]:
        seen.append(len(community_service.list_communities(session, workspace_id=workspace_id)))
        return {"ok": 1}

    others = dict(tasks.DEMO_STEPS)  # fission/ugc/gatherings test their own demo data
    tasks.DEMO_STEPS.clear()
    tasks.register_demo_step("test_step", step)
    try:
        enqueue_job(db, workspace_id=ws, kind=tasks.DEMO_JOB, params={"scale": 0.5})
        db.commit()
        enqueue_job(db, workspace_id=ws, kind=tasks.DEMO_JOB, params={"scale": 0.5})  # a second run adds nothing
        db.commit()
    finally:
        tasks.DEMO_STEPS.clear()
        tasks.DEMO_STEPS.update(others)
    db.expire_all()
    jobs = db.scalars(select(JobRun).where(JobRun.kind == tasks.DEMO_JOB)).all()
    assert [j.status for j in jobs] == ["succeeded", "succeeded"], [j.error for j in jobs]
    assert jobs[1].result["communities"] == {"communities": 0, "members": 0, "enforcements": 0}
    assert seen == [4, 4]  # later steps see the communities
    comms = {c.name: c for c in community_service.list_communities(db, workspace_id=ws)}
    assert set(comms) == {"茶友品鉴群", "新品体验官", "微博超话 #山茶集#", "茶器茶人交流圈"}
    tea = comms["茶友品鉴群"]
    h = health.community_health(db, workspace_id=ws, community_id=tea.id)
    assert 50 < h.members <= 80 and h.active_30d > 10 and sum(n for _, n in h.posts_by_day) > 0
    assert h.members_by_day[0][1] < h.members_by_day[-1][1]  # the group grew over the month
    assert h.top_contributors and h.appeals_pending == 1
    total, _ = community_service.list_members(
        db, workspace_id=ws, community_id=comms["新品体验官"].id, status="pending"
    )
    assert total == 3
    assert tasks._on_demo_loaded in signals._receivers[commerce_service.DEMO_LOADED]
