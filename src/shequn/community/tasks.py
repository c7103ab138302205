"""Background jobs of community core: the demo communities (and, after them, fission/UGC/gathering demos)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.commerce import service as commerce_service
from shequn.community import membership
from shequn.community import service as community_service
from shequn.community.demo import ensure_demo_communities
from shequn.community.merges import move_on_merge
from shequn.core import signals
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, enqueue_job, register_job, register_periodic

DEMO_JOB = "community.demo"
DemoStep = Callable[[Session, int], dict[str, Any]]
# name → step(session, workspace_id): run in registration order after the demo communities exist.
# fission, ugc and gatherings append theirs from their own tasks.register() via register_demo_step.
DEMO_STEPS: dict[str, DemoStep] = {}


def register_demo_step(name: str, step: DemoStep) -> None:
    """Add a demo step run by the community demo job after the communities (re-registering replaces it)."""
    DEMO_STEPS[name] = step


def run_demo(ctx: JobContext) -> dict[str, Any]:
    """Create the demo communities, then every registered demo step; each step commits on its own."""
    ws = ctx.job.workspace_id
    assert ws is not None
    scale = float(ctx.job.params.get("scale", 1.0))
    result: dict[str, Any] = {"communities": ensure_demo_communities(ctx.session, workspace_id=ws, scale=scale)}
    ctx.checkpoint(1, len(DEMO_STEPS) + 1, "communities")
    for i, (name, step) in enumerate(DEMO_STEPS.items(), start=2):
        result[name] = step(ctx.session, ws)
        ctx.checkpoint(i, None, name)
    signals.send_on_commit(ctx.session, community_service.DEMO_DONE, ws)
    return result


def lift_mutes() -> None:
    """Every 10 minutes: members whose mute ran out are active again (each workspace in its own commit)."""
    with session_scope() as session:
        workspace_ids = membership.workspaces_with_expired_mutes(session)
    for workspace_id in workspace_ids:
        with session_scope() as session:
            membership.lift_expired_mutes(session, workspace_id=workspace_id)


def _on_demo_loaded(signal: signals.Signal) -> None:
    with session_scope() as session:
        enqueue_job(session, workspace_id=signal.workspace_id, kind=DEMO_JOB, params={})


def register() -> None:
    """Register the demo job (started when the demo brand's orders are loaded) and the merge hook."""
    register_job(DEMO_JOB, run_demo)
    audience_service.register_merge_hook(move_on_merge)
    register_periodic("community.lift_mutes", lift_mutes, hour="*", minute="*/10")
    signals.connect(commerce_service.DEMO_LOADED, _on_demo_loaded)
