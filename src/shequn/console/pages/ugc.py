"""Console: UGC moderation, topics, reviews, questions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from shequn.community.ugc import service as ugc_service
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.errors import ShequnError
from shequn.core.web import DbId
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

ITEM_TYPES = ("post", "comment", "review")
STATUSES = ("pending", "approved", "rejected", "hidden")
NOTICES = {"moderated": "ugc.done.moderated", "saved": "ugc.done.saved", "answered": "ugc.done.answered"}


def _ids(raw: list[Any]) -> list[int]:
    out = []
    for v in raw:
        if isinstance(v, str) and v.isdigit() and len(v) < 19:
            out.append(int(v))
    return out


def _notice(ctx: Console, request: Request) -> str:
    done = request.query_params.get("done", "")
    return ctx.t(NOTICES[done]) if done in NOTICES else ""


@router.get("/ugc")
def queue(request: Request, ctx: Console = Depends(console)) -> Response:
    """The moderation queue: posts, comments/answers or reviews of one status, with bulk actions."""
    item_type = request.query_params.get("type", "post")
    item_type = item_type if item_type in ITEM_TYPES else "post"
    status = request.query_params.get("status", "pending")
    status = "" if status == "all" else (status if status in STATUSES else "pending")
    kind = request.query_params.get("kind", "")
    page = page_number(request.query_params.get("page"))
    ws, offset = ctx.workspace.id, (page - 1) * PER_PAGE
    rows: list[Any]
    if item_type == "post":
        topic = request.query_params.get("topic", "")[:40]
        flt = ugc_service.PostFilter(status=status, kind=kind if kind in ("post", "question") else "", topic=topic)
        rows, total = ugc_service.list_posts(ctx.db, workspace_id=ws, flt=flt, limit=PER_PAGE, offset=offset)
    elif item_type == "comment":
        rows, total = ugc_service.list_comments_for_moderation(
            ctx.db, workspace_id=ws, status=status, limit=PER_PAGE, offset=offset
        )
    else:
        rows, total = ugc_service.list_reviews(
            ctx.db, workspace_id=ws, flt=ugc_service.ReviewFilter(status=status), limit=PER_PAGE, offset=offset
        )
    return render(
        request,
        "ugc.html",
        ctx,
        rows=rows,
        item_type=item_type,
        status_filter=status,
        kind=kind,
        counts=ugc_service.queue_counts(ctx.db, workspace_id=ws),
        pg=pager(total, page),
        notice=_notice(ctx, request),
        statuses=STATUSES,
        item_types=ITEM_TYPES,
    )


@router.post("/ugc/moderate")
async def moderate(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Approve, reject or hide the ticked items (or one item from its own button)."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    item_type = str(form.get("item_type") or "")
    back = str(form.get("back") or "/ugc")
    back = back if back.startswith("/ugc") and "//" not in back else "/ugc"
    ids = _ids(form.getlist("ids"))
    if not ids:
        return RedirectResponse(back, status_code=303)
    ugc_service.moderate(
        ctx.db,
        ctx.actor,
        item_type=item_type,
        ids=ids,
        action=str(form.get("action") or ""),
        reason=str(form.get("reason") or "")[:255],
    )
    ctx.db.commit()
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done=moderated", status_code=303)


@router.get("/ugc/posts/{post_id}")
def post_detail(post_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """A post or question with every comment or answer (any status), pin and accept controls."""
    post = ugc_service.get_post(ctx.db, workspace_id=ctx.workspace.id, post_id=post_id)
    return render(
        request,
        "ugc_post.html",
        ctx,
        post=ugc_service.post_payload(ctx.db, post=post),
        notice=_notice(ctx, request),
        error=request.query_params.get("error", "")[:200],
        media_url=ugc_service.media_url,
    )


@router.post("/ugc/posts/{post_id}/feature")
async def feature(post_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Pin or unpin."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    ugc_service.set_featured(
        ctx.db, workspace_id=ctx.workspace.id, post_id=post_id, featured=form.get("featured") == "1"
    )
    ctx.db.commit()
    return RedirectResponse(f"/ugc/posts/{post_id}?done=saved", status_code=303)


@router.post("/ugc/posts/{post_id}/answer")
async def answer(post_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """An answer or comment by the brand."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    try:
        ugc_service.operator_comment(ctx.db, ctx.actor, post_id=post_id, body=str(form.get("body") or "")[:2000])
    except ShequnError as exc:
        ctx.db.rollback()
        return RedirectResponse(f"/ugc/posts/{post_id}?error={exc.code}", status_code=303)
    ctx.db.commit()
    return RedirectResponse(f"/ugc/posts/{post_id}?done=answered", status_code=303)


@router.post("/ugc/posts/{post_id}/accept")
async def accept(post_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Choose the accepted answer as an operator."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    ids = _ids([form.get("comment_id")])
    ugc_service.accept_answer(
        ctx.db, workspace_id=ctx.workspace.id, post_id=post_id, comment_id=ids[0] if ids else None
    )
    ctx.db.commit()
    return RedirectResponse(f"/ugc/posts/{post_id}?done=saved", status_code=303)


@router.get("/ugc/topics")
def topics(request: Request, ctx: Console = Depends(console)) -> Response:
    """Topics by approved posts."""
    page = page_number(request.query_params.get("page"))
    q = request.query_params.get("q", "")[:40]
    rows, total = ugc_service.list_topics(
        ctx.db, workspace_id=ctx.workspace.id, q=q, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render(request, "ugc_topics.html", ctx, topics=rows, pg=pager(total, page), q=q)


@router.get("/ugc/reviews")
def reviews(request: Request, ctx: Console = Depends(console)) -> Response:
    """Reviewed products with rating summaries; one product's reviews; the review settings."""
    ws = ctx.workspace.id
    raw = request.query_params.get("product_id", "")
    product_id = int(raw) if raw.isdigit() and len(raw) < 19 else None
    product = summary = None
    rows: list[Any] = []
    if product_id is not None:
        product = ugc_service.find_product(ctx.db, workspace_id=ws, sku_or_id=str(product_id))
        summary = ugc_service.summary(ctx.db, workspace_id=ws, product_id=product.id)
        rows, _ = ugc_service.list_reviews(
            ctx.db, workspace_id=ws, flt=ugc_service.ReviewFilter(product_id=product.id), limit=200
        )
    return render(
        request,
        "ugc_reviews.html",
        ctx,
        products=ugc_service.product_summaries(ctx.db, workspace_id=ws, limit=200),
        product=product,
        summary=summary,
        reviews=rows,
        settings=ugc_service.settings_of(ctx.db, workspace_id=ws),
        notice=_notice(ctx, request),
        media_url=ugc_service.media_url,
    )


@router.post("/ugc/settings")
async def save_settings(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Moderation modes and widget origins."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    origins = [o for o in str(form.get("widget_origins") or "").split() if o][:20]
    ugc_service.update_settings(
        ctx.db,
        workspace_id=ctx.workspace.id,
        changes={
            "post_moderation": str(form.get("post_moderation") or "post"),
            "review_moderation": str(form.get("review_moderation") or "post"),
            "widget_origins": origins,
        },
    )
    ctx.db.commit()
    return RedirectResponse("/ugc/reviews?done=saved", status_code=303)
