"""Background jobs and signal receivers of promotions.campaigns: the demo brand's promotions layer."""

from __future__ import annotations

from typing import Any

from shequn.community import service as community_service
from shequn.core import signals
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, enqueue_job, register_job
from shequn.promotions import demo

DEMO_JOB = "promotions.demo"


def run_demo_job(ctx: JobContext) -> dict[str, Any]:
    """The demo campaigns and every registered promotions demo step (idempotent: a rerun adds nothing twice)."""
    ws = ctx.job.workspace_id
    assert ws is not None
    return demo.run_demo(ctx.session, workspace_id=ws)


def _on_community_demo_done(signal: signals.Signal) -> None:
    # After the community layer, so challenges find a community and campaigns a target community.
    with session_scope() as session:
        enqueue_job(session, workspace_id=signal.workspace_id, kind=DEMO_JOB, params={})


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    register_job(DEMO_JOB, run_demo_job)
    signals.connect(community_service.DEMO_DONE, _on_community_demo_done)
