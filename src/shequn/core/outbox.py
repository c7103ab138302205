"""Outbox: a durable queue of messages to members (coupon deliveries, reminders) for the channels domain.

A message is written in the same transaction as the fact it announces, so a committed coupon always has
its delivery message and a rolled-back one never does. The dedupe key makes enqueueing retry-safe: a rerun
of a fan-out or a redelivered job enqueues nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, cast, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import ColumnElement, Select

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, UTCDateTime

STATUSES = ("queued", "sent", "failed")
ID_WIDTH = 12  # ids in keys are zero-padded to this width


def padded_id(session: Session, expr: Any) -> ColumnElement[str]:
    """An integer id as fixed-width text: keys built from ascending ids then sort ascending too, so a bulk insert
    appends to the unique index instead of scattering ('…:1000000' would sort before '…:2')."""
    if session.get_bind().dialect.name == "postgresql":
        return func.lpad(cast(expr, String), ID_WIDTH, "0")
    return func.printf(f"%0{ID_WIDTH}d", expr)


class OutboxMessage(Base):
    """One message to one member on one channel; the channels domain delivers and marks it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        # Delivery workers read the queue in order. (No per-customer index yet: it would cost every fan-out
        # a million index writes for a lookup no reader makes; the channels domain adds what it reads by.)
        Index("ix_outbox_messages_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Plain ids: a queue row written a million at a time pays no foreign-key check per row.
    workspace_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int | None] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(16), default="h5")  # h5 | sms | wecom | email ...
    kind: Mapped[str] = mapped_column(String(40))  # e.g. coupon.granted, flash.reminder
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(8), default="queued")  # queued | sent | failed
    dedupe_key: Mapped[str] = mapped_column(String(160))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _insert(session: Session) -> Any:
    """An INSERT that skips rows whose dedupe key is already queued, in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(OutboxMessage)
    return sqlite.insert(OutboxMessage)


def enqueue_message(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int | None,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str,
    channel: str = "h5",
) -> bool:
    """Queue one message; False when a message with this dedupe key is already queued."""
    n = enqueue_messages(
        session,
        workspace_id=workspace_id,
        messages=[(customer_id, kind, payload, dedupe_key)],
        channel=channel,
    )
    return n == 1


def enqueue_messages(
    session: Session,
    *,
    workspace_id: int,
    messages: Sequence[tuple[int | None, str, dict[str, Any], str]],
    channel: str = "h5",
) -> int:
    """Queue many (customer_id, kind, payload, dedupe_key) messages in one statement; returns how many were new."""
    if not messages:
        return 0
    now = utcnow()
    rows = [
        {
            "workspace_id": workspace_id,
            "customer_id": customer_id,
            "channel": channel,
            "kind": kind,
            "payload": payload,
            "status": "queued",
            "dedupe_key": key,
            "attempts": 0,
            "error": "",
            "created_at": now,
        }
        for customer_id, kind, payload, key in messages
    ]
    stmt = (
        _insert(session)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["workspace_id", "dedupe_key"])
        .returning(OutboxMessage.id)
    )
    return len(session.execute(stmt).all())


def enqueue_select(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Select[Any],
    kind: str,
    payload: dict[str, Any],
    dedupe_prefix: str,
    channel: str = "h5",
) -> int:
    """Queue one message per customer id the select yields (set-based, for fan-outs); returns how many were new.

    The dedupe key is dedupe_prefix followed by the zero-padded customer id (padded_id), so rerunning the same
    fan-out adds nothing.
    The select must have a WHERE clause (SQLite needs one before ON CONFLICT in INSERT … SELECT).
    """
    sub = customer_ids.subquery()
    cid: ColumnElement[Any] = next(iter(sub.c))
    now = utcnow()
    source = select(
        literal(workspace_id),
        cid,
        literal(channel),
        literal(kind),
        literal(payload, JSONType),
        literal("queued"),
        literal(dedupe_prefix) + padded_id(session, cid),
        literal(0),
        literal(""),
        literal(now, UTCDateTime()),
    ).where(cid.is_not(None))
    cols = [
        "workspace_id",
        "customer_id",
        "channel",
        "kind",
        "payload",
        "status",
        "dedupe_key",
        "attempts",
        "error",
        "created_at",
    ]
    stmt = (
        _insert(session)
        .from_select(cols, source)
        .on_conflict_do_nothing(index_elements=["workspace_id", "dedupe_key"])
        .execution_options(preserve_rowcount=True)  # SQLAlchemy drops an INSERT's rowcount otherwise
    )
    result = session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def list_queued(session: Session, *, workspace_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
    """The oldest queued messages (for a delivery worker), optionally of one workspace."""
    q = select(OutboxMessage).where(OutboxMessage.status == "queued")
    if workspace_id is not None:
        q = q.where(OutboxMessage.workspace_id == workspace_id)
    return list(session.scalars(q.order_by(OutboxMessage.id).limit(limit)))


def mark_sent(session: Session, *, message_id: int) -> None:
    """Record a delivery (called by the channel adapter)."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="sent", sent_at=utcnow(), attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )


def mark_failed(session: Session, *, message_id: int, error: str) -> None:
    """Record a failed delivery attempt."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="failed", error=error[:2000], attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )


def count_messages(session: Session, *, workspace_id: int, dedupe_prefix: str) -> dict[str, int]:
    """Messages per status whose dedupe key starts with a prefix (a fan-out's deliveries)."""
    rows = session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.workspace_id == workspace_id, OutboxMessage.dedupe_key.startswith(dedupe_prefix))
        .group_by(OutboxMessage.status)
    )
    return {str(s): int(n) for s, n in rows}
