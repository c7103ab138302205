"""Member H5 and member API: post, review, ask and answer, react."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.ugc import service as ugc_service
from shequn.community.ugc.api import media_out, read_upload
from shequn.community.ugc.errors import PostNotFound
from shequn.community.ugc.schemas import (
    AcceptIn,
    CommentIn,
    CommentOut,
    HelpfulIn,
    MediaOut,
    PostDetailOut,
    PostIn,
    PostOut,
    ReactionIn,
    ReviewIn,
    ReviewOut,
)
from shequn.core.errors import ShequnError
from shequn.core.schemas import Paginated
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m", tags=["member ugc"])
FEED_PAGE = 20
T = TypeVar("T")


def keep_refusal(db: Session, action: Callable[[], T]) -> T:
    """Run a write; when the community's policy refuses it, commit the enforcement log before answering."""
    try:
        return action()
    except community_service.PolicyViolation:
        db.commit()  # the enforcement and its ladder step must survive the refusal (nothing else was written)
        raise


def _visible_post(db: Session, member: mweb.Member | None, post_id: int) -> ugc_service.Post:
    """A post the reader may see: approved (or their own pending one) in a community they may read."""
    ws = member.workspace_id if member else 0
    post = ugc_service.get_post(db, workspace_id=ws, post_id=post_id)
    viewer = member.customer_id if member else None
    access = ugc_service.feed_access(db, workspace_id=ws, community_id=post.community_id, customer_id=viewer)
    if not ugc_service.visible_to(post, viewer) or (access == "featured" and not post.featured):
        raise PostNotFound()
    return post


def _feed(
    db: Session,
    *,
    workspace_id: int,
    community_id: int,
    viewer: int | None,
    topic: str = "",
    kind: str = "",
    offset: int = 0,
) -> tuple[list[ugc_service.Post], int, str]:
    access = ugc_service.feed_access(db, workspace_id=workspace_id, community_id=community_id, customer_id=viewer)
    flt = ugc_service.PostFilter(
        community_id=community_id,
        kind=kind,
        topic=topic,
        featured=True if access == "featured" else None,
        viewer_customer_id=viewer if viewer is not None else -1,  # -1: nobody's pending posts
    )
    rows, total = ugc_service.list_posts(db, workspace_id=workspace_id, flt=flt, limit=FEED_PAGE, offset=offset)
    return rows, total, access


# --- member API ------------------------------------------------------------------------------------


@api.get("/communities/{community_id}/posts", response_model=Paginated[PostOut])
def feed(
    community_id: DbId,
    topic: str = Query("", max_length=40),
    kind: str = Query("", pattern="^(post|question|)$"),
    offset: int = Query(0, ge=0, le=100_000),
    member: mweb.Member = Depends(mweb.member),
    db: Session = Depends(get_db),
) -> Paginated[PostOut]:
    """The community's feed: pinned first, then newest (approved posts, plus the member's own pending ones)."""
    rows, total, _ = _feed(
        db, workspace_id=member.workspace_id, community_id=community_id, viewer=member.customer_id, topic=topic,
        kind=kind, offset=offset,
    )  # fmt: skip
    counts = ugc_service.reaction_counts(
        db, workspace_id=member.workspace_id, item_type="post", item_ids=[p.id for p in rows]
    )
    items = [PostOut.model_validate(p).model_copy(update={"reactions": counts.get(p.id, {})}) for p in rows]
    return Paginated.of(items, total, FEED_PAGE, offset)


@api.post("/communities/{community_id}/posts", response_model=PostOut, status_code=201)
def create_post(
    community_id: DbId, body: PostIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> PostOut:
    """Post or ask in a community (policy gate first; pending when the community pre-moderates)."""
    post = keep_refusal(
        db,
        lambda: ugc_service.create_post(
            db,
            workspace_id=member.workspace_id,
            community_id=community_id,
            customer_id=member.customer_id,
            kind=body.kind,
            title=body.title,
            body=body.body,
            media_refs=body.media,
            product_id=body.product_id,
        ),
    )
    db.commit()
    return PostOut.model_validate(post)


@api.get("/posts/{post_id}", response_model=PostDetailOut)
def get_post(post_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> PostDetailOut:
    """A post with its visible comments or answers."""
    post = _visible_post(db, member, post_id)
    return PostDetailOut.model_validate(ugc_service.post_payload(db, post=post, viewer_customer_id=member.customer_id))


@api.post("/posts/{post_id}/comments", response_model=CommentOut, status_code=201)
def create_comment(
    post_id: DbId, body: CommentIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> CommentOut:
    """Comment, reply or answer."""
    _visible_post(db, member, post_id)
    comment = keep_refusal(
        db,
        lambda: ugc_service.create_comment(
            db,
            workspace_id=member.workspace_id,
            post_id=post_id,
            customer_id=member.customer_id,
            body=body.body,
            parent_id=body.parent_id,
        ),
    )
    db.commit()
    return CommentOut.model_validate(comment)


@api.post("/posts/{post_id}/accept", response_model=PostOut)
def accept_answer(
    post_id: DbId, body: AcceptIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> PostOut:
    """The asker accepts (or clears) an answer."""
    post = ugc_service.accept_answer(
        db,
        workspace_id=member.workspace_id,
        post_id=post_id,
        comment_id=body.comment_id,
        customer_id=member.customer_id,
    )
    db.commit()
    return PostOut.model_validate(post)


@api.post("/reactions")
def react(
    body: ReactionIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Set or clear a reaction; the same request twice leaves one reaction."""
    if body.item_type == "post":
        _visible_post(db, member, body.item_id)
    counts = ugc_service.set_reaction(
        db,
        workspace_id=member.workspace_id,
        customer_id=member.customer_id,
        item_type=body.item_type,
        item_id=body.item_id,
        kind=body.kind,
        on=body.on,
    )
    db.commit()
    return {"item_type": body.item_type, "item_id": body.item_id, "kind": body.kind, "on": body.on, "counts": counts}


@api.put("/products/{product_id}/review", response_model=ReviewOut)
def write_review(
    product_id: DbId, body: ReviewIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> ReviewOut:
    """Write or replace the member's review of a product (verified when they bought it)."""
    review = keep_refusal(
        db,
        lambda: ugc_service.upsert_review(
            db,
            workspace_id=member.workspace_id,
            product_id=product_id,
            customer_id=member.customer_id,
            rating=body.rating,
            body=body.body,
            media_refs=body.media,
            community_id=body.community_id,
        ),
    )
    db.commit()
    return ReviewOut.model_validate(review)


@api.post("/reviews/{review_id}/helpful")
def helpful(
    review_id: DbId, body: HelpfulIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Mark a review helpful (or take it back); idempotent."""
    n = ugc_service.set_helpful(
        db, workspace_id=member.workspace_id, review_id=review_id, customer_id=member.customer_id, on=body.on
    )
    db.commit()
    return {"review_id": review_id, "helpful": n, "on": body.on}


@api.post("/media", response_model=MediaOut, status_code=201)
async def upload(
    file: UploadFile = File(...), member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> MediaOut:
    """Upload a photo for a post or review (JPEG, PNG or WebP, at most 5 MB)."""
    data = await read_upload(file)
    row = ugc_service.store_image(db, workspace_id=member.workspace_id, data=data, customer_id=member.customer_id)
    db.commit()
    return media_out(row, member.workspace_slug)


# --- H5 pages --------------------------------------------------------------------------------------


def _page_error(
    request: Request, workspace: mweb.WorkspaceRef, member: mweb.Member | None, exc: ShequnError
) -> HTMLResponse:
    return mweb.render(
        request, "m_message.html", workspace=workspace, member=member, status=exc.status_code,
        title_key="ugc.m.cannot_open", message=exc.message(workspace.locale),
    )  # fmt: skip


def _reactions(db: Session, member: mweb.Member | None, item_type: str, ids: list[int]) -> dict[str, Any]:
    ws = member.workspace_id if member else 0
    mine = (
        ugc_service.my_reactions(db, workspace_id=ws, customer_id=member.customer_id, item_type=item_type, item_ids=ids)
        if member
        else {}
    )
    return {
        "counts": ugc_service.reaction_counts(db, workspace_id=ws, item_type=item_type, item_ids=ids),
        "mine": mine,
        "kinds": ugc_service.REACTIONS,
    }


@router.get("/m/{ws_slug}/c/{community_id}", response_class=HTMLResponse)
def feed_page(
    ws_slug: str, community_id: DbId, request: Request, topic: str = "", kind: str = "", db: Session = Depends(get_db)
) -> HTMLResponse:
    """A community's feed with the composer (post or ask)."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    try:
        community = community_service.get_community(db, workspace_id=workspace.id, community_id=community_id)
        rows, total, access = _feed(
            db, workspace_id=workspace.id, community_id=community_id, viewer=member.customer_id if member else None,
            topic=topic[:40], kind=kind if kind in ("post", "question") else "",
        )  # fmt: skip
    except ShequnError as exc:
        return _page_error(request, workspace, member, exc)
    membership = (
        community_service.get_membership(
            db, workspace_id=workspace.id, community_id=community_id, customer_id=member.customer_id
        )
        if member
        else None
    )
    return mweb.render(
        request, "ugc_feed.html", workspace=workspace, member=member, community=community, posts=rows, total=total,
        access=access, topic=topic[:40], kind=kind, can_post=membership is not None and membership.status == "active",
        reactions=_reactions(db, member, "post", [p.id for p in rows]), media_url=ugc_service.media_url,
    )  # fmt: skip


@router.get("/m/{ws_slug}/p/{post_id}", response_class=HTMLResponse)
def post_page(ws_slug: str, post_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """A post or question with comments/answers, reactions, reply box and the asker's accept buttons."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    try:
        post = ugc_service.get_post(db, workspace_id=workspace.id, post_id=post_id)
        viewer = member.customer_id if member else None
        access = ugc_service.feed_access(
            db, workspace_id=workspace.id, community_id=post.community_id, customer_id=viewer
        )
        if not ugc_service.visible_to(post, viewer) or (access == "featured" and not post.featured):
            raise PostNotFound()
    except ShequnError as exc:
        return _page_error(request, workspace, member, exc)
    data = ugc_service.post_payload(db, post=post, viewer_customer_id=viewer)
    community = community_service.get_community(db, workspace_id=workspace.id, community_id=post.community_id)
    return mweb.render(
        request, "ugc_post.html", workspace=workspace, member=member, post=data, community=community,
        is_asker=member is not None and post.customer_id == member.customer_id and post.kind == "question",
        reactions=_reactions(db, member, "post", [post.id]), media_url=ugc_service.media_url,
    )  # fmt: skip


@router.get("/m/{ws_slug}/reviews/write", response_class=HTMLResponse)
def review_page(ws_slug: str, request: Request, product_id: int = 0, db: Session = Depends(get_db)) -> HTMLResponse:
    """Write a review: the member's purchased products, then rating, text and photos."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    if member is None:
        return _page_error(request, workspace, None, mweb.MemberLoginRequired())
    products = ugc_service.purchased_products(db, workspace_id=workspace.id, customer_id=member.customer_id)
    chosen = next((p for p in products if p.id == product_id), None)
    existing = None
    if chosen is not None:
        rows, _ = ugc_service.list_reviews(
            db,
            workspace_id=workspace.id,
            flt=ugc_service.ReviewFilter(product_id=chosen.id, customer_id=member.customer_id),
        )
        existing = rows[0] if rows else None
    return mweb.render(
        request, "ugc_review.html", workspace=workspace, member=member, products=products, chosen=chosen,
        existing=existing, media_url=ugc_service.media_url,
    )  # fmt: skip


@router.get("/m/{ws_slug}/reviews/{sku}", response_class=HTMLResponse)
def reviews_demo(ws_slug: str, sku: str, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """A product page stand-in that embeds the review widget with one script tag (what a brand's shop does)."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    try:
        product = ugc_service.find_product(db, workspace_id=workspace.id, sku_or_id=sku[:100])
    except ShequnError as exc:
        return _page_error(request, workspace, member, exc)
    return mweb.render(request, "ugc_widget_demo.html", workspace=workspace, member=member, product=product)
