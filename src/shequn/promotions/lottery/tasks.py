"""Background jobs and signal receivers of promotions.lottery."""

from __future__ import annotations

from shequn.core import jobs
from shequn.core.db import session_scope
from shequn.promotions.common import register_demo_step, register_summarizer
from shequn.promotions.lottery import demo, manage, reports


def reveal_sweep() -> None:
    """Reveal the seed of every lottery that has ended, so its record becomes verifiable without an operator."""
    with session_scope() as session:
        manage.reveal_ended(session)


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    jobs.register_periodic("lottery.reveal", reveal_sweep, hour="*", minute="*/5")
    register_summarizer("lottery", reports.summarize)
    register_demo_step("lottery", demo.demo_step)
