"""promotions: flash sales

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shequn.core.types import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete)


def _owned(table: str) -> list[Any]:
    """id, workspace, sale and customer columns every child table has."""
    return [
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("sale_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        _fk(table, "workspace_id", "workspaces"),
        _fk(table, "sale_id", "promo_flash_sales"),
        _fk(table, "customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    t = "promo_flash_sales"
    op.create_table(
        t,
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("product_id", BigId, nullable=True),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("flash_price", sa.BigInteger(), nullable=False),
        sa.Column("original_price", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("paid_units", sa.Integer(), nullable=False),
        sa.Column("per_customer_limit", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reservation_ttl_min", sa.Integer(), nullable=False),
        sa.Column("preregistration", sa.Boolean(), nullable=False),
        sa.Column("reminder_sent_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk(t, "workspace_id", "workspaces"),
        _fk(t, "campaign_id", "promo_campaigns", "SET NULL"),
        _fk(t, "product_id", "products", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_flash_sales_ws_starts", t, ["workspace_id", "starts_at"])
    op.create_index("ix_promo_flash_sales_campaign", t, ["campaign_id"])

    t = "promo_flash_customer_counts"
    op.create_table(
        t,
        *_owned(t),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.UniqueConstraint("sale_id", "customer_id", name=f"uq_{t}_sale_id_customer_id"),
        sqlite_autoincrement=True,
    )

    t = "promo_flash_reservations"
    op.create_table(
        t,
        *_owned(t),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("idem_key", sa.String(64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("order_ref", sa.String(100), nullable=False),
        sa.UniqueConstraint("ref", name=f"uq_{t}_ref"),
        sa.UniqueConstraint("sale_id", "customer_id", "idem_key", name=f"uq_{t}_sale_id_customer_id_idem_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_flash_reservations_sale_state", t, ["sale_id", "state", "expires_at"])
    op.create_index("ix_promo_flash_reservations_ws_customer", t, ["workspace_id", "customer_id"])

    t = "promo_flash_preregistrations"
    op.create_table(
        t,
        *_owned(t),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("reminded_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("sale_id", "customer_id", name=f"uq_{t}_sale_id_customer_id"),
        sqlite_autoincrement=True,
    )

    t = "promo_flash_outcomes"
    op.create_table(
        t,
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("sale_id", BigId, nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        _fk(t, "workspace_id", "workspaces"),
        _fk(t, "sale_id", "promo_flash_sales"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("sale_id", "minute", "outcome", name=f"uq_{t}_sale_id_minute_outcome"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for t in (
        "promo_flash_outcomes",
        "promo_flash_preregistrations",
        "promo_flash_reservations",
        "promo_flash_customer_counts",
        "promo_flash_sales",
    ):
        op.drop_table(t)
