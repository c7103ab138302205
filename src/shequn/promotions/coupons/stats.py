"""Coupon results: claims per day, redemption rate, discount given, GMV; the campaign page summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.common import ActivitySummary, participations_by_day
from shequn.promotions.coupons.models import CouponGrant, CouponTemplate


@dataclass(frozen=True)
class TemplateResults:
    """What a template achieved."""

    issued: int
    holders: int
    redeemed: int
    expired: int
    reversed: int
    discount_fen: int
    gmv_fen: int
    per_day: list[tuple[date, int]]  # grants per UTC day, oldest first

    @property
    def redemption_rate(self) -> float:
        """Redeemed share of issued coupons (0–1)."""
        return self.redeemed / self.issued if self.issued else 0.0


def _state_counts(session: Session, template_id: int) -> dict[str, int]:
    rows = session.execute(
        select(CouponGrant.state, func.count())
        .where(CouponGrant.template_id == template_id)
        .group_by(CouponGrant.state)
    )
    return {str(s): int(n) for s, n in rows}


def template_results(session: Session, tpl: CouponTemplate, *, days: int = 30) -> TemplateResults:
    """Counts by state, discount and GMV of redeemed orders, claims per day for the last `days` days."""
    states = _state_counts(session, tpl.id)
    holders, gmv, discount = session.execute(
        select(
            func.count(func.distinct(CouponGrant.customer_id)),
            func.coalesce(func.sum(CouponGrant.order_amount_fen).filter(CouponGrant.state == "redeemed"), 0),
            func.coalesce(func.sum(CouponGrant.discount_fen).filter(CouponGrant.state == "redeemed"), 0),
        ).where(CouponGrant.template_id == tpl.id)
    ).one()
    since = utcnow() - timedelta(days=days)
    day = func.date(CouponGrant.created_at)
    per_day = [
        (d if isinstance(d, date) else datetime.strptime(str(d), "%Y-%m-%d").date(), int(n))
        for d, n in session.execute(
            select(day, func.count())
            .where(CouponGrant.template_id == tpl.id, CouponGrant.created_at >= since)
            .group_by(day)
            .order_by(day)
        )
    ]
    return TemplateResults(
        issued=sum(states.values()),
        holders=int(holders),
        redeemed=states.get("redeemed", 0),
        expired=states.get("expired", 0),
        reversed=states.get("reversed", 0),
        discount_fen=int(discount),
        gmv_fen=int(gmv),
        per_day=per_day,
    )


def summarize(session: Session, *, workspace_id: int, campaign_id: int) -> list[ActivitySummary]:
    """The campaign's coupon templates as the campaign page shows them."""
    out: list[ActivitySummary] = []
    for tpl in session.scalars(
        select(CouponTemplate)
        .where(CouponTemplate.workspace_id == workspace_id, CouponTemplate.campaign_id == campaign_id)
        .order_by(CouponTemplate.id)
    ):
        r = template_results(session, tpl, days=1)
        out.append(
            ActivitySummary(
                kind="coupon",
                id=tpl.id,
                name=tpl.name,
                status=tpl.status,
                starts_at=tpl.starts_at,
                ends_at=tpl.ends_at,
                participants=r.holders,
                actions=r.issued,
                wins=r.issued,
                redemptions=r.redeemed,
                gmv_fen=r.gmv_fen,
                cost_fen=r.discount_fen,
                console_url=f"/coupons/{tpl.id}",
                extra={
                    "expired": r.expired,
                    "reversed": r.reversed,
                    **participations_by_day(
                        session, workspace_id, CouponGrant.created_at, [CouponGrant.template_id == tpl.id]
                    ),
                },
            )
        )
    return out
