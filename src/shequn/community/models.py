"""Community tables: communities, members and their history, policies, enforcements, activity counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, UTCDateTime


class Community(Base):
    """A group the brand runs on one platform (WeCom/WeChat/QQ group, Weibo super-topic, own forum)."""

    __tablename__ = "communities"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_communities_ws_status", "workspace_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(16))  # wecom_group | wechat_group | qq_group | weibo_topic | forum
    visibility: Mapped[str] = mapped_column(String(12), default="public")  # public | semi_public | private
    nature: Mapped[str] = mapped_column(String(12), default="consumer")  # consumer | industry | interest
    mode: Mapped[str] = mapped_column(String(12), default="self")  # self | partner | platform
    partner_name: Mapped[str] = mapped_column(String(100), default="")
    theme: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    rules_text: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int | None] = mapped_column(Integer)
    owner_operator_id: Mapped[int | None] = mapped_column(BigId)
    # The group's id on its platform (WeCom chat_id, QQ group number, super-topic id) for sync.
    external_id: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | archived
    # Seats taken (active + muted members); kept by conditional UPDATEs so capacity holds under races.
    members_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommunityMember(Base):
    """A customer's membership of a community (one row per pair, reused when they leave and come back)."""

    __tablename__ = "community_members"
    __table_args__ = (
        UniqueConstraint("community_id", "customer_id"),
        Index("ix_community_members_ws_customer", "workspace_id", "customer_id"),
        Index("ix_community_members_community_status", "community_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(12), default="member")  # owner | admin | moderator | member
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|active|muted|removed|left
    join_source: Mapped[str] = mapped_column(String(12), default="manual")  # invite|qr|h5|sync|csv|manual
    invite_id: Mapped[int | None] = mapped_column(BigId)  # plain id: invites live in a later migration
    inviter_customer_id: Mapped[int | None] = mapped_column(BigId)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    # Spam strikes on the warn → mute → remove ladder (undoing an enforcement takes its strike back).
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    probation_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommunityMemberChange(Base):
    """History: one row per membership change (joined, approved, muted, left, role changed …)."""

    __tablename__ = "community_member_changes"
    __table_args__ = (
        Index("ix_community_member_changes_community_at", "community_id", "created_at"),
        Index("ix_community_member_changes_member", "member_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("community_members.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str] = mapped_column(String(12), default="")
    to_status: Mapped[str] = mapped_column(String(12), default="")
    source: Mapped[str] = mapped_column(String(12), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor_operator_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommunityPolicy(Base):
    """A machine-enforced policy of a community (spam, banned_words, frequency, probation, plug-ins)."""

    __tablename__ = "community_policies"
    __table_args__ = (UniqueConstraint("community_id", "kind"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommunityEnforcement(Base):
    """One action a policy (or an operator) took on a member, with its evidence, undo and appeal."""

    __tablename__ = "community_enforcements"
    __table_args__ = (
        Index("ix_community_enforcements_community_at", "community_id", "created_at"),
        Index("ix_community_enforcements_ws_appeal", "workspace_id", "appeal_status"),
        Index("ix_community_enforcements_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("community_members.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(BigId)
    policy: Mapped[str] = mapped_column(String(32))  # the policy kind, or "operator"
    action: Mapped[str] = mapped_column(String(12))  # refuse | warn | mute | remove
    reason: Mapped[str] = mapped_column(String(48))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    strike: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | undone
    undone_by: Mapped[int | None] = mapped_column(BigId)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_status: Mapped[str] = mapped_column(String(12), default="none")  # none|pending|accepted|rejected
    appeal_text: Mapped[str] = mapped_column(Text, default="")
    appealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_decided_by: Mapped[int | None] = mapped_column(BigId)
    appeal_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommunityActivityDaily(Base):
    """Per member, day and kind (post, answer, review, checkin …): what the health view counts."""

    __tablename__ = "community_activity_daily"
    __table_args__ = (
        UniqueConstraint("community_id", "customer_id", "kind", "day"),
        Index("ix_community_activity_daily_community_day", "community_id", "day"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(16))
    day: Mapped[int] = mapped_column(Integer)  # days since 1970-01-01 UTC, like audience activity
    count: Mapped[int] = mapped_column(Integer, default=0)


class CommunityPostMark(Base):
    """A post the policy gate let through: what frequency limits and repeated-text checks count."""

    __tablename__ = "community_post_marks"
    __table_args__ = (
        Index("ix_community_post_marks_member_at", "community_id", "customer_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    text_hash: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommunitySyncEvent(Base):
    """An inbound membership event already applied (webhook retries carry the same event id)."""

    __tablename__ = "community_sync_events"
    __table_args__ = (UniqueConstraint("community_id", "event_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(24))
    customer_id: Mapped[int | None] = mapped_column(BigId)
    result: Mapped[str] = mapped_column(String(24), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
