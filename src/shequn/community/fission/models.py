"""Fission tables: invites and their uses, referrals (the tree), milestones, rewards, fraud flags, settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, UTCDateTime


class Invite(Base):
    """An invite link (and its QR code) into one community, optionally a member's personal link."""

    __tablename__ = "invites"
    __table_args__ = (
        # Codes are global: the mini-program scene and the short URL carry only the code.
        UniqueConstraint("code"),
        # At most one personal link per (community, member): "community_id:customer_id", NULL for others.
        UniqueConstraint("workspace_id", "personal_key"),
        CheckConstraint("uses >= 0", name="uses_non_negative"),
        CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="uses_within_max"),
        Index("ix_invites_ws_community", "workspace_id", "community_id"),
        Index("ix_invites_ws_inviter", "workspace_id", "inviter_customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(100), default="")
    inviter_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    personal_key: Mapped[str | None] = mapped_column(String(48))
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    opens: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pre_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | disabled (expired is derived)
    creator_device_id: Mapped[str] = mapped_column(String(64), default="")
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def effective_status(self, now: datetime) -> str:
        """active, disabled or expired (expiry is a fact of time, not a stored state)."""
        if self.status == "disabled":
            return "disabled"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class InviteUse(Base):
    """One customer's use of an invite: the unique key makes a retried join use the invite once."""

    __tablename__ = "invite_uses"
    __table_args__ = (
        UniqueConstraint("invite_id", "customer_id"),
        Index("ix_invite_uses_ws_inviter_time", "workspace_id", "inviter_customer_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    inviter_customer_id: Mapped[int | None] = mapped_column(BigId)
    device_id: Mapped[str] = mapped_column(String(64), default="")
    member_status: Mapped[str] = mapped_column(String(10), default="active")  # what the join gave: active|pending
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """Who brought whom into a community: one referrer per (community, referee), never a cycle."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("community_id", "referee_customer_id"),
        CheckConstraint("referee_customer_id <> inviter_customer_id", name="not_self"),
        CheckConstraint("depth >= 1", name="depth_positive"),
        Index("ix_referrals_ws_community_inviter", "workspace_id", "community_id", "inviter_customer_id"),
        Index("ix_referrals_ws_inviter", "workspace_id", "inviter_customer_id"),
        Index("ix_referrals_ws_created", "workspace_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    referee_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    inviter_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id", ondelete="SET NULL"))
    depth: Mapped[int] = mapped_column(Integer, default=1)  # 1 = brought by a root (an inviter nobody brought)
    root_customer_id: Mapped[int] = mapped_column(BigId)
    # "/root/…/inviter/": ancestors of the referee, so "is X an ancestor" is one LIKE, not a walk.
    path: Mapped[str] = mapped_column(Text, default="/")
    status: Mapped[str] = mapped_column(String(8), default="joined")  # joined | stayed | left | fraud
    fraud_reason: Mapped[str] = mapped_column(String(32), default="")
    device_id: Mapped[str] = mapped_column(String(64), default="")
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Milestone(Base):
    """A reward rule: N invitees who each stayed D days → one reward, per community or per invite campaign."""

    __tablename__ = "referral_milestones"
    __table_args__ = (
        CheckConstraint("invitees_required >= 1", name="invitees_positive"),
        CheckConstraint("stay_days >= 0", name="stay_days_non_negative"),
        Index("ix_referral_milestones_ws", "workspace_id", "active"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    invitees_required: Mapped[int] = mapped_column(Integer)
    stay_days: Mapped[int] = mapped_column(Integer, default=7)
    reward_kind: Mapped[str] = mapped_column(String(10))  # points | coupon | badge
    reward_value: Mapped[str] = mapped_column(String(64))  # points amount, coupon template code or badge name
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reward(Base):
    """A milestone reached by an inviter: exactly one row per (milestone, inviter)."""

    __tablename__ = "referral_rewards"
    __table_args__ = (
        UniqueConstraint("milestone_id", "inviter_customer_id"),
        Index("ix_referral_rewards_ws_status", "workspace_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    milestone_id: Mapped[int] = mapped_column(ForeignKey("referral_milestones.id", ondelete="CASCADE"))
    inviter_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(BigId)
    reward_kind: Mapped[str] = mapped_column(String(10))
    reward_value: Mapped[str] = mapped_column(String(64))
    # pending_fulfilment (granted; loyalty/promotions fulfil it) | held (inviter under fraud review)
    # | fulfilled | cancelled (fraud confirmed)
    status: Mapped[str] = mapped_column(String(20))
    qualifying: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # referral ids that counted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FraudFlag(Base):
    """A suspicion for an operator to review: one referral (same device/phone) or an inviter (burst)."""

    __tablename__ = "fission_fraud_flags"
    __table_args__ = (
        Index("ix_fission_fraud_flags_ws_status", "workspace_id", "status"),
        Index("ix_fission_fraud_flags_ws_inviter", "workspace_id", "inviter_customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # same_device | same_phone | burst
    inviter_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | cleared | confirmed
    reviewed_by: Mapped[int | None] = mapped_column(BigId)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FissionSettings(Base):
    """A workspace's anti-fraud thresholds (defaults apply when there is no row)."""

    __tablename__ = "fission_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    burst_joins: Mapped[int] = mapped_column(Integer, default=10)
    burst_minutes: Mapped[int] = mapped_column(Integer, default=10)
