"""Member H5 and member API: UGC challenges: rules, the entries gallery with votes, my entry, winners."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from shequn.community.ugc import service as ugc_service
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb
from shequn.promotions.challenges import service as challenge_service
from shequn.promotions.challenges.errors import ChallengeNotFound, EntryNotFound
from shequn.promotions.challenges.schemas import EnterIn, MemberChallengeOut, MemberEntryOut, VoteOut

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m/challenges", tags=["member"])
PAGE = 30


def visible_challenge(db: Session, workspace_id: int, challenge_id: int) -> Any:
    """A challenge members may see (not a draft)."""
    challenge = challenge_service.get_challenge(db, workspace_id=workspace_id, challenge_id=challenge_id)
    if challenge.status == "draft":
        raise ChallengeNotFound(id=challenge_id)
    return challenge


def can_see_entries(db: Session, challenge: Any, customer_id: int | None) -> bool:
    """Entries are community posts: shown to whoever may read the community's whole feed."""
    try:
        access = ugc_service.feed_access(
            db, workspace_id=challenge.workspace_id, community_id=challenge.community_id, customer_id=customer_id
        )
    except ShequnError:
        return False
    return access == "all"


def challenge_out(db: Session, challenge: Any, customer_id: int | None) -> MemberChallengeOut:
    """The public face of a challenge with the member's votes left."""
    left = None
    if customer_id is not None and challenge.mode == "vote":
        used = challenge_service.votes_used(db, challenge_id=challenge.id, customer_id=customer_id)
        left = max(challenge.max_votes_per_member - used, 0)
    return MemberChallengeOut(
        id=challenge.id,
        name=challenge.name,
        description=challenge.description,
        hashtag=challenge.hashtag,
        mode=challenge.mode,
        phase=challenge_service.phase(challenge),
        community_id=challenge.community_id,
        entry_starts_at=challenge.entry_starts_at,
        entry_ends_at=challenge.entry_ends_at,
        vote_starts_at=challenge.vote_starts_at,
        vote_ends_at=challenge.vote_ends_at,
        max_votes_per_member=challenge.max_votes_per_member,
        winners_cap=challenge.winners_cap,
        prize_kind=challenge.prize_kind,
        prize_name=challenge.prize_name,
        entries_count=challenge.entries_count,
        votes_left=left,
        results_published=challenge.results_published_at is not None,
    )


def entry_out(entry: Any, ws_slug: str, customer_id: int | None, voted: set[int], show_rank: bool) -> MemberEntryOut:
    """An entry card (the rank only once results are published)."""
    return MemberEntryOut(
        id=entry.id,
        post_id=entry.post_id,
        author_name=entry.author_name,
        title=entry.title,
        excerpt=entry.excerpt,
        image_url=ugc_service.media_url(ws_slug, entry.media) if entry.media else "",
        votes_count=entry.votes_count,
        mine=customer_id is not None and entry.customer_id == customer_id,
        voted=entry.id in voted,
        win_rank=entry.win_rank if show_rank else None,
    )


def gallery(
    db: Session, challenge: Any, ws_slug: str, customer_id: int | None, order: str, offset: int = 0
) -> list[MemberEntryOut]:
    """A page of the gallery (new hashtag posts are picked up at most every few seconds)."""
    challenge_service.maybe_sync(db, challenge=challenge)
    rows, _ = challenge_service.list_entries(db, challenge=challenge, order=order, limit=PAGE, offset=offset)
    voted = (
        challenge_service.voted_entry_ids(db, challenge_id=challenge.id, customer_id=customer_id)
        if customer_id
        else set()
    )
    shown = challenge.results_published_at is not None
    return [entry_out(e, ws_slug, customer_id, voted, shown) for e in rows]


def winners_out(db: Session, challenge: Any, ws_slug: str, customer_id: int | None) -> list[MemberEntryOut]:
    """The winners once results are published (else nothing)."""
    if challenge.results_published_at is None:
        return []
    return [entry_out(e, ws_slug, customer_id, set(), True) for e in challenge_service.winners(db, challenge=challenge)]


# --- member API ---------------------------------------------------------------------------------


@api.get("/{challenge_id}", response_model=MemberChallengeOut)
def get_challenge(
    challenge_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> MemberChallengeOut:
    """The challenge's rules, windows, prize and my votes left."""
    return challenge_out(db, visible_challenge(db, member.workspace_id, challenge_id), member.customer_id)


@api.get("/{challenge_id}/entries", response_model=list[MemberEntryOut])
def entries(
    challenge_id: DbId,
    order: Literal["votes", "newest"] = "votes",
    offset: int = Query(0, ge=0, le=100_000),
    member: mweb.Member = Depends(mweb.member),
    db: Session = Depends(get_db),
) -> list[MemberEntryOut]:
    """The entries gallery (empty for those who may not read the community)."""
    challenge = visible_challenge(db, member.workspace_id, challenge_id)
    if not can_see_entries(db, challenge, member.customer_id):
        return []
    out = gallery(db, challenge, member.workspace_slug, member.customer_id, order, offset)
    db.commit()
    return out


@api.post("/{challenge_id}/entries", response_model=MemberEntryOut, status_code=201)
def enter(
    challenge_id: DbId, body: EnterIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> MemberEntryOut:
    """Enter one of my approved posts in the challenge's community (repeating returns the same entry)."""
    entry = challenge_service.enter_post(
        db,
        workspace_id=member.workspace_id,
        challenge_id=challenge_id,
        customer_id=member.customer_id,
        post_id=body.post_id,
    )
    db.commit()
    return entry_out(entry, member.workspace_slug, member.customer_id, set(), False)


@api.post("/{challenge_id}/entries/{entry_id}/vote", response_model=VoteOut)
def vote(
    challenge_id: DbId,
    entry_id: DbId,
    request: Request,
    member: mweb.Member = Depends(mweb.member),
    db: Session = Depends(get_db),
) -> VoteOut:
    """Vote for an entry: once per entry, within my votes, never my own, only while voting is open."""
    challenge = visible_challenge(db, member.workspace_id, challenge_id)
    if not can_see_entries(db, challenge, member.customer_id):
        raise EntryNotFound(id=entry_id)  # entries of a community the member may not read do not exist for them
    result = challenge_service.vote(
        db,
        workspace_id=member.workspace_id,
        challenge_id=challenge_id,
        entry_id=entry_id,
        customer_id=member.customer_id,
        device_id=mweb.device_id(request),
    )
    db.commit()
    return VoteOut(
        entry_id=result.entry_id,
        already_voted=result.already_voted,
        entry_votes=result.entry_votes,
        votes_left=result.votes_left,
    )


@api.get("/{challenge_id}/winners", response_model=list[MemberEntryOut])
def winners(
    challenge_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> list[MemberEntryOut]:
    """The winners in rank order, once results are published."""
    challenge = visible_challenge(db, member.workspace_id, challenge_id)
    return winners_out(db, challenge, member.workspace_slug, member.customer_id)


# --- H5 page ------------------------------------------------------------------------------------


@router.get("/m/{ws_slug}/challenges/{challenge_id}", response_class=HTMLResponse)
def challenge_page(
    ws_slug: str, challenge_id: DbId, request: Request, order: str = "votes", db: Session = Depends(get_db)
) -> HTMLResponse:
    """Rules, my entry (or how to enter), the gallery with vote buttons, and the winners once published."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    cid = member.customer_id if member else None
    try:
        challenge = visible_challenge(db, ws.id, challenge_id)
    except ShequnError as exc:
        return mweb.render(
            request,
            "m_message.html",
            workspace=ws,
            member=member,
            status=exc.status_code,
            title_key="challenge.m.title",
            message=exc.message(ws.locale or "zh-CN"),
        )
    order = order if order in ("votes", "newest") else "votes"
    visible = can_see_entries(db, challenge, cid)
    cards = gallery(db, challenge, ws.slug, cid, order) if visible else []
    mine = challenge_service.entries_of(db, challenge=challenge, customer_id=cid) if cid else []
    now = utcnow()
    can_enter = bool(cid) and challenge_service.entry_open(challenge, now)
    eligible = challenge_service.eligible_posts(db, challenge=challenge, customer_id=cid) if can_enter and cid else []
    db.commit()
    return mweb.render(
        request,
        "challenge.html",
        workspace=ws,
        member=member,
        c=challenge_out(db, challenge, cid),
        cards=cards,
        visible=visible,
        order=order,
        mine=mine,
        eligible=eligible,
        can_enter=can_enter,
        voting=challenge_service.voting_open(challenge, now),
        winners=winners_out(db, challenge, ws.slug, cid),
    )
