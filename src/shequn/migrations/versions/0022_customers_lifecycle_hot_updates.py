"""customers: no lifecycle index, free space per page, so stage updates are HOT on PostgreSQL

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_ws_lifecycle")
    if op.get_bind().dialect.name == "postgresql":
        # Pages keep 10% free so an update of unindexed columns stays on its page (no index writes).
        op.execute("ALTER TABLE customers SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customers RESET (fillfactor)")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_ws_lifecycle", ["workspace_id", "lifecycle"], unique=False)
