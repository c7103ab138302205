"""Demo layers of quizzes and challenges (on top of the community demo's UGC), run once, and both kinds on the
campaign page's summary."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import engine as _engine  # noqa: F401  (see test_ugc_posts: listener registration)
from shequn.community import tasks as community_tasks
from shequn.core.jobs import enqueue_job
from shequn.core.models import JobRun
from shequn.promotions import common
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_customers


def test_demo_steps_build_a_quiz_and_a_challenge_once(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    make_customers(db, ws, 120, prefix="demo")
    db.commit()
    # The community demo chains the promotions demo, which runs every registered step in its campaign.
    enqueue_job(db, workspace_id=ws, kind=community_tasks.DEMO_JOB, params={"scale": 0.5})
    db.commit()
    db.expire_all()
    job = db.scalars(select(JobRun).where(JobRun.kind == "promotions.demo")).one()
    assert job.status == "succeeded", job.error
    first = job.result
    assert first["quiz"] == {"quizzes": 1, "attempts": 40}, first
    assert first["challenge"]["challenges"] == 1 and first["challenge"]["entries"] > 0, first
    assert first["challenge"]["votes"] > 0
    camp = first["campaign_id"]
    steps = dict(common.demo_steps())
    again = {k: steps[k](db, workspace_id=ws, campaign_id=camp) for k in ("quiz", "challenge")}
    assert again == {"quiz": {"quizzes": 0, "attempts": 0}, "challenge": {"challenges": 0, "entries": 0, "votes": 0}}
    summary = {s.kind: s for s in common.summarize_campaign(db, workspace_id=ws, campaign_id=camp)}
    assert summary["quiz"].participants == 40 and 0 < summary["quiz"].wins <= 20
    assert summary["challenge"].actions == first["challenge"]["entries"]
    assert client.get("/api/v1/quizzes", headers=tenant.headers("viewer")).json()["total"] == 1
    assert client.get("/api/v1/challenges", headers=tenant.headers("viewer")).json()["total"] == 1
