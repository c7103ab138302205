"""What a lottery shows: draws per day, prizes won against stock and against their expected share, the public
verification record, and its summary on the campaign page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.promotions.common import ActivitySummary, participations_by_day
from shequn.promotions.lottery.manage import get_lottery, list_prizes, phase_of
from shequn.promotions.lottery.models import Lottery, LotteryDraw, LotteryPrize


@dataclass(frozen=True)
class PrizeStat:
    """A prize's expected share of draws against what was drawn and awarded."""

    prize: LotteryPrize
    expected: float  # weight / total weight
    chosen: int  # draws whose number picked this prize
    awarded: int  # draws that received it (chosen minus fallbacks, plus fallbacks for "thanks")


def draw_counts(session: Session, *, lottery_ids: list[int]) -> dict[int, int]:
    """Number of draws per lottery."""
    if not lottery_ids:
        return {}
    rows = session.execute(
        select(LotteryDraw.lottery_id, func.count())
        .where(LotteryDraw.lottery_id.in_(lottery_ids))
        .group_by(LotteryDraw.lottery_id)
    ).all()
    return {int(lid): int(n) for lid, n in rows}


def draws_per_day(session: Session, *, workspace_id: int, lottery_id: int) -> list[tuple[str, int, int]]:
    """(local day, draws, paid draws) in day order."""
    rows = session.execute(
        select(LotteryDraw.local_day, func.count(), func.count().filter(LotteryDraw.paid_points > 0))
        .where(LotteryDraw.workspace_id == workspace_id, LotteryDraw.lottery_id == lottery_id)
        .group_by(LotteryDraw.local_day)
        .order_by(LotteryDraw.local_day)
    ).all()
    return [(str(d), int(n), int(p)) for d, n, p in rows]


def prize_stats(session: Session, *, workspace_id: int, lottery_id: int) -> list[PrizeStat]:
    """Every prize's expected probability, times chosen and times awarded."""
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    table = list_prizes(session, lottery_id=lottery.id)
    total = sum(p.weight for p in table) or 1
    chosen = dict(
        session.execute(
            select(LotteryDraw.chosen_prize_id, func.count())
            .where(LotteryDraw.lottery_id == lottery.id)
            .group_by(LotteryDraw.chosen_prize_id)
        ).all()
    )
    awarded = dict(
        session.execute(
            select(LotteryDraw.prize_id, func.count())
            .where(LotteryDraw.lottery_id == lottery.id)
            .group_by(LotteryDraw.prize_id)
        ).all()
    )
    return [PrizeStat(p, p.weight / total, int(chosen.get(p.id, 0)), int(awarded.get(p.id, 0))) for p in table]


def cost_spent(session: Session, *, lottery_id: int) -> int:
    """Prize cost of what was awarded (fen), as charged to the campaign budget."""
    value = session.scalar(
        select(func.coalesce(func.sum(LotteryPrize.cost_fen), 0))
        .select_from(LotteryDraw)
        .join(LotteryPrize, LotteryPrize.id == LotteryDraw.prize_id)
        .where(LotteryDraw.lottery_id == lottery_id)
    )
    return int(value or 0)


def verification_draws(
    session: Session, *, lottery_id: int, limit: int = 5000, offset: int = 0
) -> tuple[list[LotteryDraw], int]:
    """The draw log in id order (the order stock was consumed) and its length."""
    total = session.scalar(select(func.count()).select_from(LotteryDraw).where(LotteryDraw.lottery_id == lottery_id))
    rows = session.scalars(
        select(LotteryDraw)
        .where(LotteryDraw.lottery_id == lottery_id)
        .order_by(LotteryDraw.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def summarize(session: Session, *, workspace_id: int, campaign_id: int) -> list[ActivitySummary]:
    """The campaign's lotteries for its page: participants, draws, prizes won, cost."""
    lotteries = session.scalars(
        select(Lottery).where(Lottery.workspace_id == workspace_id, Lottery.campaign_id == campaign_id)
    ).all()
    out: list[ActivitySummary] = []
    for lottery in lotteries:
        row = session.execute(
            select(
                func.count(func.distinct(LotteryDraw.customer_id)),
                func.count(),
                func.count().filter(LotteryDraw.won.is_(True)),
            ).where(LotteryDraw.lottery_id == lottery.id)
        ).one()
        out.append(
            ActivitySummary(
                kind="lottery",
                id=lottery.id,
                name=lottery.name,
                status=phase_of(lottery),
                starts_at=lottery.starts_at,
                ends_at=lottery.ends_at,
                participants=int(row[0]),
                actions=int(row[1]),
                wins=int(row[2]),
                cost_fen=cost_spent(session, lottery_id=lottery.id),
                console_url=f"/lotteries/{lottery.id}",
                extra=participations_by_day(
                    session, workspace_id, LotteryDraw.created_at, [LotteryDraw.lottery_id == lottery.id]
                ),
            )
        )
    return out
