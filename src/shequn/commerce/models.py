"""Commerce tables: products, orders, line items, import row errors, rollups and the purchase backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, Money, UTCDateTime


class Product(Base):
    """A sellable product (SKU) with its category, price in fen and tags."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("workspace_id", "sku"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(64), default="")
    price: Mapped[int] = mapped_column(Money, default=0)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Base):
    """An order from a shop or the API; upserted by (workspace, source, shop_id, source_order_id)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "shop_id", "source_order_id"),
        Index("ix_orders_ws_customer", "workspace_id", "customer_id"),
        Index("ix_orders_ws_placed", "workspace_id", "placed_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(32))
    shop_id: Mapped[str] = mapped_column(String(64))
    source_order_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    subtotal: Mapped[int] = mapped_column(Money, default=0)
    discount: Mapped[int] = mapped_column(Money, default=0)
    shipping: Mapped[int] = mapped_column(Money, default=0)
    total: Mapped[int] = mapped_column(Money, default=0)
    paid: Mapped[int] = mapped_column(Money, default=0)
    refunded: Mapped[int] = mapped_column(Money, default=0)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    discount_codes: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    attribution: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderLineItem(Base):
    """One line of an order; category is copied from the product so facts need no join."""

    __tablename__ = "order_line_items"
    __table_args__ = (Index("ix_order_line_items_order", "order_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    sku: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(String(255), default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[int] = mapped_column(Money, default=0)
    total: Mapped[int] = mapped_column(Money, default=0)


class ImportRowError(Base):
    """A row an import kept out, with its number and reason (the error report)."""

    __tablename__ = "import_row_errors"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(255))
    source_order_id: Mapped[str] = mapped_column(String(64), default="")


class OrderWebhook(Base):
    """An inbound order webhook: a URL token (stored hashed) and the shop's signing secret (encrypted)."""

    __tablename__ = "order_webhooks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    shop_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(128), default="")
    received: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrderDailyRollup(Base):
    """Orders per local day, status and source: what the dashboard reads instead of scanning orders."""

    __tablename__ = "order_daily_rollups"
    __table_args__ = (UniqueConstraint("workspace_id", "day", "status", "source"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the workspace's timezone
    status: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(32))
    orders: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Money, default=0)
    net_paid: Mapped[int] = mapped_column(Money, default=0)  # paid − refunded


class CategoryDailyRollup(Base):
    """Sales of paid-like orders per local day and category."""

    __tablename__ = "category_daily_rollups"
    __table_args__ = (UniqueConstraint("workspace_id", "day", "category"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(64))
    sales: Mapped[int] = mapped_column(Money, default=0)
    quantity: Mapped[int] = mapped_column(Integer, default=0)


class PurchaseBacklog(Base):
    """What a bulk import has left to derive: a batch of new orders, a customer or a local day.

    The bulk import writes orders and line items only; `commerce.derive` claims these rows and derives
    facts, purchase activity and rollups from them in a few set-based statements (decision 0009). A
    batch of new orders is one row (its ids as a JSON array), not a row per order or customer.
    customer_id has no foreign key on purpose: a customer merged or erased since is resolved, or
    skipped, when the backlog is drained. Small and short-lived, so the primary key is its only index.
    """

    __tablename__ = "purchase_backlog"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(BigId)
    day: Mapped[int | None] = mapped_column(Integer)  # date.toordinal() of a local day whose rollups are stale
    order_ids: Mapped[str | None] = mapped_column(Text)  # JSON array of new orders' ids
