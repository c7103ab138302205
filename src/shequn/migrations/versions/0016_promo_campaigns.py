"""promotions: campaigns

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shequn.core.types import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "promo_campaigns",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("goal", sa.String(24), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("budget_fen", sa.BigInteger(), nullable=True),
        sa.Column("spent_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("target_segment_id", BigId, nullable=True),
        sa.Column("target_community_id", BigId, nullable=True),
        sa.Column("channels", JSONType, nullable=False),
        sa.Column("kpis", JSONType, nullable=False),
        sa.Column("utm_campaign", sa.String(64), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_promo_campaigns_workspace_id_workspaces", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_promo_campaigns"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_campaigns_ws_starts", "promo_campaigns", ["workspace_id", "starts_at"])
    op.create_index("ix_promo_campaigns_ws_status", "promo_campaigns", ["workspace_id", "status"])


def downgrade() -> None:
    op.drop_table("promo_campaigns")
