"""lottery seeds kept sealed (Fernet, SHEQUN_SECRET_KEY) until the reveal

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-25 00:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shequn.core.security import encrypt_secret

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

lotteries = sa.table(
    "promo_lotteries",
    sa.column("id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("seed_hex", sa.String),
    sa.column("seed_sealed", sa.Text),
)


def upgrade() -> None:
    op.add_column("promo_lotteries", sa.Column("seed_sealed", sa.Text(), nullable=True))
    bind = op.get_bind()
    # Seeds not yet revealed move from plain text into the sealed column.
    rows = bind.execute(
        sa.select(lotteries.c.id, lotteries.c.seed_hex).where(
            lotteries.c.status != "revealed", lotteries.c.seed_hex.is_not(None)
        )
    ).all()
    for lottery_id, seed_hex in rows:
        bind.execute(
            lotteries.update()
            .where(lotteries.c.id == lottery_id)
            .values(seed_sealed=encrypt_secret(seed_hex), seed_hex=None)
        )


def downgrade() -> None:
    from shequn.core.security import decrypt_secret

    bind = op.get_bind()
    rows = bind.execute(
        sa.select(lotteries.c.id, lotteries.c.seed_sealed).where(lotteries.c.seed_sealed.is_not(None))
    ).all()
    for lottery_id, sealed in rows:
        bind.execute(lotteries.update().where(lotteries.c.id == lottery_id).values(seed_hex=decrypt_secret(sealed)))
    with op.batch_alter_table("promo_lotteries") as batch:
        batch.drop_column("seed_sealed")
