"""Operator API of promotions.challenges: challenges, entries, judging, winners and results, fulfilment."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.challenges import service
from shequn.promotions.challenges.schemas import ChallengeIn, ChallengeOut, EntryOut, JudgeIn

router = APIRouter(prefix="/api/v1/challenges", tags=["promotions"])


@router.get("", response_model=Paginated[ChallengeOut])
def list_challenges(
    campaign_id: int | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[ChallengeOut]:
    """The workspace's challenges, latest first."""
    rows, total = service.list_challenges(
        db, workspace_id=actor.workspace_id, campaign_id=campaign_id, limit=page.limit, offset=page.offset
    )
    return Paginated.of([ChallengeOut.model_validate(c) for c in rows], total, page.limit, page.offset)


@router.post("", response_model=ChallengeOut, status_code=201)
def create_challenge(
    body: ChallengeIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> ChallengeOut:
    """Create a draft challenge."""
    c = service.create_challenge(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    identity_service.record_audit(db, actor, "challenge.create", "challenge", c.id, {"hashtag": c.hashtag})
    db.commit()
    return ChallengeOut.model_validate(c)


@router.get("/{challenge_id}", response_model=ChallengeOut)
def get_challenge(
    challenge_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> ChallengeOut:
    """One challenge."""
    return ChallengeOut.model_validate(
        service.get_challenge(db, workspace_id=actor.workspace_id, challenge_id=challenge_id)
    )


@router.put("/{challenge_id}", response_model=ChallengeOut)
def update_challenge(
    challenge_id: DbId, body: ChallengeIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> ChallengeOut:
    """Edit a draft challenge."""
    c = service.update_challenge(db, workspace_id=actor.workspace_id, challenge_id=challenge_id, data=body)
    db.commit()
    return ChallengeOut.model_validate(c)


def _act(db: Session, actor: Actor, challenge_id: int, action: str) -> ChallengeOut:
    ws = actor.workspace_id
    if action == "publish":
        c = service.publish_challenge(db, workspace_id=ws, challenge_id=challenge_id)
    elif action == "cancel":
        c = service.cancel_challenge(db, workspace_id=ws, challenge_id=challenge_id)
    elif action == "decide":
        service.decide(db, workspace_id=ws, challenge_id=challenge_id)
        c = service.get_challenge(db, workspace_id=ws, challenge_id=challenge_id)
    else:
        c = service.publish_results(db, workspace_id=ws, challenge_id=challenge_id)
    identity_service.record_audit(db, actor, f"challenge.{action}", "challenge", challenge_id, {})
    db.commit()
    return ChallengeOut.model_validate(c)


@router.post("/{challenge_id}/sync", response_model=ChallengeOut)
def sync(
    challenge_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> ChallengeOut:
    """Pick up new hashtag posts as entries now (also done every few minutes)."""
    c = service.get_challenge(db, workspace_id=actor.workspace_id, challenge_id=challenge_id)
    service.sync_entries(db, challenge=c)
    db.commit()
    return ChallengeOut.model_validate(c)


@router.post("/{challenge_id}/{action}", response_model=ChallengeOut)
def act(
    challenge_id: DbId,
    action: Literal["publish", "cancel", "decide", "publish-results"],
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> ChallengeOut:
    """publish, cancel, decide (winners and prizes, after the close) or publish-results."""
    return _act(db, actor, challenge_id, action)


@router.get("/{challenge_id}/entries", response_model=Paginated[EntryOut])
def entries(
    challenge_id: DbId,
    order: Literal["votes", "score", "newest"] = "votes",
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[EntryOut]:
    """Entries in ranking order (withdrawn ones left out)."""
    c = service.get_challenge(db, workspace_id=actor.workspace_id, challenge_id=challenge_id)
    rows, total = service.list_entries(db, challenge=c, order=order, limit=page.limit, offset=page.offset)
    return Paginated.of([EntryOut.model_validate(e) for e in rows], total, page.limit, page.offset)


@router.post("/{challenge_id}/entries/{entry_id}/score", response_model=EntryOut)
def score(
    challenge_id: DbId,
    entry_id: DbId,
    body: JudgeIn,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> EntryOut:
    """A judge's score (0–100) for an entry of a judged challenge."""
    entry = service.judge(
        db,
        workspace_id=actor.workspace_id,
        challenge_id=challenge_id,
        entry_id=entry_id,
        score=body.score,
        operator_id=actor.operator_id,
    )
    db.commit()
    return EntryOut.model_validate(entry)


@router.post("/{challenge_id}/entries/{entry_id}/ship", response_model=EntryOut)
def ship(
    challenge_id: DbId, entry_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> EntryOut:
    """Move a physical prize to its next state."""
    entry = service.ship(db, workspace_id=actor.workspace_id, challenge_id=challenge_id, entry_id=entry_id)
    db.commit()
    return EntryOut.model_validate(entry)
