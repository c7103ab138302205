"""Prizes of quizzes and challenges: coupon, points, a physical gift or none; cost charged to the campaign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.sqlutil import changed
from shequn.promotions.campaigns import budget
from shequn.promotions.quiz import links
from shequn.promotions.quiz.errors import PrizeNotShippable

KINDS = ("coupon", "points", "physical", "none")
# Fulfilment of a physical prize, in order; coupons and points are "granted" at once (or "pending" until
# it can be delivered); a prize the campaign budget could not cover is "no_budget", one the coupon service
# refused (its stock or cap) is "failed".
SHIPPING = ("to_ship", "shipped", "delivered")
STATUSES = ("none", "pending", "granted", *SHIPPING, "no_budget", "failed")


@dataclass(frozen=True)
class PrizeSpec:
    """What one winner gets, read from the activity's prize columns."""

    kind: str
    name: str
    coupon_template_id: int | None
    points: int
    cost_fen: int
    campaign_id: int | None

    @classmethod
    def of(cls, activity: Any) -> PrizeSpec:
        """The prize of a quiz or challenge row."""
        return cls(
            kind=activity.prize_kind,
            name=activity.prize_name,
            coupon_template_id=activity.prize_coupon_template_id,
            points=activity.prize_points,
            cost_fen=activity.prize_cost_fen,
            campaign_id=activity.campaign_id,
        )


@dataclass(frozen=True)
class Grant:
    """The outcome of giving one prize."""

    status: str
    ref: str
    cost_fen: int


def grant_prize(
    session: Session, *, workspace_id: int, spec: PrizeSpec, customer_id: int, source: str, source_ref: str
) -> Grant:
    """Charge the budget (BudgetExhausted if it cannot), then grant the coupon/points or queue the gift."""
    if spec.kind == "none":
        return Grant("none", "", 0)
    budget.charge_budget(session, workspace_id=workspace_id, campaign_id=spec.campaign_id, amount_fen=spec.cost_fen)
    if spec.kind == "physical":
        return Grant("to_ship", "", spec.cost_fen)
    status, ref = deliver(
        session, workspace_id=workspace_id, spec=spec, customer_id=customer_id, source=source, source_ref=source_ref
    )
    return Grant(status, ref, spec.cost_fen)


def deliver(
    session: Session, *, workspace_id: int, spec: PrizeSpec, customer_id: int, source: str, source_ref: str
) -> tuple[str, str]:
    """Give a coupon or points (both services are idempotent by source ref, so a retry never gives twice)."""
    ref: str | None = None
    if spec.kind == "coupon" and spec.coupon_template_id:
        ref = links.grant_coupon(
            session,
            workspace_id=workspace_id,
            template_id=spec.coupon_template_id,
            customer_id=customer_id,
            source=source,
            source_ref=source_ref,
        )
    elif spec.kind == "points" and spec.points > 0:
        ref = links.award_points(
            session,
            workspace_id=workspace_id,
            customer_id=customer_id,
            points=spec.points,
            reason=source,
            ref=source_ref,
        )
    return ("granted", ref[:64]) if ref is not None else ("pending", "")


def advance_shipping(session: Session, row: Any) -> None:
    """Move a won physical prize (an attempt or an entry row) one step: to_ship → shipped → delivered."""
    nxt = next_shipping(row.prize_status)
    if not row.won or nxt is None:
        raise PrizeNotShippable(status=row.prize_status)
    model = type(row)
    # Conditional on the state we read: two clicks at once move it one step, not two.
    stmt = (
        update(model)
        .where(model.id == row.id, model.prize_status == row.prize_status)
        .values(prize_status=nxt, updated_at=utcnow())
    )
    if not changed(session, stmt):
        raise PrizeNotShippable(status="changed")
    session.refresh(row)


def next_shipping(current: str) -> str | None:
    """The next fulfilment state of a physical prize, or None when there is none."""
    if current in SHIPPING[:-1]:
        return SHIPPING[SHIPPING.index(current) + 1]
    return None
