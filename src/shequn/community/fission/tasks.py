"""Background jobs of fission: stay qualification (hourly and on demand) and membership signal receivers."""

from __future__ import annotations

import logging
from typing import Any

from shequn.community.fission import service
from shequn.community.tasks import register_demo_step
from shequn.core import jobs, signals
from shequn.core.db import session_scope
from shequn.core.signals import Signal

log = logging.getLogger(__name__)


def _qualify_job(ctx: jobs.JobContext) -> dict[str, Any]:
    workspace_id = int(ctx.job.params["workspace_id"])
    return service.qualify_workspace(ctx.session, workspace_id=workspace_id)


def qualify_all() -> None:
    """Hourly: every workspace with a reward rule checks who stayed long enough."""
    with session_scope() as session:
        workspace_ids = service.workspaces_to_qualify(session)
    for workspace_id in workspace_ids:
        with session_scope() as session:
            service.qualify_workspace(session, workspace_id=workspace_id)


def _on_joined(signal: Signal) -> None:
    p = signal.payload
    if p.get("invite_id") is None:
        return
    inviter = p.get("inviter_customer_id")
    with session_scope() as session:
        service.on_member_joined(
            session,
            workspace_id=signal.workspace_id,
            community_id=int(p["community_id"]),
            customer_id=int(p["customer_id"]),
            invite_id=int(p["invite_id"]),
            inviter_customer_id=int(inviter) if inviter is not None else None,
        )


def _on_left(signal: Signal) -> None:
    p = signal.payload
    with session_scope() as session:
        service.on_member_left(
            session,
            workspace_id=signal.workspace_id,
            community_id=int(p["community_id"]),
            customer_id=int(p["customer_id"]),
        )


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    jobs.register_job(service.QUALIFY_JOB, _qualify_job)
    jobs.register_periodic("fission.qualify_all", qualify_all, hour="*", minute="17")
    signals.connect("community.member_joined", _on_joined)
    signals.connect("community.member_left", _on_left)
    register_demo_step("fission", lambda session, ws: service.ensure_demo_fission(session, workspace_id=ws))
