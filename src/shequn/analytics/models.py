"""Analytics tables: the raw tracked events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, UTCDateTime


class Event(Base):
    """One tracked event (a share, a page view, a coupon claim …) as a client sent it."""

    __tablename__ = "events"
    __table_args__ = (
        # event_key is the client's event id: a retried batch inserts nothing twice.
        UniqueConstraint("workspace_id", "event_key"),
        Index("ix_events_ws_name_at", "workspace_id", "name", "occurred_at"),
        Index("ix_events_customer", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # NULL when the sender named nobody, or an identity shequn does not know (yet).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    props: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    event_key: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
