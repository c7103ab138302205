"""communities, members, membership changes, policies, enforcements

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.core.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "communities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("visibility", sa.String(length=12), nullable=False),
        sa.Column("nature", sa.String(length=12), nullable=False),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.Column("partner_name", sa.String(length=100), nullable=False),
        sa.Column("theme", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rules_text", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("owner_operator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("members_count", sa.Integer(), nullable=False),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_communities_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_communities_workspace_id_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index("ix_communities_ws_status", ["workspace_id", "status"], unique=False)

    op.create_table(
        "community_members",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("join_source", sa.String(length=12), nullable=False),
        sa.Column("invite_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("inviter_customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("nickname", sa.String(length=64), nullable=False),
        sa.Column("strikes", sa.Integer(), nullable=False),
        sa.Column("joined_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("muted_until", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("probation_until", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_active_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_members_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_community_members_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_members_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_members")),
        sa.UniqueConstraint("community_id", "customer_id", name=op.f("uq_community_members_community_id_customer_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_members", schema=None) as batch_op:
        batch_op.create_index("ix_community_members_community_status", ["community_id", "status"], unique=False)
        batch_op.create_index("ix_community_members_ws_customer", ["workspace_id", "customer_id"], unique=False)

    op.create_table(
        "community_member_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=False),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("actor_operator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_member_changes_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["community_members.id"],
            name=op.f("fk_community_member_changes_member_id_community_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_member_changes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_member_changes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_member_changes", schema=None) as batch_op:
        batch_op.create_index("ix_community_member_changes_community_at", ["community_id", "created_at"], unique=False)
        batch_op.create_index("ix_community_member_changes_member", ["member_id"], unique=False)

    op.create_table(
        "community_policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_policies_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_policies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_policies")),
        sa.UniqueConstraint("community_id", "kind", name=op.f("uq_community_policies_community_id_kind")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_community_policies_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "community_enforcements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column(
            "evidence", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("strike", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("undone_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("undone_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("appeal_status", sa.String(length=12), nullable=False),
        sa.Column("appeal_text", sa.Text(), nullable=False),
        sa.Column("appealed_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("appeal_decided_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("appeal_decided_at", shequn.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_enforcements_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["community_members.id"],
            name=op.f("fk_community_enforcements_member_id_community_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_enforcements_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_enforcements")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_enforcements", schema=None) as batch_op:
        batch_op.create_index("ix_community_enforcements_community_at", ["community_id", "created_at"], unique=False)
        batch_op.create_index("ix_community_enforcements_ws_appeal", ["workspace_id", "appeal_status"], unique=False)
        batch_op.create_index("ix_community_enforcements_ws_customer", ["workspace_id", "customer_id"], unique=False)

    op.create_table(
        "community_activity_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_activity_daily_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_activity_daily_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_activity_daily")),
        sa.UniqueConstraint(
            "community_id",
            "customer_id",
            "kind",
            "day",
            name=op.f("uq_community_activity_daily_community_id_customer_id_kind_day"),
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_activity_daily", schema=None) as batch_op:
        batch_op.create_index("ix_community_activity_daily_community_day", ["community_id", "day"], unique=False)

    op.create_table(
        "community_post_marks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("text_hash", sa.String(length=32), nullable=False),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_post_marks_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_post_marks_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_post_marks")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_post_marks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_post_marks_member_at", ["community_id", "customer_id", "created_at"], unique=False
        )

    op.create_table(
        "community_sync_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("result", sa.String(length=24), nullable=False),
        sa.Column("created_at", shequn.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_sync_events_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_sync_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_sync_events")),
        sa.UniqueConstraint("community_id", "event_id", name=op.f("uq_community_sync_events_community_id_event_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("community_sync_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_community_sync_events_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    op.drop_table("community_sync_events")
    op.drop_table("community_post_marks")
    op.drop_table("community_activity_daily")
    op.drop_table("community_enforcements")
    op.drop_table("community_policies")
    op.drop_table("community_member_changes")
    op.drop_table("community_members")
    op.drop_table("communities")
