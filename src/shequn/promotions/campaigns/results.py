"""A campaign's live results: its activities (from each kind's summarizer), KPIs against targets, the funnel,
budget burn and activity per day (tagged orders, participations the summarizers report per day)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import NotFound
from shequn.promotions.campaigns.manage import KPI_METRICS, get_campaign, status_of
from shequn.promotions.campaigns.models import Campaign
from shequn.promotions.common import DAY_PREFIX, ActivitySummary, summarize_campaign

MAX_DAYS = 120  # the chart's longest span (a campaign's last 120 days)


@dataclass(frozen=True)
class Kpi:
    """One KPI: target, actual and progress (None without a target)."""

    metric: str
    target: int | None
    actual: int

    @property
    def progress(self) -> float | None:
        """actual / target (0 target: done when anything happened)."""
        if self.target is None:
            return None
        if self.target == 0:
            return 1.0
        return self.actual / self.target


@dataclass(frozen=True)
class Day:
    """One local day of the campaign."""

    day: str
    orders: int = 0
    gmv_fen: int = 0
    participations: int = 0


@dataclass
class Results:
    """Everything the campaign page shows live."""

    campaign: Campaign
    status: str
    audience_size: int | None
    audience_source: str  # segment | community | ""
    activities: list[ActivitySummary]
    actuals: dict[str, int]
    kpis: list[Kpi]
    funnel: list[tuple[str, int]]
    activity_gmv_fen: int
    tagged_gmv_fen: int
    activity_cost_fen: int
    days: list[Day] = field(default_factory=list)

    @property
    def budget_share(self) -> float | None:
        """spent / budget (None without a cap)."""
        c = self.campaign
        if c.budget_fen is None:
            return None
        return (c.spent_fen / c.budget_fen) if c.budget_fen else (1.0 if c.spent_fen else 0.0)

    @property
    def remaining_fen(self) -> int | None:
        """What the budget still covers (None without a cap)."""
        c = self.campaign
        return None if c.budget_fen is None else max(c.budget_fen - c.spent_fen, 0)


def audience_size(session: Session, c: Campaign) -> tuple[int | None, str]:
    """How many customers the campaign targets: its segment's members, else its community's members."""
    from shequn.audience import service as audience_service
    from shequn.community import service as community_service

    if c.target_segment_id is not None:
        try:
            seg = audience_service.get_segment(session, workspace_id=c.workspace_id, segment_id=c.target_segment_id)
            return seg.members_count, "segment"
        except NotFound:
            pass  # deleted since: fall back to the community
    if c.target_community_id is not None:
        try:
            com = community_service.get_community(
                session, workspace_id=c.workspace_id, community_id=c.target_community_id
            )
            return com.members_count, "community"
        except NotFound:
            pass
    return None, ""


def new_members(session: Session, c: Campaign) -> int:
    """Customers seated in the target community between the campaign's start and now (or its end)."""
    from shequn.community import service as community_service

    if c.target_community_id is None:
        return 0
    until = min(utcnow(), c.ends_at)
    return community_service.count_joins(
        session, workspace_id=c.workspace_id, community_id=c.target_community_id, since=c.starts_at, until=until
    )


def _tagged_days(session: Session, c: Campaign, tz: str) -> list[tuple[str, int, int]]:
    """Orders tagged with the campaign's utm_campaign, per local day (empty without a tag)."""
    from shequn.commerce import service as commerce_service

    if not c.utm_campaign:
        return []
    return commerce_service.tagged_orders_by_day(
        session,
        workspace_id=c.workspace_id,
        utm_campaign=c.utm_campaign,
        since=max(c.starts_at, c.ends_at - timedelta(days=MAX_DAYS)),
        until=c.ends_at,
        tz=tz,
    )


def _days(c: Campaign, tz: str, tagged: list[tuple[str, int, int]], activities: list[ActivitySummary]) -> list[Day]:
    """Every local day from the start to today (or the end), with tagged orders and reported participations."""
    from shequn.core.fmt import zone

    z = zone(tz)
    first = c.starts_at.astimezone(z).date()
    last = min(utcnow(), c.ends_at - timedelta(microseconds=1)).astimezone(z).date()
    if last < first:
        return []
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    orders = {d: (n, g) for d, n, g in tagged}
    taking: dict[str, int] = {}
    for a in activities:
        for key, value in a.extra.items():
            if key.startswith(DAY_PREFIX):
                taking[key[len(DAY_PREFIX) :]] = taking.get(key[len(DAY_PREFIX) :], 0) + int(value)
    out = []
    d: date = first
    while d <= last:
        key = d.isoformat()
        n, g = orders.get(key, (0, 0))
        out.append(Day(key, n, g, taking.get(key, 0)))
        d += timedelta(days=1)
    return out


def campaign_results(session: Session, *, workspace_id: int, campaign_id: int) -> Results:
    """The campaign's live results (activities summarized now, KPIs, funnel, budget, days)."""
    from shequn.identity import service as identity_service

    c = get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    session.refresh(c)  # spent_fen moves by other transactions' conditional UPDATEs
    tz = identity_service.workspace_timezone(session, workspace_id)
    activities = summarize_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    size, source = audience_size(session, c)
    tagged = _tagged_days(session, c, tz)
    activity_gmv = sum(a.gmv_fen for a in activities)
    tagged_gmv = sum(g for _, _, g in tagged)
    actuals = {
        "participants": sum(a.participants for a in activities),
        "claims": sum(a.actions for a in activities),
        "wins": sum(a.wins for a in activities),
        "redemptions": sum(a.redemptions for a in activities),
        # The two sources may count the same order (tagged and paid with a campaign coupon): never add them.
        "gmv_fen": max(activity_gmv, tagged_gmv),
        "orders": sum(n for _, n, _ in tagged),
        "new_members": new_members(session, c),
    }
    targets = dict(c.kpis or {})
    kpis = [Kpi(m, targets.get(m), actuals[m]) for m in KPI_METRICS if m in targets or actuals[m]]
    funnel = [
        ("targeted", size or 0),
        ("participated", actuals["participants"]),
        ("won", actuals["wins"]),
        ("redeemed", actuals["redemptions"]),
    ]
    return Results(
        campaign=c,
        status=status_of(c),
        audience_size=size,
        audience_source=source,
        activities=activities,
        actuals=actuals,
        kpis=kpis,
        funnel=funnel,
        activity_gmv_fen=activity_gmv,
        tagged_gmv_fen=tagged_gmv,
        activity_cost_fen=sum(a.cost_fen for a in activities),
        days=_days(c, tz, tagged, activities),
    )
