"""purchase backlog: orders, customers and days whose facts, activity and rollups a bulk import left to derive

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-25 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "purchase_backlog",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("workspace_id", BIGID, nullable=False),
        sa.Column("customer_id", BIGID, nullable=True),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("order_ids", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_purchase_backlog_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_backlog")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("purchase_backlog")
