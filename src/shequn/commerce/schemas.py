"""Commerce API shapes (the push shapes mirror the canonical order; money in fen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shequn.commerce.canonical import MAX_FEN

Status = Literal[
    "pending_payment", "paid", "shipped", "completed", "cancelled", "closed", "refunded", "partially_refunded"
]


class IdentityPush(BaseModel):
    """A buyer identity."""

    source: str = Field(max_length=32)
    kind: Literal["customer_id", "openid", "unionid", "buyer_nick", "email", "phone_hash", "anonymous_id", "handle"]
    value: str = Field(min_length=1, max_length=255)
    verified: bool = False
    followers: int | None = Field(default=None, ge=0, le=2_000_000_000)


class CustomerPush(BaseModel):
    """The buyer of a pushed order."""

    identities: list[IdentityPush] = Field(default_factory=list, max_length=20)
    name: str = Field(default="", max_length=120)
    phone: str | None = Field(default=None, max_length=32)
    phone_verified: bool = False
    email: str | None = Field(default=None, max_length=254)
    province: str = Field(default="", max_length=32)
    city: str = Field(default="", max_length=32)


class LineItemPush(BaseModel):
    """A line of a pushed order."""

    sku: str = Field(default="", max_length=100)
    title: str = Field(default="", max_length=255)
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: int = Field(ge=0, description="fen", le=MAX_FEN)
    total: int | None = Field(default=None, ge=0, description="fen; defaults to unit_price × quantity", le=MAX_FEN)
    category: str = Field(default="", max_length=64)


class DiscountCodePush(BaseModel):
    """A discount code used on the order."""

    code: str = Field(max_length=64)
    amount: int = Field(ge=0, le=MAX_FEN)


class OrderPush(BaseModel):
    """A canonical order pushed by an integrator."""

    source: str = Field(default="api", max_length=32)
    shop_id: str = Field(default="default", max_length=64)
    source_order_id: str = Field(min_length=1, max_length=64)
    status: Status
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    subtotal: int = Field(default=0, ge=0, le=MAX_FEN)
    discount: int = Field(default=0, ge=0, le=MAX_FEN)
    shipping: int = Field(default=0, ge=0, le=MAX_FEN)
    total: int = Field(ge=0, le=MAX_FEN)
    paid: int | None = Field(default=None, ge=0, le=MAX_FEN)
    refunded: int = Field(default=0, ge=0, le=MAX_FEN)
    created_at: datetime
    updated_at: datetime | None = None
    paid_at: datetime | None = None
    line_items: list[LineItemPush] = Field(default_factory=list, max_length=500)
    discount_codes: list[DiscountCodePush] = Field(default_factory=list, max_length=20)
    attribution: dict[str, str] = Field(default_factory=dict)
    customer: CustomerPush | None = None


class OrderBatch(BaseModel):
    """Up to 1,000 orders in one call."""

    orders: list[OrderPush] = Field(min_length=1, max_length=1000)


class PushResult(BaseModel):
    """What a push did."""

    received: int
    created: int
    updated: int
    unchanged: int
    order_ids: list[int]


class LineItemOut(BaseModel):
    """A line item."""

    model_config = ConfigDict(from_attributes=True)

    sku: str
    title: str
    category: str
    quantity: int
    unit_price: int
    total: int


class OrderOut(BaseModel):
    """An order."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    source: str
    shop_id: str
    source_order_id: str
    status: str
    currency: str
    subtotal: int
    discount: int
    shipping: int
    total: int
    paid: int
    refunded: int
    placed_at: datetime
    paid_at: datetime | None
    source_updated_at: datetime
    attribution: dict[str, Any]
    discount_codes: list[Any]


class OrderDetailOut(OrderOut):
    """An order with its lines."""

    line_items: list[LineItemOut]


class ProductPush(BaseModel):
    """A product to create or update by SKU."""

    sku: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=255)
    category: str = Field(default="", max_length=64)
    price: int = Field(ge=0, description="fen", le=MAX_FEN)
    tags: list[str] = Field(default_factory=list, max_length=50)


class ProductOut(BaseModel):
    """A product."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    title: str
    category: str
    price: int
    tags: list[str]


class RowErrorOut(BaseModel):
    """A row an import kept out."""

    model_config = ConfigDict(from_attributes=True)

    row: int
    field: str
    reason: str
    source_order_id: str


class WebhookCreate(BaseModel):
    """A new inbound order webhook for one shop."""

    source: Literal["shopify", "woocommerce", "youzan", "shequn"]
    shop_id: str = Field(default="default", max_length=64)
    name: str = Field(default="", max_length=120)
    secret: str = Field(default="", max_length=256, description="the shop's signing secret; generated if empty")
    client_id: str = Field(default="", max_length=128, description="Youzan client_id (part of its signature)")


class WebhookOut(BaseModel):
    """An inbound webhook (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    shop_id: str
    name: str
    received: int
    rejected: int
    created_at: datetime
    last_received_at: datetime | None


class WebhookCreated(WebhookOut):
    """A webhook just created: the URL path and secret are shown this once."""

    url_path: str
    secret: str
