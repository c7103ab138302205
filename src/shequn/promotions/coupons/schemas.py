"""Coupon schemas: templates operators define, grants members hold, redemptions the shop reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Kind = Literal["fixed", "percent", "threshold", "free_shipping"]
Scope = Literal["all", "products", "categories"]
Validity = Literal["fixed", "relative"]
CodeMode = Literal["none", "public", "unique"]
Status = Literal["draft", "active", "paused", "ended"]

MAX_FEN = 10**12
MAX_STOCK = 100_000_000


class TemplateFields(BaseModel):
    """Fields an operator may set; all optional so the same model checks a patch."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    campaign_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    kind: Kind | None = None
    amount_fen: int | None = Field(default=None, ge=0, le=MAX_FEN)
    percent_off: int | None = Field(default=None, ge=0, le=99)
    max_discount_fen: int | None = Field(default=None, ge=1, le=MAX_FEN)
    min_order_fen: int | None = Field(default=None, ge=0, le=MAX_FEN)
    scope: Scope | None = None
    scope_skus: list[str] | None = Field(default=None, max_length=500)
    scope_categories: list[str] | None = Field(default=None, max_length=100)
    validity: Validity | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3650)
    total_stock: int | None = Field(default=None, ge=1, le=MAX_STOCK)
    per_customer_limit: int | None = Field(default=None, ge=1, le=100)
    per_phone_limit: int | None = Field(default=None, ge=1, le=100)
    stackable: bool | None = None
    code_mode: CodeMode | None = None
    public_code: str | None = Field(default=None, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    budget_fen: int | None = Field(default=None, ge=1, le=MAX_FEN)


class TemplateIn(TemplateFields):
    """A new template (starts as a draft)."""

    name: str = Field(min_length=1, max_length=120)
    kind: Kind
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class TemplatePatch(TemplateFields):
    """Changes to a template; fields sent as null clear nullable settings (stock, limits, budget)."""


class TemplateOut(BaseModel):
    """A template as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int | None
    name: str
    description: str
    kind: str
    amount_fen: int
    percent_off: int
    max_discount_fen: int | None
    min_order_fen: int
    scope: str
    scope_skus: list[str]
    scope_categories: list[str]
    validity: str
    starts_at: datetime
    ends_at: datetime
    valid_days: int | None
    total_stock: int | None
    issued_count: int
    redeemed_count: int
    per_customer_limit: int
    per_phone_limit: int | None
    stackable: bool
    code_mode: str
    public_code: str | None
    budget_fen: int | None
    committed_fen: int
    discount_fen: int
    status: str
    created_at: datetime


class GrantOut(BaseModel):
    """A coupon held by a customer."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    template_id: int
    customer_id: int
    source: str
    code: str | None
    state: str
    valid_from: datetime
    valid_until: datetime
    order_ref: str | None
    discount_fen: int
    redeemed_at: datetime | None
    created_at: datetime


class GrantIn(BaseModel):
    """An operator (or integration) issuing one coupon to one customer."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(ge=1, le=2**63 - 1)
    source_ref: str = Field(min_length=1, max_length=64)


class OrderLine(BaseModel):
    """One line of the order being priced (scope checks need SKU and category)."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(default="", max_length=100)
    category: str = Field(default="", max_length=64)
    amount_fen: int = Field(ge=0, le=MAX_FEN)


class RedeemIn(BaseModel):
    """Redeem coupons on an order: by code(s) or grant id(s); lines enable product/category scope."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_ref: str = Field(min_length=1, max_length=64)
    amount_fen: int = Field(ge=0, le=MAX_FEN)
    shipping_fen: int = Field(default=0, ge=0, le=MAX_FEN)
    customer_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    codes: list[str] = Field(default_factory=list, max_length=5)
    grant_ids: list[int] = Field(default_factory=list, max_length=5)
    lines: list[OrderLine] = Field(default_factory=list, max_length=500)


class RedeemedOut(BaseModel):
    """What each coupon took off the order."""

    grant_id: int
    template_id: int
    discount_fen: int


class RedeemOut(BaseModel):
    """The result of a redemption: per coupon and in total."""

    order_ref: str
    amount_fen: int
    discount_fen: int
    coupons: list[RedeemedOut]


class FanoutIn(BaseModel):
    """Issue a template to every member of a segment."""

    model_config = ConfigDict(extra="forbid")

    segment_id: int = Field(ge=1, le=2**63 - 1)
    message: str = Field(default="", max_length=500)


class CodesIn(BaseModel):
    """Generate unique codes for a template."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=200_000)
    length: int = Field(default=10, ge=8, le=12)
