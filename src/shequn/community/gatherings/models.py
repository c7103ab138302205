"""Gathering tables: gatherings, registrations (with waitlist), check-ins, reminders and feedback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, UTCDateTime


class Gathering(Base):
    """An online (live stream, salon) or offline (meetup) event people register for and attend."""

    __tablename__ = "gatherings"
    __table_args__ = (
        Index("ix_gatherings_ws_starts", "workspace_id", "starts_at"),
        Index("ix_gatherings_ws_status_starts", "workspace_id", "status", "starts_at"),
        # The reminder job looks across workspaces for published gatherings starting soon.
        Index("ix_gatherings_status_starts", "status", "starts_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # Plain id (no FK): the community may be archived or deleted while its past gatherings stay.
    community_id: Mapped[int | None] = mapped_column(BigId, index=True)
    mode: Mapped[str] = mapped_column(String(8), default="offline")  # online | offline
    format: Mapped[str] = mapped_column(String(12), default="meetup")  # live | salon | meetup
    visibility: Mapped[str] = mapped_column(String(8), default="public")  # public | members
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    agenda: Mapped[str] = mapped_column(Text, default="")
    join_url: Mapped[str] = mapped_column(String(500), default="")
    venue: Mapped[str] = mapped_column(String(120), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    cover_url: Mapped[str] = mapped_column(String(500), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registration_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Check-in is open from this many minutes before the start until the end.
    checkin_opens_minutes: Mapped[int] = mapped_column(Integer, default=60)
    capacity: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Counters moved only by conditional UPDATEs, so capacity holds under concurrent registrations.
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    waitlist_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | published | cancelled | finished
    cancel_reason: Mapped[str] = mapped_column(String(255), default="")
    created_by: Mapped[int | None] = mapped_column(BigId)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GatheringRegistration(Base):
    """One customer's place at a gathering: confirmed, waitlisted or cancelled, with a check-in code."""

    __tablename__ = "gathering_registrations"
    __table_args__ = (
        UniqueConstraint("gathering_id", "customer_id"),
        UniqueConstraint("gathering_id", "code"),
        # Waitlist promotion reads the queue in order.
        Index("ix_gathering_registrations_queue", "gathering_id", "status", "queued_at", "id"),
        Index("ix_gathering_registrations_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    gathering_id: Mapped[int] = mapped_column(ForeignKey("gatherings.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))  # confirmed | waitlisted | cancelled
    code: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(12), default="h5")  # h5 | console | api | demo
    # Contact snapshot at registration (masked only): the list and the export never join other domains.
    name: Mapped[str] = mapped_column(String(120), default="")
    phone_masked: Mapped[str] = mapped_column(String(20), default="")
    device_id: Mapped[str] = mapped_column(String(64), default="")
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str] = mapped_column(String(12), default="")  # member | operator | system
    late_cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GatheringCheckin(Base):
    """The one check-in of a registration (the unique key is what makes a reused code harmless)."""

    __tablename__ = "gathering_checkins"
    __table_args__ = (
        UniqueConstraint("registration_id"),
        Index("ix_gathering_checkins_gathering", "gathering_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    gathering_id: Mapped[int] = mapped_column(ForeignKey("gatherings.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("gathering_registrations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    method: Mapped[str] = mapped_column(String(8))  # code | qr | manual
    operator_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GatheringReminder(Base):
    """A reminder recorded for delivery (T-24h, T-1h); unique per registration and kind."""

    __tablename__ = "gathering_reminders"
    __table_args__ = (
        UniqueConstraint("registration_id", "kind"),
        Index("ix_gathering_reminders_gathering", "gathering_id", "kind"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    gathering_id: Mapped[int] = mapped_column(ForeignKey("gatherings.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("gathering_registrations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(8))  # 24h | 1h
    # "due" until a channel reports delivery ("sent") or failure ("failed").
    status: Mapped[str] = mapped_column(String(8), default="due")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GatheringFeedback(Base):
    """An attendee's rating (1–5) and comment after the gathering; one per registration."""

    __tablename__ = "gathering_feedback"
    __table_args__ = (
        UniqueConstraint("registration_id"),
        Index("ix_gathering_feedback_gathering", "gathering_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    gathering_id: Mapped[int] = mapped_column(ForeignKey("gatherings.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("gathering_registrations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
