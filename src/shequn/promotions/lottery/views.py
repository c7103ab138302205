"""Lotteries as API shapes: operators' view (seed only once revealed), members' state, the verification record."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shequn.loyalty import service as loyalty_service
from shequn.promotions.lottery import fairness
from shequn.promotions.lottery.draws import day_left
from shequn.promotions.lottery.errors import LotteryNotFound
from shequn.promotions.lottery.manage import get_lottery, list_prizes, phase_of
from shequn.promotions.lottery.models import Lottery, LotteryDraw, LotteryPrize
from shequn.promotions.lottery.prizes import mask_phone
from shequn.promotions.lottery.reports import draw_counts, verification_draws
from shequn.promotions.lottery.schemas import (
    FulfilmentOut,
    LotteryOut,
    MemberStateOut,
    PrizeOut,
    PublicPrizeOut,
    VerificationOut,
    VerifyDrawOut,
    WonPrizeOut,
)


def _probability(weight: int, total: int) -> float:
    return round(weight / total, 6) if total else 0.0


def lottery_out(session: Session, lottery: Lottery, *, member_base: str = "") -> LotteryOut:
    """A lottery with its prize table and probabilities; the seed appears only after the reveal."""
    table = list_prizes(session, lottery_id=lottery.id)
    total = sum(p.weight for p in table)
    out = LotteryOut.model_validate(lottery)
    out.phase = phase_of(lottery)
    out.seed_hex = lottery.seed_hex if lottery.status == "revealed" else None
    out.draws_count = draw_counts(session, lottery_ids=[lottery.id]).get(lottery.id, 0)
    out.prizes = [
        PrizeOut.model_validate(p).model_copy(update={"probability": _probability(p.weight, total)}) for p in table
    ]
    out.member_url = f"{member_base}/lottery/{lottery.id}" if member_base else ""
    return out


def public_prizes(table: list[LotteryPrize]) -> list[PublicPrizeOut]:
    """The prize table as members and verifiers see it."""
    total = sum(p.weight for p in table)
    return [
        PublicPrizeOut(
            id=p.id,
            position=p.position,
            name=p.name,
            kind=p.kind,
            weight=p.weight,
            probability=_probability(p.weight, total),
            stock=p.stock,
        )
        for p in table
    ]


def member_state(session: Session, lottery: Lottery, *, customer_id: int, ws_slug: str) -> MemberStateOut:
    """What the wheel page needs: prizes, draws left today, next draw number, points, the verification link."""
    left = day_left(session, lottery, customer_id=customer_id)
    return MemberStateOut(
        lottery_id=lottery.id,
        name=lottery.name,
        description=lottery.description,
        phase=phase_of(lottery),
        starts_at=lottery.starts_at,
        ends_at=lottery.ends_at,
        commitment=lottery.commitment,
        prizes=public_prizes(list_prizes(session, lottery_id=lottery.id)),
        player=fairness.player_of(lottery.id, customer_id, lottery.commitment or ""),
        next_draw_no=left.next_draw_no,
        free_left=left.free_left,
        bought_left=left.bought_left,
        points_per_draw=lottery.points_per_draw,
        points=loyalty_service.get_balance(session, workspace_id=lottery.workspace_id, customer_id=customer_id),
        verify_url=f"/m/{ws_slug}/lottery/{lottery.id}/verify",
    )


def won_out(draw: LotteryDraw, prize: LotteryPrize) -> WonPrizeOut:
    """One draw's outcome for its member."""
    return WonPrizeOut(
        draw_id=draw.id,
        draw_no=draw.draw_no,
        prize_id=prize.id,
        prize_name=prize.name,
        prize_kind=prize.kind,
        position=prize.position,
        won=draw.won,
        fallback=draw.fallback,
        paid_points=draw.paid_points,
        fulfilment=draw.fulfilment,
        address={k: str(v) for k, v in (draw.address or {}).items()},
        tracking_no=draw.tracking_no,
        created_at=draw.created_at,
    )


def verification(
    session: Session, *, workspace_id: int, lottery_id: int, limit: int = 5000, offset: int = 0
) -> VerificationOut:
    """The public record: commitment, seed once revealed, prize table, draw log with pseudonymous players."""
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    if lottery.status == "draft":
        raise LotteryNotFound(id=lottery_id)
    table = list_prizes(session, lottery_id=lottery.id)
    rows, total = verification_draws(session, lottery_id=lottery.id, limit=limit, offset=offset)
    return VerificationOut(
        lottery_id=lottery.id,
        name=lottery.name,
        phase=phase_of(lottery),
        commitment=lottery.commitment,
        seed_hex=lottery.seed_hex if lottery.status == "revealed" else None,
        total_weight=sum(p.weight for p in table),
        prizes=public_prizes(table),
        draws=[
            VerifyDrawOut(
                seq=offset + i + 1,
                player=d.player,
                draw_no=d.draw_no,
                client_nonce=d.client_nonce,
                number=d.number,
                chosen_prize_id=d.chosen_prize_id,
                prize_id=d.prize_id,
                fallback=d.fallback,
            )
            for i, d in enumerate(rows)
        ],
        draws_total=total,
        next_offset=offset + limit if offset + limit < total else None,
    )


def fulfilment_out(draw: LotteryDraw, prize_name: str) -> FulfilmentOut:
    """A physical prize for the operators' queue, the phone masked."""
    address = {k: str(v) for k, v in (draw.address or {}).items()}
    return FulfilmentOut(
        draw_id=draw.id,
        customer_id=draw.customer_id,
        prize_name=prize_name,
        fulfilment=draw.fulfilment,
        name=address.get("name", ""),
        phone_masked=mask_phone(address["phone"]) if address.get("phone") else "",
        address=address.get("address", ""),
        tracking_no=draw.tracking_no,
        created_at=draw.created_at,
        shipped_at=draw.shipped_at,
        delivered_at=draw.delivered_at,
    )
