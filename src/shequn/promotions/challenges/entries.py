"""Entries: the community's approved posts carrying the challenge's hashtag, plus posts their authors enter.

UGC sends no signal when a post is published or moderated, so entries are found by reading the ugc
service's topic feed (on a schedule, when the console page opens, and throttled when members look), and
an entry whose post is no longer approved is withdrawn until it is approved again.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shequn.community.ugc import service as ugc_service
from shequn.core.clock import utcnow
from shequn.core.errors import NotFound
from shequn.core.sqlutil import changed as changed_rows
from shequn.promotions.challenges.errors import EntryClosed, EntryNotFound, PostNotEligible
from shequn.promotions.challenges.manage import entry_open, get_challenge
from shequn.promotions.challenges.models import Challenge, ChallengeEntry

PAGE = 500
MAX_POSTS = 20_000
# Members' page views re-read the topic at most this often per challenge (per process).
SYNC_EVERY_S = 30.0
_last_sync: dict[tuple[int, object], float] = {}


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _excerpt(post: Any) -> str:
    text = " ".join((post.body or "").split())
    return text[:277] + "…" if len(text) > 280 else text


def _row(challenge: Challenge, post: Any, source: str, now: datetime) -> dict[str, Any]:
    return {
        "workspace_id": challenge.workspace_id,
        "challenge_id": challenge.id,
        "post_id": post.id,
        "customer_id": post.customer_id,
        "author_name": (post.author_name or "")[:120],
        "title": (post.title or "")[:200],
        "excerpt": _excerpt(post),
        "media": str(post.media[0])[:64] if post.media else "",
        "source": source,
        "status": "active",
        "votes_count": 0,
        "posted_at": post.created_at,
        "won": False,
        "prize_status": "none",
        "prize_ref": "",
        "prize_cost_fen": 0,
        "created_at": now,
        "updated_at": now,
    }


def _hashtag_posts(session: Session, challenge: Challenge) -> list[Any]:
    """Approved members' posts in the community with the hashtag, written inside the entry window."""
    flt = ugc_service.PostFilter(community_id=challenge.community_id, topic=challenge.hashtag, status="approved")
    out: list[Any] = []
    offset = 0
    while offset < MAX_POSTS:
        rows, _total = ugc_service.list_posts(
            session, workspace_id=challenge.workspace_id, flt=flt, limit=PAGE, offset=offset
        )
        out.extend(
            p
            for p in rows
            if p.customer_id is not None and challenge.entry_starts_at <= p.created_at < challenge.entry_ends_at
        )
        if len(rows) < PAGE:
            break
        offset += PAGE
    return out


def sync_entries(session: Session, *, challenge: Challenge, now: datetime | None = None) -> int:
    """Register new hashtag posts as entries and withdraw/restore entries by their post's status; new entries."""
    now = now or utcnow()
    if challenge.status not in ("published",):
        return 0
    posts = _hashtag_posts(session, challenge) if now >= challenge.entry_starts_at else []
    known = set(session.scalars(select(ChallengeEntry.post_id).where(ChallengeEntry.challenge_id == challenge.id)))
    fresh = [_row(challenge, p, "hashtag", now) for p in posts if p.id not in known]
    if fresh:
        ins = _insert(session)
        # Two syncs at once insert each post once: the unique (challenge, post) key decides.
        session.execute(
            ins(ChallengeEntry).values(fresh).on_conflict_do_nothing(index_elements=["challenge_id", "post_id"])
        )
    approved = {p.id for p in posts}
    _recheck(session, challenge, approved, now)
    recount(session, challenge.id)
    session.expire(challenge, ["entries_count"])
    return len(fresh)


def _recheck(session: Session, challenge: Challenge, approved: set[int], now: datetime) -> None:
    """Withdraw entries whose post is no longer approved; restore those approved again."""
    for entry in session.scalars(select(ChallengeEntry).where(ChallengeEntry.challenge_id == challenge.id)):
        ok = entry.post_id in approved or _post_approved(session, challenge.workspace_id, entry.post_id)
        want = "active" if ok else "withdrawn"
        if entry.status != want:
            entry.status, entry.updated_at = want, now
    session.flush()


def _post_approved(session: Session, workspace_id: int, post_id: int) -> bool:
    try:
        return ugc_service.get_post(session, workspace_id=workspace_id, post_id=post_id).status == "approved"
    except NotFound:
        return False


def recount(session: Session, challenge_id: int) -> None:
    """Store the number of active entries (a correlated count: concurrent syncs cannot lose one)."""
    active = (
        select(func.count(ChallengeEntry.id))
        .where(ChallengeEntry.challenge_id == challenge_id, ChallengeEntry.status == "active")
        .scalar_subquery()
    )
    changed_rows(session, update(Challenge).where(Challenge.id == challenge_id).values(entries_count=active))


def maybe_sync(session: Session, *, challenge: Challenge) -> None:
    """Sync unless this process did it for this challenge in the last SYNC_EVERY_S seconds."""
    now = time.monotonic()
    key = (challenge.id, challenge.published_at)  # a recreated database reuses ids, never publish times
    if now - _last_sync.get(key, 0.0) < SYNC_EVERY_S:
        return
    _last_sync[key] = now
    sync_entries(session, challenge=challenge)


def enter_post(
    session: Session,
    *,
    workspace_id: int,
    challenge_id: int,
    customer_id: int,
    post_id: int,
    source: str = "member",
    now: datetime | None = None,
) -> ChallengeEntry:
    """Enter one of the member's approved posts in the challenge's community (repeating returns the entry)."""
    now = now or utcnow()
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    existing = session.scalar(
        select(ChallengeEntry).where(ChallengeEntry.challenge_id == challenge.id, ChallengeEntry.post_id == post_id)
    )
    if existing is not None and existing.customer_id == customer_id:
        return existing
    if not entry_open(challenge, now):
        raise EntryClosed()
    try:
        post = ugc_service.get_post(session, workspace_id=workspace_id, post_id=post_id)
    except NotFound:
        raise PostNotEligible(reason="not_found") from None
    if post.customer_id != customer_id or post.community_id != challenge.community_id or post.status != "approved":
        raise PostNotEligible(reason="not_eligible")
    session.execute(
        _insert(session)(ChallengeEntry)
        .values([_row(challenge, post, source, now)])
        .on_conflict_do_nothing(index_elements=["challenge_id", "post_id"])
    )
    recount(session, challenge.id)
    session.expire(challenge, ["entries_count"])
    entry = session.scalar(
        select(ChallengeEntry).where(ChallengeEntry.challenge_id == challenge.id, ChallengeEntry.post_id == post_id)
    )
    assert entry is not None
    return entry


def get_entry(session: Session, *, challenge: Challenge, entry_id: int, active: bool = True) -> ChallengeEntry:
    """An entry of this challenge (EntryNotFound otherwise, or when withdrawn and active is asked)."""
    entry = session.get(ChallengeEntry, entry_id)
    if entry is None or entry.challenge_id != challenge.id or (active and entry.status != "active"):
        raise EntryNotFound(id=entry_id)
    return entry


def list_entries(
    session: Session,
    *,
    challenge: Challenge,
    order: str = "votes",
    status: str | None = "active",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ChallengeEntry], int]:
    """A page of entries: by votes (or score, or newest), ties broken the same way the winners are."""
    q = select(ChallengeEntry).where(ChallengeEntry.challenge_id == challenge.id)
    if status:
        q = q.where(ChallengeEntry.status == status)
    total = session.scalar(q.with_only_columns(func.count(ChallengeEntry.id))) or 0
    return list(session.scalars(q.order_by(*ranking(order)).limit(limit).offset(offset))), int(total)


def ranking(order: str) -> list[Any]:
    """ORDER BY for a ranking: the measure, then earlier post, then lower id (deterministic on ties)."""
    tie = [ChallengeEntry.posted_at.asc(), ChallengeEntry.id.asc()]
    if order == "score":
        return [ChallengeEntry.score.is_(None), ChallengeEntry.score.desc(), *tie]
    if order == "newest":
        return [ChallengeEntry.posted_at.desc(), ChallengeEntry.id.desc()]
    return [ChallengeEntry.votes_count.desc(), *tie]


def entries_of(session: Session, *, challenge: Challenge, customer_id: int) -> list[ChallengeEntry]:
    """A member's entries in a challenge."""
    return list(
        session.scalars(
            select(ChallengeEntry)
            .where(and_(ChallengeEntry.challenge_id == challenge.id, ChallengeEntry.customer_id == customer_id))
            .order_by(ChallengeEntry.id)
        )
    )


def eligible_posts(session: Session, *, challenge: Challenge, customer_id: int) -> list[Any]:
    """The member's approved posts in the community not entered yet (newest 200 posts of the community looked at)."""
    flt = ugc_service.PostFilter(community_id=challenge.community_id, status="approved")
    rows, _ = ugc_service.list_posts(session, workspace_id=challenge.workspace_id, flt=flt, limit=200)
    entered = {e.post_id for e in entries_of(session, challenge=challenge, customer_id=customer_id)}
    return [p for p in rows if p.customer_id == customer_id and p.id not in entered]
