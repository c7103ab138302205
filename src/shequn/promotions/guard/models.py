"""Tables of promotions.guard: rate-limit counters, sightings, flagged events, blacklist, limit overrides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, UTCDateTime


class GuardCounter(Base):
    """One rate-limit key on the database path: its GCRA theoretical arrival time in epoch microseconds.

    Keys embed the workspace id (like idempotency records, the table is infrastructure keyed by string);
    a row whose tat_us is in the past means the same as no row, and the sweep job deletes it.
    """

    __tablename__ = "promo_guard_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat_us: Mapped[int] = mapped_column(BigInteger, index=True)
    window_us: Mapped[int] = mapped_column(BigInteger, default=0)  # how far tat may lead now (limit × interval)


class GuardSighting(Base):
    """A customer seen acting from a device or IP (the distinct-customers heuristic on the database path)."""

    __tablename__ = "promo_guard_sightings"
    __table_args__ = (
        UniqueConstraint("workspace_id", "subject", "customer_id"),
        Index("ix_promo_guard_sightings_recent", "workspace_id", "subject", "seen_us"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(120))  # "device:<id>" | "ip:<addr>"
    customer_id: Mapped[int] = mapped_column(BigId)
    seen_us: Mapped[int] = mapped_column(BigInteger)


class GuardFlag(Base):
    """Refused member actions for review, one row per (action, rule, subject, minute) with a count."""

    __tablename__ = "promo_guard_flags"
    __table_args__ = (
        UniqueConstraint("workspace_id", "action", "rule", "subject", "bucket_at"),
        Index("ix_promo_guard_flags_ws_bucket", "workspace_id", "bucket_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(16))  # blocked | rate_limited | too_fast | guessing
    rule: Mapped[str] = mapped_column(String(32))  # which limit or heuristic tripped
    subject: Mapped[str] = mapped_column(String(120))  # the key part that tripped, e.g. "device:<id>"
    customer_id: Mapped[int | None] = mapped_column(BigId)
    device_id: Mapped[str] = mapped_column(String(64), default="")
    phone_hash: Mapped[str] = mapped_column(String(128), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    bucket_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the minute the refusals fell in
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuardBlock(Base):
    """A blacklist entry: a customer, device, phone hash or IP refused every member action until `until`."""

    __tablename__ = "promo_guard_blocks"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "value"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # customer | device | phone_hash | ip
    value: Mapped[str] = mapped_column(String(128))
    # What the console shows: a masked phone (138****5678) when the entry was made from a number, else "".
    label: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: until removed
    created_by: Mapped[int | None] = mapped_column(BigId)  # operator id (plain: operators may be deleted)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuardLimitOverride(Base):
    """A workspace's own value for one rule of one action (limit 0 switches the rule off)."""

    __tablename__ = "promo_guard_limits"
    __table_args__ = (UniqueConstraint("workspace_id", "action", "rule"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))  # an action, or "*" for the cross-action heuristics
    rule: Mapped[str] = mapped_column(String(32))
    limit: Mapped[int] = mapped_column(Integer)
    window_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
