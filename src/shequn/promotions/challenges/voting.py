"""Votes and judges' scores.

A vote is a row unique per (entry, member), so a retried or raced vote counts once; each member's tally
in the challenge moves by `votes_used + 1 WHERE votes_used < max`, so racing votes for different entries
cannot pass the maximum. Both happen inside one savepoint with the entry's counter: all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.sqlutil import changed as changed_rows
from shequn.promotions.challenges.entries import get_entry
from shequn.promotions.challenges.errors import NotJudged, SelfVote, VoteLimit, VotingClosed
from shequn.promotions.challenges.manage import get_challenge, voting_open
from shequn.promotions.challenges.models import Challenge, ChallengeEntry, ChallengeVote, ChallengeVoter
from shequn.promotions.quiz import links


@dataclass(frozen=True)
class VoteResult:
    """A vote and the state after it."""

    entry_id: int
    already_voted: bool
    entry_votes: int
    votes_left: int


class _AlreadyVoted(Exception):
    """The unique (entry, member) key refused a second vote."""


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def votes_used(session: Session, *, challenge_id: int, customer_id: int) -> int:
    """How many votes a member has cast in a challenge."""
    used = session.scalar(
        select(ChallengeVoter.votes_used).where(
            ChallengeVoter.challenge_id == challenge_id, ChallengeVoter.customer_id == customer_id
        )
    )
    return int(used or 0)


def voted_entry_ids(session: Session, *, challenge_id: int, customer_id: int) -> set[int]:
    """The entries a member has voted for."""
    return set(
        session.scalars(
            select(ChallengeVote.entry_id).where(
                ChallengeVote.challenge_id == challenge_id, ChallengeVote.customer_id == customer_id
            )
        )
    )


def vote(
    session: Session,
    *,
    workspace_id: int,
    challenge_id: int,
    entry_id: int,
    customer_id: int,
    device_id: str = "",
    now: datetime | None = None,
) -> VoteResult:
    """Vote for an entry (once per entry, within the member's maximum, never for one's own, only while open)."""
    now = now or utcnow()
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if not voting_open(challenge, now):
        raise VotingClosed()
    entry = get_entry(session, challenge=challenge, entry_id=entry_id)
    if entry.customer_id == customer_id:
        raise SelfVote()
    if entry.id in voted_entry_ids(session, challenge_id=challenge.id, customer_id=customer_id):
        return _result(session, challenge, entry, customer_id, already=True)
    links.check_member_action(
        session, workspace_id=workspace_id, action="challenge.vote", customer_id=customer_id, device_id=device_id
    )
    try:
        with session.begin_nested():
            _cast(session, challenge, entry, customer_id, device_id, now)
    except _AlreadyVoted:
        pass  # a concurrent retry of the same vote won: this one is the same vote
    else:
        return _result(session, challenge, entry, customer_id, already=False)
    return _result(session, challenge, entry, customer_id, already=True)


def _cast(
    session: Session, challenge: Challenge, entry: ChallengeEntry, customer_id: int, device_id: str, now: datetime
) -> None:
    """The vote row, the member's tally and the counters (inside the caller's savepoint)."""
    try:
        session.add(
            ChallengeVote(
                workspace_id=challenge.workspace_id,
                challenge_id=challenge.id,
                entry_id=entry.id,
                customer_id=customer_id,
                device_id=device_id[:64],
                created_at=now,
            )
        )
        session.flush()
    except IntegrityError:
        raise _AlreadyVoted() from None
    session.execute(
        _insert(session)(ChallengeVoter)
        .values(challenge_id=challenge.id, customer_id=customer_id, workspace_id=challenge.workspace_id, votes_used=0)
        .on_conflict_do_nothing(index_elements=["challenge_id", "customer_id"])
    )
    took = changed_rows(
        session,
        update(ChallengeVoter)
        .where(
            ChallengeVoter.challenge_id == challenge.id,
            ChallengeVoter.customer_id == customer_id,
            ChallengeVoter.votes_used < challenge.max_votes_per_member,
        )
        .values(votes_used=ChallengeVoter.votes_used + 1),
    )
    if not took:
        raise VoteLimit(limit=challenge.max_votes_per_member)
    changed_rows(
        session,
        update(ChallengeEntry)
        .where(ChallengeEntry.id == entry.id)
        .values(votes_count=ChallengeEntry.votes_count + 1, updated_at=now),
    )
    changed_rows(
        session, update(Challenge).where(Challenge.id == challenge.id).values(votes_count=Challenge.votes_count + 1)
    )


def _result(
    session: Session, challenge: Challenge, entry: ChallengeEntry, customer_id: int, *, already: bool
) -> VoteResult:
    session.refresh(entry)
    used = votes_used(session, challenge_id=challenge.id, customer_id=customer_id)
    return VoteResult(entry.id, already, entry.votes_count, max(challenge.max_votes_per_member - used, 0))


def judge(
    session: Session, *, workspace_id: int, challenge_id: int, entry_id: int, score: int, operator_id: int | None
) -> ChallengeEntry:
    """A judge's score (0–100) for an entry of a judged challenge not decided yet; a new score replaces it."""
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if challenge.mode != "judge" or challenge.status != "published":
        raise NotJudged()
    entry = get_entry(session, challenge=challenge, entry_id=entry_id)
    entry.score, entry.judged_by, entry.judged_at = max(0, min(100, score)), operator_id, utcnow()
    session.flush()
    return entry
