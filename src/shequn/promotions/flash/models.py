"""Tables of promotions.flash: sales, per-customer counters, reservations, pre-registrations, outcome counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, Money, UTCDateTime


class FlashSale(Base):
    """A flash sale of one SKU: price, stock, per-customer limit and window.

    `sold` counts units held by live reservations and paid ones; it moves only by conditional UPDATE
    (`sold + q <= stock`) on the SQL path, and from the Redis stream on the Redis path.
    """

    __tablename__ = "promo_flash_sales"
    __table_args__ = (
        Index("ix_promo_flash_sales_ws_starts", "workspace_id", "starts_at"),
        Index("ix_promo_flash_sales_campaign", "campaign_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="SET NULL"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    sku: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(String(120))
    flash_price: Mapped[int] = mapped_column(Money)
    original_price: Mapped[int] = mapped_column(Money, default=0)
    stock: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    paid_units: Mapped[int] = mapped_column(Integer, default=0)
    per_customer_limit: Mapped[int] = mapped_column(Integer, default=1)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Stored lifecycle: draft | published | cancelled; scheduled/live/ended is derived from the dates.
    status: Mapped[str] = mapped_column(String(12), default="draft")
    reservation_ttl_min: Mapped[int] = mapped_column(Integer, default=15)
    preregistration: Mapped[bool] = mapped_column(Boolean, default=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FlashCustomerCount(Base):
    """Units one customer holds in one sale; the per-customer limit is a conditional upsert on this row."""

    __tablename__ = "promo_flash_customer_counts"
    __table_args__ = (UniqueConstraint("sale_id", "customer_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(ForeignKey("promo_flash_sales.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    qty: Mapped[int] = mapped_column(Integer, default=0)


class FlashReservation(Base):
    """A claim that won stock: the pending-payment order of a flash sale until paid, expired or cancelled."""

    __tablename__ = "promo_flash_reservations"
    __table_args__ = (
        UniqueConstraint("ref"),
        UniqueConstraint("sale_id", "customer_id", "idem_key"),
        Index("ix_promo_flash_reservations_sale_state", "sale_id", "state", "expires_at"),
        Index("ix_promo_flash_reservations_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(ForeignKey("promo_flash_sales.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(32))  # public id, made before the claim (Redis path writes it later)
    idem_key: Mapped[str] = mapped_column(String(64))  # the client's Idempotency-Key, or ref when none was sent
    qty: Mapped[int] = mapped_column(Integer, default=1)
    amount: Mapped[int] = mapped_column(Money, default=0)
    state: Mapped[str] = mapped_column(String(12), default="reserved")  # reserved | paid | expired | cancelled
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_ref: Mapped[str] = mapped_column(String(100), default="")  # the shop order that paid it


class FlashPreregistration(Base):
    """A customer asking to be reminded before the sale starts (one per customer, reminded once)."""

    __tablename__ = "promo_flash_preregistrations"
    __table_args__ = (UniqueConstraint("sale_id", "customer_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(ForeignKey("promo_flash_sales.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FlashOutcomeCount(Base):
    """Claim attempts per sale, minute (epoch minute; 0 = all time) and outcome, for the console charts."""

    __tablename__ = "promo_flash_outcomes"
    __table_args__ = (UniqueConstraint("sale_id", "minute", "outcome"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(ForeignKey("promo_flash_sales.id", ondelete="CASCADE"))
    minute: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(Integer, default=0)
