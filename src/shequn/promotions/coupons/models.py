"""Tables of promotions.coupons: templates, unique codes and grants (one coupon held by one customer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, Money, UTCDateTime


class CouponTemplate(Base):
    """What a coupon is worth, where it applies, when it is valid, how many exist and who may hold them."""

    __tablename__ = "promo_coupon_templates"
    __table_args__ = (
        # A public code names one template of the workspace (NULLs do not collide).
        UniqueConstraint("workspace_id", "public_code"),
        Index("ix_promo_coupon_templates_ws_status", "workspace_id", "status"),
        Index("ix_promo_coupon_templates_campaign", "campaign_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))  # fixed | percent | threshold | free_shipping
    amount_fen: Mapped[int] = mapped_column(Money, default=0)  # fixed / threshold: amount taken off
    percent_off: Mapped[int] = mapped_column(Integer, default=0)  # percent: 20 = 20 % off
    max_discount_fen: Mapped[int | None] = mapped_column(Money)  # percent / free shipping cap
    min_order_fen: Mapped[int] = mapped_column(Money, default=0)  # threshold (满减) and minimum spend
    scope: Mapped[str] = mapped_column(String(12), default="all")  # all | products | categories
    scope_skus: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    scope_categories: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    validity: Mapped[str] = mapped_column(String(8), default="fixed")  # fixed | relative
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)  # claim window (and validity when fixed)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_days: Mapped[int | None] = mapped_column(Integer)  # relative: usable this many days after claim
    total_stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    # Counters moved only by conditional UPDATEs, so stock and budget hold under concurrent claims.
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)
    per_customer_limit: Mapped[int] = mapped_column(Integer, default=1)
    per_phone_limit: Mapped[int | None] = mapped_column(Integer)
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)  # False: exclusive (alone on an order)
    code_mode: Mapped[str] = mapped_column(String(8), default="none")  # none | public | unique
    public_code: Mapped[str | None] = mapped_column(String(32))
    budget_fen: Mapped[int | None] = mapped_column(Money)  # None: no cap
    # Face value of open coupons plus the discount of redeemed ones: the liability the budget caps.
    committed_fen: Mapped[int] = mapped_column(Money, default=0)
    discount_fen: Mapped[int] = mapped_column(Money, default=0)  # discount actually given
    status: Mapped[str] = mapped_column(String(8), default="draft")  # draft | active | paused | ended
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponCode(Base):
    """One generated unique code of a template; claimed at most once (grant_id set)."""

    __tablename__ = "promo_coupon_codes"
    __table_args__ = (
        UniqueConstraint("workspace_id", "code"),
        Index("ix_promo_coupon_codes_template", "template_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("promo_coupon_templates.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(12))  # upper case, no look-alike characters
    grant_id: Mapped[int | None] = mapped_column(BigId)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponGrant(Base):
    """A coupon held by a customer: issued, then redeemed on one order, expired or reversed."""

    __tablename__ = "promo_coupon_grants"
    __table_args__ = (
        # Retry-safety: one grant per (template, source, source_ref). Claims use "<customer>#<n>" refs,
        # so the per-customer limit is a unique key too; fan-out uses the customer id. Its template_id prefix
        # also serves the per-template counts, so no separate (template, state) index slows a fan-out.
        UniqueConstraint("template_id", "source", "source_ref"),
        # Same idea for the per-phone limit: "<phone hash>#<n>" slots. Partial indexes (here and for order_ref)
        # skip the NULLs, so a million-row fan-out does not maintain them.
        Index(
            "uq_promo_coupon_grants_template_id_phone_slot",
            "template_id",
            "phone_slot",
            unique=True,
            postgresql_where=text("phone_slot IS NOT NULL"),
            sqlite_where=text("phone_slot IS NOT NULL"),
        ),
        Index("ix_promo_coupon_grants_ws_customer", "workspace_id", "customer_id", "template_id"),
        Index(
            "ix_promo_coupon_grants_ws_order",
            "workspace_id",
            "order_ref",
            postgresql_where=text("order_ref IS NOT NULL"),
            sqlite_where=text("order_ref IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Plain ids (no foreign keys): a fan-out writes a million grants in one go, and a foreign-key check per row
    # per key cost it a fifth of its time on PostgreSQL each (measured). Grants are written only by this
    # package, after get_template and the customer lookup; templates and workspaces are never deleted (they end).
    workspace_id: Mapped[int] = mapped_column(BigId)
    template_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(12))  # claim | code | fanout | lottery | quiz | challenge | api | demo
    source_ref: Mapped[str] = mapped_column(String(80))
    phone_slot: Mapped[str | None] = mapped_column(String(80))
    code: Mapped[str | None] = mapped_column(String(32))  # the unique code held, if any
    state: Mapped[str] = mapped_column(String(10), default="issued")  # issued | redeemed | expired | reversed
    face_fen: Mapped[int] = mapped_column(Money, default=0)  # committed against the budget while open
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    order_ref: Mapped[str | None] = mapped_column(String(120))
    order_id: Mapped[int | None] = mapped_column(BigId)
    order_amount_fen: Mapped[int] = mapped_column(Money, default=0)
    discount_fen: Mapped[int] = mapped_column(Money, default=0)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
