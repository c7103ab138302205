"""Member activity: last_active_at, the per-community daily counters and the audience event feed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community.membership import get_community
from shequn.community.models import CommunityActivityDaily, CommunityMember
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed
from shequn.identity import service as identity_service

EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class ActivityIn:
    """One thing a member did in a community (kind: post, answer, review, checkin …) at a time."""

    community_id: int
    customer_id: int
    kind: str
    at: datetime


def local_day(at: datetime, tz: ZoneInfo | None) -> int:
    """Days since 1970-01-01 of the local date of at in tz."""
    return ((at.astimezone(tz) if tz else at).date() - EPOCH).days


def record_activity(
    session: Session, *, workspace_id: int, community_id: int, customer_id: int, kind: str, at: datetime | None = None
) -> None:
    """Mark the member active and count the activity (community health + audience event community.<kind>)."""
    get_community(session, workspace_id=workspace_id, community_id=community_id)  # 404 for a foreign id
    record_activities(
        session, workspace_id=workspace_id, items=[ActivityIn(community_id, customer_id, kind, at or utcnow())]
    )


def record_activities(session: Session, *, workspace_id: int, items: Sequence[ActivityIn]) -> None:
    """Record many activities at once (demo loads, imports): summed per member, kind and day, then upserted.

    The community counters count the workspace's local days (what operators call "a day"); the audience
    feature table keeps its own UTC days.
    """
    counts: dict[tuple[int, int, str, int], int] = defaultdict(int)
    events: dict[tuple[int, str, int], int] = defaultdict(int)
    latest: dict[tuple[int, int], datetime] = {}
    tz = ZoneInfo(identity_service.workspace_timezone(session, workspace_id)) if items else None
    for item in items:
        if not item.kind or len(item.kind) > 16:
            raise ValidationFailed(details=[{"field": "kind", "message": "1 to 16 characters"}])
        counts[(item.community_id, item.customer_id, item.kind, local_day(item.at, tz))] += 1
        events[(item.customer_id, item.kind, audience_service.epoch_day(item.at))] += 1
        key = (item.community_id, item.customer_id)
        latest[key] = max(latest.get(key, item.at), item.at)
    if not counts:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(CommunityActivityDaily)
    # ON CONFLICT adds to the day's counter, so concurrent posts never lose a count.
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "customer_id", "kind", "day"],
        set_={"count": CommunityActivityDaily.count + stmt.excluded.count},
    )
    session.execute(
        stmt,
        [
            {"workspace_id": workspace_id, "community_id": c, "customer_id": p, "kind": k, "day": d, "count": n}
            for (c, p, k, d), n in counts.items()
        ],
    )
    for (community_id, customer_id), at in latest.items():
        session.execute(
            update(CommunityMember)
            .where(
                CommunityMember.workspace_id == workspace_id,
                CommunityMember.community_id == community_id,
                CommunityMember.customer_id == customer_id,
                (CommunityMember.last_active_at.is_(None)) | (CommunityMember.last_active_at < at),
            )
            .values(last_active_at=at)
            .execution_options(synchronize_session="fetch")
        )
    audience_service.add_activity(
        session,
        workspace_id=workspace_id,
        rows=[
            audience_service.ActivityRow(p, "event", f"community.{k}", d, n, 0) for (_, p, k, d), n in counts.items()
        ],
    )
    session.flush()
