"""Audience inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


@dataclass(slots=True)
class IdentityIn:
    """One platform identity of a person: (source, kind, value)."""

    source: str
    kind: str
    value: str
    verified: bool = False
    followers: int | None = None


@dataclass(slots=True)
class CustomerIn:
    """What an order (or a sync) says about a person."""

    identities: list[IdentityIn] = field(default_factory=list)
    name: str = ""
    phone: str | None = None  # raw; hashed and masked on the way in, never stored plain
    phone_verified: bool = False
    email: str | None = None
    province: str = ""
    city: str = ""


@dataclass(slots=True)
class PurchaseFacts:
    """A customer's purchase facts (or a delta to add to them), computed by commerce from its orders."""

    customer_id: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    orders_count: int
    total_spent: int
    category_spend: dict[str, int]


@dataclass(slots=True)
class TimelineEntry:
    """One thing that happened to a customer, from any domain."""

    at: datetime
    kind: str
    title: str
    amount: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class IdentityOut(BaseModel):
    """An identity as the API shows it (phone hashes never leave; emails masked)."""

    model_config = ConfigDict(from_attributes=True)

    source: str
    kind: str
    value: str
    verified: bool
    followers: int | None = None


class CustomerOut(BaseModel):
    """A customer as the API shows it: PII masked."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    gender: str
    province: str
    city: str
    phone_masked: str
    email_masked: str
    first_order_at: datetime | None
    last_order_at: datetime | None
    orders_count: int
    total_spent: int
    avg_order_value: int
    top_categories: list[dict[str, Any]]
    platforms: list[str]
    followers_total: int
    influence: int
    r_score: int | None = None
    f_score: int | None = None
    m_score: int | None = None
    rfm_group: str | None = None
    lifecycle: str | None = None
    created_at: datetime


class CustomerDetailOut(CustomerOut):
    """A customer with identities."""

    identities: list[IdentityOut]


class SegmentIn(BaseModel):
    """A new segment: a rule (see GET /api/v1/segments/fields) and whether it stays current or is a snapshot."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    kind: Literal["dynamic", "static"] = "dynamic"
    rule: dict[str, Any]


class SegmentPatch(BaseModel):
    """Fields to change on a segment; a new rule refreshes a dynamic segment at once."""

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    rule: dict[str, Any] | None = None


class SegmentOut(BaseModel):
    """A segment and its current size."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    kind: str
    rule: dict[str, Any]
    members_count: int
    refreshed_at: datetime | None
    refresh_ms: int | None
    created_at: datetime
    updated_at: datetime


class RuleIn(BaseModel):
    """A rule to preview."""

    rule: dict[str, Any]


class PreviewOut(BaseModel):
    """How many customers a rule matches now, and a sample of them."""

    count: int
    sample: list[CustomerOut]


class SegmentChangeOut(BaseModel):
    """A customer entering or leaving a segment."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: int
    entered: bool
    cause: str
    at: datetime


class CountOut(BaseModel):
    """A labelled count (and amount in fen where it applies)."""

    key: str
    label: str
    count: int
    amount: int = 0


class SegmentProfileOut(BaseModel):
    """Who is in a segment: size, spend, RFM, lifecycle, categories, cities, tags and size over time."""

    size: int
    buyers: int
    total_spent: int
    avg_spent: int
    avg_orders: float
    rfm: list[CountOut]
    lifecycle: list[CountOut]
    categories: list[CountOut]
    cities: list[CountOut]
    tags: list[CountOut]
    sizes: list[tuple[datetime, int]]
