"""Lottery schemas: what operators send and read, what members send and see, the public verification record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PrizeKind = Literal["coupon", "points", "physical", "thanks"]
MAX_ID = 2**63 - 1
MAX_WEIGHT = 1_000_000
MAX_STOCK = 10_000_000


class PrizeIn(BaseModel):
    """One row of the prize table."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=80)
    kind: PrizeKind
    weight: int = Field(ge=0, le=MAX_WEIGHT)
    stock: int | None = Field(default=None, ge=0, le=MAX_STOCK, description="None: unlimited")
    coupon_template_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    points: int | None = Field(default=None, ge=1, le=1_000_000)
    cost_fen: int = Field(default=0, ge=0, le=10**10)


class LotteryFields(BaseModel):
    """Fields an operator may set; all optional so the same model checks a patch."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=5000)
    campaign_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    draws_per_day: int | None = Field(default=None, ge=0, le=100)
    points_per_draw: int | None = Field(default=None, ge=1, le=1_000_000)
    bought_per_day: int | None = Field(default=None, ge=1, le=1000)
    prizes: list[PrizeIn] | None = Field(default=None, min_length=1, max_length=24)


class LotteryIn(LotteryFields):
    """A new lottery (a draft until published)."""

    name: str = Field(min_length=1, max_length=120)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    draws_per_day: int = Field(default=1, ge=0, le=100)
    prizes: list[PrizeIn] = Field(min_length=1, max_length=24)


class LotteryPatch(LotteryFields):
    """Changes to a draft lottery; `prizes` replaces the whole table."""


class PrizeOut(BaseModel):
    """A prize with its probability and how many were won."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    name: str
    kind: str
    weight: int
    probability: float = 0.0
    stock: int | None
    won: int
    coupon_template_id: int | None
    points: int | None
    cost_fen: int


class LotteryOut(BaseModel):
    """A lottery as operators see it (the seed only once revealed)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int | None
    name: str
    description: str
    status: str
    phase: str = ""  # draft | scheduled | running | ended | revealed | cancelled
    starts_at: datetime
    ends_at: datetime
    draws_per_day: int
    points_per_draw: int | None
    bought_per_day: int | None
    commitment: str | None
    seed_hex: str | None = None
    published_at: datetime | None
    revealed_at: datetime | None
    draws_count: int = 0
    prizes: list[PrizeOut] = []
    member_url: str = ""


class DrawIn(BaseModel):
    """A member's draw: their next draw number, free or paid with points, optionally their own nonce."""

    model_config = ConfigDict(extra="forbid")

    draw_no: int = Field(ge=1, le=1_000_000)
    pay_with_points: bool = False
    client_nonce: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")


class WonPrizeOut(BaseModel):
    """A draw's outcome as its member sees it."""

    draw_id: int
    draw_no: int
    prize_id: int
    prize_name: str
    prize_kind: str
    position: int
    won: bool
    fallback: str
    paid_points: int
    fulfilment: str
    address: dict[str, str] = {}
    tracking_no: str = ""
    created_at: datetime


class DrawOut(BaseModel):
    """The result of a draw and what is left today."""

    result: WonPrizeOut
    replayed: bool
    state: MemberStateOut


class PublicPrizeOut(BaseModel):
    """A prize as members and verifiers see it."""

    id: int
    position: int
    name: str
    kind: str
    weight: int
    probability: float
    stock: int | None


class MemberStateOut(BaseModel):
    """The wheel page's state for one member."""

    lottery_id: int
    name: str
    description: str
    phase: str
    starts_at: datetime
    ends_at: datetime
    commitment: str | None
    prizes: list[PublicPrizeOut]
    player: str
    next_draw_no: int
    free_left: int
    bought_left: int | None
    points_per_draw: int | None
    points: int
    verify_url: str


class AddressIn(BaseModel):
    """Where a physical prize goes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=40)
    phone: str = Field(min_length=5, max_length=20, pattern=r"^[0-9+\- ]+$")
    address: str = Field(min_length=4, max_length=200)


class FulfilmentIn(BaseModel):
    """An operator moves a physical prize along: shipped (with a tracking number) or delivered."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Literal["shipped", "delivered"]
    tracking_no: str = Field(default="", max_length=64)


class FulfilmentOut(BaseModel):
    """A physical prize in the fulfilment queue (phone masked)."""

    draw_id: int
    customer_id: int
    prize_name: str
    fulfilment: str
    name: str
    phone_masked: str
    address: str
    tracking_no: str
    created_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None


class VerifyDrawOut(BaseModel):
    """One draw's public inputs and outcome, in log order."""

    seq: int
    player: str
    draw_no: int
    client_nonce: str
    number: int
    chosen_prize_id: int
    prize_id: int
    fallback: str


class VerificationOut(BaseModel):
    """Everything needed to recompute the lottery: commitment, seed (after the end), prize table, draw log."""

    lottery_id: int
    name: str
    phase: str
    commitment: str | None
    seed_hex: str | None
    total_weight: int
    message_format: str = "{lottery_id}:{player}:{draw_no}[:{client_nonce}]"
    prizes: list[PublicPrizeOut]
    draws: list[VerifyDrawOut]
    draws_total: int
    next_offset: int | None


DrawOut.model_rebuild()
