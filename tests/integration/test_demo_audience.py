"""The demo load's audience layer: tracked events, tags and segments arrive after the orders, by jobs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.analytics.models import Event
from shequn.audience.models import Customer, Segment, Tag
from shequn.commerce import service as commerce_service
from shequn.core.jobs import enqueue_job
from shequn.core.models import JobRun
from tests.conftest import Tenant


def test_demo_load_adds_events_tags_and_filled_segments(client, db: Session, tenant: Tenant) -> None:
    enqueue_job(
        db,
        workspace_id=tenant.workspace_id,
        kind=commerce_service.DEMO_JOB,
        params={"customers": 300, "months": 12, "seed": 7, "end": "2026-11-20T00:00:00+08:00"},
    )
    db.commit()
    db.expire_all()
    failed = db.scalars(select(JobRun).where(JobRun.status != "succeeded")).all()
    assert not failed, [(j.kind, j.error) for j in failed]
    assert db.scalar(select(func.count()).select_from(Event)) > 100
    tags = {t.name: t for t in db.scalars(select(Tag).where(Tag.workspace_id == tenant.workspace_id))}
    assert {"VIP 名单", "高客单", "社交达人"} <= set(tags) and tags["VIP 名单"].customers_count > 0
    segs = {s.name: s for s in db.scalars(select(Segment).where(Segment.workspace_id == tenant.workspace_id))}
    assert len(segs) == 5
    assert segs["近30天分享达人"].members_count > 0 and segs["重要价值·绿茶爱好者"].members_count > 0
    staged = db.scalar(select(func.count()).select_from(Customer).where(Customer.lifecycle.is_not(None)))
    buyers = db.scalar(select(func.count()).select_from(Customer).where(Customer.orders_count > 0))
    assert staged == buyers
    # The console shows them.
    page = client.get("/api/v1/segments", headers=tenant.headers()).json()
    assert {s["name"] for s in page} == set(segs)
