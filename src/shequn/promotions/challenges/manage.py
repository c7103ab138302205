"""Operators' side of challenges: drafts, the hashtag and community, publish, cancel; phases from the clock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.ugc import service as ugc_service
from shequn.core.clock import utcnow
from shequn.core.errors import NotFound
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.challenges.errors import (
    ChallengeBadTransition,
    ChallengeInvalid,
    ChallengeLocked,
    ChallengeNotFound,
)
from shequn.promotions.challenges.models import Challenge
from shequn.promotions.challenges.schemas import ChallengeIn

_FIELDS = (
    "name", "description", "community_id", "hashtag", "mode", "entry_starts_at", "entry_ends_at", "vote_starts_at",
    "vote_ends_at", "max_votes_per_member", "winners_cap", "prize_kind", "prize_name", "prize_coupon_template_id",
    "prize_points", "prize_cost_fen", "campaign_id",
)  # fmt: skip


def normalize_hashtag(raw: str) -> str:
    """The topic name UGC stores for what an operator typed ("#春茶晒单#", "春茶晒单" → "春茶晒单")."""
    tags = ugc_service.parse_hashtags(f"#{raw.strip().strip('#').strip()}#")
    return tags[0] if tags else ""


def get_challenge(session: Session, *, workspace_id: int, challenge_id: int) -> Challenge:
    """A challenge of this workspace (ChallengeNotFound otherwise)."""
    challenge = session.get(Challenge, challenge_id)
    if challenge is None or challenge.workspace_id != workspace_id:
        raise ChallengeNotFound(id=challenge_id)
    return challenge


def list_challenges(
    session: Session, *, workspace_id: int, campaign_id: int | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Challenge], int]:
    """A page of the workspace's challenges, latest first."""
    q = select(Challenge).where(Challenge.workspace_id == workspace_id)
    if campaign_id is not None:
        q = q.where(Challenge.campaign_id == campaign_id)
    total = session.scalar(q.with_only_columns(func.count(Challenge.id))) or 0
    rows = session.scalars(
        q.order_by(Challenge.entry_starts_at.desc(), Challenge.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total)


def _check(session: Session, workspace_id: int, data: ChallengeIn) -> dict[str, object]:
    """Values to store, after checking the community, campaign and hashtag belong to this workspace."""
    values = {k: getattr(data, k) for k in _FIELDS}
    values["hashtag"] = normalize_hashtag(data.hashtag)
    if not values["hashtag"]:
        raise ChallengeInvalid(details=[{"field": "hashtag", "message": "not a usable topic"}])
    try:
        community_service.get_community(session, workspace_id=workspace_id, community_id=data.community_id)
    except NotFound:
        raise ChallengeInvalid(details=[{"field": "community_id", "message": "no such community"}]) from None
    if not campaigns_service.campaign_belongs(session, workspace_id=workspace_id, campaign_id=data.campaign_id):
        raise ChallengeInvalid(details=[{"field": "campaign_id", "message": "no such campaign"}])
    return values


def create_challenge(
    session: Session, *, workspace_id: int, data: ChallengeIn, created_by: int | None = None
) -> Challenge:
    """A draft challenge."""
    values = _check(session, workspace_id, data)
    now = utcnow()
    challenge = Challenge(
        workspace_id=workspace_id,
        status="draft",
        entries_count=0,
        votes_count=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(challenge)
    session.flush()
    return challenge


def update_challenge(session: Session, *, workspace_id: int, challenge_id: int, data: ChallengeIn) -> Challenge:
    """Edit a draft (a published challenge keeps its rules: people are entering and voting under them)."""
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if challenge.status != "draft":
        raise ChallengeLocked()
    for k, v in _check(session, workspace_id, data).items():
        setattr(challenge, k, v)
    challenge.updated_at = utcnow()
    session.flush()
    return challenge


def publish_challenge(session: Session, *, workspace_id: int, challenge_id: int) -> Challenge:
    """Open a draft: entries with its hashtag start counting."""
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if challenge.status != "draft":
        raise ChallengeBadTransition(status=challenge.status)
    if challenge.vote_ends_at <= utcnow():
        raise ChallengeInvalid(details=[{"field": "vote_ends_at", "message": "already past"}])
    challenge.status, challenge.published_at, challenge.updated_at = "published", utcnow(), utcnow()
    session.flush()
    return challenge


def cancel_challenge(session: Session, *, workspace_id: int, challenge_id: int) -> Challenge:
    """Call a draft or running challenge off."""
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if challenge.status not in ("draft", "published"):
        raise ChallengeBadTransition(status=challenge.status)
    challenge.status, challenge.updated_at = "cancelled", utcnow()
    session.flush()
    return challenge


def phase(challenge: Challenge, now: datetime | None = None) -> str:
    """draft | upcoming | entering | voting | judging | closed | decided | results | cancelled."""
    now = now or utcnow()
    if challenge.status == "decided":
        return "results" if challenge.results_published_at else "decided"
    if challenge.status != "published":
        return challenge.status
    if now < challenge.entry_starts_at:
        return "upcoming"
    if challenge.mode == "vote" and challenge.vote_starts_at <= now < challenge.vote_ends_at:
        return "voting"
    if now < challenge.entry_ends_at:
        return "entering"
    if challenge.mode == "judge" and now < challenge.vote_ends_at:
        return "judging"
    return "closed"


def entry_open(challenge: Challenge, now: datetime) -> bool:
    """Whether posts can enter now."""
    return challenge.status == "published" and challenge.entry_starts_at <= now < challenge.entry_ends_at


def voting_open(challenge: Challenge, now: datetime) -> bool:
    """Whether members can vote now."""
    return (
        challenge.status == "published"
        and challenge.mode == "vote"
        and challenge.vote_starts_at <= now < challenge.vote_ends_at
    )
