"""gatherings, registrations, check-ins, reminders, feedback

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shequn.core.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gatherings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=12), nullable=False),
        sa.Column("visibility", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("join_url", sa.String(length=500), nullable=False),
        sa.Column("venue", sa.String(length=120), nullable=False),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("cover_url", sa.String(length=500), nullable=False),
        sa.Column("starts_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("registration_opens_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("registration_closes_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checkin_opens_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("waitlist_enabled", sa.Boolean(), nullable=False),
        sa.Column("seats_taken", sa.Integer(), nullable=False),
        sa.Column("waitlist_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("cancel_reason", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("published_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_gatherings_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatherings")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gatherings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gatherings_community_id"), ["community_id"], unique=False)
        batch_op.create_index("ix_gatherings_status_starts", ["status", "starts_at"], unique=False)
        batch_op.create_index("ix_gatherings_ws_starts", ["workspace_id", "starts_at"], unique=False)
        batch_op.create_index("ix_gatherings_ws_status_starts", ["workspace_id", "status", "starts_at"], unique=False)

    op.create_table(
        "gathering_registrations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gathering_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone_masked", sa.String(length=20), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("queued_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("promoted_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=12), nullable=False),
        sa.Column("late_cancel", sa.Boolean(), nullable=False),
        sa.Column("checked_in_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_gathering_registrations_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["gathering_id"],
            ["gatherings.id"],
            name=op.f("fk_gathering_registrations_gathering_id_gatherings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_gathering_registrations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gathering_registrations")),
        sa.UniqueConstraint("gathering_id", "code", name=op.f("uq_gathering_registrations_gathering_id_code")),
        sa.UniqueConstraint(
            "gathering_id", "customer_id", name=op.f("uq_gathering_registrations_gathering_id_customer_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gathering_registrations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gathering_registrations_queue", ["gathering_id", "status", "queued_at", "id"], unique=False
        )
        batch_op.create_index("ix_gathering_registrations_ws_customer", ["workspace_id", "customer_id"], unique=False)

    op.create_table(
        "gathering_checkins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gathering_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("registration_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("operator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gathering_id"],
            ["gatherings.id"],
            name=op.f("fk_gathering_checkins_gathering_id_gatherings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["gathering_registrations.id"],
            name=op.f("fk_gathering_checkins_registration_id_gathering_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_gathering_checkins_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gathering_checkins")),
        sa.UniqueConstraint("registration_id", name=op.f("uq_gathering_checkins_registration_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gathering_checkins", schema=None) as batch_op:
        batch_op.create_index("ix_gathering_checkins_gathering", ["gathering_id", "created_at"], unique=False)

    op.create_table(
        "gathering_feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gathering_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("registration_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gathering_id"],
            ["gatherings.id"],
            name=op.f("fk_gathering_feedback_gathering_id_gatherings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["gathering_registrations.id"],
            name=op.f("fk_gathering_feedback_registration_id_gathering_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_gathering_feedback_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gathering_feedback")),
        sa.UniqueConstraint("registration_id", name=op.f("uq_gathering_feedback_registration_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gathering_feedback", schema=None) as batch_op:
        batch_op.create_index("ix_gathering_feedback_gathering", ["gathering_id"], unique=False)

    op.create_table(
        "gathering_reminders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gathering_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("registration_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["gathering_id"],
            ["gatherings.id"],
            name=op.f("fk_gathering_reminders_gathering_id_gatherings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["gathering_registrations.id"],
            name=op.f("fk_gathering_reminders_registration_id_gathering_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_gathering_reminders_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gathering_reminders")),
        sa.UniqueConstraint("registration_id", "kind", name=op.f("uq_gathering_reminders_registration_id_kind")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gathering_reminders", schema=None) as batch_op:
        batch_op.create_index("ix_gathering_reminders_gathering", ["gathering_id", "kind"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes on both dialects.
    for table in ("gathering_reminders", "gathering_feedback", "gathering_checkins", "gathering_registrations"):
        op.drop_table(table)
    op.drop_table("gatherings")
