"""Audience jobs: RFM refresh, segment refreshes (full and incremental) and the signal that starts them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shequn.audience import activity, discovery, interests, lifecycle, segments, service, tags
from shequn.core import signals
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, JobRun, enqueue_job, register_job, register_periodic
from shequn.identity import service as identity_service


def run_rfm_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute RFM for the job's workspace."""
    ws = ctx.job.workspace_id
    assert ws is not None
    return {"scored": service.refresh_rfm(ctx.session, workspace_id=ws)}


def run_segment_refresh(ctx: JobContext) -> dict[str, Any]:
    """Full refresh: one segment (params.segment_id) or every dynamic segment of the workspace."""
    ws = ctx.job.workspace_id
    assert ws is not None
    sid = ctx.job.params.get("segment_id")
    if sid is not None:
        return segments.refresh_segment(ctx.session, workspace_id=ws, segment_id=int(sid)).as_dict()
    out: dict[str, Any] = {}
    if ctx.job.params.get("features"):
        out["lifecycle"] = lifecycle.refresh_lifecycle(ctx.session, workspace_id=ws)
        out["interests"] = interests.refresh_interests(ctx.session, workspace_id=ws).changed
    results = segments.refresh_all(ctx.session, workspace_id=ws)
    segments.prune_changes(ctx.session, workspace_id=ws)
    return {**out, "segments": [r.as_dict() for r in results]}


def run_apply_changes(ctx: JobContext) -> dict[str, Any]:
    """Incremental refresh: re-evaluate the customers logged as changed."""
    ws = ctx.job.workspace_id
    assert ws is not None
    return segments.apply_changes(ctx.session, workspace_id=ws)


def _workspace(ctx: JobContext) -> int:
    ws = ctx.job.workspace_id
    assert ws is not None
    return ws


def run_rule_tags_refresh(ctx: JobContext) -> dict[str, Any]:
    """Re-evaluate every rule tag of the job's workspace."""
    return {"changed": service.refresh_rule_tags(ctx.session, workspace_id=_workspace(ctx))}


def run_interests_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute interest tags (decayed scores) of the job's workspace."""
    return service.refresh_interests(ctx.session, workspace_id=_workspace(ctx)).as_dict()


def run_lifecycle_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute lifecycle stages of the job's workspace."""
    return {"changed": service.refresh_lifecycle(ctx.session, workspace_id=_workspace(ctx))}


def _on_customers_changed(signal: signals.Signal) -> None:
    full = bool(signal.payload.get("full"))
    kind = segments.SEGMENT_REFRESH_JOB if full else segments.SEGMENT_CHANGES_JOB
    params = {"features": True} if signal.payload.get("features") else {}
    with session_scope() as session:
        # One waiting job per workspace is enough: it applies every change logged before it runs.
        waiting = session.scalars(
            select(JobRun).where(
                JobRun.workspace_id == signal.workspace_id, JobRun.kind == kind, JobRun.status == "queued"
            )
        ).all()
        if not any(w.params.get("segment_id") is None and (w.params.get("features") or not params) for w in waiting):
            enqueue_job(session, workspace_id=signal.workspace_id, kind=kind, params=params)


NIGHTLY_JOB = "audience.nightly"


def run_nightly(ctx: JobContext) -> dict[str, Any]:
    """The date-dependent recomputations, in order; RFM's epoch bump then queues a full segment refresh."""
    ws = _workspace(ctx)
    out: dict[str, Any] = {"rfm": service.refresh_rfm(ctx.session, workspace_id=ws)}
    ctx.checkpoint(1, 4, "rfm")
    out["lifecycle"] = lifecycle.refresh_lifecycle(ctx.session, workspace_id=ws)
    ctx.checkpoint(2, 4, "lifecycle")
    out["interests"] = interests.refresh_interests(ctx.session, workspace_id=ws).changed
    ctx.checkpoint(3, 4, "interests")
    out["rule_tags"] = tags.refresh_rule_tags(ctx.session, workspace_id=ws)
    return out


def _nightly() -> None:
    """Queue the nightly audience job for every workspace (a Huey periodic task)."""
    day = utcnow().date().isoformat()
    with session_scope() as session:
        for ws in identity_service.list_workspace_ids(session):
            enqueue_job(
                session, workspace_id=ws, kind=NIGHTLY_JOB, params={"day": day}, idempotency_key=f"nightly:{day}"
            )


def register() -> None:
    """Register audience job handlers with the queue, and the signal that keeps segments current."""
    register_job(service.RFM_JOB, run_rfm_refresh)
    register_job(segments.SEGMENT_REFRESH_JOB, run_segment_refresh)
    register_job(segments.SEGMENT_CHANGES_JOB, run_apply_changes)
    register_job(service.RULE_TAGS_JOB, run_rule_tags_refresh)
    register_job(service.INTEREST_JOB, run_interests_refresh)
    register_job(service.LIFECYCLE_JOB, run_lifecycle_refresh)
    register_job(discovery.DISCOVERY_JOB, run_discovery)
    register_job(NIGHTLY_JOB, run_nightly)
    register_periodic(NIGHTLY_JOB, _nightly, hour="3", minute="10")
    signals.connect(activity.CUSTOMERS_CHANGED, _on_customers_changed)


def run_discovery(ctx: JobContext) -> dict[str, Any]:
    """Cluster the workspace's customers and describe the proposals."""
    ws = ctx.job.workspace_id
    assert ws is not None
    k = ctx.job.params.get("k")
    return discovery.discover(ctx.session, workspace_id=ws, k=int(k) if k else None)
