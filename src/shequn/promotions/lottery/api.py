"""Operator API of promotions.lottery: set-up, publish/cancel/reveal, results, fulfilment."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.lottery import service
from shequn.promotions.lottery.schemas import (
    FulfilmentIn,
    FulfilmentOut,
    LotteryIn,
    LotteryOut,
    LotteryPatch,
    VerificationOut,
)

router = APIRouter(prefix="/api/v1/lotteries", tags=["promotions"])
Phase = Literal["draft", "scheduled", "running", "ended", "revealed", "cancelled"]


class PrizeStatOut(BaseModel):
    """A prize's expected share against what was drawn and awarded."""

    prize_id: int
    name: str
    kind: str
    stock: int | None
    expected: float
    chosen: int
    awarded: int


class StatsOut(BaseModel):
    """A lottery's results: draws per local day, prizes, cost against the campaign budget, fulfilment."""

    draws_per_day: list[tuple[str, int, int]]
    prizes: list[PrizeStatOut]
    cost_fen: int
    fulfilment: dict[str, int]


@router.get("", response_model=Paginated[LotteryOut])
def list_lotteries(
    phase: Phase | None = None,
    campaign_id: int | None = Query(None, ge=1, le=2**63 - 1),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[LotteryOut]:
    """The workspace's lotteries, latest start first."""
    rows, total = service.list_lotteries(
        db, workspace_id=actor.workspace_id, phase=phase, campaign_id=campaign_id, limit=page.limit, offset=page.offset
    )
    return Paginated.of([service.lottery_out(db, x) for x in rows], total, page.limit, page.offset)


@router.post("", response_model=LotteryOut, status_code=201)
def create_lottery(
    body: LotteryIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> LotteryOut:
    """Create a draft lottery with its prize table."""
    lottery = service.create_lottery(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    identity_service.record_audit(db, actor, "lottery.create", "lottery", lottery.id, {"name": lottery.name})
    db.commit()
    return service.lottery_out(db, lottery)


@router.get("/{lottery_id}", response_model=LotteryOut)
def get_lottery(
    lottery_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> LotteryOut:
    """One lottery (the seed only after the reveal)."""
    return service.lottery_out(db, service.get_lottery(db, workspace_id=actor.workspace_id, lottery_id=lottery_id))


@router.patch("/{lottery_id}", response_model=LotteryOut)
def update_lottery(
    lottery_id: DbId, body: LotteryPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> LotteryOut:
    """Edit a draft (after publishing only name and description)."""
    lottery = service.update_lottery(db, workspace_id=actor.workspace_id, lottery_id=lottery_id, data=body)
    identity_service.record_audit(db, actor, "lottery.update", "lottery", lottery.id, {})
    db.commit()
    return service.lottery_out(db, lottery)


def _transition(action: str, lottery_id: int, actor: Actor, db: Session) -> LotteryOut:
    move = {"publish": service.publish_lottery, "cancel": service.cancel_lottery, "reveal": service.reveal_lottery}
    lottery = move[action](db, workspace_id=actor.workspace_id, lottery_id=lottery_id)
    identity_service.record_audit(
        db, actor, f"lottery.{action}", "lottery", lottery.id, {"commitment": lottery.commitment or ""}
    )
    db.commit()
    return service.lottery_out(db, lottery)


@router.post("/{lottery_id}/publish", response_model=LotteryOut)
def publish(lottery_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> LotteryOut:
    """Open the lottery: the server draws a secret seed and publishes its sha256 commitment."""
    return _transition("publish", lottery_id, actor, db)


@router.post("/{lottery_id}/cancel", response_model=LotteryOut)
def cancel(lottery_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> LotteryOut:
    """Stop the lottery (prizes won stay won)."""
    return _transition("cancel", lottery_id, actor, db)


@router.post("/{lottery_id}/reveal", response_model=LotteryOut)
def reveal(lottery_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> LotteryOut:
    """Publish the seed (only after the end) so anyone can recompute every draw."""
    return _transition("reveal", lottery_id, actor, db)


@router.get("/{lottery_id}/stats", response_model=StatsOut)
def stats(lottery_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> StatsOut:
    """Draws per day, expected vs observed prize frequencies, cost, fulfilment states."""
    ws = actor.workspace_id
    lottery = service.get_lottery(db, workspace_id=ws, lottery_id=lottery_id)
    return StatsOut(
        draws_per_day=service.draws_per_day(db, workspace_id=ws, lottery_id=lottery.id),
        prizes=[
            PrizeStatOut(
                prize_id=s.prize.id,
                name=s.prize.name,
                kind=s.prize.kind,
                stock=s.prize.stock,
                expected=s.expected,
                chosen=s.chosen,
                awarded=s.awarded,
            )
            for s in service.prize_stats(db, workspace_id=ws, lottery_id=lottery.id)
        ],
        cost_fen=service.cost_spent(db, lottery_id=lottery.id),
        fulfilment=service.fulfilment_counts(db, workspace_id=ws, lottery_id=lottery.id),
    )


@router.get("/{lottery_id}/verification", response_model=VerificationOut)
def verification(
    lottery_id: DbId,
    limit: int = Query(5000, ge=1, le=20000),
    offset: int = Query(0, ge=0, le=10**9),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> VerificationOut:
    """The same public record members see (commitment, seed after the reveal, prize table, draw log)."""
    return service.verification(db, workspace_id=actor.workspace_id, lottery_id=lottery_id, limit=limit, offset=offset)


@router.get("/{lottery_id}/fulfilment", response_model=list[FulfilmentOut])
def fulfilment_queue(
    lottery_id: DbId,
    status: Literal["pending", "ready", "shipped", "delivered"] | None = None,
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[FulfilmentOut]:
    """Physical prizes and where each one is (oldest first)."""
    lottery = service.get_lottery(db, workspace_id=actor.workspace_id, lottery_id=lottery_id)
    rows = service.fulfilment_queue(db, workspace_id=actor.workspace_id, lottery_id=lottery.id, status=status)
    return [service.fulfilment_out(d, name) for d, name in rows]


@router.post("/draws/{draw_id}/fulfilment", response_model=FulfilmentOut)
def mark_fulfilment(
    draw_id: DbId, body: FulfilmentIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> FulfilmentOut:
    """Mark a physical prize shipped (with tracking number) or delivered."""
    draw = service.mark_fulfilment(
        db, workspace_id=actor.workspace_id, draw_id=draw_id, status=body.status, tracking_no=body.tracking_no
    )
    identity_service.record_audit(db, actor, f"lottery.{body.status}", "lottery_draw", draw.id, {})
    db.commit()
    prize = next(p for p in service.list_prizes(db, lottery_id=draw.lottery_id) if p.id == draw.prize_id)
    return service.fulfilment_out(draw, prize.name)
