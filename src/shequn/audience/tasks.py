"""Audience jobs: RFM refresh."""

from __future__ import annotations

from typing import Any

from shequn.audience import service
from shequn.core.jobs import JobContext, register_job


def run_rfm_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute RFM for the job's workspace."""
    ws = ctx.job.workspace_id
    assert ws is not None
    return {"scored": service.refresh_rfm(ctx.session, workspace_id=ws)}


def register() -> None:
    """Register audience job handlers with the queue."""
    register_job(service.RFM_JOB, run_rfm_refresh)
