"""Fission API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class InviteIn(BaseModel):
    """A new operator invite link."""

    label: str = Field("", max_length=100)
    max_uses: int | None = Field(None, ge=1, le=1_000_000)
    expires_at: AwareDatetime | None = None
    pre_approved: bool = False
    inviter_customer_id: int | None = Field(None, ge=1, le=2**63 - 1)


class InviteOut(BaseModel):
    """An invite link with its state and where it points."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    code: str
    label: str
    inviter_customer_id: int | None
    personal: bool = False
    max_uses: int | None
    uses: int
    opens: int
    expires_at: datetime | None
    pre_approved: bool
    status: str
    url: str = ""
    scene: str = ""
    created_at: datetime


class ReferralOut(BaseModel):
    """One edge of the referral tree."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    referee_customer_id: int
    inviter_customer_id: int
    invite_id: int | None
    depth: int
    root_customer_id: int
    status: str
    fraud_reason: str
    created_at: datetime
    qualified_at: datetime | None
    left_at: datetime | None


class TreeNodeOut(BaseModel):
    """A customer in the tree with the people they brought in."""

    customer_id: int
    name: str
    status: str
    depth: int
    size: int
    children: list[TreeNodeOut]


class MilestoneIn(BaseModel):
    """A reward rule: N invitees who each stayed D days → reward."""

    name: str = Field(min_length=1, max_length=100)
    invitees_required: int = Field(ge=1, le=10_000)
    stay_days: int = Field(7, ge=0, le=365)
    reward_kind: str = Field(pattern="^(points|coupon|badge)$")
    reward_value: str = Field(min_length=1, max_length=64)
    community_id: int | None = Field(None, ge=1, le=2**63 - 1)
    invite_id: int | None = Field(None, ge=1, le=2**63 - 1)


class MilestonePatch(BaseModel):
    """Pause or resume a rule."""

    active: bool


class MilestoneOut(BaseModel):
    """A reward rule."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int | None
    invite_id: int | None
    name: str
    invitees_required: int
    stay_days: int
    reward_kind: str
    reward_value: str
    active: bool
    created_at: datetime


class RewardOut(BaseModel):
    """A reward an inviter reached."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    milestone_id: int
    inviter_customer_id: int
    community_id: int | None
    reward_kind: str
    reward_value: str
    status: str
    qualifying: list[int]
    created_at: datetime


class FraudFlagOut(BaseModel):
    """A suspicion waiting for (or after) review."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    kind: str
    inviter_customer_id: int
    referral_id: int | None
    details: dict[str, Any]
    status: str
    reviewed_at: datetime | None
    created_at: datetime


class ReviewIn(BaseModel):
    """An operator's decision on a flag."""

    decision: str = Field(pattern="^(clear|confirm)$")


class SettingsIn(BaseModel):
    """Burst thresholds."""

    burst_joins: int = Field(ge=1, le=10_000)
    burst_minutes: int = Field(ge=1, le=1440)


class SettingsOut(SettingsIn):
    """Burst thresholds."""

    model_config = ConfigDict(from_attributes=True)


class JoinIn(BaseModel):
    """A join by invite: newcomers give a name and optionally a phone; signed-in members send nothing."""

    name: str = Field("", max_length=64)
    phone: str | None = Field(None, max_length=32)


class JoinOut(BaseModel):
    """What joining did."""

    community_id: int
    status: str  # active | pending | muted
    already_member: bool
    referral_id: int | None
    next: str = ""


class InvitePublicOut(BaseModel):
    """What a visitor sees of an invite."""

    code: str
    status: str
    community_id: int
    community_name: str
    theme: str
    visibility: str
    members_count: int
    inviter_name: str
    pre_approved: bool
