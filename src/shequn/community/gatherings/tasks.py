"""Background jobs of gatherings: reminders at T-24h and T-1h, finishing gatherings that have ended."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shequn.community import tasks as community_tasks
from shequn.community.gatherings import community_link, manage, reminders
from shequn.community.gatherings.demo import ensure_demo_gatherings
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, register_job, register_periodic

REMINDERS_JOB = "gatherings.reminders"
# The demo gatherings belong to this demo community when it exists (else to none).
DEMO_COMMUNITY = "茶友品鉴群"


def run_reminders() -> dict[str, int]:
    """One sweep in its own transaction: record due reminders, then finish what has ended."""
    with session_scope() as session:
        created = reminders.record_due_reminders(session)
        finished = manage.finish_ended(session)
    return {"reminders": created, "finished": finished}


def _job(ctx: JobContext) -> dict[str, Any]:
    created = reminders.record_due_reminders(ctx.session)
    finished = manage.finish_ended(ctx.session)
    ctx.session.commit()
    return {"reminders": created, "finished": finished}


def _periodic() -> None:
    run_reminders()


def _demo_step(session: Session, workspace_id: int) -> dict[str, Any]:
    """The gathering step of the community demo job."""
    choices = community_link.community_choices(session, workspace_id=workspace_id)
    named = [cid for cid, name in choices if name == DEMO_COMMUNITY]
    community_id = named[0] if named else (choices[-1][0] if choices else None)
    return ensure_demo_gatherings(session, workspace_id=workspace_id, community_id=community_id)


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    register_job(REMINDERS_JOB, _job)
    community_tasks.register_demo_step("gatherings", _demo_step)
    # Every five minutes: a reminder is at most five minutes late, and reruns are no-ops (unique key).
    register_periodic(REMINDERS_JOB, _periodic, hour="*", minute="*/5")
