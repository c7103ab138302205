"""Tables of promotions.campaigns: the campaign every activity may belong to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, Money, UTCDateTime


class Campaign(Base):
    """A marketing campaign: goal, dates, budget, target audience, channels, KPIs; activities point at it."""

    __tablename__ = "promo_campaigns"
    __table_args__ = (
        Index("ix_promo_campaigns_ws_starts", "workspace_id", "starts_at"),
        Index("ix_promo_campaigns_ws_status", "workspace_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    # conversion | acquisition | retention | awareness
    goal: Mapped[str] = mapped_column(String(24), default="conversion")
    description: Mapped[str] = mapped_column(Text, default="")
    # Stored lifecycle: draft | published | cancelled. What operators see (scheduled/running/ended) is derived
    # from the dates at read time (campaigns.manage.status_of), so no job has to move it when a date passes.
    status: Mapped[str] = mapped_column(String(12), default="draft")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    budget_fen: Mapped[int | None] = mapped_column(Money)  # None: no cap
    # Moved only by conditional UPDATEs (campaigns.budget), so concurrent claims never spend past the cap.
    spent_fen: Mapped[int] = mapped_column(Money, default=0, server_default="0")
    # Plain ids (no FK): a segment or community may be deleted while the campaign's history stays.
    target_segment_id: Mapped[int | None] = mapped_column(BigId)
    target_community_id: Mapped[int | None] = mapped_column(BigId)
    channels: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # e.g. ["wecom_group", "sms", "h5"]
    kpis: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # metric → target, e.g. {"gmv_fen": 5000000}
    # Orders whose attribution carries this utm_campaign count towards the campaign (the activity chart).
    utm_campaign: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
