"""Challenge votes under concurrency (real threads, own sessions, SQLite and PostgreSQL): one vote per entry
per member, and never more than the member's maximum across entries."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.promotions.challenges import service
from shequn.promotions.challenges.errors import VoteLimit
from shequn.promotions.challenges.models import Challenge, ChallengeEntry, ChallengeVote
from shequn.promotions.guard.errors import RateLimited
from tests.conftest import Tenant
from tests.integration.test_challenges import TAG, make_challenge
from tests.integration.test_communities_core import make_community
from tests.integration.test_gatherings_concurrency import _race as race
from tests.integration.test_ugc_posts import _member, _post

THREADS = 6


def _setup(db: Session, tenant: Tenant, entries: int, max_votes: int) -> tuple[Challenge, list[int], int]:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    authors = _member(db, ws, community.id, entries, prefix="au")
    (voter,) = _member(db, ws, community.id, 1, prefix="vo")
    for who in authors:
        _post(db, ws, community.id, who, f"#{TAG}# 作品")
    ch = make_challenge(db, tenant, community.id, max_votes_per_member=max_votes)
    service.sync_entries(db, challenge=ch)
    db.commit()
    ids = [e.id for e in service.list_entries(db, challenge=ch)[0]]
    return ch, ids, voter


def _votes(db: Session, **where: int) -> int:
    db.expire_all()
    q = select(func.count(ChallengeVote.id))
    for k, v in where.items():
        q = q.where(getattr(ChallengeVote, k) == v)
    return int(db.scalar(q) or 0)


def test_one_vote_per_entry_per_member_under_races(db: Session, tenant: Tenant) -> None:
    ch, (entry_id, *_), voter = _setup(db, tenant, 2, max_votes=3)
    ws = tenant.workspace_id

    def vote(s: Session) -> object:
        return service.vote(s, workspace_id=ws, challenge_id=ch.id, entry_id=entry_id, customer_id=voter)

    results = race([vote] * THREADS)
    # Every retry answers with the same vote (the guard may call part of a same-member burst bot-like).
    assert all(isinstance(r, service.VoteResult | RateLimited) for r in results), results
    done = [r for r in results if isinstance(r, service.VoteResult)]
    assert [r.already_voted for r in done].count(False) == 1
    assert _votes(db, entry_id=entry_id) == 1
    assert db.get(ChallengeEntry, entry_id).votes_count == 1
    assert service.votes_used(db, challenge_id=ch.id, customer_id=voter) == 1


def test_votes_never_pass_the_member_maximum_under_races(db: Session, tenant: Tenant) -> None:
    ch, ids, voter = _setup(db, tenant, THREADS, max_votes=3)
    ws = tenant.workspace_id

    def vote_for(entry_id: int):  # type: ignore[no-untyped-def]
        return lambda s: service.vote(s, workspace_id=ws, challenge_id=ch.id, entry_id=entry_id, customer_id=voter)

    results = race([vote_for(e) for e in ids])
    assert all(isinstance(r, service.VoteResult | VoteLimit | RateLimited) for r in results), results
    won = sum(isinstance(r, service.VoteResult) for r in results)
    passed_guard = sum(not isinstance(r, RateLimited) for r in results)
    assert won == min(3, passed_guard) and _votes(db, customer_id=voter) == won
    assert service.votes_used(db, challenge_id=ch.id, customer_id=voter) == won
    counts = db.scalars(select(ChallengeEntry.votes_count).where(ChallengeEntry.challenge_id == ch.id))
    assert sum(counts) == won == db.get(Challenge, ch.id).votes_count
