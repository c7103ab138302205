"""Winners, prizes and results: top N by votes (or judges' score), ties broken by the earlier post then id."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.sqlutil import changed as changed_rows
from shequn.promotions.campaigns.budget import BudgetExhausted
from shequn.promotions.challenges.entries import get_entry, ranking, sync_entries
from shequn.promotions.challenges.errors import ChallengeBadTransition, DecideNotReady
from shequn.promotions.challenges.manage import get_challenge, phase
from shequn.promotions.challenges.models import Challenge, ChallengeEntry, ChallengeVote
from shequn.promotions.common import ActivitySummary, participations_by_day
from shequn.promotions.quiz import prizes


def decide_ready(challenge: Challenge, now: datetime) -> bool:
    """Voting has closed (vote mode), or the entry window has (judge mode)."""
    closes = challenge.vote_ends_at if challenge.mode == "vote" else challenge.entry_ends_at
    return challenge.status == "published" and now >= closes


def standings(session: Session, *, challenge: Challenge) -> list[ChallengeEntry]:
    """Active entries in ranking order (the order winners are taken from)."""
    order = "score" if challenge.mode == "judge" else "votes"
    return list(
        session.scalars(
            select(ChallengeEntry)
            .where(ChallengeEntry.challenge_id == challenge.id, ChallengeEntry.status == "active")
            .order_by(*ranking(order))
        )
    )


def pick_winners(challenge: Challenge, ranked: list[ChallengeEntry]) -> list[ChallengeEntry]:
    """The first winners_cap eligible entries, one win per member (their best-placed entry)."""
    out: list[ChallengeEntry] = []
    seen: set[int] = set()
    for entry in ranked:
        eligible = entry.score is not None if challenge.mode == "judge" else entry.votes_count > 0
        if not eligible or entry.customer_id in seen:
            continue
        seen.add(entry.customer_id)
        out.append(entry)
        if len(out) >= challenge.winners_cap:
            break
    return out


def decide(
    session: Session, *, workspace_id: int, challenge_id: int, now: datetime | None = None
) -> list[ChallengeEntry]:
    """Decide the winners once (after the close) and give their prizes; the winners in rank order."""
    now = now or utcnow()
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if not decide_ready(challenge, now):
        raise DecideNotReady(status=challenge.status)
    sync_entries(session, challenge=challenge, now=now)  # the last word of moderation counts
    if not changed_rows(
        session,
        update(Challenge)
        .where(Challenge.id == challenge.id, Challenge.status == "published")
        .values(status="decided", decided_at=now, updated_at=now),
    ):
        raise DecideNotReady(status="decided")
    session.refresh(challenge)
    winners = pick_winners(challenge, standings(session, challenge=challenge))
    spec = prizes.PrizeSpec.of(challenge)
    for rank, entry in enumerate(winners, start=1):
        entry.win_rank, entry.won = rank, True
        _award(session, challenge, entry, spec)
    session.flush()
    return winners


def _award(session: Session, challenge: Challenge, entry: ChallengeEntry, spec: prizes.PrizeSpec) -> None:
    try:
        with session.begin_nested():
            grant = prizes.grant_prize(
                session,
                workspace_id=challenge.workspace_id,
                spec=spec,
                customer_id=entry.customer_id,
                source="challenge",
                source_ref=f"{challenge.id}:{entry.id}",
            )
    except ShequnError as exc:  # the rank stands; the prize could not be given
        entry.prize_status = "no_budget" if isinstance(exc, BudgetExhausted) else "failed"
        return
    entry.prize_status, entry.prize_ref, entry.prize_cost_fen = grant.status, grant.ref, grant.cost_fen


def publish_results(session: Session, *, workspace_id: int, challenge_id: int) -> Challenge:
    """Show the decided winners to members."""
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    if challenge.status != "decided":
        raise ChallengeBadTransition(status=challenge.status)
    if challenge.results_published_at is None:
        challenge.results_published_at = utcnow()
        session.flush()
    return challenge


def winners(session: Session, *, challenge: Challenge) -> list[ChallengeEntry]:
    """The decided winners in rank order."""
    return list(
        session.scalars(
            select(ChallengeEntry)
            .where(ChallengeEntry.challenge_id == challenge.id, ChallengeEntry.won.is_(True))
            .order_by(ChallengeEntry.win_rank)
        )
    )


def ship(session: Session, *, workspace_id: int, challenge_id: int, entry_id: int) -> ChallengeEntry:
    """Move a physical prize one step: to_ship → shipped → delivered."""
    challenge = get_challenge(session, workspace_id=workspace_id, challenge_id=challenge_id)
    entry = get_entry(session, challenge=challenge, entry_id=entry_id, active=False)
    prizes.advance_shipping(session, entry)
    return entry


def votes_over_time(session: Session, *, challenge: Challenge, buckets: int = 24) -> list[tuple[datetime, int]]:
    """Votes per slice of the voting window (buckets equal slices), for the chart."""
    start, end = challenge.vote_starts_at, challenge.vote_ends_at
    span = max((end - start).total_seconds(), 1.0)
    width = span / buckets
    counts = [0] * buckets
    # One pass over the vote times: a challenge's votes are thousands, not millions, and this stays portable.
    for (at,) in session.execute(select(ChallengeVote.created_at).where(ChallengeVote.challenge_id == challenge.id)):
        i = int((at - start).total_seconds() // width)
        counts[max(0, min(buckets - 1, i))] += 1
    return [(start + timedelta(seconds=width * i), counts[i]) for i in range(buckets)]


def summarize(session: Session, *, workspace_id: int, campaign_id: int) -> list[ActivitySummary]:
    """The campaign's challenges for the campaign page."""
    out = []
    rows = session.scalars(
        select(Challenge)
        .where(Challenge.workspace_id == workspace_id, Challenge.campaign_id == campaign_id)
        .order_by(Challenge.id)
    )
    for c in rows:
        authors, won, cost = session.execute(
            select(
                func.count(func.distinct(ChallengeEntry.customer_id)),
                func.count(ChallengeEntry.id).filter(ChallengeEntry.won.is_(True)),
                func.coalesce(func.sum(ChallengeEntry.prize_cost_fen), 0),
            ).where(ChallengeEntry.challenge_id == c.id)
        ).one()
        out.append(
            ActivitySummary(
                kind="challenge",
                id=c.id,
                name=c.name,
                status=phase(c),
                starts_at=c.entry_starts_at,
                ends_at=c.vote_ends_at,
                participants=int(authors or 0),
                actions=c.entries_count,
                wins=int(won or 0),
                cost_fen=int(cost or 0),
                console_url=f"/challenges/{c.id}",
                extra={
                    "votes": c.votes_count,
                    **participations_by_day(
                        session, workspace_id, ChallengeEntry.created_at, [ChallengeEntry.challenge_id == c.id]
                    ),
                },
            )
        )
    return out
