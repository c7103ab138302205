"""Coupons on the real database: templates, claims, limits, validity, prizes and the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer
from shequn.core.clock import utcnow
from shequn.core.outbox import OutboxMessage, enqueue_message
from shequn.core.security import phone_hash
from shequn.promotions.coupons import service
from shequn.promotions.coupons.errors import (
    CouponBudgetExhausted,
    CouponEnded,
    CouponLimitReached,
    CouponNotActive,
    CouponNotStarted,
    CouponNotUsable,
    CouponSoldOut,
)
from shequn.promotions.coupons.models import CouponGrant
from shequn.promotions.coupons.schemas import TemplateIn
from tests.conftest import Tenant


def people(db: Session, tenant: Tenant, n: int, phone: str | None = None) -> list[int]:
    """n customers; with phone, all share that phone's hash."""
    rows = [
        Customer(
            workspace_id=tenant.workspace_id,
            name=f"券友{i}",
            phone_masked=f"139****{i:04d}",
            phone_hash=phone_hash(phone) if phone else None,
        )
        for i in range(n)
    ]
    db.add_all(rows)
    db.commit()
    return [c.id for c in rows]


def template(db: Session, tenant: Tenant, *, activate: bool = True, **extra: Any) -> int:
    """A ¥10-off template open for a week unless told otherwise."""
    now = utcnow()
    fields: dict[str, Any] = {
        "name": "十元券",
        "kind": "fixed",
        "amount_fen": 1000,
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=7),
    }
    fields.update(extra)
    tpl = service.create_template(db, workspace_id=tenant.workspace_id, data=TemplateIn(**fields))
    if activate:
        service.set_status(db, workspace_id=tenant.workspace_id, template_id=tpl.id, status="active")
    db.commit()
    return tpl.id


def test_grant_coupon_is_idempotent_by_source_ref_and_queues_one_message(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    tid = template(db, tenant)
    (cid,) = people(db, tenant, 1)
    first = service.grant_coupon(
        db, workspace_id=ws, template_id=tid, customer_id=cid, source="lottery", source_ref="draw-1"
    )
    db.commit()
    again = service.grant_coupon(
        db, workspace_id=ws, template_id=tid, customer_id=cid, source="lottery", source_ref="draw-1"
    )
    db.commit()
    assert again.id == first.id
    other = service.grant_coupon(
        db, workspace_id=ws, template_id=tid, customer_id=cid, source="lottery", source_ref="draw-2"
    )
    db.commit()
    assert other.id != first.id
    assert db.scalar(select(func.count()).select_from(CouponGrant)) == 2
    msgs = list(db.scalars(select(OutboxMessage).where(OutboxMessage.workspace_id == ws)))
    assert len(msgs) == 2 and {m.kind for m in msgs} == {"coupon.granted"}
    tpl = service.get_template(db, workspace_id=ws, template_id=tid)
    db.refresh(tpl)
    assert tpl.issued_count == 2 and tpl.committed_fen == 2000
    assert service.list_templates_for_choice(db, workspace_id=ws) == [(tid, "十元券")]


def test_outbox_dedupe_key_is_unique(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    assert enqueue_message(db, workspace_id=ws, customer_id=None, kind="k", payload={"a": 1}, dedupe_key="x")
    assert not enqueue_message(db, workspace_id=ws, customer_id=None, kind="k", payload={"a": 2}, dedupe_key="x")
    db.commit()
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_claim_window_before_start_after_end_and_draft(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    (cid,) = people(db, tenant, 1)
    now = utcnow()
    early = template(db, tenant, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(days=1))
    with pytest.raises(CouponNotStarted):
        service.claim_coupon(db, workspace_id=ws, template_id=early, customer_id=cid)
    late = template(db, tenant, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    with pytest.raises(CouponEnded):
        service.claim_coupon(db, workspace_id=ws, template_id=late, customer_id=cid)
    draft = template(db, tenant, activate=False)
    with pytest.raises(CouponNotActive):
        service.claim_coupon(db, workspace_id=ws, template_id=draft, customer_id=cid)


def test_relative_validity_runs_from_claim(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    (cid,) = people(db, tenant, 1)
    tid = template(db, tenant, validity="relative", valid_days=3)
    at = utcnow()
    g = service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=cid, now=at)
    db.commit()
    assert g.valid_from == at and g.valid_until == at + timedelta(days=3)


def test_per_customer_and_per_phone_limits(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a, b, c = people(db, tenant, 3, phone="13800000000")
    tid = template(db, tenant, per_customer_limit=2, per_phone_limit=2)
    service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=a)
    service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=a)
    db.commit()
    with pytest.raises(CouponLimitReached):
        service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=a)
    db.rollback()
    # b is another customer with the same phone: the phone's two coupons are taken.
    with pytest.raises(CouponLimitReached):
        service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=b)
    db.rollback()
    (d,) = people(db, tenant, 1)
    service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=d)
    db.commit()
    assert c


def test_stock_and_budget(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    ids = people(db, tenant, 3)
    sold = template(db, tenant, total_stock=1)
    service.claim_coupon(db, workspace_id=ws, template_id=sold, customer_id=ids[0])
    db.commit()
    with pytest.raises(CouponSoldOut):
        service.claim_coupon(db, workspace_id=ws, template_id=sold, customer_id=ids[1])
    db.rollback()
    capped = template(db, tenant, budget_fen=1500)
    service.claim_coupon(db, workspace_id=ws, template_id=capped, customer_id=ids[0])
    db.commit()
    with pytest.raises(CouponBudgetExhausted):
        service.claim_coupon(db, workspace_id=ws, template_id=capped, customer_id=ids[1])
    db.rollback()
    tpl = service.get_template(db, workspace_id=ws, template_id=capped)
    db.refresh(tpl)
    assert tpl.issued_count == 1 and tpl.committed_fen == 1000


def test_redemption_only_inside_the_validity_window_and_expiry_releases_budget(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a, b = people(db, tenant, 2)
    tid = template(db, tenant, validity="relative", valid_days=3, budget_fen=10_000)
    at = utcnow() - timedelta(minutes=5)
    ga = service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=a, now=at)
    gb = service.claim_coupon(db, workspace_id=ws, template_id=tid, customer_id=b, now=at)
    db.commit()
    with pytest.raises(CouponNotUsable):  # four days after the claim: past its 3 days
        service.redeem(
            db, workspace_id=ws, order_ref="late", amount_fen=5000, grant_ids=[ga.id], now=at + timedelta(days=4)
        )
    db.rollback()
    service.redeem(db, workspace_id=ws, order_ref="ok", amount_fen=5000, grant_ids=[gb.id], now=at + timedelta(days=2))
    db.commit()
    assert service.expire_grants(db, workspace_id=ws, now=at + timedelta(days=4)) == 1
    db.commit()
    db.expire_all()
    tpl = service.get_template(db, workspace_id=ws, template_id=tid)
    assert db.get(CouponGrant, ga.id).state == "expired"  # type: ignore[union-attr]
    assert tpl.committed_fen == 1000 and tpl.discount_fen == 1000  # only the used coupon's discount stays


def test_demo_step_and_campaign_summary(db: Session, tenant: Tenant) -> None:
    from shequn.promotions.campaigns.models import Campaign
    from shequn.promotions.common import summarize_campaign
    from shequn.promotions.coupons.demo import demo_coupons

    ws = tenant.workspace_id
    now = utcnow()
    camp = Campaign(
        workspace_id=ws,
        name="春茶季",
        starts_at=now - timedelta(days=7),
        ends_at=now + timedelta(days=30),
        channels=[],
        kpis={},
    )
    db.add(camp)
    db.commit()
    people(db, tenant, 12)
    counts = demo_coupons(db, workspace_id=ws, campaign_id=camp.id)
    db.commit()
    assert counts["coupon_templates"] == 3 and counts["coupon_claims"] >= 12 and counts["coupon_redemptions"] >= 1
    assert demo_coupons(db, workspace_id=ws, campaign_id=camp.id) == {"coupon_templates": 0}  # once only
    rows = [r for r in summarize_campaign(db, workspace_id=ws, campaign_id=camp.id) if r.kind == "coupon"]
    assert len(rows) == 3 and sum(r.wins for r in rows) == counts["coupon_claims"]
    assert sum(r.redemptions for r in rows) == counts["coupon_redemptions"]
    assert all(r.console_url.startswith("/coupons/") for r in rows)


def test_public_code_redemption_retried_uses_one_coupon(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    (cid,) = people(db, tenant, 1)
    template(db, tenant, code_mode="public", public_code="TEA10", per_customer_limit=2)
    first = service.claim_by_code(db, workspace_id=ws, code="tea10", customer_id=cid)
    second = service.claim_by_code(db, workspace_id=ws, code="TEA10", customer_id=cid)
    db.commit()
    for _ in range(2):
        done = service.redeem(db, workspace_id=ws, order_ref="O-1", amount_fen=5000, customer_id=cid, codes=["tea10"])
        db.commit()
        assert [c.grant_id for c in done.coupons] == [first.id] and done.discount_fen == 1000
    db.expire_all()
    assert db.get(CouponGrant, second.id).state == "issued"  # type: ignore[union-attr]
