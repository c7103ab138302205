"""Campaign schemas: what operators send and read (domain rules are checked in campaigns.manage)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1
# Money past this is a typo, not a budget (and stays inside BIGINT with room for spend).
MAX_FEN = 10**15


class CampaignFields(BaseModel):
    """Fields an operator may set; all optional so the same model checks a patch."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=500)
    goal: str | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=5000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    budget_fen: int | None = Field(default=None, ge=-MAX_FEN, le=MAX_FEN, description="null: no cap")
    target_segment_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    target_community_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    channels: list[str] | None = Field(default=None, max_length=20)
    kpis: dict[str, int] | None = Field(default=None, description='metric → target, e.g. {"gmv_fen": 5000000}')
    utm_campaign: str | None = Field(default=None, max_length=200)


class CampaignIn(CampaignFields):
    """A new campaign (a draft until published)."""

    name: str = Field(max_length=500)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    goal: str = Field(default="conversion", max_length=50)
    publish: bool = Field(default=False, description="publish at once instead of keeping a draft")


class CampaignPatch(CampaignFields):
    """Changes to a campaign; null clears budget (no cap), segment and community only when sent explicitly."""


class CampaignOut(BaseModel):
    """A campaign as operators see it; status is derived from the dates once published."""

    id: int
    name: str
    goal: str
    description: str
    status: str
    starts_at: datetime
    ends_at: datetime
    budget_fen: int | None
    spent_fen: int
    target_segment_id: int | None
    target_community_id: int | None
    channels: list[str]
    kpis: dict[str, int]
    utm_campaign: str
    published_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ActivityOut(BaseModel):
    """One activity of the campaign, as its kind summarizes it."""

    kind: str
    id: int
    name: str
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    participants: int
    actions: int
    wins: int
    redemptions: int
    gmv_fen: int
    cost_fen: int
    console_url: str
    extra: dict[str, int]


class KpiOut(BaseModel):
    """One KPI: its target, the actual value and the progress (None without a target)."""

    metric: str
    target: int | None
    actual: int
    progress: float | None


class DayOut(BaseModel):
    """One day of the campaign's activity (workspace timezone)."""

    day: str
    orders: int
    gmv_fen: int
    participations: int


class ResultsOut(BaseModel):
    """A campaign's live results."""

    campaign: CampaignOut
    audience_size: int | None
    kpis: list[KpiOut]
    funnel: dict[str, int]
    budget: dict[str, Any]
    activities: list[ActivityOut]
    days: list[DayOut]
