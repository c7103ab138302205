"""Reminders at T-24h and T-1h: recorded once per registration and kind, then handed to channels by signal."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shequn.community.gatherings.models import Gathering, GatheringRegistration, GatheringReminder
from shequn.core.clock import utcnow
from shequn.core.signals import send_on_commit
from shequn.core.sqlutil import changed

# kind → (window opens before the start, window closes before the start). A registration made after a
# window closed skips that reminder: someone registering 30 minutes ahead gets neither "tomorrow" nor "in 1 hour".
WINDOWS = {"24h": (timedelta(hours=24), timedelta(hours=1)), "1h": (timedelta(hours=1), timedelta(0))}


def _insert(session: Session) -> type:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert  # type: ignore[return-value]


def record_due_reminders(session: Session, *, now: datetime | None = None) -> int:
    """Record every reminder that is due now (all workspaces), each exactly once; returns how many are new."""
    now = now or utcnow()
    created = 0
    for kind, (opens, closes) in WINDOWS.items():
        gatherings = session.execute(
            select(Gathering.id, Gathering.workspace_id, Gathering.community_id).where(
                Gathering.status == "published",
                Gathering.starts_at > now + closes,
                Gathering.starts_at <= now + opens,
            )
        ).all()
        for gid, ws, community_id in gatherings:
            created += _record(session, kind=kind, gathering_id=gid, workspace_id=ws, community_id=community_id)
    return created


def _record(session: Session, *, kind: str, gathering_id: int, workspace_id: int, community_id: int | None) -> int:
    """Insert the missing reminders of one gathering; the unique key makes a rerun (or a twin job) a no-op."""
    targets = session.execute(
        select(GatheringRegistration.id, GatheringRegistration.customer_id).where(
            GatheringRegistration.gathering_id == gathering_id,
            GatheringRegistration.status == "confirmed",
            ~select(GatheringReminder.id)
            .where(GatheringReminder.registration_id == GatheringRegistration.id, GatheringReminder.kind == kind)
            .exists(),
        )
    ).all()
    if not targets:
        return 0
    now = utcnow()
    stmt = (
        _insert(session)(GatheringReminder)
        .values(
            [
                {
                    "workspace_id": workspace_id,
                    "gathering_id": gathering_id,
                    "registration_id": rid,
                    "customer_id": cid,
                    "kind": kind,
                    "status": "due",
                    "created_at": now,
                }
                for rid, cid in targets
            ]
        )
        .on_conflict_do_nothing(index_elements=["registration_id", "kind"])
        .returning(GatheringReminder.id, GatheringReminder.registration_id, GatheringReminder.customer_id)
    )
    inserted = session.execute(stmt).all()
    for reminder_id, rid, cid in inserted:
        send_on_commit(
            session,
            "gathering.reminder_due",
            workspace_id,
            reminder_id=reminder_id,
            gathering_id=gathering_id,
            registration_id=rid,
            customer_id=cid,
            community_id=community_id,
            kind=kind,
        )
    return len(inserted)


def mark_reminder(session: Session, *, workspace_id: int, reminder_id: int, status: str) -> bool:
    """A channel reports a delivery ("sent") or a failure ("failed"); False if no such reminder."""
    if status not in ("sent", "failed"):
        raise ValueError(f"bad reminder status {status!r}")
    done = changed(
        session,
        update(GatheringReminder)
        .where(GatheringReminder.id == reminder_id, GatheringReminder.workspace_id == workspace_id)
        .values(status=status, delivered_at=utcnow() if status == "sent" else None),
    )
    return bool(done)
