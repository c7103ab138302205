"""UGC services: the one module other packages call (posts, Q&A, topics, reviews, media, moderation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community.ugc import common, media, posts, reviews
from shequn.community.ugc.common import (
    ACTIONS,
    REACTIONS,
    feed_access,
    mask_name,
    parse_hashtags,
    settings_of,
    update_settings,
)
from shequn.community.ugc.errors import BadModeration, CommentNotFound, PostNotFound, ReviewNotFound
from shequn.community.ugc.media import MAX_BYTES, MAX_SIDE, get_media, media_file, media_url, store_image
from shequn.community.ugc.models import Comment, Post, Review, Topic
from shequn.community.ugc.posts import (
    PostFilter,
    accept_answer,
    create_comment,
    create_post,
    get_post,
    get_topic,
    list_comments,
    list_comments_for_moderation,
    list_posts,
    list_topics,
    my_reactions,
    reaction_counts,
    set_featured,
    set_reaction,
    visible_to,
)
from shequn.community.ugc.reviews import (
    ReviewFilter,
    Summary,
    find_product,
    get_review,
    has_purchased,
    list_reviews,
    product_summaries,
    public_reviews,
    purchased_products,
    set_helpful,
    set_reply,
    summary,
    upsert_review,
)
from shequn.core.clock import utcnow
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

__all__ = [
    "ACTIONS",
    "MAX_BYTES",
    "MAX_SIDE",
    "REACTIONS",
    "Comment",
    "Post",
    "PostFilter",
    "Review",
    "ReviewFilter",
    "Summary",
    "Topic",
    "accept_answer",
    "create_comment",
    "create_post",
    "feed_access",
    "find_product",
    "get_media",
    "get_post",
    "get_review",
    "get_topic",
    "has_purchased",
    "list_comments",
    "list_comments_for_moderation",
    "list_posts",
    "list_reviews",
    "list_topics",
    "mask_name",
    "media_file",
    "media_url",
    "moderate",
    "my_reactions",
    "parse_hashtags",
    "product_summaries",
    "public_reviews",
    "purchased_products",
    "queue_counts",
    "reaction_counts",
    "set_featured",
    "set_helpful",
    "set_reaction",
    "set_reply",
    "settings_of",
    "store_image",
    "summary",
    "update_settings",
    "upsert_review",
    "visible_to",
]

_MODELS: dict[str, type[Post] | type[Comment] | type[Review]] = {"post": Post, "comment": Comment, "review": Review}
_MISSING = {"post": PostNotFound, "comment": CommentNotFound, "review": ReviewNotFound}


@dataclass(frozen=True)
class Decision:
    """The outcome of a moderation call."""

    changed: int
    ids: list[int]


def moderate(
    session: Session, actor: Actor, *, item_type: str, ids: Sequence[int], action: str, reason: str = ""
) -> Decision:
    """Approve, reject or hide items of one type (bulk); counts, topics and accepted answers follow."""
    identity_service.check_perm(actor, Perm.WRITE)
    if item_type not in _MODELS or action not in ACTIONS:
        raise BadModeration(details=[{"field": "action", "message": f"{item_type}/{action}"}])
    model = _MODELS[item_type]
    wanted = sorted(set(ids))
    rows: list[Post | Comment | Review] = list(
        session.scalars(select(model).where(model.workspace_id == actor.workspace_id, model.id.in_(wanted)))
    )
    if len(rows) != len(wanted):
        raise _MISSING[item_type]()  # one foreign or unknown id refuses the whole batch
    now, status = utcnow(), ACTIONS[action]
    changed = [
        r.id
        for r in rows
        if common.apply_decision(r, status=status, operator_id=actor.operator_id, reason=reason, now=now)
    ]
    session.flush()
    if item_type == "post":
        topic_ids = posts.topic_ids_of(session, post_ids=changed)
        posts.refresh_topic_counts(session, workspace_id=actor.workspace_id, topic_ids=topic_ids)
        if status != "approved":
            for r in rows:
                if isinstance(r, Post) and r.featured:
                    r.featured, r.featured_at = False, None  # a hidden post cannot stay pinned
    elif item_type == "comment":
        posts.refresh_comment_counts(session, post_ids=sorted({r.post_id for r in rows if isinstance(r, Comment)}))
    else:
        for pid in sorted({r.product_id for r in rows if isinstance(r, Review)}):
            reviews.invalidate(session, workspace_id=actor.workspace_id, product_id=pid)
    session.flush()
    if changed:
        identity_service.record_audit(
            session,
            actor,
            f"ugc.{action}",
            item_type,
            ",".join(map(str, changed))[:64],
            {"reason": reason, "ids": changed},
        )
    return Decision(changed=len(changed), ids=changed)


def queue_counts(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Pending items per type (the moderation queue's tabs)."""
    out: dict[str, int] = {}
    for name, model in _MODELS.items():
        out[name] = (
            session.scalar(
                select(func.count(model.id)).where(model.workspace_id == workspace_id, model.status == "pending")
            )
            or 0
        )
    return out


def operator_post(
    session: Session, actor: Actor, *, community_id: int, kind: str, title: str, body: str, media_refs: Sequence[str]
) -> Post:
    """A post by the brand (an announcement, an operator's question): approved at once."""
    identity_service.check_perm(actor, Perm.WRITE)
    names = identity_service.operator_names(session, {actor.operator_id} if actor.operator_id else set())
    return create_post(
        session,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        kind=kind,
        title=title,
        body=body,
        media_refs=media_refs,
        operator_id=actor.operator_id,
        author=names.get(actor.operator_id or 0, "") or "官方",
    )


def operator_comment(
    session: Session, actor: Actor, *, post_id: int, body: str, parent_id: int | None = None
) -> Comment:
    """A comment or answer by the brand: approved at once."""
    identity_service.check_perm(actor, Perm.WRITE)
    names = identity_service.operator_names(session, {actor.operator_id} if actor.operator_id else set())
    return create_comment(
        session,
        workspace_id=actor.workspace_id,
        post_id=post_id,
        body=body,
        parent_id=parent_id,
        operator_id=actor.operator_id,
        author=names.get(actor.operator_id or 0, "") or "官方",
    )


def post_payload(session: Session, *, post: Post, viewer_customer_id: int | None = None) -> dict[str, Any]:
    """A post with its comments and reaction counts (as the post schemas expect)."""
    ws = post.workspace_id
    comments = list_comments(session, workspace_id=ws, post_id=post.id, viewer_customer_id=viewer_customer_id)
    counts = reaction_counts(session, workspace_id=ws, item_type="comment", item_ids=[c.id for c in comments])
    data = {c: getattr(post, c) for c in _POST_FIELDS}
    data["reactions"] = reaction_counts(session, workspace_id=ws, item_type="post", item_ids=[post.id]).get(post.id, {})
    data["comments"] = [
        {
            **{c: getattr(cm, c) for c in _COMMENT_FIELDS},
            "accepted": cm.id == post.accepted_comment_id,
            "reactions": counts.get(cm.id, {}),
        }
        for cm in comments
    ]
    return data


_POST_FIELDS = (
    "id", "community_id", "kind", "customer_id", "operator_id", "author_name", "title", "body", "hashtags", "media",
    "product_id", "featured", "accepted_comment_id", "comments_count", "status", "moderation_reason", "moderated_by",
    "moderated_at", "created_at",
)  # fmt: skip
_COMMENT_FIELDS = (
    "id", "post_id", "parent_id", "customer_id", "operator_id", "author_name", "body", "status", "moderation_reason",
    "created_at",
)  # fmt: skip

# Re-exported for the pages (media limits in upload forms).
LIMITS = media.limits()
