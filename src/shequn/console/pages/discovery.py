"""Segment discovery: run k-means in the background, watch it, read the proposals, save one as a static segment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from shequn.audience import service as audience_service
from shequn.console import fmt
from shequn.console.charts import HBar
from shequn.console.pages.segment_parts import label
from shequn.console.web import Console, ConsoleRoute, console, console_post, render
from shequn.core import jobs
from shequn.core.clock import utcnow
from shequn.core.errors import Conflict, NotFound, ValidationFailed
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

K_CHOICES = tuple(range(2, 13))  # what the API accepts (DiscoverIn: 2 to 12); blank means "choose by silhouette"
FINISHED = ("succeeded", "failed")
RECENT_JOBS = 20
# A queued or running discovery younger than this is shown instead of starting another (double clicks, reloads).
REUSE_WITHIN = timedelta(minutes=15)
# Errors that another attempt cannot fix: the job runner re-queues a failed job for its retries, but the page
# reports these at once instead of polling through every retry.
FINAL_ERRORS = ("ValidationFailed",)


def _k_param(raw: str) -> int | None:
    """The form's k: "" or "auto" → None (the job picks k), else 2–12 (ValidationFailed otherwise)."""
    raw = (raw or "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw.isascii() and raw.isdigit() and int(raw) in K_CHOICES:
        return int(raw)
    raise ValidationFailed(details=[{"field": "k", "message": "auto or 2 to 12"}])


def _whole(raw: str | None) -> int | None:
    """A whole number ≥ 0 from the query string or a form (junk means none)."""
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def _discovery_job(ctx: Console, job_id: int) -> jobs.JobRun:
    """A discovery job of this workspace (NotFound for other workspaces' jobs and other kinds)."""
    job = jobs.get_job(ctx.db, workspace_id=ctx.workspace.id, job_id=job_id)
    if job is None or job.kind != audience_service.DISCOVERY_JOB:
        raise NotFound()
    return job


def _recent(ctx: Console) -> list[jobs.JobRun]:
    """The workspace's latest discovery runs, newest first."""
    return jobs.list_jobs(ctx.db, workspace_id=ctx.workspace.id, kind=audience_service.DISCOVERY_JOB, limit=RECENT_JOBS)


def _final_error(job: jobs.JobRun) -> bool:
    """Whether the last attempt failed in a way a retry cannot fix (the runner stores "ExceptionName: …")."""
    return bool(job.error) and job.error.split(":", 1)[0] in FINAL_ERRORS


def _state(job: jobs.JobRun) -> str:
    """running (poll on), retrying (an attempt failed, poll on), failed, too_few (not enough people) or done."""
    if job.status == "succeeded":
        return "done"
    if _final_error(job):
        return "too_few"
    if job.status == "failed":
        return "failed"
    return "retrying" if job.error else "running"


def _error_text(ctx: Console, state: str) -> str:
    """The run's problem in the operator's language ("" while it runs or once it succeeded)."""
    if state == "too_few":
        return ctx.t("discover.err.too_few")
    if state == "failed":
        return ctx.t("discover.err.failed")
    return ""


def _cluster_view(ctx: Console, cluster: dict[str, Any]) -> dict[str, Any]:
    """One proposal as the card shows it (names in the operator's language, bars scaled for display)."""
    size = int(cluster.get("size") or 0)
    # A category's share is of the cluster's spend (0..1), so its bar is drawn against 100 %, not the largest.
    categories = [
        HBar(str(c.get("category", "")), 0, f"{float(c.get('share') or 0) * 100:.1f}%", float(c.get("share") or 0))
        for c in cluster.get("top_categories", [])
        if isinstance(c, dict)
    ]
    cities = [
        HBar(str(c.get("city", "")), n, fmt.number(n), n / size if size else 0.0)
        for c in cluster.get("top_cities", [])
        if isinstance(c, dict)
        for n in [int(c.get("customers") or 0)]
    ]
    name = cluster.get("name_en") if ctx.locale == "en" else cluster.get("name_zh")
    return {
        "id": int(cluster.get("cluster", 0)),
        "name": str(name or cluster.get("name_zh") or cluster.get("name_en") or ""),
        "size": size,
        "share": float(cluster.get("share") or 0),
        "avg_spent": int(cluster.get("avg_spent") or 0),
        "avg_orders": float(cluster.get("avg_orders") or 0),
        "median_recency_days": int(cluster.get("median_recency_days") or 0),
        "avg_events": float(cluster.get("avg_events") or 0),
        "categories": categories,
        "cities": cities,
    }


def _silhouette_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The silhouette score of every k tried (JSON turned the int keys into strings), best marked."""
    raw = result.get("silhouette") or {}
    rows = sorted((int(k), float(v)) for k, v in raw.items() if str(k).isdigit())
    top = max((v for _, v in rows), default=0.0)
    return [
        {"k": k, "score": v, "chosen": k == result.get("k"), "share": max(v, 0.0) / top if top > 0 else 0.0}
        for k, v in rows
    ]


def _result_view(ctx: Console, job: jobs.JobRun) -> dict[str, Any]:
    """A finished run's summary, silhouette table and cards."""
    result = job.result or {}
    return {
        "job": job,
        "customers": int(result.get("customers") or 0),
        "k": result.get("k"),
        "auto": job.params.get("k") in (None, ""),
        "silhouette": _silhouette_rows(result),
        "clusters": [_cluster_view(ctx, c) for c in result.get("clusters", []) if isinstance(c, dict)],
    }


def _view(ctx: Console, current: jobs.JobRun | None) -> dict[str, Any]:
    """What the result area shows: the current job's state, and the proposals of the latest finished run."""
    state = _state(current) if current is not None else ""
    shown = current if current is not None and state == "done" else None
    if shown is None:  # still running or failed: keep showing the latest proposals meanwhile
        shown = next((j for j in _recent(ctx) if j.status == "succeeded"), None)
    return {
        "current": current,
        "state": state,
        "polling": state in ("running", "retrying"),
        "error": _error_text(ctx, state),
        "result": _result_view(ctx, shown) if shown is not None else None,
    }


def _page(
    request: Request,
    ctx: Console,
    current: jobs.JobRun | None,
    *,
    k: str = "",
    form_error: str = "",
    save_error: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    view = _view(ctx, current)
    save_error = save_error or {}
    shown = {c["id"] for c in view["result"]["clusters"]} if view["result"] else set()
    # A problem with one card's form shows on that card; anything else (no such card) above the results.
    on_card = bool(save_error) and view["result"] is not None and view["result"]["job"].id == save_error.get("job")
    on_card = on_card and save_error.get("cluster") in shown
    return render(
        request,
        "discovery.html",
        ctx,
        status=status,
        k_choices=K_CHOICES,
        k=k if k else (str(current.params.get("k") or "") if current is not None else ""),
        form_error=form_error,
        save_error=save_error if on_card else {},
        save_alert=save_error.get("message", "") if save_error and not on_card else "",
        **view,
    )


@router.get("/segments/discover")
def discover_page(request: Request, ctx: Console = Depends(console)) -> Response:
    """The discovery form and the latest run (or the one in ?job=): its progress, or its proposals."""
    ctx.require(Perm.READ)
    job_id = _whole(request.query_params.get("job"))
    if job_id:
        current: jobs.JobRun | None = _discovery_job(ctx, job_id)
    else:
        current = next(iter(_recent(ctx)), None)
    return _page(request, ctx, current)


@router.post("/segments/discover")
def discover_start(request: Request, k: str = Form(""), ctx: Console = Depends(console_post)) -> Response:
    """Queue a discovery run (reading only, so any role may) and go to the page that follows it."""
    ctx.require(Perm.READ)
    try:
        chosen = _k_param(k)
    except ValidationFailed:
        latest = next(iter(_recent(ctx)), None)
        return _page(request, ctx, latest, k=k[:8], form_error=ctx.t("discover.err.k"), status=422)
    running = next(
        (
            j
            for j in _recent(ctx)
            if j.status not in FINISHED
            and not j.error
            and j.params.get("k") == chosen
            and j.created_at >= utcnow() - REUSE_WITHIN
        ),
        None,
    )
    if running is not None:
        return RedirectResponse(f"/segments/discover?job={running.id}", status_code=303)
    job = jobs.enqueue_job(
        ctx.db,
        workspace_id=ctx.workspace.id,
        kind=audience_service.DISCOVERY_JOB,
        params={"k": chosen},
        created_by=ctx.operator_id,
    )
    job_id = job.id
    ctx.db.commit()
    return RedirectResponse(f"/segments/discover?job={job_id}", status_code=303)


@router.get("/segments/discover/jobs/{job_id}")
def discover_progress(job_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The result area htmx polls every second while the job runs (the trigger is left out once it ends)."""
    ctx.require(Perm.READ)
    job = _discovery_job(ctx, job_id)
    return render(request, "partials/discovery_result.html", ctx, save_error={}, **_view(ctx, job))


@router.post("/segments/discover/save")
def discover_save(
    request: Request,
    job_id: str = Form(""),
    cluster: str = Form(""),
    name: str = Form(""),
    ctx: Console = Depends(console_post),
) -> Response:
    """Save one proposal of a finished run as a static segment of today's nearest customers; go to it."""
    ctx.require(Perm.WRITE)
    jid = _whole(job_id)
    if not jid:
        raise NotFound()
    job = _discovery_job(ctx, jid)
    number = _whole(cluster)
    proposals = {int(c.get("cluster", -1)): c for c in (job.result or {}).get("clusters", []) if isinstance(c, dict)}
    problem = ""
    status = 422
    if job.status != "succeeded":
        problem = ctx.t("discover.err.not_finished")
    elif number is None or number not in proposals:
        problem = ctx.t("discover.err.cluster")
    else:
        try:
            seg = audience_service.save_cluster(
                ctx.db,
                workspace_id=ctx.workspace.id,
                result=job.result,
                cluster=number,
                name=name,
                created_by=ctx.operator_id,
            )
        except (ValidationFailed, Conflict) as exc:
            ctx.db.rollback()
            job = _discovery_job(ctx, jid)
            fields = {str(d.get("field")) for d in exc.details or [] if isinstance(d, dict)}
            if isinstance(exc, Conflict):
                problem = exc.message(ctx.locale)  # e.g. a segment with this name already exists
            elif "name" in fields:
                problem = label(ctx, "segments.err.field.name", exc.message(ctx.locale))
            else:
                problem = ctx.t("discover.err.cluster")
            status = exc.status_code
        else:
            details = {
                "name": seg.name,
                "kind": seg.kind,
                "members": seg.members_count,
                "discovery_job": job.id,
                "cluster": number,
            }
            identity_service.record_audit(ctx.db, ctx.actor, "segment.created", "segment", seg.id, details)
            segment_id = seg.id
            ctx.db.commit()
            return RedirectResponse(f"/segments/{segment_id}?done=created", status_code=303)
    save_error = {"job": job.id, "cluster": number, "message": problem, "name": name[:200]}
    return _page(request, ctx, job, save_error=save_error, status=status)
