"""Community health: members over time (from history), active rate, posts per day, top contributors.

Activity comes from community_activity_daily, written by record_activity: the audience feature table
is per customer, not per community, so it cannot say which group a post went to.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.errors import CustomerNotFound
from shequn.community import membership
from shequn.community.activity import EPOCH, local_day
from shequn.community.models import (
    CommunityActivityDaily,
    CommunityEnforcement,
    CommunityMember,
    CommunityMemberChange,
)
from shequn.core.clock import utcnow
from shequn.identity import service as identity_service


@dataclass
class Contributor:
    """A member and how much they did in the window."""

    customer_id: int
    name: str
    nickname: str
    count: int


@dataclass
class Health:
    """The health figures of one community."""

    members: int
    pending: int
    active_7d: int
    active_30d: int
    active_rate_7d: float
    active_rate_30d: float
    joined_30d: int
    left_30d: int
    enforcements_30d: int
    appeals_pending: int
    members_by_day: list[tuple[date, int]] = field(default_factory=list)
    posts_by_day: list[tuple[date, int]] = field(default_factory=list)
    activity_by_kind: dict[str, int] = field(default_factory=dict)
    top_contributors: list[Contributor] = field(default_factory=list)


def _active(session: Session, community_id: int, since_day: int) -> int:
    """Seated members with any activity since the day (a member who left does not count)."""
    return int(
        session.scalar(
            select(func.count(func.distinct(CommunityActivityDaily.customer_id)))
            .join(
                CommunityMember,
                (CommunityMember.community_id == CommunityActivityDaily.community_id)
                & (CommunityMember.customer_id == CommunityActivityDaily.customer_id),
            )
            .where(
                CommunityActivityDaily.community_id == community_id,
                CommunityActivityDaily.day >= since_day,
                CommunityMember.status.in_(membership.SEATED),
            )
        )
        or 0
    )


def _members_by_day(
    session: Session, community_id: int, current: int, start: datetime, days: int, tz: ZoneInfo
) -> list[tuple[date, int]]:
    """Seated members at the end of each local day, walked back from today's count through the history."""
    deltas: dict[date, int] = defaultdict(int)
    rows = session.execute(
        select(
            CommunityMemberChange.created_at, CommunityMemberChange.from_status, CommunityMemberChange.to_status
        ).where(CommunityMemberChange.community_id == community_id, CommunityMemberChange.created_at >= start)
    )
    for at, before, after in rows:
        delta = int(after in membership.SEATED) - int(before in membership.SEATED)
        if delta:
            deltas[at.astimezone(tz).date()] += delta
    today = utcnow().astimezone(tz).date()
    out: list[tuple[date, int]] = []
    count = current
    for i in range(days):
        day = today - timedelta(days=i)
        out.append((day, count))
        count -= deltas.get(day, 0)
    out.reverse()
    return out


def community_health(session: Session, *, workspace_id: int, community_id: int, days: int = 30) -> Health:
    """The health view of one community over the last days (members, activity, contributors, moderation)."""
    community = membership.get_community(session, workspace_id=workspace_id, community_id=community_id)
    tz = ZoneInfo(identity_service.workspace_timezone(session, workspace_id))
    now = utcnow()
    today = local_day(now, tz)
    start = now - timedelta(days=days)
    members = community.members_count
    active_7d = _active(session, community_id, today - 6)
    active_30d = _active(session, community_id, today - 29)
    pending = session.scalar(
        select(func.count()).where(CommunityMember.community_id == community_id, CommunityMember.status == "pending")
    )
    moves = dict(
        session.execute(
            select(CommunityMemberChange.action, func.count())
            .where(CommunityMemberChange.community_id == community_id, CommunityMemberChange.created_at >= start)
            .group_by(CommunityMemberChange.action)
        ).all()
    )
    enforcements = session.scalar(
        select(func.count()).where(
            CommunityEnforcement.community_id == community_id, CommunityEnforcement.created_at >= start
        )
    )
    appeals = session.scalar(
        select(func.count()).where(
            CommunityEnforcement.community_id == community_id, CommunityEnforcement.appeal_status == "pending"
        )
    )
    posts = dict(
        session.execute(
            select(CommunityActivityDaily.day, func.sum(CommunityActivityDaily.count))
            .where(
                CommunityActivityDaily.community_id == community_id,
                CommunityActivityDaily.kind == "post",
                CommunityActivityDaily.day > today - days,
            )
            .group_by(CommunityActivityDaily.day)
        ).all()
    )
    kinds = dict(
        session.execute(
            select(CommunityActivityDaily.kind, func.sum(CommunityActivityDaily.count))
            .where(CommunityActivityDaily.community_id == community_id, CommunityActivityDaily.day > today - days)
            .group_by(CommunityActivityDaily.kind)
        ).all()
    )
    return Health(
        members=members,
        pending=int(pending or 0),
        active_7d=active_7d,
        active_30d=active_30d,
        active_rate_7d=round(active_7d / members, 4) if members else 0.0,
        active_rate_30d=round(active_30d / members, 4) if members else 0.0,
        joined_30d=sum(int(moves.get(a, 0)) for a in ("joined", "rejoined", "approved", "restored")),
        left_30d=sum(int(moves.get(a, 0)) for a in ("left", "removed")),
        enforcements_30d=int(enforcements or 0),
        appeals_pending=int(appeals or 0),
        members_by_day=_members_by_day(session, community_id, members, start, days, tz),
        posts_by_day=[(EPOCH + timedelta(days=d), int(posts.get(d, 0))) for d in range(today - days + 1, today + 1)],
        activity_by_kind={str(k): int(v) for k, v in kinds.items()},
        top_contributors=top_contributors(
            session, workspace_id=workspace_id, community_id=community_id, days=days, today=today
        ),
    )


def top_contributors(
    session: Session, *, workspace_id: int, community_id: int, days: int = 30, limit: int = 10, today: int | None = None
) -> list[Contributor]:
    """Members with the most activity (posts, answers, reviews, check-ins …) in the last days."""
    if today is None:
        today = local_day(utcnow(), ZoneInfo(identity_service.workspace_timezone(session, workspace_id)))
    total = func.sum(CommunityActivityDaily.count)
    rows = session.execute(
        select(CommunityActivityDaily.customer_id, total)
        .where(
            CommunityActivityDaily.workspace_id == workspace_id,
            CommunityActivityDaily.community_id == community_id,
            CommunityActivityDaily.day > today - days,
        )
        .group_by(CommunityActivityDaily.customer_id)
        .order_by(total.desc(), CommunityActivityDaily.customer_id)
        .limit(limit)
    ).all()
    nicknames = dict(
        session.execute(
            select(CommunityMember.customer_id, CommunityMember.nickname).where(
                CommunityMember.community_id == community_id,
                CommunityMember.customer_id.in_([r[0] for r in rows]),
            )
        ).all()
    )
    out = []
    for customer_id, count in rows:
        try:
            name = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id).name
        except CustomerNotFound:  # deleted since: keep the figure, drop the name
            name = ""
        out.append(Contributor(int(customer_id), name, nicknames.get(customer_id, ""), int(count)))
    return out
