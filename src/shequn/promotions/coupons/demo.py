"""The demo brand's coupons: a welcome coupon, a public-code 满减, a unique-code percentage, claims and redemptions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.promotions.coupons.claims import claim_by_code, claim_coupon
from shequn.promotions.coupons.codes import generate_codes
from shequn.promotions.coupons.models import CouponCode, CouponTemplate
from shequn.promotions.coupons.redeem import redeem
from shequn.promotions.coupons.schemas import TemplateIn
from shequn.promotions.coupons.templates import create_template, set_status

DEMO_CLAIMS = 40


def _templates(session: Session, workspace_id: int, campaign_id: int | None) -> list[CouponTemplate]:
    now = utcnow()
    specs = [
        TemplateIn(
            name="新客立减 10 元",
            kind="fixed",
            amount_fen=1000,
            min_order_fen=5000,
            starts_at=now - timedelta(days=6),
            ends_at=now + timedelta(days=24),
            validity="relative",
            valid_days=7,
            total_stock=500,
            per_customer_limit=1,
            campaign_id=campaign_id,
        ),
        TemplateIn(
            name="满 199 减 30",
            kind="threshold",
            amount_fen=3000,
            min_order_fen=19900,
            starts_at=now - timedelta(days=6),
            ends_at=now + timedelta(days=14),
            code_mode="public",
            public_code="TEA30",
            budget_fen=300_000,
            stackable=True,
            campaign_id=campaign_id,
        ),
        TemplateIn(
            name="茶具八折券",
            kind="percent",
            percent_off=20,
            max_discount_fen=5000,
            scope="categories",
            scope_categories=["茶具"],
            starts_at=now - timedelta(days=6),
            ends_at=now + timedelta(days=30),
            code_mode="unique",
            total_stock=200,
            campaign_id=campaign_id,
        ),
    ]
    out = []
    for spec in specs:
        tpl = create_template(session, workspace_id=workspace_id, data=spec)
        set_status(session, workspace_id=workspace_id, template_id=tpl.id, status="active")
        out.append(tpl)
    return out


def demo_coupons(session: Session, *, workspace_id: int, campaign_id: int | None = None) -> dict[str, int]:
    """Create the demo templates once, with some claims and redemptions; returns counts."""
    if session.scalar(select(CouponTemplate.id).where(CouponTemplate.workspace_id == workspace_id).limit(1)):
        return {"coupon_templates": 0}
    welcome, _public, unique = _templates(session, workspace_id, campaign_id)
    generate_codes(session, workspace_id=workspace_id, template_id=unique.id, count=60, length=10)
    customers = audience_service.all_live_customer_ids(session, workspace_id=workspace_id)[:DEMO_CLAIMS]
    codes = list(session.scalars(select(CouponCode.code).where(CouponCode.template_id == unique.id).limit(10)))
    claims = redeemed = 0
    for i, cid in enumerate(customers):
        try:
            g = claim_coupon(session, workspace_id=workspace_id, template_id=welcome.id, customer_id=cid)
            claims += 1
            if i % 4 == 0:
                claim_by_code(session, workspace_id=workspace_id, code="tea30", customer_id=cid)
                claims += 1
            if i < len(codes):
                claim_by_code(session, workspace_id=workspace_id, code=codes[i], customer_id=cid)
                claims += 1
            if i % 3 == 0:
                redeem(session, workspace_id=workspace_id, order_ref=f"DEMO-{cid}", amount_fen=8800, grant_ids=[g.id])
                redeemed += 1
        except ShequnError:
            continue  # a demo customer without a phone limit clash etc.: the demo stays best-effort
    session.flush()
    return {"coupon_templates": 3, "coupon_claims": claims, "coupon_redemptions": redeemed}
