"""Coupon fan-out to a segment: set-based grants and outbox messages, idempotent reruns, stock and budget stops."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import Segment, SegmentMember
from shequn.core.outbox import OutboxMessage
from shequn.promotions.coupons import service
from shequn.promotions.coupons.models import CouponGrant, CouponTemplate
from tests.conftest import Tenant
from tests.integration.test_coupons import people, template


def segment(db: Session, tenant: Tenant, customer_ids: list[int]) -> int:
    """A static segment holding exactly these customers."""
    seg = Segment(
        workspace_id=tenant.workspace_id, name="高价值", kind="static", rule={}, members_count=len(customer_ids)
    )
    db.add(seg)
    db.flush()
    db.add_all(SegmentMember(segment_id=seg.id, customer_id=c, workspace_id=tenant.workspace_id) for c in customer_ids)
    db.commit()
    return seg.id


def counts(db: Session, tid: int) -> tuple[int, int]:
    db.expire_all()
    grants = db.scalar(select(func.count()).select_from(CouponGrant).where(CouponGrant.template_id == tid)) or 0
    msgs = db.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dedupe_key.startswith(f"coupon:{tid}:"))
    )
    return grants, msgs or 0


def test_fanout_job_issues_once_per_member_with_a_message_and_rerun_adds_nothing(
    client: Any, db: Session, tenant: Tenant
) -> None:
    ids = people(db, tenant, 25)
    sid = segment(db, tenant, ids)
    tid = template(db, tenant)
    # One member already claimed: the fan-out skips them.
    service.claim_coupon(db, workspace_id=tenant.workspace_id, template_id=tid, customer_id=ids[0])
    db.commit()
    r = client.post(f"/api/v1/coupons/templates/{tid}/fanout", json={"segment_id": sid}, headers=tenant.headers())
    assert r.status_code == 202, r.text
    job = client.get(f"/api/v1/coupons/jobs/{r.json()['id']}", headers=tenant.headers("viewer")).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["issued"] == 24 and job["result"]["already_held"] == 1 and job["result"]["messages"] == 24
    assert counts(db, tid) == (25, 25)
    again = client.post(f"/api/v1/coupons/templates/{tid}/fanout", json={"segment_id": sid}, headers=tenant.headers())
    job = client.get(f"/api/v1/coupons/jobs/{again.json()['id']}", headers=tenant.headers()).json()
    assert job["result"]["issued"] == 0 and job["result"]["already_held"] == 25
    assert counts(db, tid) == (25, 25)
    tpl = db.get(CouponTemplate, tid)
    assert tpl is not None and tpl.issued_count == 25


@pytest.mark.parametrize("fast_path", [True, False])
def test_fanout_stops_at_stock_and_budget_with_a_report(db: Session, tenant: Tenant, fast_path: bool) -> None:
    ws = tenant.workspace_id
    ids = people(db, tenant, 30)
    sid = segment(db, tenant, ids)
    stocked = template(db, tenant, total_stock=12)
    r = service.run_fanout(db, workspace_id=ws, template_id=stocked, segment_id=sid, chunk=7, fast_path=fast_path)
    db.commit()
    assert (r.issued, r.messages, r.stopped) == (12, 12, "stock")
    assert counts(db, stocked) == (12, 12)
    budgeted = template(db, tenant, budget_fen=5 * 1000)
    r = service.run_fanout(db, workspace_id=ws, template_id=budgeted, segment_id=sid, chunk=4, fast_path=fast_path)
    db.commit()
    assert (r.issued, r.stopped) == (5, "budget")
    tpl = db.get(CouponTemplate, budgeted)
    assert tpl is not None
    db.refresh(tpl)
    assert tpl.committed_fen == 5000 and tpl.issued_count == 5
    # Chunks smaller than the segment and a rerun: every member exactly once.
    free = template(db, tenant)
    for _ in range(2):
        r = service.run_fanout(db, workspace_id=ws, template_id=free, segment_id=sid, chunk=8, fast_path=fast_path)
        db.commit()
    assert counts(db, free) == (30, 30)
    assert r.issued == 0 and r.members == 30


def test_fanout_is_scoped_to_the_workspace(client: Any, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    sid = segment(db, tenant, people(db, tenant, 3))
    tid = template(db, tenant)
    r = client.post(f"/api/v1/coupons/templates/{tid}/fanout", json={"segment_id": sid}, headers=other_tenant.headers())
    assert r.status_code == 404
    other_tid = template(db, other_tenant)
    r = client.post(
        f"/api/v1/coupons/templates/{other_tid}/fanout", json={"segment_id": sid}, headers=other_tenant.headers()
    )
    assert r.status_code == 404  # A's segment is invisible to B
    r = client.post(
        f"/api/v1/coupons/templates/{tid}/fanout", json={"segment_id": sid}, headers=tenant.headers("viewer")
    )
    assert r.status_code == 403
