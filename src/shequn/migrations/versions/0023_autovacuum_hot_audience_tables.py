"""autovacuum sooner on the audience tables the incremental segment job reads and writes (PostgreSQL)

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-24 22:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The job's catch-up reads today's activity rows and the changed customers by index-only scans; with the
# default thresholds (20% of a 10M-row table) their pages stay not-all-visible and full of dead versions
# for hours, and the catch-up measured 0.7–0.8 s instead of 0.3 s until a VACUUM (docs/benchmarks.md).
TABLES = ("customer_activity", "customers", "customer_changes", "customer_tags")
SETTINGS = (
    "autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02, "
    "autovacuum_analyze_scale_factor = 0.02"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET ({SETTINGS})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor, "
            "autovacuum_analyze_scale_factor)"
        )
