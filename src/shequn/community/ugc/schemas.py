"""UGC inputs and outputs (operator API, member API and the public review API)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pending", "approved", "rejected", "hidden"]
ItemType = Literal["post", "comment", "review"]
MediaRef = str  # the content hash of an uploaded image
MAX_PHOTOS = 9


class PostIn(BaseModel):
    """A new post or question."""

    kind: Literal["post", "question"] = "post"
    title: str = Field("", max_length=200)
    body: str = Field("", max_length=5000)
    media: list[MediaRef] = Field(default_factory=list, max_length=MAX_PHOTOS)
    product_id: int | None = Field(None, ge=1, le=2**63 - 1)


class CommentIn(BaseModel):
    """A comment, a reply (parent_id) or an answer to a question."""

    body: str = Field(..., min_length=1, max_length=2000)
    parent_id: int | None = Field(None, ge=1, le=2**63 - 1)


class AcceptIn(BaseModel):
    """Which answer the asker (or an operator) accepts; null clears the choice."""

    comment_id: int | None = Field(None, ge=1, le=2**63 - 1)


class FeatureIn(BaseModel):
    """Pin or unpin a post."""

    featured: bool


class ReactionIn(BaseModel):
    """Set (on=true) or clear one reaction: repeating the same request changes nothing."""

    item_type: ItemType
    item_id: int = Field(..., ge=1, le=2**63 - 1)
    kind: str = Field(..., max_length=10)
    on: bool = True


class ReviewIn(BaseModel):
    """A review of a product: writing again replaces the customer's earlier review."""

    rating: int = Field(..., ge=1, le=5)
    body: str = Field("", max_length=2000)
    media: list[MediaRef] = Field(default_factory=list, max_length=MAX_PHOTOS)
    community_id: int | None = Field(None, ge=1, le=2**63 - 1)


class HelpfulIn(BaseModel):
    """Mark a review helpful (on) or take the vote back."""

    on: bool = True


class ReplyIn(BaseModel):
    """The brand's public reply under a review (empty removes it)."""

    reply: str = Field("", max_length=1000)


class ModerateIn(BaseModel):
    """A moderation decision on one or many items of one type."""

    item_type: ItemType
    ids: list[int] = Field(..., min_length=1, max_length=200)
    action: Literal["approve", "reject", "hide"]
    reason: str = Field("", max_length=255)


class SettingsIn(BaseModel):
    """UGC settings: pre- or post-moderation, per community overrides, the widget's allowed shop origins."""

    post_moderation: Literal["pre", "post"] | None = None
    review_moderation: Literal["pre", "post"] | None = None
    community_moderation: dict[str, Literal["pre", "post"]] | None = None
    widget_origins: list[str] | None = Field(None, max_length=20)


class SettingsOut(BaseModel):
    """UGC settings."""

    model_config = ConfigDict(from_attributes=True)

    post_moderation: str
    review_moderation: str
    community_moderation: dict[str, str]
    widget_origins: list[str]


class MediaOut(BaseModel):
    """An uploaded image: reference it by sha256; fetch it at url."""

    sha256: str
    content_type: str
    width: int
    height: int
    bytes: int
    url: str


class CommentOut(BaseModel):
    """A comment or answer."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    post_id: int
    parent_id: int | None
    customer_id: int | None
    operator_id: int | None
    author_name: str
    body: str
    status: str
    moderation_reason: str
    created_at: datetime
    accepted: bool = False
    reactions: dict[str, int] = Field(default_factory=dict)


class PostOut(BaseModel):
    """A post or question."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    kind: str
    customer_id: int | None
    operator_id: int | None
    author_name: str
    title: str
    body: str
    hashtags: list[str]
    media: list[str]
    product_id: int | None
    featured: bool
    accepted_comment_id: int | None
    comments_count: int
    status: str
    moderation_reason: str
    moderated_by: int | None
    moderated_at: datetime | None
    created_at: datetime
    reactions: dict[str, int] = Field(default_factory=dict)


class PostDetailOut(PostOut):
    """A post with its visible comments (oldest first)."""

    comments: list[CommentOut] = Field(default_factory=list)


class ReviewOut(BaseModel):
    """A review as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    product_id: int
    customer_id: int
    community_id: int | None
    author_name: str
    rating: int
    body: str
    media: list[str]
    verified_purchase: bool
    helpful_count: int
    reply: str
    edits: int
    status: str
    moderation_reason: str
    created_at: datetime
    updated_at: datetime


class TopicOut(BaseModel):
    """A topic (hashtag) with its approved posts."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    posts_count: int
    last_post_at: datetime | None


class ModerateOut(BaseModel):
    """How many items a decision changed."""

    changed: int
