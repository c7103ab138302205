"""Background jobs of gatherings: reminders at T-24h and T-1h, finishing gatherings that have ended."""

from __future__ import annotations

from typing import Any

from shequn.community.gatherings import manage, reminders
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, register_job, register_periodic

REMINDERS_JOB = "gatherings.reminders"


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


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    register_job(REMINDERS_JOB, _job)
    # Every five minutes: a reminder is at most five minutes late, and reruns are no-ops (unique key).
    register_periodic(REMINDERS_JOB, _periodic, hour="*", minute="*/5")
