"""Background jobs of promotions.quiz: close timed-out attempts, draw ended random-K quizzes; summary and demo."""

from __future__ import annotations

import logging

from sqlalchemy import select

from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.errors import ShequnError
from shequn.core.jobs import register_periodic
from shequn.promotions.common import register_demo_step, register_summarizer
from shequn.promotions.quiz import demo, service
from shequn.promotions.quiz.models import Quiz

log = logging.getLogger(__name__)
SWEEP = "promotions.quiz.sweep"


def sweep() -> dict[str, int]:
    """Each running or just-ended quiz in its own transaction: finalize expired attempts, draw if due."""
    now = utcnow()
    with session_scope() as session:
        ids = list(session.scalars(select(Quiz.id).where(Quiz.status == "published", Quiz.starts_at <= now)))
    closed = drawn = 0
    for quiz_id in ids:
        with session_scope() as session:
            quiz = session.get(Quiz, quiz_id)
            if quiz is None or quiz.status != "published":
                continue
            closed += service.finalize_expired(session, quiz=quiz, now=now)
            if quiz.prize_rule == "random_k" and now >= quiz.ends_at:
                try:
                    service.draw(session, workspace_id=quiz.workspace_id, quiz_id=quiz.id, now=now)
                    drawn += 1
                except ShequnError:  # an operator drew it meanwhile
                    log.info("quiz %s: draw skipped", quiz_id)
    return {"closed": closed, "drawn": drawn}


def _periodic() -> None:
    sweep()


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    register_summarizer("quiz", service.summarize)
    register_demo_step("quiz", demo.demo_step)
    # Every five minutes: an unsubmitted attempt is closed at most five minutes after its clock ran out.
    register_periodic(SWEEP, _periodic, hour="*", minute="*/5")
