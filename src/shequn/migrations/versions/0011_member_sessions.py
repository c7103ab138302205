"""member sessions for the H5 pages

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shequn.core.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "member_sessions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("ticket_nonce", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_member_sessions_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_member_sessions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_sessions")),
        sa.UniqueConstraint("ticket_nonce", name=op.f("uq_member_sessions_ticket_nonce")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_member_sessions_token_hash")),
    )
    op.create_index("ix_member_sessions_customer", "member_sessions", ["customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_member_sessions_customer", table_name="member_sessions")
    op.drop_table("member_sessions")
