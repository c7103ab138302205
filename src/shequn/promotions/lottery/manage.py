"""Lottery set-up: create and edit a draft and its prize table, publish (commit to a seed), cancel, reveal."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shequn.core.clock import utcnow
from shequn.core.errors import NotFound
from shequn.core.security import decrypt_secret, encrypt_secret
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.lottery import fairness
from shequn.promotions.lottery.errors import (
    LotteryBadTransition,
    LotteryInvalid,
    LotteryLocked,
    LotteryNotFound,
    RevealTooEarly,
)
from shequn.promotions.lottery.models import Lottery, LotteryPrize
from shequn.promotions.lottery.schemas import LotteryFields, LotteryIn, PrizeIn

PHASES = ("draft", "scheduled", "running", "ended", "revealed", "cancelled")
# Fields an operator may still change after publishing: the seed commits to the rules and the prize table.
EDITABLE_WHEN_PUBLISHED = {"name", "description"}


def phase_of(lottery: Lottery, now: datetime | None = None) -> str:
    """Where the lottery is now: draft, scheduled, running, ended, revealed or cancelled."""
    if lottery.status in ("draft", "cancelled", "revealed"):
        return lottery.status
    now = now or utcnow()
    if now < lottery.starts_at:
        return "scheduled"
    return "running" if now < lottery.ends_at else "ended"


def _phase_filter(phase: str, now: datetime) -> ColumnElement[bool]:
    published = Lottery.status == "published"
    return {
        "draft": Lottery.status == "draft",
        "cancelled": Lottery.status == "cancelled",
        "revealed": Lottery.status == "revealed",
        "scheduled": and_(published, Lottery.starts_at > now),
        "running": and_(published, Lottery.starts_at <= now, Lottery.ends_at > now),
        "ended": and_(published, Lottery.ends_at <= now),
    }[phase]


def get_lottery(session: Session, *, workspace_id: int, lottery_id: int) -> Lottery:
    """A lottery of this workspace (LotteryNotFound otherwise)."""
    lottery = session.get(Lottery, lottery_id)
    if lottery is None or lottery.workspace_id != workspace_id:
        raise LotteryNotFound(id=lottery_id)
    return lottery


def list_lotteries(
    session: Session,
    *,
    workspace_id: int,
    phase: str | None = None,
    campaign_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Lottery], int]:
    """The workspace's lotteries, latest start first."""
    stmt = select(Lottery).where(Lottery.workspace_id == workspace_id)
    if phase:
        stmt = stmt.where(_phase_filter(phase, utcnow()))
    if campaign_id is not None:
        stmt = stmt.where(Lottery.campaign_id == campaign_id)
    total = session.scalar(stmt.with_only_columns(func.count(Lottery.id))) or 0
    rows = session.scalars(stmt.order_by(Lottery.starts_at.desc(), Lottery.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def list_prizes(session: Session, *, lottery_id: int) -> list[LotteryPrize]:
    """The prize table in wheel order (the order of the cumulative weights)."""
    return list(
        session.scalars(
            select(LotteryPrize)
            .where(LotteryPrize.lottery_id == lottery_id)
            .order_by(LotteryPrize.position, LotteryPrize.id)
        )
    )


# --- validation ---------------------------------------------------------------------------------


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _prize_problems(prizes: list[PrizeIn]) -> list[dict[str, str]]:
    """Rules on the prize table: one "thanks for playing" row (the fallback), positive weights, kind fields."""
    problems: list[dict[str, str]] = []
    thanks = [p for p in prizes if p.kind == "thanks"]
    if len(thanks) != 1:
        problems.append(_problem("prizes", "exactly one 'thanks for playing' prize (the fallback when stock runs out)"))
    if sum(p.weight for p in prizes) <= 0:
        problems.append(_problem("prizes", "the weights must add up to more than 0"))
    for i, p in enumerate(prizes):
        at = f"prizes.{i}"
        if p.kind == "coupon" and p.coupon_template_id is None:
            problems.append(_problem(f"{at}.coupon_template_id", "a coupon prize needs a coupon template"))
        if p.kind == "points" and p.points is None:
            problems.append(_problem(f"{at}.points", "a points prize needs the number of points"))
        if p.kind == "thanks" and (p.stock is not None or p.cost_fen):
            problems.append(_problem(f"{at}.stock", "'thanks for playing' has no stock and no cost"))
        if p.kind != "thanks" and p.weight == 0:
            problems.append(_problem(f"{at}.weight", "a prize needs a weight of at least 1"))
    return problems


def _check(session: Session, lottery: Lottery, prizes: list[PrizeIn] | None) -> None:
    problems: list[dict[str, str]] = []
    if lottery.ends_at <= lottery.starts_at:
        problems.append(_problem("ends_at", "must be after starts_at"))
    if lottery.points_per_draw is None and lottery.bought_per_day is not None:
        problems.append(_problem("bought_per_day", "set points_per_draw to sell extra draws"))
    if prizes is not None:
        problems += _prize_problems(prizes) + _coupon_problems(session, lottery.workspace_id, prizes)
    belongs = campaigns_service.campaign_belongs
    if not belongs(session, workspace_id=lottery.workspace_id, campaign_id=lottery.campaign_id):
        problems.append(_problem("campaign_id", "no such campaign in this workspace"))
    if problems:
        raise LotteryInvalid(details=problems)


def _coupon_problems(session: Session, workspace_id: int, prizes: list[PrizeIn]) -> list[dict[str, str]]:
    """Coupon prizes must point at this workspace's coupon templates."""
    problems: list[dict[str, str]] = []
    for i, p in enumerate(prizes):
        if p.kind != "coupon" or p.coupon_template_id is None:
            continue
        try:
            coupons_service.get_template(session, workspace_id=workspace_id, template_id=p.coupon_template_id)
        except NotFound:
            problems.append(_problem(f"prizes.{i}.coupon_template_id", "no such coupon template in this workspace"))
    return problems


def _set_prizes(session: Session, lottery: Lottery, prizes: list[PrizeIn]) -> None:
    session.execute(delete(LotteryPrize).where(LotteryPrize.lottery_id == lottery.id))
    for position, p in enumerate(prizes):
        session.add(
            LotteryPrize(
                workspace_id=lottery.workspace_id,
                lottery_id=lottery.id,
                position=position,
                name=p.name,
                kind=p.kind,
                weight=p.weight,
                stock=None if p.kind == "thanks" else p.stock,
                won=0,
                coupon_template_id=p.coupon_template_id if p.kind == "coupon" else None,
                points=p.points if p.kind == "points" else None,
                cost_fen=p.cost_fen,
            )
        )
    session.flush()


# --- writes -------------------------------------------------------------------------------------


def create_lottery(session: Session, *, workspace_id: int, data: LotteryIn, created_by: int | None = None) -> Lottery:
    """A draft lottery with its prize table."""
    values: dict[str, Any] = data.model_dump(exclude={"prizes"})
    lottery = Lottery(workspace_id=workspace_id, status="draft", created_by=created_by, **values)
    _check(session, lottery, data.prizes)
    session.add(lottery)
    session.flush()
    _set_prizes(session, lottery, data.prizes)
    return lottery


def update_lottery(session: Session, *, workspace_id: int, lottery_id: int, data: LotteryFields) -> Lottery:
    """Edit a draft (anything, `prizes` replaces the table) or, once published, only its name and description."""
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    sent = data.model_dump(exclude_unset=True)
    if lottery.status != "draft" and set(sent) - EDITABLE_WHEN_PUBLISHED:
        raise LotteryLocked(id=lottery_id)
    prizes = data.prizes if "prizes" in sent else None
    for name, value in sent.items():
        if name == "prizes" or (value is None and name not in ("campaign_id", "points_per_draw", "bought_per_day")):
            continue
        setattr(lottery, name, value)
    _check(session, lottery, prizes)
    if prizes is not None:
        _set_prizes(session, lottery, prizes)
    lottery.updated_at = utcnow()
    session.flush()
    return lottery


def publish_lottery(session: Session, *, workspace_id: int, lottery_id: int, now: datetime | None = None) -> Lottery:
    """Open the lottery: draw the secret seed now and publish sha256(seed) before anyone draws."""
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    if lottery.status != "draft":
        raise LotteryBadTransition(frm=lottery.status, to="published")
    prizes = list_prizes(session, lottery_id=lottery.id)
    _check(session, lottery, [_prize_in(p) for p in prizes])
    if lottery.ends_at <= (now or utcnow()):
        raise LotteryInvalid(details=[_problem("ends_at", "the lottery would already be over")])
    seed = fairness.new_seed()
    lottery.seed_sealed = encrypt_secret(seed.hex())
    lottery.commitment = fairness.commitment_of(seed)
    lottery.status = "published"
    lottery.published_at = lottery.updated_at = utcnow()
    session.flush()
    return lottery


def cancel_lottery(session: Session, *, workspace_id: int, lottery_id: int) -> Lottery:
    """Stop a draft or published lottery (prizes already won stay won)."""
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    if lottery.status not in ("draft", "published"):
        raise LotteryBadTransition(frm=lottery.status, to="cancelled")
    lottery.status = "cancelled"
    lottery.updated_at = utcnow()
    session.flush()
    return lottery


def reveal_lottery(session: Session, *, workspace_id: int, lottery_id: int, now: datetime | None = None) -> Lottery:
    """Publish the seed, only once no more draws can happen (after the end, or after cancelling)."""
    lottery = get_lottery(session, workspace_id=workspace_id, lottery_id=lottery_id)
    if lottery.status == "revealed":
        return lottery
    if lottery.seed_sealed is None:
        raise LotteryBadTransition(frm=lottery.status, to="revealed")
    if lottery.status == "published" and (now or utcnow()) < lottery.ends_at:
        raise RevealTooEarly(ends_at=lottery.ends_at.isoformat())
    lottery.seed_hex = secret_seed(lottery).hex()
    lottery.seed_sealed = None  # public from now on
    lottery.status = "revealed"
    lottery.revealed_at = lottery.updated_at = utcnow()
    session.flush()
    return lottery


def secret_seed(lottery: Lottery) -> bytes:
    """The seed of a published (or cancelled, not yet revealed) lottery, unsealed."""
    if lottery.seed_sealed is None:
        raise LotteryBadTransition(frm=lottery.status, to="draw")
    return _unseal(lottery.seed_sealed)


@lru_cache(maxsize=256)
def _unseal(sealed: str) -> bytes:
    # Cached: every draw needs the seed, and a Fernet check costs more than the draw's own hashing.
    return bytes.fromhex(decrypt_secret(sealed))


def reveal_ended(session: Session, *, now: datetime | None = None) -> int:
    """Reveal every published lottery that has ended (all workspaces); returns how many."""
    now = now or utcnow()
    due = session.scalars(select(Lottery).where(Lottery.status == "published", Lottery.ends_at <= now)).all()
    for lottery in due:
        reveal_lottery(session, workspace_id=lottery.workspace_id, lottery_id=lottery.id, now=now)
    return len(due)


def _prize_in(p: LotteryPrize) -> PrizeIn:
    return PrizeIn(
        name=p.name,
        kind=p.kind,
        weight=p.weight,
        stock=p.stock,
        coupon_template_id=p.coupon_template_id,
        points=p.points,
        cost_fen=p.cost_fen,
    )
