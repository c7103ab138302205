"""What every promotion activity shares: its summary for the campaign page and the registry of summarizers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from shequn.core.sqlutil import count_by_local_day
from shequn.identity import service as identity_service

# A summarizer reports participations per local day in `extra` under "day:YYYY-MM-DD" (the campaign's chart).
DAY_PREFIX = "day:"


@dataclass(frozen=True)
class ActivitySummary:
    """One activity (coupon, flash sale, lottery, quiz, challenge) as the campaign page shows it."""

    kind: str  # coupon | flash_sale | lottery | quiz | challenge
    id: int
    name: str
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    participants: int  # distinct customers who took part (claimed, drew, answered, entered)
    actions: int  # claims, draws, attempts, entries
    wins: int  # coupons granted, flash units sold, prizes won, winners
    redemptions: int = 0  # coupons used / flash reservations paid
    gmv_fen: int = 0  # order value attributed to the activity
    cost_fen: int = 0  # discount given and prize cost, counted against the campaign budget
    console_url: str = ""
    extra: dict[str, int] = field(default_factory=dict)


def participations_by_day(
    session: Session, workspace_id: int, column: Any, where: Sequence[ColumnElement[bool]]
) -> dict[str, int]:
    """`extra` entries counting an activity's participations per local day of the workspace (by `column`)."""
    tz = identity_service.workspace_timezone(session, workspace_id)
    return {DAY_PREFIX + day: n for day, n in count_by_local_day(session, column, where, tz).items()}


# kind → summarize(session, workspace_id=..., campaign_id=...) → the campaign's activities of that kind.
Summarizer = Callable[..., list[ActivitySummary]]
_summarizers: dict[str, Summarizer] = {}


def register_summarizer(kind: str, summarize: Summarizer) -> None:
    """Register how activities of one kind summarize themselves for a campaign (explicit registry)."""
    _summarizers[kind] = summarize


def summarize_campaign(session: Session, *, workspace_id: int, campaign_id: int) -> list[ActivitySummary]:
    """Every registered kind's activities of this campaign."""
    out: list[ActivitySummary] = []
    for kind in sorted(_summarizers):
        out.extend(_summarizers[kind](session, workspace_id=workspace_id, campaign_id=campaign_id))
    return out


# name → step(session, workspace_id=..., campaign_id=...) → counts: each capability's layer of the demo brand.
DemoStep = Callable[..., dict[str, int]]
_demo_steps: dict[str, DemoStep] = {}


def register_demo_step(name: str, step: DemoStep) -> None:
    """Register one capability's demo layer, run by the campaigns demo job inside the demo campaign."""
    _demo_steps[name] = step


def demo_steps() -> list[tuple[str, DemoStep]]:
    """The registered demo layers in a stable order."""
    return sorted(_demo_steps.items())
