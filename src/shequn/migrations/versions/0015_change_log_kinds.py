"""change-log kinds and earliest day, covering index for a few customers' activity

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_changes", schema=None) as batch_op:
        # 0 (rows written before this column) reads as "everything changed".
        batch_op.add_column(sa.Column("kinds", sa.SmallInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("min_day", sa.Integer(), nullable=True))
    with op.batch_alter_table("customer_activity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_activity_customer_day",
            ["customer_id", "day"],
            unique=False,
            postgresql_include=["kind", "ref", "count", "amount"],
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_activity_customer_day")
    with op.batch_alter_table("customer_changes", schema=None) as batch_op:
        batch_op.drop_column("min_day")
        batch_op.drop_column("kinds")
