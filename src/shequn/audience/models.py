"""Audience tables: customers (with their feature columns), identities, merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
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
