"""What every promotion activity shares: its summary for the campaign page and the registry of summarizers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session


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
