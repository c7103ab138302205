"""promotions: quizzes and challenges

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-24 21:40:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shequn.core.types import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete)


def _prize_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("prize_kind", sa.String(10), nullable=False),
        sa.Column("prize_name", sa.String(120), nullable=False),
        sa.Column("prize_coupon_template_id", BigId, nullable=True),
        sa.Column("prize_points", sa.Integer(), nullable=False),
        sa.Column("prize_cost_fen", sa.BigInteger(), nullable=False),
    ]


def _won_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("win_rank", sa.Integer(), nullable=True),
        sa.Column("won", sa.Boolean(), nullable=False),
        sa.Column("prize_status", sa.String(10), nullable=False),
        sa.Column("prize_ref", sa.String(64), nullable=False),
        sa.Column("prize_cost_fen", sa.BigInteger(), nullable=False),
    ]


def _quizzes() -> None:
    op.create_table(
        "promo_quizzes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("time_limit_s", sa.Integer(), nullable=False),
        sa.Column("pass_mark", sa.Integer(), nullable=True),
        sa.Column("prize_rule", sa.String(8), nullable=False),
        sa.Column("winners_cap", sa.Integer(), nullable=True),
        *_prize_columns(),
        sa.Column("winners_count", sa.Integer(), nullable=False),
        sa.Column("attempts_count", sa.Integer(), nullable=False),
        sa.Column("seed_hash", sa.String(64), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("drawn_at", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("promo_quizzes", "workspace_id", "workspaces"),
        _fk("promo_quizzes", "campaign_id", "promo_campaigns", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_quizzes"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_quizzes_ws_starts", "promo_quizzes", ["workspace_id", "starts_at"])
    op.create_index("ix_promo_quizzes_campaign", "promo_quizzes", ["campaign_id"])

    op.create_table(
        "promo_quiz_questions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("quiz_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("options", JSONType, nullable=False),
        sa.Column("correct", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("promo_quiz_questions", "workspace_id", "workspaces"),
        _fk("promo_quiz_questions", "quiz_id", "promo_quizzes"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_quiz_questions"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_quiz_questions_quiz", "promo_quiz_questions", ["quiz_id", "position"])

    op.create_table(
        "promo_quiz_attempts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("quiz_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("phone_masked", sa.String(20), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("deadline_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("correct_count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        *_won_columns(),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("promo_quiz_attempts", "workspace_id", "workspaces"),
        _fk("promo_quiz_attempts", "quiz_id", "promo_quizzes"),
        _fk("promo_quiz_attempts", "customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_quiz_attempts"),
        sa.UniqueConstraint("quiz_id", "customer_id", name="uq_promo_quiz_attempts_quiz_customer"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_quiz_attempts_quiz_status", "promo_quiz_attempts", ["quiz_id", "status", "submitted_at"])
    op.create_index("ix_promo_quiz_attempts_ws_customer", "promo_quiz_attempts", ["workspace_id", "customer_id"])

    op.create_table(
        "promo_quiz_answers",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("quiz_id", BigId, nullable=False),
        sa.Column("attempt_id", BigId, nullable=False),
        sa.Column("question_id", BigId, nullable=False),
        sa.Column("choices", JSONType, nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=False),
        _fk("promo_quiz_answers", "workspace_id", "workspaces"),
        _fk("promo_quiz_answers", "quiz_id", "promo_quizzes"),
        _fk("promo_quiz_answers", "attempt_id", "promo_quiz_attempts"),
        _fk("promo_quiz_answers", "question_id", "promo_quiz_questions"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_quiz_answers"),
        sa.UniqueConstraint("attempt_id", "question_id", name="uq_promo_quiz_answers_attempt_question"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_quiz_answers_quiz_question", "promo_quiz_answers", ["quiz_id", "question_id"])


def _challenges() -> None:
    op.create_table(
        "promo_challenges",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("community_id", BigId, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("hashtag", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(6), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("entry_starts_at", UTCDateTime(), nullable=False),
        sa.Column("entry_ends_at", UTCDateTime(), nullable=False),
        sa.Column("vote_starts_at", UTCDateTime(), nullable=False),
        sa.Column("vote_ends_at", UTCDateTime(), nullable=False),
        sa.Column("max_votes_per_member", sa.Integer(), nullable=False),
        sa.Column("winners_cap", sa.Integer(), nullable=False),
        *_prize_columns(),
        sa.Column("entries_count", sa.Integer(), nullable=False),
        sa.Column("votes_count", sa.Integer(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("results_published_at", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("promo_challenges", "workspace_id", "workspaces"),
        _fk("promo_challenges", "campaign_id", "promo_campaigns", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_challenges"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_challenges_ws_entry", "promo_challenges", ["workspace_id", "entry_starts_at"])
    op.create_index("ix_promo_challenges_campaign", "promo_challenges", ["campaign_id"])

    op.create_table(
        "promo_challenge_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("challenge_id", BigId, nullable=False),
        sa.Column("post_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("author_name", sa.String(120), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("excerpt", sa.String(280), nullable=False),
        sa.Column("media", sa.String(64), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("votes_count", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("judged_by", BigId, nullable=True),
        sa.Column("judged_at", UTCDateTime(), nullable=True),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        *_won_columns(),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("promo_challenge_entries", "workspace_id", "workspaces"),
        _fk("promo_challenge_entries", "challenge_id", "promo_challenges"),
        _fk("promo_challenge_entries", "customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_challenge_entries"),
        sa.UniqueConstraint("challenge_id", "post_id", name="uq_promo_challenge_entries_challenge_post"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_promo_challenge_entries_rank", "promo_challenge_entries", ["challenge_id", "status", "votes_count"]
    )
    op.create_index(
        "ix_promo_challenge_entries_ws_customer", "promo_challenge_entries", ["workspace_id", "customer_id"]
    )

    op.create_table(
        "promo_challenge_votes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("challenge_id", BigId, nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("promo_challenge_votes", "workspace_id", "workspaces"),
        _fk("promo_challenge_votes", "challenge_id", "promo_challenges"),
        _fk("promo_challenge_votes", "entry_id", "promo_challenge_entries"),
        _fk("promo_challenge_votes", "customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name="pk_promo_challenge_votes"),
        sa.UniqueConstraint("entry_id", "customer_id", name="uq_promo_challenge_votes_entry_customer"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_promo_challenge_votes_challenge_time", "promo_challenge_votes", ["challenge_id", "created_at"])

    op.create_table(
        "promo_challenge_voters",
        sa.Column("challenge_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("votes_used", sa.Integer(), nullable=False),
        _fk("promo_challenge_voters", "challenge_id", "promo_challenges"),
        _fk("promo_challenge_voters", "customer_id", "customers"),
        _fk("promo_challenge_voters", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("challenge_id", "customer_id", name="pk_promo_challenge_voters"),
    )


def upgrade() -> None:
    _quizzes()
    _challenges()


def downgrade() -> None:
    for table in (
        "promo_challenge_voters",
        "promo_challenge_votes",
        "promo_challenge_entries",
        "promo_challenges",
        "promo_quiz_answers",
        "promo_quiz_attempts",
        "promo_quiz_questions",
        "promo_quizzes",
    ):
        op.drop_table(table)
