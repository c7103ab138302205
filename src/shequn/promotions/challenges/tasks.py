"""Background jobs of promotions.challenges: pick up hashtag posts as entries; summary and demo."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.jobs import register_periodic
from shequn.promotions.challenges import demo, service
from shequn.promotions.challenges.models import Challenge
from shequn.promotions.common import register_demo_step, register_summarizer

SWEEP = "promotions.challenges.sweep"
# Moderation can still withdraw or restore entries for a while after the entry window.
AFTER_CLOSE = timedelta(days=1)


def sweep() -> dict[str, int]:
    """Sync the entries of every challenge whose entry window is open (or just closed), one transaction each."""
    now = utcnow()
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(Challenge.id).where(
                    Challenge.status == "published",
                    Challenge.entry_starts_at <= now,
                    Challenge.entry_ends_at >= now - AFTER_CLOSE,
                )
            )
        )
    found = 0
    for challenge_id in ids:
        with session_scope() as session:
            challenge = session.get(Challenge, challenge_id)
            if challenge is not None:
                found += service.sync_entries(session, challenge=challenge, now=now)
    return {"challenges": len(ids), "new_entries": found}


def _periodic() -> None:
    sweep()


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    register_summarizer("challenge", service.summarize)
    register_demo_step("challenge", demo.demo_step)
    # Every five minutes: a new hashtag post shows up as an entry within five minutes (or at once when entered).
    register_periodic(SWEEP, _periodic, hour="*", minute="*/5")
