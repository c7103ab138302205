"""Pydantic in/out of challenges: operator forms and API, and what members see."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shequn.promotions.quiz.schemas import PrizeKind, check_prize

RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ChallengeIn(BaseModel):
    """A new challenge (a draft until published); the console form sends every field on edit too."""

    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=4000)
    community_id: RowId
    hashtag: str = Field(min_length=1, max_length=40)
    mode: Literal["vote", "judge"] = "vote"
    entry_starts_at: datetime
    entry_ends_at: datetime
    vote_starts_at: datetime
    vote_ends_at: datetime
    max_votes_per_member: int = Field(3, ge=1, le=1000)
    winners_cap: int = Field(3, ge=1, le=1000)
    prize_kind: PrizeKind = "none"
    prize_name: str = Field("", max_length=120)
    prize_coupon_template_id: RowId | None = None
    prize_points: int = Field(0, ge=0, le=10_000_000)
    prize_cost_fen: int = Field(0, ge=0, le=10**12)
    campaign_id: RowId | None = None

    @model_validator(mode="after")
    def _rules(self) -> ChallengeIn:
        times = (self.entry_starts_at, self.entry_ends_at, self.vote_starts_at, self.vote_ends_at)
        if any(t.tzinfo is None for t in times):
            raise ValueError("times need a time zone")
        if self.entry_ends_at <= self.entry_starts_at:
            raise ValueError("entry_ends_at must be after entry_starts_at")
        if self.vote_ends_at <= self.vote_starts_at:
            raise ValueError("vote_ends_at must be after vote_starts_at")
        if self.vote_starts_at < self.entry_starts_at or self.vote_ends_at < self.entry_ends_at:
            raise ValueError("vote_starts_at/vote_ends_at cannot be before the entry window")
        check_prize(self.prize_kind, self.prize_coupon_template_id, self.prize_points)
        return self


class ChallengeOut(BaseModel):
    """A challenge as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    community_id: int
    hashtag: str
    mode: str
    status: str
    entry_starts_at: datetime
    entry_ends_at: datetime
    vote_starts_at: datetime
    vote_ends_at: datetime
    max_votes_per_member: int
    winners_cap: int
    prize_kind: str
    prize_name: str
    prize_coupon_template_id: int | None
    prize_points: int
    prize_cost_fen: int
    campaign_id: int | None
    entries_count: int
    votes_count: int
    decided_at: datetime | None
    results_published_at: datetime | None


class EntryOut(BaseModel):
    """An entry (operators see scores and prize state; members see the same minus prize references)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    post_id: int
    customer_id: int
    author_name: str
    title: str
    excerpt: str
    media: str
    source: str
    status: str
    votes_count: int
    score: int | None
    posted_at: datetime
    win_rank: int | None
    won: bool
    prize_status: str


class JudgeIn(BaseModel):
    """A judge's score for one entry."""

    score: int = Field(ge=0, le=100)


class EnterIn(BaseModel):
    """Enter one of my posts."""

    post_id: RowId


class MemberEntryOut(BaseModel):
    """An entry in the member gallery."""

    id: int
    post_id: int
    author_name: str
    title: str
    excerpt: str
    image_url: str
    votes_count: int
    mine: bool
    voted: bool
    win_rank: int | None


class MemberChallengeOut(BaseModel):
    """A challenge's public face with the member's own state."""

    id: int
    name: str
    description: str
    hashtag: str
    mode: str
    phase: str
    community_id: int
    entry_starts_at: datetime
    entry_ends_at: datetime
    vote_starts_at: datetime
    vote_ends_at: datetime
    max_votes_per_member: int
    winners_cap: int
    prize_kind: str
    prize_name: str
    entries_count: int
    votes_left: int | None
    results_published: bool


class VoteOut(BaseModel):
    """A vote cast (or the earlier one, when repeated)."""

    entry_id: int
    already_voted: bool
    entry_votes: int
    votes_left: int
