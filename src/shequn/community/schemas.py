"""Community API shapes (Pydantic in/out)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Platform = Literal["wecom_group", "wechat_group", "qq_group", "weibo_topic", "forum"]
Visibility = Literal["public", "semi_public", "private"]
Nature = Literal["consumer", "industry", "interest"]
Mode = Literal["self", "partner", "platform"]
Role = Literal["owner", "admin", "moderator", "member"]
MemberStatus = Literal["pending", "active", "muted", "removed", "left"]
Source = Literal["invite", "qr", "h5", "sync", "csv", "manual"]


class CommunityIn(BaseModel):
    """A new community."""

    name: str = Field(min_length=1, max_length=100)
    platform: Platform = "wechat_group"
    visibility: Visibility = "public"
    nature: Nature = "consumer"
    mode: Mode = "self"
    partner_name: str = Field("", max_length=100)
    theme: str = Field("", max_length=100)
    description: str = Field("", max_length=5000)
    rules_text: str = Field("", max_length=20000)
    capacity: int | None = Field(None, ge=1, le=1_000_000)
    owner_operator_id: int | None = Field(None, ge=1, le=2**63 - 1)
    external_id: str = Field("", max_length=128)


class CommunityPatch(BaseModel):
    """Settings to change (only the fields given)."""

    name: str | None = Field(None, min_length=1, max_length=100)
    platform: Platform | None = None
    visibility: Visibility | None = None
    nature: Nature | None = None
    mode: Mode | None = None
    partner_name: str | None = Field(None, max_length=100)
    theme: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=5000)
    rules_text: str | None = Field(None, max_length=20000)
    capacity: int | None = Field(None, ge=1, le=1_000_000)
    owner_operator_id: int | None = Field(None, ge=1, le=2**63 - 1)
    external_id: str | None = Field(None, max_length=128)
    status: Literal["active", "archived"] | None = None


class CommunityOut(BaseModel):
    """A community."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    platform: str
    visibility: str
    nature: str
    mode: str
    partner_name: str
    theme: str
    description: str
    rules_text: str
    capacity: int | None
    owner_operator_id: int | None
    external_id: str
    status: str
    members_count: int
    created_at: datetime
    updated_at: datetime


class MemberOut(BaseModel):
    """A member of a community (phone masked)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    customer_id: int
    name: str = ""
    phone_masked: str = ""
    nickname: str
    role: str
    status: str
    join_source: str
    invite_id: int | None
    inviter_customer_id: int | None
    strikes: int
    joined_at: datetime | None
    left_at: datetime | None
    muted_until: datetime | None
    probation_until: datetime | None
    last_active_at: datetime | None


class MemberAdd(BaseModel):
    """An operator adds a customer to a community (active at once)."""

    customer_id: int = Field(ge=1, le=2**63 - 1)
    nickname: str = Field("", max_length=64)
    role: Role = "member"


class MuteIn(BaseModel):
    """Mute for minutes, with a note the member may read in the enforcement."""

    minutes: int = Field(60, ge=1, le=60 * 24 * 30)
    reason: str = Field("", max_length=500)


class ReasonIn(BaseModel):
    """An operator's note."""

    reason: str = Field("", max_length=500)


class RoleIn(BaseModel):
    """A member's new role."""

    role: Role


class ChangeOut(BaseModel):
    """One membership history row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    member_id: int
    customer_id: int
    action: str
    from_status: str
    to_status: str
    source: str
    detail: dict[str, Any]
    actor_operator_id: int | None
    created_at: datetime


class PolicyOut(BaseModel):
    """A policy of a community with its effective config."""

    kind: str
    enabled: bool
    config: dict[str, Any]


class PolicyIn(BaseModel):
    """Switch a policy and set its config (missing keys keep defaults)."""

    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


class EnforcementOut(BaseModel):
    """One enforcement with its evidence, undo and appeal state."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    member_id: int | None
    customer_id: int
    policy: str
    action: str
    reason: str
    evidence: dict[str, Any]
    strike: bool
    status: str
    undone_at: datetime | None
    appeal_status: str
    appeal_text: str
    appealed_at: datetime | None
    appeal_decided_at: datetime | None
    created_at: datetime


class AppealIn(BaseModel):
    """A member's appeal."""

    text: str = Field(min_length=1, max_length=1000)


class AppealDecision(BaseModel):
    """An operator's decision on an appeal."""

    accept: bool


class SyncMemberIn(BaseModel):
    """Who a sync event is about: at least one platform id (or a phone)."""

    unionid: str = Field("", max_length=128)
    openid: str = Field("", max_length=128)
    external_userid: str = Field("", max_length=128)
    wechat_id: str = Field("", max_length=128)
    qq: str = Field("", max_length=32)
    weibo_uid: str = Field("", max_length=64)
    nickname: str = Field("", max_length=64)
    phone: str | None = Field(None, max_length=32)


class SyncEventIn(BaseModel):
    """An inbound membership event from the platform (WeCom/QQ/bot); id makes retries safe."""

    id: str = Field(min_length=1, max_length=128)
    type: Literal["member_joined", "member_left"]
    at: datetime | None = None
    member: SyncMemberIn


class SyncIn(BaseModel):
    """A batch of membership events."""

    events: list[SyncEventIn] = Field(min_length=1, max_length=1000)


class SyncOut(BaseModel):
    """What a sync did."""

    joined: int
    left: int
    unchanged: int
    duplicates: int
    errors: list[dict[str, Any]]


class ContributorOut(BaseModel):
    """A top contributor."""

    customer_id: int
    name: str
    nickname: str
    count: int


class HealthOut(BaseModel):
    """The health view of a community."""

    members: int
    pending: int
    active_7d: int
    active_30d: int
    active_rate_7d: float
    active_rate_30d: float
    joined_30d: int
    left_30d: int
    enforcements_30d: int
    appeals_pending: int
    members_by_day: list[tuple[date, int]]
    posts_by_day: list[tuple[date, int]]
    activity_by_kind: dict[str, int]
    top_contributors: list[ContributorOut]
