"""Posts and questions, comments and answers, topics, reactions and the accepted answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shequn.community.ugc import common, media
from shequn.community.ugc.errors import (
    AnswerNotAcceptable,
    CommentNotFound,
    EmptyContent,
    FeatureUnapproved,
    NotAQuestion,
    NotTheAsker,
    PostNotFound,
    ReviewNotFound,
    UnknownReaction,
)
from shequn.community.ugc.models import Comment, Post, PostTopic, Reaction, Review, Topic
from shequn.core.clock import utcnow


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# --- posts and questions --------------------------------------------------------------------------


def create_post(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    kind: str = "post",
    title: str = "",
    body: str = "",
    media_refs: Sequence[str] = (),
    product_id: int | None = None,
    customer_id: int | None = None,
    operator_id: int | None = None,
    author: str = "",
) -> Post:
    """Publish a post or question: a member's passes the policy gate, then starts per the moderation mode."""
    title, body = title.strip(), body.strip()
    if not (title or body or media_refs):
        raise EmptyContent(details=[{"field": "body", "message": "write something or add a photo"}])
    refs = media.check_refs(session, workspace_id=workspace_id, refs=list(media_refs))
    if customer_id is not None:
        common.gate(
            session,
            workspace_id=workspace_id,
            community_id=community_id,
            customer_id=customer_id,
            text=f"{title}\n{body}".strip(),
            has_media=bool(refs),
        )
        status = common.initial_status(session, workspace_id=workspace_id, community_id=community_id)
        author = author or common.author_name(
            session, workspace_id=workspace_id, customer_id=customer_id, community_id=community_id
        )
    else:
        # Operators publish as the brand; the community must exist in this workspace.
        from shequn.community import service as community_service

        community_service.get_community(session, workspace_id=workspace_id, community_id=community_id)
        status = "approved"
    now = utcnow()
    post = Post(
        workspace_id=workspace_id,
        community_id=community_id,
        kind=kind,
        customer_id=customer_id,
        operator_id=operator_id,
        author_name=author[:120],
        title=title[:200],
        body=body,
        hashtags=common.parse_hashtags(f"{title} {body}"),
        media=refs,
        product_id=product_id,
        featured=False,
        comments_count=0,
        status=status,
        moderation_reason="",
        created_at=now,
        updated_at=now,
    )
    session.add(post)
    session.flush()
    link_topics(session, post)
    if customer_id is not None:
        common.record(
            session,
            workspace_id=workspace_id,
            community_id=community_id,
            customer_id=customer_id,
            kind="question" if kind == "question" else "post",
        )
    return post


def get_post(session: Session, *, workspace_id: int, post_id: int) -> Post:
    """A post of this workspace (any status: callers decide what a viewer may see)."""
    post = session.get(Post, post_id)
    if post is None or post.workspace_id != workspace_id:
        raise PostNotFound()
    return post


@dataclass(frozen=True)
class PostFilter:
    """Filters of post lists (operators see every status; members only approved plus their own)."""

    community_id: int | None = None
    kind: str = ""
    status: str = ""
    topic: str = ""
    featured: bool | None = None
    viewer_customer_id: int | None = None  # members: approved items plus the viewer's own pending ones
    q: str = ""


def list_posts(
    session: Session, *, workspace_id: int, flt: PostFilter, limit: int = 20, offset: int = 0
) -> tuple[list[Post], int]:
    """A page of posts (featured first for members, then newest) and the total."""
    stmt = select(Post).where(Post.workspace_id == workspace_id)
    if flt.community_id is not None:
        stmt = stmt.where(Post.community_id == flt.community_id)
    if flt.kind:
        stmt = stmt.where(Post.kind == flt.kind)
    if flt.status:
        stmt = stmt.where(Post.status == flt.status)
    if flt.featured is not None:
        stmt = stmt.where(Post.featured == flt.featured)
    if flt.q:
        stmt = stmt.where(Post.body.contains(flt.q, autoescape=True) | Post.title.contains(flt.q, autoescape=True))
    if flt.topic:
        topic_id = session.scalar(
            select(Topic.id).where(Topic.workspace_id == workspace_id, Topic.name == common.normalize_topic(flt.topic))
        )
        stmt = stmt.where(Post.id.in_(select(PostTopic.post_id).where(PostTopic.topic_id == (topic_id or 0))))
    if flt.viewer_customer_id is not None:
        stmt = stmt.where(
            (Post.status == "approved") | ((Post.status == "pending") & (Post.customer_id == flt.viewer_customer_id))
        )
    total = session.scalar(stmt.with_only_columns(func.count(Post.id))) or 0
    order = [Post.featured.desc()] if flt.viewer_customer_id is not None else []
    rows = session.scalars(stmt.order_by(*order, Post.created_at.desc(), Post.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def visible_to(post: Post | Comment | Review, customer_id: int | None) -> bool:
    """Members see approved items, and their own while pending."""
    return post.status == "approved" or (
        post.status == "pending" and customer_id is not None and post.customer_id == customer_id
    )


def set_featured(session: Session, *, workspace_id: int, post_id: int, featured: bool) -> Post:
    """Pin or unpin a post (operators); only approved posts can be pinned."""
    post = get_post(session, workspace_id=workspace_id, post_id=post_id)
    if featured and post.status != "approved":
        raise FeatureUnapproved()
    if post.featured != featured:
        post.featured, post.featured_at = featured, (utcnow() if featured else None)
        session.flush()
    return post


# --- topics ---------------------------------------------------------------------------------------


def link_topics(session: Session, post: Post) -> None:
    """Create the post's topics if new and link them (concurrent first uses of a topic insert it once)."""
    if not post.hashtags:
        return
    ins = _insert(session)
    session.execute(
        ins(Topic)
        .values(
            [
                {"workspace_id": post.workspace_id, "name": n, "posts_count": 0, "created_at": utcnow()}
                for n in post.hashtags
            ]
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
    )
    ids = list(
        session.scalars(select(Topic.id).where(Topic.workspace_id == post.workspace_id, Topic.name.in_(post.hashtags)))
    )
    session.execute(
        ins(PostTopic)
        .values([{"post_id": post.id, "topic_id": tid, "workspace_id": post.workspace_id} for tid in ids])
        .on_conflict_do_nothing(index_elements=["post_id", "topic_id"])
    )
    refresh_topic_counts(session, workspace_id=post.workspace_id, topic_ids=ids)


def refresh_topic_counts(session: Session, *, workspace_id: int, topic_ids: Sequence[int]) -> None:
    """Recount approved posts per topic (a correlated update: concurrent posts cannot lose a count)."""
    if not topic_ids:
        return
    approved = (
        select(func.count(PostTopic.post_id))
        .join(Post, Post.id == PostTopic.post_id)
        .where(PostTopic.topic_id == Topic.id, Post.status == "approved")
        .scalar_subquery()
    )
    latest = (
        select(func.max(Post.created_at))
        .join(PostTopic, Post.id == PostTopic.post_id)
        .where(PostTopic.topic_id == Topic.id, Post.status == "approved")
        .scalar_subquery()
    )
    session.execute(
        update(Topic)
        .where(Topic.workspace_id == workspace_id, Topic.id.in_(list(topic_ids)))
        .values(posts_count=approved, last_post_at=latest)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def topic_ids_of(session: Session, *, post_ids: Sequence[int]) -> list[int]:
    """The topics carried by some posts."""
    if not post_ids:
        return []
    return sorted(set(session.scalars(select(PostTopic.topic_id).where(PostTopic.post_id.in_(list(post_ids))))))


def list_topics(
    session: Session, *, workspace_id: int, q: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[Topic], int]:
    """Topics by approved posts, then recency."""
    stmt = select(Topic).where(Topic.workspace_id == workspace_id)
    if q:
        stmt = stmt.where(Topic.name.contains(common.normalize_topic(q), autoescape=True))
    total = session.scalar(stmt.with_only_columns(func.count(Topic.id))) or 0
    rows = session.scalars(stmt.order_by(Topic.posts_count.desc(), Topic.name).limit(limit).offset(offset))
    return list(rows), total


def get_topic(session: Session, *, workspace_id: int, name: str) -> Topic | None:
    """A topic by name (normalised), or None."""
    return session.scalar(
        select(Topic).where(Topic.workspace_id == workspace_id, Topic.name == common.normalize_topic(name))
    )


# --- comments and answers -------------------------------------------------------------------------


def create_comment(
    session: Session,
    *,
    workspace_id: int,
    post_id: int,
    body: str,
    parent_id: int | None = None,
    customer_id: int | None = None,
    operator_id: int | None = None,
    author: str = "",
) -> Comment:
    """Comment on a post, reply to a comment, or answer a question (members pass the gate)."""
    post = get_post(session, workspace_id=workspace_id, post_id=post_id)
    if customer_id is not None and not visible_to(post, customer_id):
        raise PostNotFound()
    body = body.strip()
    if not body:
        raise EmptyContent(details=[{"field": "body", "message": "empty"}])
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is None or parent.post_id != post.id or parent.workspace_id != workspace_id:
            raise CommentNotFound()
    status = "approved"
    if customer_id is not None:
        common.gate(
            session,
            workspace_id=workspace_id,
            community_id=post.community_id,
            customer_id=customer_id,
            text=body,
            has_media=False,
        )
        status = common.initial_status(session, workspace_id=workspace_id, community_id=post.community_id)
        author = author or common.author_name(
            session, workspace_id=workspace_id, customer_id=customer_id, community_id=post.community_id
        )
    comment = Comment(
        workspace_id=workspace_id,
        post_id=post.id,
        parent_id=parent_id,
        customer_id=customer_id,
        operator_id=operator_id,
        author_name=author[:120],
        body=body,
        status=status,
        moderation_reason="",
        created_at=utcnow(),
    )
    session.add(comment)
    session.flush()
    refresh_comment_counts(session, post_ids=[post.id])
    if customer_id is not None:
        kind = "answer" if post.kind == "question" else "comment"
        common.record(
            session, workspace_id=workspace_id, community_id=post.community_id, customer_id=customer_id, kind=kind
        )
    return comment


def refresh_comment_counts(session: Session, *, post_ids: Sequence[int]) -> None:
    """Recount approved comments of posts (correlated update), and drop an accepted answer no longer shown."""
    if not post_ids:
        return
    approved = (
        select(func.count(Comment.id)).where(Comment.post_id == Post.id, Comment.status == "approved").scalar_subquery()
    )
    session.execute(
        update(Post)
        .where(Post.id.in_(list(post_ids)))
        .values(comments_count=approved)
        .execution_options(synchronize_session=False)
    )
    still_ok = select(Comment.id).where(Comment.id == Post.accepted_comment_id, Comment.status == "approved").exists()
    session.execute(
        update(Post)
        .where(Post.id.in_(list(post_ids)), Post.accepted_comment_id.is_not(None), ~still_ok)
        .values(accepted_comment_id=None)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def list_comments(
    session: Session, *, workspace_id: int, post_id: int, viewer_customer_id: int | None
) -> list[Comment]:
    """A post's comments, oldest first: members see approved ones and their own pending ones."""
    stmt = select(Comment).where(Comment.workspace_id == workspace_id, Comment.post_id == post_id)
    if viewer_customer_id is not None:
        stmt = stmt.where(
            (Comment.status == "approved")
            | ((Comment.status == "pending") & (Comment.customer_id == viewer_customer_id))
        )
    return list(session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(500)))


def list_comments_for_moderation(
    session: Session, *, workspace_id: int, status: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[Comment], int]:
    """Comments and answers across posts (the moderation queue), newest first."""
    stmt = select(Comment).where(Comment.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(Comment.status == status)
    total = session.scalar(stmt.with_only_columns(func.count(Comment.id))) or 0
    rows = session.scalars(stmt.order_by(Comment.created_at.desc(), Comment.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def accept_answer(
    session: Session,
    *,
    workspace_id: int,
    post_id: int,
    comment_id: int | None,
    customer_id: int | None = None,
) -> Post:
    """Choose (or clear) the accepted answer: the asker (customer_id) or an operator (customer_id None)."""
    post = get_post(session, workspace_id=workspace_id, post_id=post_id)
    if customer_id is not None and (post.customer_id != customer_id or not visible_to(post, customer_id)):
        raise NotTheAsker()
    if post.kind != "question":
        raise NotAQuestion()
    if comment_id is not None:
        answer = session.get(Comment, comment_id)
        if answer is None or answer.post_id != post.id or answer.status != "approved" or answer.parent_id is not None:
            raise AnswerNotAcceptable()
    # Compare-and-set in SQL so two concurrent choices end with exactly one accepted answer.
    session.execute(
        update(Post)
        .where(Post.id == post.id)
        .values(accepted_comment_id=comment_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.refresh(post)
    return post


# --- reactions ------------------------------------------------------------------------------------


def _reaction_target(session: Session, workspace_id: int, item_type: str, item_id: int) -> Post | Comment | Review:
    item: Post | Comment | Review | None
    if item_type == "post":
        item = session.get(Post, item_id)
    elif item_type == "comment":
        item = session.get(Comment, item_id)
    else:
        item = session.get(Review, item_id)
    if item is None or item.workspace_id != workspace_id:
        raise {"post": PostNotFound, "comment": CommentNotFound, "review": ReviewNotFound}[item_type]()
    return item


def set_reaction(
    session: Session, *, workspace_id: int, customer_id: int, item_type: str, item_id: int, kind: str, on: bool
) -> dict[str, int]:
    """Set or clear one reaction (idempotent: repeating it changes nothing); returns the item's counts."""
    if kind not in common.REACTIONS:
        raise UnknownReaction(details=[{"field": "kind", "message": f"one of {', '.join(common.REACTIONS)}"}])
    item = _reaction_target(session, workspace_id, item_type, item_id)
    if item.status != "approved":
        raise {"post": PostNotFound, "comment": CommentNotFound, "review": ReviewNotFound}[item_type]()
    key = {"workspace_id": workspace_id, "item_type": item_type, "item_id": item_id, "customer_id": customer_id}
    if on:
        session.execute(
            _insert(session)(Reaction)
            .values(**key, kind=kind, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["workspace_id", "item_type", "item_id", "customer_id", "kind"])
        )
    else:
        session.execute(
            delete(Reaction).where(*(getattr(Reaction, k) == v for k, v in key.items()), Reaction.kind == kind)
        )
    return reaction_counts(session, workspace_id=workspace_id, item_type=item_type, item_ids=[item_id]).get(item_id, {})


def reaction_counts(
    session: Session, *, workspace_id: int, item_type: str, item_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Reactions per item and kind, for a page of items."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    if not item_ids:
        return out
    rows = session.execute(
        select(Reaction.item_id, Reaction.kind, func.count())
        .where(
            Reaction.workspace_id == workspace_id,
            Reaction.item_type == item_type,
            Reaction.item_id.in_(list(item_ids)),
        )
        .group_by(Reaction.item_id, Reaction.kind)
    )
    for item_id, kind, n in rows:
        out[item_id][kind] = n
    return out


def my_reactions(
    session: Session, *, workspace_id: int, customer_id: int, item_type: str, item_ids: Sequence[int]
) -> dict[int, set[str]]:
    """Which reactions the viewer has set on each item (so the page shows them pressed)."""
    out: dict[int, set[str]] = defaultdict(set)
    if not item_ids:
        return out
    for item_id, kind in session.execute(
        select(Reaction.item_id, Reaction.kind).where(
            and_(
                Reaction.workspace_id == workspace_id,
                Reaction.item_type == item_type,
                Reaction.customer_id == customer_id,
                Reaction.item_id.in_(list(item_ids)),
            )
        )
    ):
        out[item_id].add(kind)
    return out
