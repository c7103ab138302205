"""invites, referrals, referral rewards

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.core.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, shequn.core.types.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "invites",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("inviter_customer_id", ID, nullable=True),
        sa.Column("personal_key", sa.String(length=48), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        _ts("expires_at", True),
        sa.Column("pre_approved", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("creator_device_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        _ts("created_at"),
        _ts("disabled_at", True),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_invites_uses_non_negative")),
        sa.CheckConstraint("max_uses IS NULL OR uses <= max_uses", name=op.f("ck_invites_uses_within_max")),
        _fk("invites", "workspace_id", "workspaces"),
        _fk("invites", "community_id", "communities"),
        _fk("invites", "inviter_customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code", name=op.f("uq_invites_code")),
        sa.UniqueConstraint("workspace_id", "personal_key", name=op.f("uq_invites_workspace_id_personal_key")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index("ix_invites_ws_community", ["workspace_id", "community_id"], unique=False)
        batch_op.create_index("ix_invites_ws_inviter", ["workspace_id", "inviter_customer_id"], unique=False)

    op.create_table(
        "invite_uses",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("invite_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("inviter_customer_id", ID, nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("member_status", sa.String(length=10), nullable=False),
        _ts("created_at"),
        _fk("invite_uses", "workspace_id", "workspaces"),
        _fk("invite_uses", "invite_id", "invites"),
        _fk("invite_uses", "customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_uses")),
        sa.UniqueConstraint("invite_id", "customer_id", name=op.f("uq_invite_uses_invite_id_customer_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("invite_uses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invite_uses_ws_inviter_time", ["workspace_id", "inviter_customer_id", "created_at"], unique=False
        )

    op.create_table(
        "referrals",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("referee_customer_id", ID, nullable=False),
        sa.Column("inviter_customer_id", ID, nullable=False),
        sa.Column("invite_id", ID, nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("root_customer_id", ID, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("fraud_reason", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        _ts("created_at"),
        _ts("qualified_at", True),
        _ts("left_at", True),
        sa.CheckConstraint("referee_customer_id <> inviter_customer_id", name=op.f("ck_referrals_not_self")),
        sa.CheckConstraint("depth >= 1", name=op.f("ck_referrals_depth_positive")),
        _fk("referrals", "workspace_id", "workspaces"),
        _fk("referrals", "community_id", "communities"),
        _fk("referrals", "referee_customer_id", "customers"),
        _fk("referrals", "inviter_customer_id", "customers"),
        _fk("referrals", "invite_id", "invites", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint(
            "community_id", "referee_customer_id", name=op.f("uq_referrals_community_id_referee_customer_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referrals_ws_community_inviter", ["workspace_id", "community_id", "inviter_customer_id"], unique=False
        )
        batch_op.create_index("ix_referrals_ws_inviter", ["workspace_id", "inviter_customer_id"], unique=False)
        batch_op.create_index("ix_referrals_ws_created", ["workspace_id", "created_at"], unique=False)

    op.create_table(
        "referral_milestones",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=True),
        sa.Column("invite_id", ID, nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("invitees_required", sa.Integer(), nullable=False),
        sa.Column("stay_days", sa.Integer(), nullable=False),
        sa.Column("reward_kind", sa.String(length=10), nullable=False),
        sa.Column("reward_value", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("invitees_required >= 1", name=op.f("ck_referral_milestones_invitees_positive")),
        sa.CheckConstraint("stay_days >= 0", name=op.f("ck_referral_milestones_stay_days_non_negative")),
        _fk("referral_milestones", "workspace_id", "workspaces"),
        _fk("referral_milestones", "community_id", "communities"),
        _fk("referral_milestones", "invite_id", "invites"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_milestones")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("referral_milestones", schema=None) as batch_op:
        batch_op.create_index("ix_referral_milestones_ws", ["workspace_id", "active"], unique=False)

    op.create_table(
        "referral_rewards",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("milestone_id", ID, nullable=False),
        sa.Column("inviter_customer_id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=True),
        sa.Column("reward_kind", sa.String(length=10), nullable=False),
        sa.Column("reward_value", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("qualifying", JSON, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _fk("referral_rewards", "workspace_id", "workspaces"),
        _fk("referral_rewards", "milestone_id", "referral_milestones"),
        _fk("referral_rewards", "inviter_customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_rewards")),
        sa.UniqueConstraint(
            "milestone_id", "inviter_customer_id", name=op.f("uq_referral_rewards_milestone_id_inviter_customer_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.create_index("ix_referral_rewards_ws_status", ["workspace_id", "status"], unique=False)

    op.create_table(
        "fission_fraud_flags",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("inviter_customer_id", ID, nullable=False),
        sa.Column("referral_id", ID, nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reviewed_by", ID, nullable=True),
        _ts("reviewed_at", True),
        _ts("created_at"),
        _fk("fission_fraud_flags", "workspace_id", "workspaces"),
        _fk("fission_fraud_flags", "community_id", "communities"),
        _fk("fission_fraud_flags", "inviter_customer_id", "customers"),
        _fk("fission_fraud_flags", "referral_id", "referrals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fission_fraud_flags")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("fission_fraud_flags", schema=None) as batch_op:
        batch_op.create_index("ix_fission_fraud_flags_ws_status", ["workspace_id", "status"], unique=False)
        batch_op.create_index(
            "ix_fission_fraud_flags_ws_inviter", ["workspace_id", "inviter_customer_id"], unique=False
        )

    op.create_table(
        "fission_settings",
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("burst_joins", sa.Integer(), nullable=False),
        sa.Column("burst_minutes", sa.Integer(), nullable=False),
        _fk("fission_settings", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_fission_settings")),
    )


def downgrade() -> None:
    for table in (
        "fission_settings",
        "fission_fraud_flags",
        "referral_rewards",
        "referral_milestones",
        "referrals",
        "invite_uses",
        "invites",
    ):
        op.drop_table(table)
