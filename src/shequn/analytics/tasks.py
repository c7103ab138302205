"""Analytics jobs: the demo brand's tracked events (and, after them, its tags and segments)."""

from __future__ import annotations

from typing import Any

from shequn.analytics import service
from shequn.analytics.demo import demo_events
from shequn.audience import service as audience_service
from shequn.commerce import service as commerce_service
from shequn.core import signals
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, enqueue_job, register_job

DEMO_EVENTS_JOB = "analytics.demo_events"
BATCH = 1_000


def run_demo_events(ctx: JobContext) -> dict[str, Any]:
    """Ingest the demo events batch by batch through the public ingest path, then the demo audience layer."""
    ws = ctx.job.workspace_id
    assert ws is not None
    ids = audience_service.all_live_customer_ids(ctx.session, workspace_id=ws)
    accepted = batches = 0
    batch = []
    for event in demo_events(ids, seed=int(ctx.job.params.get("seed", 42)), now=utcnow()):
        batch.append(event)
        if len(batch) == BATCH:
            accepted += service.ingest_events(ctx.session, workspace_id=ws, events=batch).accepted
            batches += 1
            batch = []
            ctx.checkpoint(batches * BATCH, None, "events")
    if batch:
        accepted += service.ingest_events(ctx.session, workspace_id=ws, events=batch).accepted
    made = audience_service.ensure_demo_audience(ctx.session, workspace_id=ws)
    return {"events": accepted, **made}


def _on_demo_loaded(signal: signals.Signal) -> None:
    with session_scope() as session:
        enqueue_job(
            session, workspace_id=signal.workspace_id, kind=DEMO_EVENTS_JOB, params={"seed": signal.payload["seed"]}
        )


def register() -> None:
    """Register analytics jobs and the signal that starts the demo events."""
    register_job(DEMO_EVENTS_JOB, run_demo_events)
    signals.connect(commerce_service.DEMO_LOADED, _on_demo_loaded)
