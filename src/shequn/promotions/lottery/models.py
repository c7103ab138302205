"""Tables of promotions.lottery: lotteries, their prize table, the draw log and per-day draw counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, Money, UTCDateTime


class Lottery(Base):
    """A lottery: a weighted prize table, draws per day, extra draws for points, a committed secret seed."""

    __tablename__ = "promo_lotteries"
    __table_args__ = (
        Index("ix_promo_lotteries_ws_starts", "workspace_id", "starts_at"),
        Index("ix_promo_lotteries_campaign_id", "campaign_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | published | revealed | cancelled
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    draws_per_day: Mapped[int] = mapped_column(Integer, default=1)  # free draws per customer per local day
    points_per_draw: Mapped[int | None] = mapped_column(Integer)  # None: extra draws cannot be bought
    bought_per_day: Mapped[int | None] = mapped_column(Integer)  # cap on bought draws per day (None: no cap)
    # The seed (32 random bytes) is drawn at publishing; commitment = sha256(seed) is public from then on. Until
    # the reveal it is kept only sealed with the secret key (Fernet), so a database dump or backup cannot be
    # used to predict draws; at the reveal it is unsealed into seed_hex for anyone to verify.
    seed_sealed: Mapped[str | None] = mapped_column(Text)
    seed_hex: Mapped[str | None] = mapped_column(String(64))
    commitment: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LotteryPrize(Base):
    """One row of the prize table; its share of draws is weight / total weight, `won` never passes `stock`."""

    __tablename__ = "promo_lottery_prizes"
    __table_args__ = (
        Index("ix_promo_lottery_prizes_lottery_position", "lottery_id", "position"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    lottery_id: Mapped[int] = mapped_column(ForeignKey("promo_lotteries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # order on the wheel and in the cumulative weight table
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(12))  # coupon | points | physical | thanks
    weight: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited ("thanks for playing" always)
    won: Mapped[int] = mapped_column(Integer, default=0)  # moved only by conditional UPDATE (won < stock)
    coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    points: Mapped[int | None] = mapped_column(Integer)
    cost_fen: Mapped[int] = mapped_column(Money, default=0)  # per prize won, charged to the campaign budget


class LotteryDraw(Base):
    """One draw in the lottery's log (id order = the order stock was consumed), its inputs and its outcome."""

    __tablename__ = "promo_lottery_draws"
    __table_args__ = (
        UniqueConstraint("lottery_id", "customer_id", "draw_no", name="uq_promo_lottery_draws_lottery_customer_no"),
        Index("ix_promo_lottery_draws_ws_customer", "workspace_id", "customer_id"),
        Index("ix_promo_lottery_draws_lottery_fulfilment", "lottery_id", "fulfilment"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    lottery_id: Mapped[int] = mapped_column(ForeignKey("promo_lotteries.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    player: Mapped[str] = mapped_column(String(16))  # the customer's public pseudonym in this lottery
    draw_no: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … per customer and lottery
    client_nonce: Mapped[str] = mapped_column(String(64), default="")
    local_day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the workspace's timezone
    paid_points: Mapped[int] = mapped_column(Integer, default=0)  # 0: a free draw of the day
    number: Mapped[int] = mapped_column(BigInteger)  # in [0, total weight)
    chosen_prize_id: Mapped[int] = mapped_column(BigId)  # what the number picked
    prize_id: Mapped[int] = mapped_column(BigId)  # what was awarded (thanks when the chosen one ran out)
    fallback: Mapped[str] = mapped_column(String(12), default="")  # "" | stock | budget | coupon
    prize_kind: Mapped[str] = mapped_column(String(12))
    won: Mapped[bool] = mapped_column(Boolean, default=False)
    # Physical prizes: none | pending (address missing) | ready (address given) | shipped | delivered
    fulfilment: Mapped[str] = mapped_column(String(12), default="none")
    address: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tracking_no: Mapped[str] = mapped_column(String(64), default="")
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LotteryDayCount(Base):
    """A customer's draws on one local day: free and bought, each capped by a conditional UPDATE."""

    __tablename__ = "promo_lottery_day_counts"
    __table_args__ = (
        UniqueConstraint("lottery_id", "customer_id", "local_day", name="uq_promo_lottery_day_counts_key"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    lottery_id: Mapped[int] = mapped_column(ForeignKey("promo_lotteries.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    local_day: Mapped[str] = mapped_column(String(10))
    free_used: Mapped[int] = mapped_column(Integer, default=0)
    bought: Mapped[int] = mapped_column(Integer, default=0)
