"""The UGC demo step: posts with topics, Q&A with accepted answers and verified reviews, once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import engine as _engine  # noqa: F401  (see test_ugc_posts: listener registration)
from shequn.community import tasks
from shequn.community.ugc import service as ugc_service
from shequn.community.ugc.models import Post, Review
from shequn.core.jobs import enqueue_job
from shequn.core.models import JobRun
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_customers
from tests.integration.test_ugc_reviews import _buy


def test_demo_job_adds_ugc_once(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    make_customers(db, ws, 150, prefix="demo")
    db.commit()
    _buy(client, tenant, "D-1", "demo-buyer-1", "陈小茶")
    assert "ugc" in tasks.DEMO_STEPS
    for _ in range(2):
        enqueue_job(db, workspace_id=ws, kind=tasks.DEMO_JOB, params={"scale": 0.5})
        db.commit()
    db.expire_all()
    jobs = db.scalars(select(JobRun).where(JobRun.kind == tasks.DEMO_JOB)).all()
    assert [j.status for j in jobs] == ["succeeded", "succeeded"], [j.error for j in jobs]
    assert jobs[0].result["ugc"]["posts"] > 0 and jobs[1].result["ugc"] == {"posts": 0, "reviews": 0}
    assert db.scalar(select(func.count(Post.id)).where(Post.kind == "question", Post.accepted_comment_id.is_not(None)))
    topics, _ = ugc_service.list_topics(db, workspace_id=ws)
    assert topics[0].posts_count > 0 and any(t.name == "明前龙井" for t in topics)
    review = db.scalars(select(Review)).first()
    assert review is not None and review.verified_purchase and review.author_name == "陈**"
    body = ugc_service.public_reviews(db, workspace_id=ws, workspace_slug=tenant.slug, sku_or_id="TEA-LJ-100")
    assert body["summary"]["count"] == 1
