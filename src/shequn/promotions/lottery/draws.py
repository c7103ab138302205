"""Drawing: the member's right to draw (free per local day, or bought with points), the seeded outcome, stock.

A draw is keyed by (lottery, customer, draw_no); the member sends their next draw_no, so a retry of the same
request replays the stored result and a forged number is refused. Everything a draw changes — the day's
counter, the points, the prize's stock, the campaign budget, the prize itself — happens in one savepoint with
the draw row, so a lost race on the key undoes it all ("no double win"). Counters move only by conditional
UPDATEs: `free_used < draws_per_day`, `bought < bought_per_day`, `won < stock`.

The draw row is inserted after the stock UPDATE: on PostgreSQL a draw that took a prize's stock holds that
row's lock until commit, so the next draw of the same prize gets a later id; the log's id order is therefore
the order stock was consumed, which is what a verifier replays.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.sqlutil import changed
from shequn.identity import service as identity_service
from shequn.loyalty import service as loyalty_service
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.lottery import fairness, prizes
from shequn.promotions.lottery.errors import (
    BadDrawNo,
    DrawConflict,
    LotteryEnded,
    LotteryNotFound,
    LotteryNotStarted,
    NoDrawsLeft,
    NotBuyable,
)
from shequn.promotions.lottery.manage import get_lottery, list_prizes, secret_seed
from shequn.promotions.lottery.models import Lottery, LotteryDayCount, LotteryDraw, LotteryPrize


@dataclass
class DrawResult:
    """A draw and whether this call replayed an earlier one (same draw_no) instead of drawing."""

    draw: LotteryDraw
    replayed: bool


@dataclass(frozen=True)
class DayLeft:
    """What a member may still draw today."""

    day: str
    free_left: int
    bought_left: int | None  # None: no daily cap on bought draws (or none for sale)
    next_draw_no: int


class _OutOfStock(Exception):
    """The chosen prize's stock is gone: the draw falls to "thanks for playing"."""


def local_day(session: Session, workspace_id: int, now: datetime) -> str:
    """The workspace's calendar day at `now` (draws per day follow the brand's clock, not UTC)."""
    zone = ZoneInfo(identity_service.workspace_timezone(session, workspace_id))
    return now.astimezone(zone).date().isoformat()


def _insert(session: Session) -> type:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert  # type: ignore[return-value]


def find_draw(session: Session, *, lottery_id: int, customer_id: int, draw_no: int) -> LotteryDraw | None:
    """The member's draw with this number, if drawn."""
    return session.scalar(
        select(LotteryDraw).where(
            LotteryDraw.lottery_id == lottery_id,
            LotteryDraw.customer_id == customer_id,
            LotteryDraw.draw_no == draw_no,
        )
    )


def draws_done(session: Session, *, lottery_id: int, customer_id: int) -> int:
    """How many draws the member has made in this lottery (draw numbers are 1..n with no gaps)."""
    value = session.scalar(
        select(func.max(LotteryDraw.draw_no)).where(
            LotteryDraw.lottery_id == lottery_id, LotteryDraw.customer_id == customer_id
        )
    )
    return int(value or 0)


def day_left(session: Session, lottery: Lottery, *, customer_id: int, now: datetime | None = None) -> DayLeft:
    """The member's free and bought draws left today and their next draw number."""
    now = now or utcnow()
    day = local_day(session, lottery.workspace_id, now)
    row = session.execute(
        select(LotteryDayCount.free_used, LotteryDayCount.bought).where(
            LotteryDayCount.lottery_id == lottery.id,
            LotteryDayCount.customer_id == customer_id,
            LotteryDayCount.local_day == day,
        )
    ).first()
    free_used, bought = (int(row[0]), int(row[1])) if row else (0, 0)
    cap = lottery.bought_per_day if lottery.points_per_draw is not None else 0
    return DayLeft(
        day=day,
        free_left=max(lottery.draws_per_day - free_used, 0),
        bought_left=None if cap is None else max(cap - bought, 0),
        next_draw_no=draws_done(session, lottery_id=lottery.id, customer_id=customer_id) + 1,
    )


def check_open(lottery: Lottery, now: datetime) -> None:
    """Refuse draws outside the published window."""
    if lottery.status == "draft":
        raise LotteryNotFound(id=lottery.id)
    if lottery.status in ("cancelled", "revealed") or now >= lottery.ends_at:
        raise LotteryEnded(id=lottery.id)
    if now < lottery.starts_at:
        raise LotteryNotStarted(starts_at=lottery.starts_at.isoformat())


def _replay(draw: LotteryDraw, *, pay_with_points: bool, client_nonce: str) -> DrawResult:
    """A retry returns the stored result; the same draw_no with other inputs is a tampered or confused request."""
    if draw.client_nonce != client_nonce or (draw.paid_points > 0) != pay_with_points:
        raise DrawConflict(draw_no=draw.draw_no)
    return DrawResult(draw, True)


def draw_lottery(
    session: Session,
    *,
    workspace_id: int,
    lottery_id: int,
    customer_id: int,
    draw_no: int,
    pay_with_points: bool = False,
    client_nonce: str = "",
    now: datetime | None = None,
) -> DrawResult:
    """Make the member's draw number `draw_no` (or replay it): take the right to draw, pick, award."""
    now = now or utcnow()
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    expected = draws_done(session, lottery_id=lottery.id, customer_id=customer_id) + 1
    existing = (
        find_draw(session, lottery_id=lottery.id, customer_id=customer_id, draw_no=draw_no)
        if draw_no < expected
        else None
    )
    if existing is not None:
        return _replay(existing, pay_with_points=pay_with_points, client_nonce=client_nonce)
    check_open(lottery, now)
    if draw_no != expected:
        raise BadDrawNo(draw_no=draw_no, expected=expected)
    table = list_prizes(session, lottery_id=lottery.id)
    day = local_day(session, workspace_id, now)
    try:
        with session.begin_nested():
            paid = _take_right(session, lottery, customer_id, day, draw_no, pay_with_points)
            draw = _decide(session, lottery, table, customer_id, draw_no, client_nonce, day, paid, now)
    except IntegrityError:
        found = find_draw(session, lottery_id=lottery.id, customer_id=customer_id, draw_no=draw_no)
        if found is None:
            raise
        return _replay(found, pay_with_points=pay_with_points, client_nonce=client_nonce)
    return DrawResult(draw, False)


def _take_right(
    session: Session, lottery: Lottery, customer_id: int, day: str, draw_no: int, pay_with_points: bool
) -> int:
    """Use one of today's free draws, or buy one with points; returns the points paid."""
    session.execute(
        _insert(session)(LotteryDayCount)
        .values(
            workspace_id=lottery.workspace_id,
            lottery_id=lottery.id,
            customer_id=customer_id,
            local_day=day,
            free_used=0,
            bought=0,
        )
        .on_conflict_do_nothing(index_elements=["lottery_id", "customer_id", "local_day"])
    )
    key = (
        LotteryDayCount.lottery_id == lottery.id,
        LotteryDayCount.customer_id == customer_id,
        LotteryDayCount.local_day == day,
    )
    if not pay_with_points:
        stmt = update(LotteryDayCount).where(*key, LotteryDayCount.free_used < lottery.draws_per_day)
        if not changed(session, stmt.values(free_used=LotteryDayCount.free_used + 1)):
            raise NoDrawsLeft(per_day=lottery.draws_per_day, buyable=lottery.points_per_draw is not None)
        return 0
    if lottery.points_per_draw is None:
        raise NotBuyable(id=lottery.id)
    stmt = update(LotteryDayCount).where(*key)
    if lottery.bought_per_day is not None:
        stmt = stmt.where(LotteryDayCount.bought < lottery.bought_per_day)
    if not changed(session, stmt.values(bought=LotteryDayCount.bought + 1)):
        raise NotBuyable(id=lottery.id, per_day=lottery.bought_per_day)
    loyalty_service.spend_points(
        session,
        workspace_id=lottery.workspace_id,
        customer_id=customer_id,
        points=lottery.points_per_draw,
        reason="lottery_draw",
        ref=f"{lottery.id}:{draw_no}",
        note=lottery.name[:200],
    )
    return lottery.points_per_draw


def _decide(
    session: Session,
    lottery: Lottery,
    table: list[LotteryPrize],
    customer_id: int,
    draw_no: int,
    client_nonce: str,
    day: str,
    paid: int,
    now: datetime,
) -> LotteryDraw:
    """Pick the prize from the seed, take its stock and budget, award it (or fall back), log the draw."""
    assert lottery.commitment is not None  # published lotteries have it
    player = fairness.player_of(lottery.id, customer_id, lottery.commitment)
    number = fairness.draw_number(
        secret_seed(lottery),
        fairness.message_of(lottery.id, player, draw_no, client_nonce),
        sum(p.weight for p in table),
    )
    chosen = table[fairness.pick([p.weight for p in table], number)]
    awarded, fallback = chosen, ""
    if chosen.kind != "thanks":
        # A savepoint undoes the stock when a later step can still fail (budget, coupon); otherwise none is needed.
        can_fail = chosen.kind == "coupon" or (chosen.cost_fen > 0 and lottery.campaign_id is not None)
        try:
            with session.begin_nested() if can_fail else nullcontext():
                _take_stock(session, chosen)
                # The prize before the budget: a coupon grant locks its template then the campaign, like a
                # member's own claim does, so the two never wait on each other in opposite orders.
                prizes.hand_out(session, lottery=lottery, prize=chosen, customer_id=customer_id, draw_no=draw_no)
                campaigns_service.charge_budget(
                    session,
                    workspace_id=lottery.workspace_id,
                    campaign_id=lottery.campaign_id,
                    amount_fen=chosen.cost_fen,
                )
        except _OutOfStock:
            fallback = "stock"
        except campaigns_service.BudgetExhausted:
            fallback = "budget"
        except ShequnError:
            fallback = "coupon"  # the coupon could not be granted (template sold out or ended)
        if fallback:
            awarded = next(p for p in table if p.kind == "thanks")
    draw = LotteryDraw(
        workspace_id=lottery.workspace_id,
        lottery_id=lottery.id,
        customer_id=customer_id,
        player=player,
        draw_no=draw_no,
        client_nonce=client_nonce,
        local_day=day,
        paid_points=paid,
        number=number,
        chosen_prize_id=chosen.id,
        prize_id=awarded.id,
        fallback=fallback,
        prize_kind=awarded.kind,
        won=awarded.kind != "thanks",
        fulfilment="pending" if awarded.kind == "physical" else "none",
        address={},
        created_at=now,
    )
    session.add(draw)
    session.flush()
    return draw


def _take_stock(session: Session, prize: LotteryPrize) -> None:
    """One unit of the prize's stock, never past it; unlimited prizes touch no row (no hot row to queue on)."""
    if prize.stock is None:
        return
    stmt = (
        update(LotteryPrize)
        .where(LotteryPrize.id == prize.id, LotteryPrize.won < LotteryPrize.stock)
        .values(won=LotteryPrize.won + 1)
    )
    if not changed(session, stmt):
        raise _OutOfStock()
