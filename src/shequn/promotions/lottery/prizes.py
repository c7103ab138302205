"""Prizes after the draw: handing them out (points, coupons, physical items) and physical fulfilment."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.loyalty import service as loyalty_service
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.lottery.errors import BadFulfilment, DrawNotFound
from shequn.promotions.lottery.models import Lottery, LotteryDraw, LotteryPrize

# A physical prize moves pending (no address) → ready (address given) → shipped → delivered.
NEXT_FULFILMENT = {"shipped": ("ready",), "delivered": ("shipped",)}


def hand_out(session: Session, *, lottery: Lottery, prize: LotteryPrize, customer_id: int, draw_no: int) -> None:
    """Give the member what they won; each hand-out is keyed by the draw, so it happens once."""
    if prize.kind == "points" and prize.points:
        loyalty_service.award_points(
            session,
            workspace_id=lottery.workspace_id,
            customer_id=customer_id,
            points=prize.points,
            reason="lottery_prize",
            ref=f"{lottery.id}:{draw_no}",
            note=prize.name,
        )
    elif prize.kind == "coupon" and prize.coupon_template_id is not None:
        coupons_service.grant_coupon(
            session,
            workspace_id=lottery.workspace_id,
            template_id=prize.coupon_template_id,
            customer_id=customer_id,
            source="lottery",
            source_ref=f"{lottery.id}:{customer_id}:{draw_no}",
        )


def get_draw(session: Session, *, workspace_id: int, draw_id: int, customer_id: int | None = None) -> LotteryDraw:
    """A draw of this workspace (and of this member when customer_id is given)."""
    draw = session.get(LotteryDraw, draw_id)
    if (
        draw is None
        or draw.workspace_id != workspace_id
        or (customer_id is not None and draw.customer_id != customer_id)
    ):
        raise DrawNotFound(id=draw_id)
    return draw


def list_my_draws(
    session: Session, *, workspace_id: int, lottery_id: int, customer_id: int, won_only: bool = True, limit: int = 100
) -> list[tuple[LotteryDraw, LotteryPrize]]:
    """The member's draws in a lottery with their prizes, newest first."""
    stmt = (
        select(LotteryDraw, LotteryPrize)
        .join(LotteryPrize, LotteryPrize.id == LotteryDraw.prize_id)
        .where(
            LotteryDraw.workspace_id == workspace_id,
            LotteryDraw.lottery_id == lottery_id,
            LotteryDraw.customer_id == customer_id,
        )
    )
    if won_only:
        stmt = stmt.where(LotteryDraw.won.is_(True))
    rows = session.execute(stmt.order_by(LotteryDraw.id.desc()).limit(limit)).all()
    return [(d, p) for d, p in rows]


def set_address(
    session: Session, *, workspace_id: int, draw_id: int, customer_id: int, name: str, phone: str, address: str
) -> LotteryDraw:
    """The member gives (or corrects) where their physical prize goes, until it is shipped."""
    draw = get_draw(session, workspace_id=workspace_id, draw_id=draw_id, customer_id=customer_id)
    if draw.prize_kind != "physical" or draw.fulfilment not in ("pending", "ready"):
        raise BadFulfilment(id=draw_id, status=draw.fulfilment)
    draw.address = {"name": name, "phone": phone, "address": address}
    draw.fulfilment = "ready"
    session.flush()
    return draw


def mark_fulfilment(
    session: Session, *, workspace_id: int, draw_id: int, status: str, tracking_no: str = ""
) -> LotteryDraw:
    """An operator ships (from ready) or marks delivered (from shipped); repeating the same step is a no-op."""
    draw = get_draw(session, workspace_id=workspace_id, draw_id=draw_id)
    if draw.prize_kind != "physical" or status not in NEXT_FULFILMENT:
        raise BadFulfilment(id=draw_id, status=draw.fulfilment)
    if draw.fulfilment == status:
        return draw
    if draw.fulfilment not in NEXT_FULFILMENT[status]:
        raise BadFulfilment(id=draw_id, status=draw.fulfilment)
    draw.fulfilment = status
    if status == "shipped":
        draw.shipped_at = utcnow()
        draw.tracking_no = tracking_no
    else:
        draw.delivered_at = utcnow()
    session.flush()
    return draw


def fulfilment_queue(
    session: Session, *, workspace_id: int, lottery_id: int, status: str | None = None, limit: int = 200
) -> list[tuple[LotteryDraw, str]]:
    """Physical prizes to send (oldest first) with the prize's name."""
    stmt = (
        select(LotteryDraw, LotteryPrize.name)
        .join(LotteryPrize, LotteryPrize.id == LotteryDraw.prize_id)
        .where(
            LotteryDraw.workspace_id == workspace_id,
            LotteryDraw.lottery_id == lottery_id,
            LotteryDraw.prize_kind == "physical",
        )
    )
    if status:
        stmt = stmt.where(LotteryDraw.fulfilment == status)
    return [(d, str(n)) for d, n in session.execute(stmt.order_by(LotteryDraw.id).limit(limit)).all()]


def fulfilment_counts(session: Session, *, workspace_id: int, lottery_id: int) -> dict[str, int]:
    """Physical prizes by fulfilment state."""
    rows = session.execute(
        select(LotteryDraw.fulfilment, func.count())
        .where(
            LotteryDraw.workspace_id == workspace_id,
            LotteryDraw.lottery_id == lottery_id,
            LotteryDraw.prize_kind == "physical",
        )
        .group_by(LotteryDraw.fulfilment)
    ).all()
    return {str(s): int(n) for s, n in rows}


def mask_phone(phone: str) -> str:
    """138****5678 style: what operators see in lists."""
    digits = phone.strip()
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"
