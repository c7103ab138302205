"""UGC: posts, topics, reviews, questions, answers, reactions

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 18:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.core.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, shequn.core.types.UTCDateTime(timezone=True), nullable=nullable)


def _ws(table: str) -> list[Any]:
    return [
        sa.Column("workspace_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
        ),
    ]


def _moderation() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("moderation_reason", sa.String(length=255), nullable=False),
        sa.Column("moderated_by", ID, nullable=True),
        _ts("moderated_at", True),
    ]


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "ugc_posts",
        sa.Column("id", ID, nullable=False),
        *_ws("ugc_posts"),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("operator_id", ID, nullable=True),
        sa.Column("author_name", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("hashtags", JSON, nullable=False),
        sa.Column("media", JSON, nullable=False),
        sa.Column("product_id", ID, nullable=True),
        sa.Column("featured", sa.Boolean(), nullable=False),
        _ts("featured_at", True),
        sa.Column("accepted_comment_id", ID, nullable=True),
        sa.Column("comments_count", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        *_moderation(),
        _fk("ugc_posts", "community_id", "communities", "CASCADE"),
        _fk("ugc_posts", "customer_id", "customers", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_posts")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ugc_posts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ugc_posts_ws_community_status", ["workspace_id", "community_id", "status", "created_at"], unique=False
        )
        batch_op.create_index("ix_ugc_posts_ws_status", ["workspace_id", "status", "created_at"], unique=False)
        batch_op.create_index("ix_ugc_posts_ws_customer", ["workspace_id", "customer_id"], unique=False)

    op.create_table(
        "ugc_comments",
        sa.Column("id", ID, nullable=False),
        *_ws("ugc_comments"),
        sa.Column("post_id", ID, nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("operator_id", ID, nullable=True),
        sa.Column("author_name", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _ts("created_at"),
        *_moderation(),
        _fk("ugc_comments", "post_id", "ugc_posts", "CASCADE"),
        _fk("ugc_comments", "parent_id", "ugc_comments", "CASCADE"),
        _fk("ugc_comments", "customer_id", "customers", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_comments")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ugc_comments", schema=None) as batch_op:
        batch_op.create_index("ix_ugc_comments_post", ["post_id", "created_at"], unique=False)
        batch_op.create_index("ix_ugc_comments_ws_status", ["workspace_id", "status", "created_at"], unique=False)

    op.create_table(
        "ugc_topics",
        sa.Column("id", ID, nullable=False),
        *_ws("ugc_topics"),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("posts_count", sa.Integer(), nullable=False),
        _ts("last_post_at", True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_topics")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_ugc_topics_workspace_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ugc_post_topics",
        sa.Column("post_id", ID, nullable=False),
        sa.Column("topic_id", ID, nullable=False),
        *_ws("ugc_post_topics"),
        _fk("ugc_post_topics", "post_id", "ugc_posts", "CASCADE"),
        _fk("ugc_post_topics", "topic_id", "ugc_topics", "CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "topic_id", name=op.f("pk_ugc_post_topics")),
    )
    with op.batch_alter_table("ugc_post_topics", schema=None) as batch_op:
        batch_op.create_index("ix_ugc_post_topics_topic", ["topic_id", "post_id"], unique=False)

    op.create_table(
        "ugc_reviews",
        sa.Column("id", ID, nullable=False),
        *_ws("ugc_reviews"),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=True),
        sa.Column("author_name", sa.String(length=120), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("media", JSON, nullable=False),
        sa.Column("verified_purchase", sa.Boolean(), nullable=False),
        sa.Column("helpful_count", sa.Integer(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("edits", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        *_moderation(),
        _fk("ugc_reviews", "product_id", "products", "CASCADE"),
        _fk("ugc_reviews", "customer_id", "customers", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_reviews")),
        sa.UniqueConstraint(
            "workspace_id", "product_id", "customer_id", name=op.f("uq_ugc_reviews_workspace_id_product_id_customer_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ugc_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ugc_reviews_product_status", ["workspace_id", "product_id", "status", "created_at"], unique=False
        )
        batch_op.create_index("ix_ugc_reviews_ws_status", ["workspace_id", "status", "created_at"], unique=False)

    op.create_table(
        "ugc_review_votes",
        sa.Column("review_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        *_ws("ugc_review_votes"),
        _ts("created_at"),
        _fk("ugc_review_votes", "review_id", "ugc_reviews", "CASCADE"),
        _fk("ugc_review_votes", "customer_id", "customers", "CASCADE"),
        sa.PrimaryKeyConstraint("review_id", "customer_id", name=op.f("pk_ugc_review_votes")),
    )
    op.create_table(
        "ugc_reactions",
        sa.Column("id", ID, nullable=False),
        *_ws("ugc_reactions"),
        sa.Column("item_type", sa.String(length=10), nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        _ts("created_at"),
        _fk("ugc_reactions", "customer_id", "customers", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_reactions")),
        sa.UniqueConstraint(
            "workspace_id",
            "item_type",
            "item_id",
            "customer_id",
            "kind",
            name="uq_ugc_reactions_item_customer_kind",
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ugc_reactions", schema=None) as batch_op:
        batch_op.create_index("ix_ugc_reactions_item", ["workspace_id", "item_type", "item_id"], unique=False)

    op.create_table(
        "ugc_media",
        sa.Column("id", ID, nullable=False),
        *_ws("ugc_media"),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("operator_id", ID, nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_media")),
        sa.UniqueConstraint("workspace_id", "sha256", name=op.f("uq_ugc_media_workspace_id_sha256")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ugc_settings",
        *_ws("ugc_settings"),
        sa.Column("review_moderation", sa.String(length=4), nullable=False),
        sa.Column("post_moderation", sa.String(length=4), nullable=False),
        sa.Column("community_moderation", JSON, nullable=False),
        sa.Column("widget_origins", JSON, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_ugc_settings")),
    )


def downgrade() -> None:
    for table in (
        "ugc_settings",
        "ugc_media",
        "ugc_reactions",
        "ugc_review_votes",
        "ugc_reviews",
        "ugc_post_topics",
        "ugc_topics",
        "ugc_comments",
        "ugc_posts",
    ):
        op.drop_table(table)
