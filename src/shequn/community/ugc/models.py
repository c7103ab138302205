"""UGC tables: posts and questions, comments and answers, topics, product reviews, reactions, media."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequn.core.clock import utcnow
from shequn.core.types import Base, BigId, JSONType, UTCDateTime


class ModeratedMixin:
    """The moderation state every UGC item carries: who decided what, when and why."""

    status: Mapped[str] = mapped_column(String(10), default="approved")  # pending|approved|rejected|hidden
    moderation_reason: Mapped[str] = mapped_column(String(255), default="")
    moderated_by: Mapped[int | None] = mapped_column(BigId)  # operator id (plain: operators may be removed)
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Post(ModeratedMixin, Base):
    """A post or a question in a community; a question may name a product and have an accepted answer."""

    __tablename__ = "ugc_posts"
    __table_args__ = (
        Index("ix_ugc_posts_ws_community_status", "workspace_id", "community_id", "status", "created_at"),
        Index("ix_ugc_posts_ws_status", "workspace_id", "status", "created_at"),
        Index("ix_ugc_posts_ws_customer", "workspace_id", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default="post")  # post | question
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    operator_id: Mapped[int | None] = mapped_column(BigId)
    author_name: Mapped[str] = mapped_column(String(120), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    hashtags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    media: Mapped[list[str]] = mapped_column(JSONType, default=list)  # content hashes of ugc_media rows
    product_id: Mapped[int | None] = mapped_column(BigId)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    featured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_comment_id: Mapped[int | None] = mapped_column(BigId)
    comments_count: Mapped[int] = mapped_column(Integer, default=0)  # approved comments/answers
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Comment(ModeratedMixin, Base):
    """A comment on a post (threaded by parent_id), or an answer to a question."""

    __tablename__ = "ugc_comments"
    __table_args__ = (
        Index("ix_ugc_comments_post", "post_id", "created_at"),
        Index("ix_ugc_comments_ws_status", "workspace_id", "status", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("ugc_posts.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ugc_comments.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    operator_id: Mapped[int | None] = mapped_column(BigId)
    author_name: Mapped[str] = mapped_column(String(120), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Topic(Base):
    """A hashtag of the workspace with the number of approved posts that carry it."""

    __tablename__ = "ugc_topics"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    posts_count: Mapped[int] = mapped_column(Integer, default=0)
    last_post_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PostTopic(Base):
    """Which topics a post carries."""

    __tablename__ = "ugc_post_topics"
    __table_args__ = (Index("ix_ugc_post_topics_topic", "topic_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("ugc_posts.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("ugc_topics.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))


class Review(ModeratedMixin, Base):
    """A customer's review of a product: one per customer and product (editing replaces it)."""

    __tablename__ = "ugc_reviews"
    __table_args__ = (
        UniqueConstraint("workspace_id", "product_id", "customer_id"),
        Index("ix_ugc_reviews_product_status", "workspace_id", "product_id", "status", "created_at"),
        Index("ix_ugc_reviews_ws_status", "workspace_id", "status", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(BigId)  # where it was written, when in a community
    author_name: Mapped[str] = mapped_column(String(120), default="")
    rating: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[str]] = mapped_column(JSONType, default=list)
    verified_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    reply: Mapped[str] = mapped_column(Text, default="")  # the brand's public reply
    edits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewVote(Base):
    """A "helpful" vote: one per customer and review."""

    __tablename__ = "ugc_review_votes"

    review_id: Mapped[int] = mapped_column(ForeignKey("ugc_reviews.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reaction(Base):
    """One reaction of one customer of one kind on one item (post, comment or review)."""

    __tablename__ = "ugc_reactions"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "item_type", "item_id", "customer_id", "kind", name="uq_ugc_reactions_item_customer_kind"
        ),
        Index("ix_ugc_reactions_item", "workspace_id", "item_type", "item_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    item_type: Mapped[str] = mapped_column(String(10))
    item_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Media(Base):
    """An uploaded image, stored once per workspace by content hash under the data directory."""

    __tablename__ = "ugc_media"
    __table_args__ = (UniqueConstraint("workspace_id", "sha256"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(BigId)
    operator_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UgcSettings(Base):
    """Per-workspace UGC settings: review moderation, widget origins, and per-community moderation."""

    __tablename__ = "ugc_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    review_moderation: Mapped[str] = mapped_column(String(4), default="post")  # pre | post
    # Default for communities not listed in community_moderation: {str(community_id): "pre"|"post"}.
    post_moderation: Mapped[str] = mapped_column(String(4), default="post")
    community_moderation: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    widget_origins: Mapped[list[str]] = mapped_column(JSONType, default=list)  # shop origins, or ["*"]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
