"""UGC API: posts, topics, reviews, questions and answers, reactions, moderation; the public review API."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from shequn.community.ugc import service as ugc_service
from shequn.community.ugc.errors import ImageTooLarge
from shequn.community.ugc.schemas import (
    AcceptIn,
    CommentIn,
    CommentOut,
    FeatureIn,
    MediaOut,
    ModerateIn,
    ModerateOut,
    PostDetailOut,
    PostIn,
    PostOut,
    ReplyIn,
    ReviewOut,
    SettingsIn,
    SettingsOut,
    TopicOut,
)
from shequn.core.errors import NotFound
from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1", tags=["ugc"])
public = APIRouter(prefix="/public", tags=["ugc public"])


class SummaryOut(BaseModel):
    """A product's approved-review summary."""

    product_id: int
    count: int
    average: float
    distribution: dict[str, int] = Field(description="approved reviews per star, '1' … '5'")


async def read_upload(file: UploadFile) -> bytes:
    """The upload's bytes, refusing past the image limit without reading the rest."""
    data = await file.read(ugc_service.MAX_BYTES + 1)
    if len(data) > ugc_service.MAX_BYTES:
        raise ImageTooLarge(limit_mb=ugc_service.MAX_BYTES // (1024 * 1024), max_side=ugc_service.MAX_SIDE)
    return data


def media_out(row: Any, slug: str) -> MediaOut:
    """An uploaded image as the API shows it."""
    return MediaOut(
        sha256=row.sha256,
        content_type=row.content_type,
        width=row.width,
        height=row.height,
        bytes=row.bytes,
        url=ugc_service.media_url(slug, row.sha256),
    )


def _slug(db: Session, workspace_id: int) -> str:
    ws = identity_service.get_workspace(db, workspace_id)
    return ws.slug if ws else ""


# --- posts, questions, comments ------------------------------------------------------------------


@router.get("/ugc/posts", response_model=Paginated[PostOut])
def list_posts(
    community_id: int | None = Query(None, ge=1, le=2**63 - 1),
    kind: Literal["post", "question", ""] = "",
    status: Literal["pending", "approved", "rejected", "hidden", ""] = "",
    topic: str = Query("", max_length=40),
    featured: bool | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[PostOut]:
    """Posts and questions of any status (the moderation view), newest first."""
    flt = ugc_service.PostFilter(community_id=community_id, kind=kind, status=status, topic=topic, featured=featured)
    rows, total = ugc_service.list_posts(
        db, workspace_id=actor.workspace_id, flt=flt, limit=page.limit, offset=page.offset
    )
    counts = ugc_service.reaction_counts(
        db, workspace_id=actor.workspace_id, item_type="post", item_ids=[p.id for p in rows]
    )
    items = [PostOut.model_validate(p).model_copy(update={"reactions": counts.get(p.id, {})}) for p in rows]
    return Paginated.of(items, total, page.limit, page.offset)


@router.post("/communities/{community_id}/posts", response_model=PostOut, status_code=201)
def create_post(
    community_id: DbId, body: PostIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> PostOut:
    """A post or question by the brand (published at once)."""
    post = ugc_service.operator_post(
        db, actor, community_id=community_id, kind=body.kind, title=body.title, body=body.body, media_refs=body.media
    )
    db.commit()
    return PostOut.model_validate(post)


@router.get("/ugc/posts/{post_id}", response_model=PostDetailOut)
def get_post(post_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> PostDetailOut:
    """A post with every comment (any status)."""
    post = ugc_service.get_post(db, workspace_id=actor.workspace_id, post_id=post_id)
    return PostDetailOut.model_validate(ugc_service.post_payload(db, post=post))


@router.post("/ugc/posts/{post_id}/comments", response_model=CommentOut, status_code=201)
def create_comment(
    post_id: DbId, body: CommentIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CommentOut:
    """A comment or answer by the brand."""
    comment = ugc_service.operator_comment(db, actor, post_id=post_id, body=body.body, parent_id=body.parent_id)
    db.commit()
    return CommentOut.model_validate(comment)


@router.post("/ugc/posts/{post_id}/accept", response_model=PostOut)
def accept_answer(
    post_id: DbId, body: AcceptIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> PostOut:
    """Choose (or clear) a question's accepted answer as an operator."""
    post = ugc_service.accept_answer(db, workspace_id=actor.workspace_id, post_id=post_id, comment_id=body.comment_id)
    db.commit()
    return PostOut.model_validate(post)


@router.post("/ugc/posts/{post_id}/feature", response_model=PostOut)
def feature_post(
    post_id: DbId, body: FeatureIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> PostOut:
    """Pin or unpin a post at the top of its community's feed."""
    post = ugc_service.set_featured(db, workspace_id=actor.workspace_id, post_id=post_id, featured=body.featured)
    identity_service.record_audit(db, actor, "ugc.feature", "post", post.id, {"featured": body.featured})
    db.commit()
    return PostOut.model_validate(post)


@router.post("/ugc/moderation", response_model=ModerateOut)
def moderate(
    body: ModerateIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> ModerateOut:
    """Approve, reject or hide posts, comments or reviews (bulk; repeating a decision changes nothing)."""
    decision = ugc_service.moderate(
        db, actor, item_type=body.item_type, ids=body.ids, action=body.action, reason=body.reason
    )
    db.commit()
    return ModerateOut(changed=decision.changed)


@router.get("/ugc/moderation/counts")
def queue_counts(actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> dict[str, int]:
    """Pending posts, comments and reviews."""
    return ugc_service.queue_counts(db, workspace_id=actor.workspace_id)


@router.get("/ugc/comments", response_model=Paginated[CommentOut])
def list_comments(
    status: Literal["pending", "approved", "rejected", "hidden", ""] = "",
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[CommentOut]:
    """Comments and answers across posts, newest first."""
    rows, total = ugc_service.list_comments_for_moderation(
        db, workspace_id=actor.workspace_id, status=status, limit=page.limit, offset=page.offset
    )
    return Paginated.of([CommentOut.model_validate(c) for c in rows], total, page.limit, page.offset)


@router.get("/ugc/topics", response_model=Paginated[TopicOut])
def list_topics(
    q: str = Query("", max_length=40),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[TopicOut]:
    """Topics (hashtags) by approved posts."""
    rows, total = ugc_service.list_topics(
        db, workspace_id=actor.workspace_id, q=q, limit=page.limit, offset=page.offset
    )
    return Paginated.of([TopicOut.model_validate(t) for t in rows], total, page.limit, page.offset)


# --- reviews -------------------------------------------------------------------------------------


@router.get("/ugc/reviews", response_model=Paginated[ReviewOut])
def list_reviews(
    product_id: int | None = Query(None, ge=1, le=2**63 - 1),
    status: Literal["pending", "approved", "rejected", "hidden", ""] = "",
    rating: int | None = Query(None, ge=1, le=5),
    sort: Literal["recent", "helpful"] = "recent",
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[ReviewOut]:
    """Reviews of any status."""
    flt = ugc_service.ReviewFilter(product_id=product_id, status=status, rating=rating)
    rows, total = ugc_service.list_reviews(
        db, workspace_id=actor.workspace_id, flt=flt, sort=sort, limit=page.limit, offset=page.offset
    )
    return Paginated.of([ReviewOut.model_validate(r) for r in rows], total, page.limit, page.offset)


@router.get("/ugc/products/{product_id}/review-summary", response_model=SummaryOut)
def review_summary(
    product_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> SummaryOut:
    """Count, average and per-star distribution of a product's approved reviews."""
    s = ugc_service.summary(db, workspace_id=actor.workspace_id, product_id=product_id)
    return SummaryOut(
        product_id=product_id,
        count=s.count,
        average=s.average,
        distribution={str(k): v for k, v in s.distribution.items()},
    )


@router.post("/ugc/reviews/{review_id}/reply", response_model=ReviewOut)
def reply_review(
    review_id: DbId, body: ReplyIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> ReviewOut:
    """The brand's public reply under a review."""
    review = ugc_service.set_reply(db, workspace_id=actor.workspace_id, review_id=review_id, reply=body.reply)
    identity_service.record_audit(db, actor, "ugc.reply", "review", review.id, {})
    db.commit()
    return ReviewOut.model_validate(review)


# --- media and settings ----------------------------------------------------------------------------


@router.post("/ugc/media", response_model=MediaOut, status_code=201)
async def upload_media(
    file: UploadFile = File(...), actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MediaOut:
    """Upload an image (JPEG, PNG or WebP, at most 5 MB and 6000 px a side); reference it by sha256."""
    data = await read_upload(file)
    row = ugc_service.store_image(db, workspace_id=actor.workspace_id, data=data, operator_id=actor.operator_id)
    db.commit()
    return media_out(row, _slug(db, actor.workspace_id))


@router.get("/ugc/settings", response_model=SettingsOut)
def get_settings(actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> SettingsOut:
    """Moderation modes and the review widget's allowed shop origins."""
    return SettingsOut(**ugc_service.settings_of(db, workspace_id=actor.workspace_id))


@router.patch("/ugc/settings", response_model=SettingsOut)
def patch_settings(
    body: SettingsIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SettingsOut:
    """Change moderation modes (pre: members' items wait for approval) or widget origins."""
    ugc_service.update_settings(db, workspace_id=actor.workspace_id, changes=body.model_dump(exclude_none=True))
    identity_service.record_audit(
        db, actor, "ugc.settings", "workspace", actor.workspace_id, body.model_dump(exclude_none=True)
    )
    db.commit()
    return SettingsOut(**ugc_service.settings_of(db, workspace_id=actor.workspace_id))


# --- public: the review widget's API and images --------------------------------------------------


def _cors(request: Request, response: Response, origins: list[str]) -> None:
    origin = request.headers.get("origin", "")
    if "*" in origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin.rstrip("/") in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"


@public.get("/{ws_slug}/products/{sku_or_id}/reviews")
def public_reviews(
    ws_slug: str,
    sku_or_id: str,
    request: Request,
    sort: Literal["recent", "helpful"] = "recent",
    rating: int | None = Query(None, ge=1, le=5),
    limit: int = Query(10, ge=1, le=50),
    offset: int = Query(0, ge=0, le=10_000),
    db: Session = Depends(get_db),
) -> Response:
    """Approved reviews of a product with masked names, rating summary and distribution (read-only, cached)."""
    ws = identity_service.get_workspace_by_slug(db, ws_slug)
    if ws is None:
        raise NotFound()
    body = ugc_service.public_reviews(
        db,
        workspace_id=ws.id,
        workspace_slug=ws.slug,
        sku_or_id=sku_or_id[:100],
        sort=sort,
        rating=rating,
        limit=limit,
        offset=offset,
    )
    raw = orjson.dumps(body)
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "public, max-age=60", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    response: Response
    if request.headers.get("if-none-match") == etag:
        response = Response(status_code=304, headers=headers)
    else:
        response = Response(raw, media_type="application/json", headers=headers)
    _cors(request, response, ugc_service.settings_of(db, workspace_id=ws.id)["widget_origins"])
    return response


@public.get("/{ws_slug}/media/{sha256}")
def public_media(ws_slug: str, sha256: str, db: Session = Depends(get_db)) -> Response:
    """An uploaded image (content-addressed, so cached forever)."""
    ws = identity_service.get_workspace_by_slug(db, ws_slug)
    if ws is None:
        raise NotFound()
    path, content_type = ugc_service.media_file(db, workspace_id=ws.id, sha256=sha256[:64])
    return FileResponse(
        path,
        media_type=content_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            "Access-Control-Allow-Origin": "*",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


router.include_router(public)
