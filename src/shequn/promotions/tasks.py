"""Start-up wiring of every promotions capability (each registers its own jobs, signals and summarizer)."""

from __future__ import annotations

from shequn.promotions.campaigns import tasks as campaigns_tasks
from shequn.promotions.challenges import tasks as challenges_tasks
from shequn.promotions.coupons import tasks as coupons_tasks
from shequn.promotions.flash import tasks as flash_tasks
from shequn.promotions.guard import tasks as guard_tasks
from shequn.promotions.lottery import tasks as lottery_tasks
from shequn.promotions.quiz import tasks as quiz_tasks

_CAPABILITIES = (guard_tasks, campaigns_tasks, coupons_tasks, flash_tasks, lottery_tasks, quiz_tasks, challenges_tasks)


def register() -> None:
    """Register every promotions capability (called once at start-up)."""
    for tasks in _CAPABILITIES:
        tasks.register()
