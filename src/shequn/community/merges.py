"""When audience folds one customer into another, their memberships, history, enforcements and activity follow.

Two memberships of the same community collapse into one: a removal wins (merging must not re-admit a
spammer), then a seat, then a pending request, then a left row; the dropped row's history moves over.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shequn.community.models import (
    Community,
    CommunityActivityDaily,
    CommunityEnforcement,
    CommunityMember,
    CommunityMemberChange,
    CommunityPostMark,
)

RANK = {"removed": 4, "active": 3, "muted": 3, "pending": 2, "left": 1}
SEATED = ("active", "muted")


def _fold_member(session: Session, loser_row: CommunityMember, winner_row: CommunityMember | None, winner: int) -> None:
    """Give the winner one membership of this community, keeping the stronger row and all history."""
    if winner_row is None:
        loser_row.customer_id = winner
        return
    keep, drop = (
        (loser_row, winner_row) if RANK[loser_row.status] > RANK[winner_row.status] else (winner_row, loser_row)
    )
    session.execute(
        update(CommunityMemberChange).where(CommunityMemberChange.member_id == drop.id).values(member_id=keep.id)
    )
    session.execute(
        update(CommunityEnforcement).where(CommunityEnforcement.member_id == drop.id).values(member_id=keep.id)
    )
    keep.strikes = max(keep.strikes, drop.strikes)
    if keep.last_active_at is None or (drop.last_active_at and drop.last_active_at > keep.last_active_at):
        keep.last_active_at = drop.last_active_at
    if drop.status in SEATED:  # its seat goes: two seats became one, or the holder is removed under another id
        session.execute(
            update(Community)
            .where(Community.id == keep.community_id, Community.members_count > 0)
            .values(members_count=Community.members_count - 1)
        )
    session.delete(drop)
    session.flush()
    keep.customer_id = winner


def _fold_activity(session: Session, workspace_id: int, loser: int, winner: int) -> None:
    """Add the loser's day counters onto the winner's (same community, kind and day), then drop them."""
    rows = session.scalars(
        select(CommunityActivityDaily).where(
            CommunityActivityDaily.workspace_id == workspace_id, CommunityActivityDaily.customer_id == loser
        )
    ).all()
    for row in rows:
        target = session.scalar(
            select(CommunityActivityDaily).where(
                CommunityActivityDaily.community_id == row.community_id,
                CommunityActivityDaily.customer_id == winner,
                CommunityActivityDaily.kind == row.kind,
                CommunityActivityDaily.day == row.day,
            )
        )
        if target is None:
            row.customer_id = winner
        else:
            target.count += row.count
            session.delete(row)
    session.flush()


def move_on_merge(session: Session, workspace_id: int, pairs: list[tuple[int, int]]) -> None:
    """Audience merge hook: (loser, winner) pairs, inside the merging transaction."""
    for loser, winner in pairs:
        losers = session.scalars(
            select(CommunityMember).where(
                CommunityMember.workspace_id == workspace_id, CommunityMember.customer_id == loser
            )
        ).all()
        for row in losers:
            winner_row = session.scalar(
                select(CommunityMember).where(
                    CommunityMember.community_id == row.community_id, CommunityMember.customer_id == winner
                )
            )
            _fold_member(session, row, winner_row, winner)
        session.flush()
        for model in (CommunityMemberChange, CommunityEnforcement, CommunityPostMark):
            session.execute(
                update(model)
                .where(model.workspace_id == workspace_id, model.customer_id == loser)
                .values(customer_id=winner)
            )
        _fold_activity(session, workspace_id, loser, winner)
