"""promotions: anti-abuse guard (rate-limit counters, sightings, flagged events, blacklist, limit overrides)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shequn.core.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = shequn.core.types.UTCDateTime(timezone=True)


def _ws_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "promo_guard_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tat_us", sa.BigInteger(), nullable=False),
        sa.Column("window_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_promo_guard_counters")),
    )
    op.create_index(op.f("ix_promo_guard_counters_tat_us"), "promo_guard_counters", ["tat_us"], unique=False)

    op.create_table(
        "promo_guard_sightings",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("workspace_id", BIGID, nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("customer_id", BIGID, nullable=False),
        sa.Column("seen_us", sa.BigInteger(), nullable=False),
        _ws_fk("promo_guard_sightings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_guard_sightings")),
        sa.UniqueConstraint(
            "workspace_id",
            "subject",
            "customer_id",
            name=op.f("uq_promo_guard_sightings_workspace_id_subject_customer_id"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_promo_guard_sightings_recent", "promo_guard_sightings", ["workspace_id", "subject", "seen_us"], unique=False
    )

    op.create_table(
        "promo_guard_flags",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("workspace_id", BIGID, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("customer_id", BIGID, nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("phone_hash", sa.String(length=128), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("bucket_at", TS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        _ws_fk("promo_guard_flags"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_guard_flags")),
        sa.UniqueConstraint(
            "workspace_id",
            "action",
            "rule",
            "subject",
            "bucket_at",
            name=op.f("uq_promo_guard_flags_workspace_id_action_rule_subject_bucket_at"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_guard_flags_ws_bucket", "promo_guard_flags", ["workspace_id", "bucket_at"], unique=False)

    op.create_table(
        "promo_guard_blocks",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("workspace_id", BIGID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("until", TS, nullable=True),
        sa.Column("created_by", BIGID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _ws_fk("promo_guard_blocks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_guard_blocks")),
        sa.UniqueConstraint(
            "workspace_id", "kind", "value", name=op.f("uq_promo_guard_blocks_workspace_id_kind_value")
        ),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "promo_guard_limits",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("workspace_id", BIGID, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("window_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _ws_fk("promo_guard_limits"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_guard_limits")),
        sa.UniqueConstraint(
            "workspace_id", "action", "rule", name=op.f("uq_promo_guard_limits_workspace_id_action_rule")
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("promo_guard_limits")
    op.drop_table("promo_guard_blocks")
    op.drop_index("ix_promo_guard_flags_ws_bucket", table_name="promo_guard_flags")
    op.drop_table("promo_guard_flags")
    op.drop_index("ix_promo_guard_sightings_recent", table_name="promo_guard_sightings")
    op.drop_table("promo_guard_sightings")
    op.drop_index(op.f("ix_promo_guard_counters_tat_us"), table_name="promo_guard_counters")
    op.drop_table("promo_guard_counters")
