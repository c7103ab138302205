"""promotions: coupons (templates, unique codes, grants) and the core outbox of member messages

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shequn.core.types import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _ws_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=f"fk_{table}_workspace_id_workspaces", ondelete="CASCADE"
    )


def _templates() -> None:
    t = "promo_coupon_templates"
    op.create_table(
        t,
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=False),
        sa.Column("max_discount_fen", sa.BigInteger(), nullable=True),
        sa.Column("min_order_fen", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(12), nullable=False),
        sa.Column("scope_skus", JSONType, nullable=False),
        sa.Column("scope_categories", JSONType, nullable=False),
        sa.Column("validity", sa.String(8), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("total_stock", sa.Integer(), nullable=True),
        sa.Column("issued_count", sa.Integer(), nullable=False),
        sa.Column("redeemed_count", sa.Integer(), nullable=False),
        sa.Column("per_customer_limit", sa.Integer(), nullable=False),
        sa.Column("per_phone_limit", sa.Integer(), nullable=True),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("code_mode", sa.String(8), nullable=False),
        sa.Column("public_code", sa.String(32), nullable=True),
        sa.Column("budget_fen", sa.BigInteger(), nullable=True),
        sa.Column("committed_fen", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _ws_fk(t),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["promo_campaigns.id"], name=f"fk_{t}_campaign_id_promo_campaigns", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("workspace_id", "public_code", name=f"uq_{t}_workspace_id_public_code"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_coupon_templates_ws_status", t, ["workspace_id", "status"])
    op.create_index("ix_promo_coupon_templates_campaign", t, ["campaign_id"])


def _codes() -> None:
    t = "promo_coupon_codes"
    op.create_table(
        t,
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("template_id", BigId, nullable=False),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("grant_id", BigId, nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _ws_fk(t),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["promo_coupon_templates.id"],
            name=f"fk_{t}_template_id_promo_coupon_templates",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("workspace_id", "code", name=f"uq_{t}_workspace_id_code"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_coupon_codes_template", t, ["template_id", "id"])


def _grants() -> None:
    t = "promo_coupon_grants"
    op.create_table(
        t,
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("template_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("source_ref", sa.String(80), nullable=False),
        sa.Column("phone_slot", sa.String(80), nullable=True),
        sa.Column("code", sa.String(32), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("face_fen", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("order_ref", sa.String(120), nullable=True),
        sa.Column("order_id", BigId, nullable=True),
        sa.Column("order_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(), nullable=True),
        sa.Column("reversed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("template_id", "source", "source_ref", name=f"uq_{t}_template_id_source_source_ref"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_coupon_grants_ws_customer", t, ["workspace_id", "customer_id", "template_id"])
    has_ref = sa.text("order_ref IS NOT NULL")
    op.create_index(
        "ix_promo_coupon_grants_ws_order",
        t,
        ["workspace_id", "order_ref"],
        postgresql_where=has_ref,
        sqlite_where=has_ref,
    )
    has_slot = sa.text("phone_slot IS NOT NULL")
    op.create_index(
        "uq_promo_coupon_grants_template_id_phone_slot",
        t,
        ["template_id", "phone_slot"],
        unique=True,
        postgresql_where=has_slot,
        sqlite_where=has_slot,
    )


def _outbox() -> None:
    t = "outbox_messages"
    op.create_table(
        t,
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("workspace_id", "dedupe_key", name=f"uq_{t}_workspace_id_dedupe_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_messages_status_id", t, ["status", "id"])


def upgrade() -> None:
    _templates()
    _codes()
    _grants()
    _outbox()


def downgrade() -> None:
    op.drop_table("outbox_messages")
    op.drop_table("promo_coupon_grants")
    op.drop_table("promo_coupon_codes")
    op.drop_table("promo_coupon_templates")
