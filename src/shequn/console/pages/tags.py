"""Tags: the tag list by kind with counts, creating manual tags, tagging by uploaded id list, lifecycle
stage counts and the refresh of computed tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

from shequn.audience import service as audience_service
from shequn.console import fmt
from shequn.console.charts import hbars
from shequn.console.web import Console, ConsoleRoute, console, console_post, render
from shequn.core.errors import ShequnError
from shequn.core.settings import get_settings
from shequn.core.web import MAX_DB_INT
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)
KINDS = ("manual", "rule", "interest")
SHOWN_UNMATCHED = 100
NOTICES = {"created": "tags.created", "refresh": "tags.refresh_queued"}


def _error_text(ctx: Console, exc: ShequnError) -> str:
    details = [f"{d.get('field')}: {d.get('message')}" for d in (exc.details or []) if isinstance(d, dict)]
    return exc.message(ctx.locale) + (f" ({'; '.join(details)})" if details else "")


def _page(
    request: Request,
    ctx: Console,
    *,
    error: str = "",
    notice: str = "",
    status: int = 200,
    values: dict[str, str] | None = None,
    upload: dict[str, Any] | None = None,
) -> Response:
    ws = ctx.workspace.id
    tags, _ = audience_service.list_tags(ctx.db, workspace_id=ws, limit=1000)
    by_kind = {kind: [t for t in tags if t.kind == kind] for kind in KINDS}
    by_kind["interest"].sort(key=lambda t: (-t.customers_count, t.name))
    stages = audience_service.lifecycle_counts(ctx.db, workspace_id=ws)
    lifecycle = hbars([(ctx.t(f"lifecycle.{s}"), n) for s, n in stages.items()], fmt.number, of_total=True)
    return render(
        request,
        "tags.html",
        ctx,
        status=status,
        by_kind=by_kind,
        manual=by_kind["manual"],
        lifecycle=lifecycle,
        has_lifecycle=any(stages.values()),
        error=error,
        notice=notice,
        values=values or {},
        upload=upload,
        max_mb=get_settings().max_upload_mb,
    )


@router.get("/tags")
def tags(request: Request, ctx: Console = Depends(console)) -> Response:
    """Tags by kind with customer counts, lifecycle stages and interest tags."""
    ctx.require(Perm.READ)
    done = request.query_params.get("done", "")
    return _page(request, ctx, notice=ctx.t(NOTICES[done]) if done in NOTICES else "")


@router.post("/tags")
def create(
    request: Request,
    name: str = Form(""),
    color: str = Form(""),
    description: str = Form(""),
    ctx: Console = Depends(console_post),
) -> Response:
    """Create a manual tag."""
    ctx.require(Perm.WRITE)
    try:
        audience_service.create_tag(
            ctx.db,
            workspace_id=ctx.workspace.id,
            name=name,
            color=color.strip(),
            description=description.strip()[:255],
            created_by=ctx.operator_id,
        )
    except ShequnError as exc:
        if exc.status_code in (403, 404):
            raise
        ctx.db.rollback()
        values = {"name": name, "color": color, "description": description}
        return _page(request, ctx, error=_error_text(ctx, exc), status=exc.status_code, values=values)
    ctx.db.commit()
    return RedirectResponse("/tags?done=created", status_code=303)


@router.post("/tags/refresh")
def refresh(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Queue the lifecycle, interest and rule-tag refreshes."""
    ctx.require(Perm.WRITE)
    audience_service.request_tag_refresh(ctx.db, workspace_id=ctx.workspace.id, created_by=ctx.operator_id)
    ctx.db.commit()
    return RedirectResponse("/tags?done=refresh", status_code=303)


@router.post("/tags/upload")
async def upload(
    request: Request,
    tag_id: int = Form(0, ge=0, le=MAX_DB_INT),
    file: UploadFile | None = File(None),
    ctx: Console = Depends(console_post),
) -> Response:
    """Tag the customers an uploaded id list names; show matched, tagged and unmatched rows."""
    ctx.require(Perm.WRITE)
    tag = audience_service.get_tag(ctx.db, workspace_id=ctx.workspace.id, tag_id=tag_id)
    if file is None or not file.filename:
        return _page(request, ctx, error=ctx.t("imports.choose_file"), status=422)
    limit = get_settings().max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        return _page(request, ctx, error=ctx.t("error.too_large", limit_mb=get_settings().max_upload_mb), status=413)
    try:
        result = audience_service.tag_by_upload(ctx.db, workspace_id=ctx.workspace.id, tag_id=tag.id, data=data)
    except ShequnError as exc:
        if exc.status_code in (403, 404):
            raise
        ctx.db.rollback()
        return _page(request, ctx, error=_error_text(ctx, exc), status=exc.status_code)
    ctx.db.commit()
    summary = {
        "tag": tag.name,
        "filename": file.filename,
        "matched": result.matched,
        "tagged": result.tagged,
        "unmatched_total": result.unmatched_total,
        "unmatched": result.unmatched[:SHOWN_UNMATCHED],
    }
    return _page(request, ctx, upload=summary)
