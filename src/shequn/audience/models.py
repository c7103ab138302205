"""Audience tables: customers (with their feature columns), identities, merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, Money, UTCDateTime


class Customer(Base):
    """One person across platforms, with purchase facts and social reach kept current by imports."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_ws_last_order", "workspace_id", "last_order_at"),
        Index("ix_customers_ws_spent", "workspace_id", "total_spent"),
        # Covering indexes: the dashboard's counts and city breakdown read no table rows.
        Index("ix_customers_ws_city", "workspace_id", "city", "merged_into_id"),
        Index("ix_customers_ws_live_orders", "workspace_id", "merged_into_id", "orders_count"),
        Index("ix_customers_ws_phone", "workspace_id", "phone_hash"),
        Index("ix_customers_merged_into", "merged_into_id"),
        Index("ix_customers_ws_rfm", "workspace_id", "rfm_group"),
        # No index on lifecycle: the incremental segment job rewrites stages of thousands of customers, and an
        # indexed column makes each of those a non-HOT update through every index (decision 0008).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120), default="")
    gender: Mapped[str] = mapped_column(String(8), default="")
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    # Contact phone (possibly unverified): only a keyed hash and a masked display form are stored.
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(20), default="")
    email_masked: Mapped[str] = mapped_column(String(120), default="")
    # Purchase facts (net of refunds, paid-like orders only), maintained by commerce.
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[int] = mapped_column(Money, default=0)
    avg_order_value: Mapped[int] = mapped_column(Money, default=0)
    top_categories: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # Full spend per category (fen), so new orders update the facts without re-reading old orders.
    category_spend: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    # Social reach.
    platforms: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    followers_total: Mapped[int] = mapped_column(Integer, default=0)
    influence: Mapped[int] = mapped_column(Integer, default=0)
    # RFM (audience.rfm): quintile scores 1–5 within the workspace, the classic group, when computed.
    r_score: Mapped[int | None] = mapped_column(Integer)
    f_score: Mapped[int | None] = mapped_column(Integer)
    m_score: Mapped[int | None] = mapped_column(Integer)
    rfm_group: Mapped[str | None] = mapped_column(String(24))
    # Lifecycle stage (new, active, at_risk, lapsed, won_back) from purchase dates; see audience.lifecycle.
    lifecycle: Mapped[str | None] = mapped_column(String(12))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerIdentity(Base):
    """A platform identity of a customer; match_key is what merging compares."""

    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("workspace_id", "match_key"),
        Index("ix_customer_identities_ws_customer", "workspace_id", "customer_id"),
        Index("ix_customer_identities_ws_value", "workspace_id", "value"),  # operator search by any id
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))
    match_key: Mapped[str] = mapped_column(String(320))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    followers: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerMerge(Base):
    """A record that loser was folded into winner, and by which shared identity."""

    __tablename__ = "customer_merges"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    winner_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    loser_id: Mapped[int] = mapped_column(BigId)
    match_key: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tag(Base):
    """A label on customers: manual, computed from a rule, an inferred interest, or a lifecycle stage."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="manual")  # manual | rule | interest | lifecycle
    color: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    # Rule tags: the rule tree (same language as segments). Interest tags: the category they track.
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    interest_key: Mapped[str] = mapped_column(String(64), default="")
    customers_count: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerTag(Base):
    """A tag on a customer; weight is 1 for manual/rule tags and the decayed interest score for interests."""

    __tablename__ = "customer_tags"
    __table_args__ = (Index("ix_customer_tags_ws_tag", "workspace_id", "tag_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerActivity(Base):
    """The per-customer feature table over time: counts and amounts per day and kind.

    kind is order | category | product | event; ref is '' for orders, the category, the product id or
    the event name. Higher domains feed it (commerce on orders, analytics on tracked events), so segment
    rules never read their tables. day is days since 1970-01-01 (UTC).
    """

    __tablename__ = "customer_activity"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "ref", "day"),
        Index("ix_customer_activity_ws_kind", "workspace_id", "kind", "ref", "day"),
        # Covering on PostgreSQL: a few customers' rows (from a day on) come from the index alone, not from
        # rows scattered over the heap (the segment snapshot's catch-up).
        Index(
            "ix_customer_activity_customer_day",
            "customer_id",
            "day",
            postgresql_include=["kind", "ref", "count", "amount"],
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64), default="")
    day: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int] = mapped_column(Money, default=0)


class CustomerChange(Base):
    """Change log: a customer's features changed; segment refresh and engine snapshots read past a cursor."""

    __tablename__ = "customer_changes"
    __table_args__ = (Index("ix_customer_changes_ws_id", "workspace_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    # What changed (activity.PURCHASES … bits); 0 = not said, read as everything.
    kinds: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # The earliest activity day the change touched; NULL = any day (or no activity).
    min_day: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AudienceSettings(Base):
    """Per-workspace audience settings and the incremental-refresh bookkeeping."""

    __tablename__ = "audience_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    rfm_window_days: Mapped[int] = mapped_column(Integer, default=365)
    interest_half_life_days: Mapped[int] = mapped_column(Integer, default=90)
    lifecycle_new_days: Mapped[int] = mapped_column(Integer, default=30)
    lifecycle_active_days: Mapped[int] = mapped_column(Integer, default=90)
    lifecycle_lapsed_days: Mapped[int] = mapped_column(Integer, default=180)
    # Bumped by whole-workspace changes (RFM, lifecycle): cached snapshots rebuild from scratch.
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    # The last customer_changes id the incremental segment refresh has applied.
    changes_cursor: Mapped[int] = mapped_column(BigId, default=0)


class Segment(Base):
    """A saved audience: dynamic (rule kept current) or static (a snapshot of members)."""

    __tablename__ = "segments"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(8), default="dynamic")  # dynamic | static
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    members_count: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_ms: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentMember(Base):
    """A customer currently in a segment."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_ws_customer", "workspace_id", "customer_id"),)

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentChange(Base):
    """Membership history: a customer entered or left a segment (for analytics and campaign triggers)."""

    __tablename__ = "segment_changes"
    __table_args__ = (
        Index("ix_segment_changes_segment_at", "segment_id", "at"),
        Index("ix_segment_changes_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    entered: Mapped[bool] = mapped_column(Boolean)
    cause: Mapped[str] = mapped_column(String(16))  # full | incremental | snapshot
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentSize(Base):
    """The segment's size after each refresh (the size-over-time chart)."""

    __tablename__ = "segment_sizes"
    __table_args__ = (Index("ix_segment_sizes_segment_at", "segment_id", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    size: Mapped[int] = mapped_column(Integer)


class MemberSession(Base):
    """A member's signed-in H5 session: only the token's hash is stored, like operators' sessions."""

    __tablename__ = "member_sessions"
    __table_args__ = (Index("ix_member_sessions_customer", "customer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The sign-in link's nonce: unique, so a link signs in once (a forwarded link is dead after first use).
    ticket_nonce: Mapped[str | None] = mapped_column(String(32), unique=True)
    device_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
