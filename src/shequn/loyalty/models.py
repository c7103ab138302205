"""Tables of loyalty: the points ledger and balances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, UTCDateTime


class PointsEntry(Base):
    """One movement of a customer's points; (workspace, customer, reason, ref) makes every movement happen once."""

    __tablename__ = "loyalty_points_entries"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "customer_id", "reason", "ref", name="uq_loyalty_points_entries_ws_customer_reason_ref"
        ),
        Index("ix_loyalty_points_entries_ws_customer_id", "workspace_id", "customer_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(BigInteger)  # + earned, − spent
    reason: Mapped[str] = mapped_column(String(32))  # order | adjust | lottery_draw | lottery_prize | …
    ref: Mapped[str] = mapped_column(String(96))  # what caused it (order id, draw id, idempotency key)
    note: Mapped[str] = mapped_column(String(200), default="")
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsBalance(Base):
    """A customer's current points, moved only by conditional UPDATEs so it never goes below zero."""

    __tablename__ = "loyalty_points_balances"
    __table_args__ = (
        UniqueConstraint("workspace_id", "customer_id", name="uq_loyalty_points_balances_ws_customer"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_total: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_total: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
