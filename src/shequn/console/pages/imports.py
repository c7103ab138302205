"""Order and product file imports: upload, live progress, row error report and its CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

from shequn.commerce import service as commerce_service
from shequn.commerce.sources import SOURCES
from shequn.console.web import Console, ConsoleRoute, console, console_post, render
from shequn.core import jobs
from shequn.core.errors import NotFound, TooLarge, ValidationFailed
from shequn.core.settings import get_settings
from shequn.core.web import DbId
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)
IMPORT_KINDS = (commerce_service.IMPORT_JOB, commerce_service.PRODUCT_IMPORT_JOB, commerce_service.DEMO_JOB)
SHOWN_ERRORS = 200
FINISHED = ("succeeded", "failed")


def _form_page(
    request: Request, ctx: Console, *, error: str = "", status: int = 200, values: dict[str, str] | None = None
) -> Response:
    recent = [j for j in jobs.list_jobs(ctx.db, workspace_id=ctx.workspace.id, limit=40) if j.kind in IMPORT_KINDS]
    return render(
        request,
        "imports.html",
        ctx,
        status=status,
        error=error,
        sources=list(SOURCES),
        jobs=recent[:20],
        max_mb=get_settings().max_upload_mb,
        values=values or {"source": "", "shop_id": "default", "kind": "orders"},
    )


@router.get("/imports")
def imports(request: Request, ctx: Console = Depends(console)) -> Response:
    """The upload form (for roles that may import) and recent imports."""
    ctx.require(Perm.READ)
    return _form_page(request, ctx)


@router.post("/imports")
async def upload(
    request: Request,
    file: UploadFile | None = File(None),
    source: str = Form(""),
    shop_id: str = Form("default"),
    kind: str = Form("orders"),
    ctx: Console = Depends(console_post),
) -> Response:
    """Store the file, queue its import job and go to the job's progress page."""
    ctx.require(Perm.IMPORT)
    values = {"source": source, "shop_id": shop_id, "kind": kind}
    if kind not in ("orders", "products"):
        kind = "orders"
    if file is None or not file.filename:
        return _form_page(request, ctx, error=ctx.t("imports.choose_file"), status=422, values=values)
    limit = get_settings().max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    try:
        job = commerce_service.start_import(
            ctx.db,
            ctx.actor,
            filename=file.filename,
            data=data,
            source=source or None,
            shop_id=(shop_id or "default").strip()[:64] or "default",
            kind=kind,
        )
    except TooLarge as exc:
        ctx.db.rollback()
        return _form_page(request, ctx, error=exc.message(ctx.locale), status=413, values=values)
    except ValidationFailed as exc:
        ctx.db.rollback()
        fields = {d.get("field") for d in (exc.details or []) if isinstance(d, dict)}
        message = ctx.t("file.empty_file") if "file" in fields else ctx.t("imports.unknown_source")
        return _form_page(request, ctx, error=message, status=422, values=values)
    ctx.db.commit()
    return RedirectResponse(f"/imports/{job.id}", status_code=303)


def _job_view(ctx: Console, job_id: int) -> dict[str, Any]:
    job = jobs.get_job(ctx.db, workspace_id=ctx.workspace.id, job_id=job_id)
    if job is None or job.kind not in IMPORT_KINDS:
        raise NotFound()
    result = dict(job.result or {})
    file_error = ""
    if result.get("file_error"):
        params = {
            k: ", ".join(map(str, v)) if isinstance(v, list) else v
            for k, v in (result.get("file_error_params") or {}).items()
        }
        file_error = ctx.t(f"file.{result['file_error']}", **params)
    finished = job.status in FINISHED
    errors = (
        commerce_service.list_row_errors(ctx.db, workspace_id=ctx.workspace.id, job_id=job.id, limit=SHOWN_ERRORS + 1)
        if finished
        else []
    )
    total = job.progress_total or 0
    share = 1.0 if job.status == "succeeded" else (min(job.progress_done / total, 1.0) if total else 0.0)
    return {
        "job": job,
        "result": result,
        "file_error": file_error,
        "finished": finished,
        "share": share,
        "row_errors": errors[:SHOWN_ERRORS],
        "more_errors": len(errors) > SHOWN_ERRORS,
    }


@router.get("/imports/{job_id}")
def job_page(job_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """One import: progress (polled while it runs), counts, errors."""
    ctx.require(Perm.READ)
    return render(request, "import_job.html", ctx, **_job_view(ctx, job_id))


@router.get("/imports/{job_id}/progress")
def job_progress(job_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The progress fragment htmx swaps in every second (without the trigger once the job is finished)."""
    ctx.require(Perm.READ)
    return render(request, "partials/job_progress.html", ctx, **_job_view(ctx, job_id))


def _cell(value: object) -> str:
    """Neutralise spreadsheet formulas in a CSV cell (=, +, -, @ at the start)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/imports/{job_id}/errors.csv")
def errors_csv(job_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The row error report as CSV (UTF-8 with BOM so Excel reads the Chinese)."""
    ctx.require(Perm.EXPORT)
    job = jobs.get_job(ctx.db, workspace_id=ctx.workspace.id, job_id=job_id)
    if job is None or job.kind not in IMPORT_KINDS:
        raise NotFound()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            ctx.t("imports.col.row"),
            ctx.t("imports.col.field"),
            ctx.t("imports.col.reason"),
            ctx.t("imports.col.order_id"),
        ]
    )
    for e in commerce_service.list_row_errors(ctx.db, workspace_id=ctx.workspace.id, job_id=job.id, limit=1_000_000):
        writer.writerow([e.row, _cell(e.field), _cell(e.reason), _cell(e.source_order_id)])
    return Response(
        "\ufeff" + buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'},
    )
