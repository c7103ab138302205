"""Flash-sale API shapes (money in fen, times aware UTC)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MAX_STOCK = 10_000_000
MAX_FEN = 10**14


class SaleIn(BaseModel):
    """A new flash sale (a draft until published)."""

    title: str = Field(default="", max_length=120, description="defaults to the product's title")
    product_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    sku: str = Field(default="", max_length=100, description="defaults to the product's SKU")
    campaign_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    flash_price: int = Field(ge=0, le=MAX_FEN, description="fen")
    original_price: int | None = Field(default=None, ge=0, le=MAX_FEN, description="fen; defaults to the product's")
    stock: int = Field(ge=1, le=MAX_STOCK)
    per_customer_limit: int = Field(default=1, ge=1, le=1000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reservation_ttl_min: int = Field(default=15, ge=1, le=24 * 60)
    preregistration: bool = True

    @model_validator(mode="after")
    def _window(self) -> SaleIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SalePatch(BaseModel):
    """Changes to a sale; price, stock and limit only while it is a draft."""

    title: str | None = Field(default=None, min_length=1, max_length=120)
    campaign_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    flash_price: int | None = Field(default=None, ge=0, le=MAX_FEN)
    original_price: int | None = Field(default=None, ge=0, le=MAX_FEN)
    stock: int | None = Field(default=None, ge=1, le=MAX_STOCK)
    per_customer_limit: int | None = Field(default=None, ge=1, le=1000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    reservation_ttl_min: int | None = Field(default=None, ge=1, le=24 * 60)
    preregistration: bool | None = None


class SaleOut(BaseModel):
    """A flash sale with its derived status and live counters."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    product_id: int | None
    sku: str
    campaign_id: int | None
    flash_price: int
    original_price: int
    stock: int
    sold: int
    paid_units: int
    left: int = 0
    per_customer_limit: int
    starts_at: datetime
    ends_at: datetime
    status: str
    phase: str = ""
    reservation_ttl_min: int
    preregistration: bool
    reminder_sent_at: datetime | None


class ClaimIn(BaseModel):
    """A member's claim."""

    qty: int = Field(default=1, ge=1, le=1000)


class ReservationOut(BaseModel):
    """A reservation (the pending-payment order of a flash sale)."""

    ref: str
    sale_id: int
    qty: int
    amount: int
    state: str
    expires_at: datetime


class ClaimOut(BaseModel):
    """A won claim (refusals are errors: flash_sold_out, flash_limit_reached, flash_not_started, flash_ended)."""

    outcome: str
    replay: bool
    reservation: ReservationOut


class StockOut(BaseModel):
    """Live stock of a sale and the server's clock (for countdowns)."""

    sale_id: int
    left: int
    stock: int
    phase: str
    starts_at: datetime
    ends_at: datetime
    server_time: datetime


class PayIn(BaseModel):
    """Payment confirmation from an integration."""

    order_ref: str = Field(default="", max_length=100, description="the shop's order id that paid it")


class OversellCheck(BaseModel):
    """sold == paid + reserved and sold <= stock (and Redis agrees once the stream is drained)."""

    stock: int
    sold: int
    paid: int
    reserved: int
    redis_left: int | None
    ok: bool
