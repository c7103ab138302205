"""Flagged (refused) member actions: recorded outside the caller's transaction, aggregated per minute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.guard.limits import dialect_insert, own_transaction
from shequn.promotions.guard.models import GuardFlag


@dataclass(frozen=True)
class Attempt:
    """Who attempted a member action (the plain values a check receives)."""

    workspace_id: int
    action: str
    customer_id: int | None
    device_id: str
    phone_hash: str
    ip: str


def record_flag(conn: Connection | None, attempt: Attempt, *, reason: str, rule: str, subject: str) -> None:
    """Count one refusal in its minute's row (an attacker's flood costs one row per minute, not per request)."""
    now = utcnow()
    bucket = now.replace(second=0, microsecond=0)
    t = GuardFlag.__table__
    with own_transaction(conn) as c:
        stmt = dialect_insert(c, t).values(
            workspace_id=attempt.workspace_id,
            action=attempt.action[:32],
            reason=reason,
            rule=rule,
            subject=subject[:120],
            customer_id=attempt.customer_id,
            device_id=attempt.device_id[:64],
            phone_hash=attempt.phone_hash[:128],
            ip=attempt.ip[:64],
            bucket_at=bucket,
            count=1,
            first_at=now,
            last_at=now,
        )
        c.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "action", "rule", "subject", "bucket_at"],
                set_={"count": t.c.count + 1, "last_at": now},
            )
        )


def list_flags(
    session: Session,
    *,
    workspace_id: int,
    action: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[GuardFlag], int]:
    """The workspace's flagged events, newest first, with the total."""
    where = [GuardFlag.workspace_id == workspace_id]
    if action:
        where.append(GuardFlag.action == action)
    if reason:
        where.append(GuardFlag.reason == reason)
    if since is not None:
        where.append(GuardFlag.bucket_at >= since)
    total = session.scalar(select(func.count()).select_from(GuardFlag).where(*where)) or 0
    rows = session.scalars(
        select(GuardFlag)
        .where(*where)
        .order_by(GuardFlag.last_at.desc(), GuardFlag.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


def hourly_counts(session: Session, *, workspace_id: int, hours: int = 24) -> dict[str, dict[datetime, int]]:
    """Refusals per action per hour over the last `hours` (hours without refusals are absent)."""
    since = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = session.execute(
        select(GuardFlag.action, GuardFlag.bucket_at, GuardFlag.count).where(
            GuardFlag.workspace_id == workspace_id, GuardFlag.bucket_at >= since
        )
    ).all()
    out: dict[str, dict[datetime, int]] = {}
    # Bucketing in Python keeps the query portable (no date_trunc on SQLite); at most 60 rows per subject-hour.
    for action, bucket, count in rows:
        hour = bucket.replace(minute=0)
        per = out.setdefault(action, {})
        per[hour] = per.get(hour, 0) + count
    return out


def purge_flags(session: Session, *, older_than_days: int = 90) -> int:
    """Delete flagged events older than the review horizon (every workspace); returns rows deleted."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = session.execute(delete(GuardFlag).where(GuardFlag.bucket_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
