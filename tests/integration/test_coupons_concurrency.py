"""Coupons under concurrency (threads with their own sessions on the real database): stock, budget, limits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.promotions.coupons import service
from shequn.promotions.coupons.errors import CouponBudgetExhausted, CouponLimitReached, CouponSoldOut
from shequn.promotions.coupons.models import CouponGrant, CouponTemplate
from tests.conftest import Tenant
from tests.integration.test_coupons import people, template
from tests.integration.test_gatherings_concurrency import _race

THREADS = 12


def _granted(db: Session, tid: int) -> tuple[int, CouponTemplate]:
    db.expire_all()
    n = db.scalar(select(func.count()).select_from(CouponGrant).where(CouponGrant.template_id == tid)) or 0
    tpl = db.get(CouponTemplate, tid)
    assert tpl is not None
    return n, tpl


def _claims(ws: int, tid: int, customers: list[int]) -> list[Any]:
    return [
        (lambda s, c=c: service.claim_coupon(s, workspace_id=ws, template_id=tid, customer_id=c).id) for c in customers
    ]


def test_stock_race_issues_exactly_the_stock(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    stock = 5
    tid = template(db, tenant, total_stock=stock)
    results = _race(_claims(ws, tid, people(db, tenant, THREADS)))
    wins = [r for r in results if isinstance(r, int)]
    assert len(wins) == stock
    assert all(isinstance(r, CouponSoldOut) for r in results if not isinstance(r, int)), results
    n, tpl = _granted(db, tid)
    assert n == stock and tpl.issued_count == stock


def test_budget_race_never_passes_the_cap(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    tid = template(db, tenant, budget_fen=4 * 1000 + 999)
    results = _race(_claims(ws, tid, people(db, tenant, THREADS)))
    wins = [r for r in results if isinstance(r, int)]
    assert len(wins) == 4
    assert all(isinstance(r, CouponBudgetExhausted) for r in results if not isinstance(r, int)), results
    n, tpl = _granted(db, tid)
    assert n == 4 and tpl.committed_fen == 4000


def test_one_customer_racing_gets_no_more_than_the_limit(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    tid = template(db, tenant, per_customer_limit=2)
    (cid,) = people(db, tenant, 1)
    results = _race(_claims(ws, tid, [cid] * 8))
    wins = [r for r in results if isinstance(r, int)]
    assert len(wins) == 2
    assert all(isinstance(r, CouponLimitReached) for r in results if not isinstance(r, int)), results
    assert _granted(db, tid)[0] == 2


def test_racing_redemptions_use_a_coupon_once(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    tid = template(db, tenant)
    (cid,) = people(db, tenant, 1)
    gid = service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=cid).id
    db.commit()
    calls: list[Any] = [
        (lambda s, i=i: service.redeem(s, workspace_id=ws, order_ref=f"R-{i}", amount_fen=5000, grant_ids=[gid]))
        for i in range(6)
    ]
    results = _race(calls)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1, results
    _, tpl = _granted(db, tid)
    assert tpl.redeemed_count == 1 and tpl.discount_fen == 1000


def test_fanout_racing_member_claims_never_passes_the_stock(db: Session, tenant: Tenant) -> None:
    from tests.integration.test_coupons_fanout import segment

    ws = tenant.workspace_id
    members = people(db, tenant, 40)
    sid = segment(db, tenant, members)
    claimers = people(db, tenant, 8)
    tid = template(db, tenant, total_stock=30)
    fanout: list[Any] = [
        lambda s: service.run_fanout(
            s, workspace_id=ws, template_id=tid, segment_id=sid, chunk=7, checkpoint=lambda *_: s.commit()
        )
    ]
    results = _race(fanout + _claims(ws, tid, claimers))
    assert not isinstance(results[0], Exception), results[0]
    n, tpl = _granted(db, tid)
    assert n == tpl.issued_count == 30
    assert results[0].stopped == "stock"
