"""promotions: lotteries and the loyalty points ledger

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shequn.core.types import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _ws_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=f"fk_{table}_workspace_id_workspaces", ondelete="CASCADE"
    )


def _customer_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id"], ["customers.id"], name=f"fk_{table}_customer_id_customers", ondelete="CASCADE"
    )


def _loyalty() -> None:
    op.create_table(
        "loyalty_points_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(96), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _ws_fk("loyalty_points_entries"),
        _customer_fk("loyalty_points_entries"),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_points_entries"),
        sa.UniqueConstraint(
            "workspace_id", "customer_id", "reason", "ref", name="uq_loyalty_points_entries_ws_customer_reason_ref"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_loyalty_points_entries_ws_customer_id", "loyalty_points_entries", ["workspace_id", "customer_id", "id"]
    )
    op.create_table(
        "loyalty_points_balances",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("earned_total", sa.BigInteger(), nullable=False),
        sa.Column("spent_total", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _ws_fk("loyalty_points_balances"),
        _customer_fk("loyalty_points_balances"),
        sa.PrimaryKeyConstraint("id", name="pk_loyalty_points_balances"),
        sa.UniqueConstraint("workspace_id", "customer_id", name="uq_loyalty_points_balances_ws_customer"),
        sqlite_autoincrement=True,
    )


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete)


def _lotteries() -> None:
    op.create_table(
        "promo_lotteries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("draws_per_day", sa.Integer(), nullable=False),
        sa.Column("points_per_draw", sa.Integer(), nullable=True),
        sa.Column("bought_per_day", sa.Integer(), nullable=True),
        sa.Column("seed_hex", sa.String(64), nullable=True),
        sa.Column("commitment", sa.String(64), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("revealed_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _ws_fk("promo_lotteries"),
        _fk("promo_lotteries", "campaign_id", "promo_campaigns", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_lotteries"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_lotteries_ws_starts", "promo_lotteries", ["workspace_id", "starts_at"])
    op.create_index("ix_promo_lotteries_campaign_id", "promo_lotteries", ["campaign_id"])
    op.create_table(
        "promo_lottery_prizes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("lottery_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.Column("coupon_template_id", BigId, nullable=True),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        _ws_fk("promo_lottery_prizes"),
        _fk("promo_lottery_prizes", "lottery_id", "promo_lotteries"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_lottery_prizes"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_lottery_prizes_lottery_position", "promo_lottery_prizes", ["lottery_id", "position"])
    op.create_table(
        "promo_lottery_draws",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("lottery_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("player", sa.String(16), nullable=False),
        sa.Column("draw_no", sa.Integer(), nullable=False),
        sa.Column("client_nonce", sa.String(64), nullable=False),
        sa.Column("local_day", sa.String(10), nullable=False),
        sa.Column("paid_points", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("chosen_prize_id", BigId, nullable=False),
        sa.Column("prize_id", BigId, nullable=False),
        sa.Column("fallback", sa.String(12), nullable=False),
        sa.Column("prize_kind", sa.String(12), nullable=False),
        sa.Column("won", sa.Boolean(), nullable=False),
        sa.Column("fulfilment", sa.String(12), nullable=False),
        sa.Column("address", JSONType, nullable=False),
        sa.Column("tracking_no", sa.String(64), nullable=False),
        sa.Column("shipped_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _ws_fk("promo_lottery_draws"),
        _fk("promo_lottery_draws", "lottery_id", "promo_lotteries"),
        _customer_fk("promo_lottery_draws"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_lottery_draws"),
        sa.UniqueConstraint("lottery_id", "customer_id", "draw_no", name="uq_promo_lottery_draws_lottery_customer_no"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_lottery_draws_ws_customer", "promo_lottery_draws", ["workspace_id", "customer_id"])
    op.create_index("ix_promo_lottery_draws_lottery_fulfilment", "promo_lottery_draws", ["lottery_id", "fulfilment"])
    op.create_table(
        "promo_lottery_day_counts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("lottery_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("local_day", sa.String(10), nullable=False),
        sa.Column("free_used", sa.Integer(), nullable=False),
        sa.Column("bought", sa.Integer(), nullable=False),
        _ws_fk("promo_lottery_day_counts"),
        _fk("promo_lottery_day_counts", "lottery_id", "promo_lotteries"),
        _customer_fk("promo_lottery_day_counts"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_lottery_day_counts"),
        sa.UniqueConstraint("lottery_id", "customer_id", "local_day", name="uq_promo_lottery_day_counts_key"),
        sqlite_autoincrement=True,
    )


def upgrade() -> None:
    _loyalty()
    _lotteries()


def downgrade() -> None:
    op.drop_table("promo_lottery_day_counts")
    op.drop_table("promo_lottery_draws")
    op.drop_table("promo_lottery_prizes")
    op.drop_table("promo_lotteries")
    op.drop_table("loyalty_points_balances")
    op.drop_table("loyalty_points_entries")
