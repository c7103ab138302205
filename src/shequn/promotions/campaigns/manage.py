"""Campaigns themselves: create, edit, publish, cancel, list, and the status derived from their dates."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import NotFound
from shequn.promotions.campaigns.errors import (
    CampaignBadTransition,
    CampaignClosed,
    CampaignInvalid,
    CampaignNotFound,
)
from shequn.promotions.campaigns.models import Campaign
from shequn.promotions.campaigns.schemas import MAX_FEN, CampaignFields, CampaignIn

GOALS = ("conversion", "acquisition", "retention", "engagement", "awareness")
CHANNELS = ("wecom_group", "wechat_group", "qq_group", "weibo", "douyin", "xiaohongshu", "live", "sms", "email", "h5")
# KPI metrics the campaign page can measure (see campaigns.results for how each is counted).
KPI_METRICS = ("participants", "claims", "wins", "redemptions", "gmv_fen", "new_members", "orders")
STATUSES = ("draft", "scheduled", "running", "ended", "cancelled")
NAME_MAX = 120
YEARS = (2000, 2100)
UTM_RE = re.compile(r"^[A-Za-z0-9_.\-]{0,64}$")
# Fields whose null means "clear" on a patch (everything else: null means "leave as is").
NULLABLE = ("budget_fen", "target_segment_id", "target_community_id")


def status_of(c: Campaign, now: datetime | None = None) -> str:
    """What the campaign is now: draft, scheduled, running, ended or cancelled."""
    if c.status in ("draft", "cancelled"):
        return c.status
    now = now or utcnow()
    if now < c.starts_at:
        return "scheduled"
    return "running" if now < c.ends_at else "ended"


def _status_filter(status: str, now: datetime) -> ColumnElement[bool]:
    """The SQL condition for a derived status (the same rules as status_of)."""
    published = Campaign.status == "published"
    return {
        "draft": Campaign.status == "draft",
        "cancelled": Campaign.status == "cancelled",
        "scheduled": and_(published, Campaign.starts_at > now),
        "running": and_(published, Campaign.starts_at <= now, Campaign.ends_at > now),
        "ended": and_(published, Campaign.ends_at <= now),
    }[status]


def get_campaign(session: Session, *, workspace_id: int, campaign_id: int) -> Campaign:
    """A campaign of this workspace (CampaignNotFound otherwise)."""
    c = session.get(Campaign, campaign_id)
    if c is None or c.workspace_id != workspace_id:
        raise CampaignNotFound(id=campaign_id)
    return c


def campaign_belongs(session: Session, *, workspace_id: int, campaign_id: int | None) -> bool:
    """Whether an activity may link to this campaign id: none, or one of this workspace's campaigns."""
    if campaign_id is None:
        return True
    c = session.get(Campaign, campaign_id)
    return c is not None and c.workspace_id == workspace_id


def list_campaigns(
    session: Session,
    *,
    workspace_id: int,
    status: str | None = None,
    q: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Campaign], int]:
    """A page of the workspace's campaigns, latest start first, filtered by derived status and name."""
    stmt = select(Campaign).where(Campaign.workspace_id == workspace_id)
    if status in STATUSES:
        stmt = stmt.where(_status_filter(status, utcnow()))
    if q:
        stmt = stmt.where(Campaign.name.ilike(f"%{q}%"))
    total = session.scalar(stmt.with_only_columns(func.count(Campaign.id))) or 0
    rows = session.scalars(stmt.order_by(Campaign.starts_at.desc(), Campaign.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def list_campaign_choices(session: Session, *, workspace_id: int) -> list[tuple[int, str]]:
    """(id, name) of the campaigns an activity may join (not cancelled), latest start first."""
    rows = session.execute(
        select(Campaign.id, Campaign.name)
        .where(Campaign.workspace_id == workspace_id, Campaign.status != "cancelled")
        .order_by(Campaign.starts_at.desc(), Campaign.id.desc())
    )
    return [(int(i), str(n)) for i, n in rows]


def status_counts(session: Session, *, workspace_id: int) -> dict[str, int]:
    """How many campaigns are in each derived status (the list page's filter tabs)."""
    now = utcnow()
    out = {}
    for s in STATUSES:
        out[s] = (
            session.scalar(
                select(func.count(Campaign.id)).where(Campaign.workspace_id == workspace_id, _status_filter(s, now))
            )
            or 0
        )
    return out


# --- validation ---------------------------------------------------------------------------------


def _problem(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def _check_shape(c: Campaign) -> list[dict[str, str]]:
    """Rules on the campaign's own fields (no database look-ups)."""
    problems: list[dict[str, str]] = []
    if not c.name or not c.name.strip():
        problems.append(_problem("name", "required", "a name is required"))
    elif len(c.name) > NAME_MAX:
        problems.append(_problem("name", "too_long", f"at most {NAME_MAX} characters"))
    # Years far off are typos (and year 1 with an offset cannot even be stored in UTC).
    bad_years = [f for f in ("starts_at", "ends_at") if not YEARS[0] <= getattr(c, f).year <= YEARS[1]]
    for f in bad_years:
        problems.append(_problem(f, "out_of_range", f"a year from {YEARS[0]} to {YEARS[1]}"))
    if not bad_years and c.ends_at <= c.starts_at:
        problems.append(_problem("ends_at", "not_after_start", "must be after starts_at"))
    if c.goal not in GOALS:
        problems.append(_problem("goal", "unknown", f"one of {', '.join(GOALS)}"))
    problems += _budget_problems(c.budget_fen)
    unknown = [ch for ch in c.channels if ch not in CHANNELS]
    if unknown:
        problems.append(_problem("channels", "unknown", f"unknown {', '.join(unknown)}; one of {', '.join(CHANNELS)}"))
    for metric, target in c.kpis.items():
        if metric not in KPI_METRICS:
            problems.append(_problem("kpis", "unknown", f"unknown metric {metric}; one of {', '.join(KPI_METRICS)}"))
        elif not isinstance(target, int) or isinstance(target, bool) or not 0 <= target <= MAX_FEN:
            problems.append(_problem("kpis", "bad_target", f"the target of {metric} must be a whole number ≥ 0"))
    if not UTM_RE.match(c.utm_campaign or ""):
        problems.append(_problem("utm_campaign", "bad_format", "letters, digits, _ . - (at most 64)"))
    return problems


def _budget_problems(budget_fen: int | None) -> list[dict[str, str]]:
    """A budget is a whole number of fen ≥ 0, or None for no cap."""
    if budget_fen is not None and not 0 <= budget_fen <= MAX_FEN:
        return [_problem("budget_fen", "negative", "must be 0 or more (fen)")]
    return []


def _check_targets(session: Session, c: Campaign) -> list[dict[str, str]]:
    """The target segment and community must exist in the campaign's workspace."""
    from shequn.audience import service as audience_service
    from shequn.community import service as community_service

    problems: list[dict[str, str]] = []
    if c.target_segment_id is not None:
        try:
            audience_service.get_segment(session, workspace_id=c.workspace_id, segment_id=c.target_segment_id)
        except NotFound:
            problems.append(_problem("target_segment_id", "not_found", "no such segment in this workspace"))
    if c.target_community_id is not None:
        try:
            community_service.get_community(session, workspace_id=c.workspace_id, community_id=c.target_community_id)
        except NotFound:
            problems.append(_problem("target_community_id", "not_found", "no such community in this workspace"))
    return problems


def check_campaign(session: Session, c: Campaign, *, more: list[dict[str, str]] | None = None) -> None:
    """Raise CampaignInvalid naming every bad field (more: problems the caller found already)."""
    problems = _check_shape(c) + _check_targets(session, c) + (more or [])
    if problems:
        raise CampaignInvalid(details=problems)


# --- writes -------------------------------------------------------------------------------------


def _normalize(values: dict[str, Any]) -> dict[str, Any]:
    """Trim text, drop duplicate channels (order kept)."""
    if isinstance(values.get("name"), str):
        values["name"] = values["name"].strip()
    if values.get("channels") is not None:
        values["channels"] = list(dict.fromkeys(values["channels"]))
    if values.get("utm_campaign") is not None:
        values["utm_campaign"] = values["utm_campaign"].strip()
    return values


def create_campaign(
    session: Session, *, workspace_id: int, data: CampaignIn, created_by: int | None = None
) -> Campaign:
    """A new campaign: a draft, or published at once when data.publish is set."""
    values = _normalize(data.model_dump(exclude_none=True, exclude={"publish"}))
    now = utcnow()
    defaults: dict[str, Any] = {"description": "", "channels": [], "kpis": {}, "utm_campaign": ""}
    c = Campaign(
        workspace_id=workspace_id,
        created_by=created_by,
        status="draft",
        spent_fen=0,
        created_at=now,
        updated_at=now,
        **{**defaults, **values},
    )
    check_campaign(session, c)
    if data.publish:
        c.status, c.published_at = "published", now
    session.add(c)
    session.flush()
    return c


def update_campaign(session: Session, *, workspace_id: int, campaign_id: int, data: CampaignFields) -> Campaign:
    """Change a campaign (not a cancelled one); the budget never drops below what is already spent."""
    c = get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    session.refresh(c)  # spent_fen moves by other transactions' UPDATEs
    if c.status == "cancelled":
        raise CampaignClosed(id=campaign_id)
    changes = _normalize(data.model_dump(exclude_unset=True, exclude={"publish"}))
    # The budget is not set on the object: autoflush would write it before the conditional UPDATE could check it.
    budget_changed = "budget_fen" in changes
    budget = changes.pop("budget_fen", None)
    for key, value in changes.items():
        if value is None and key not in NULLABLE:
            continue  # null means "leave as is" for text and required fields
        setattr(c, key, value)
    check_campaign(session, c, more=_budget_problems(budget) if budget_changed else [])
    if budget_changed:
        _set_budget(session, c, budget)
    c.updated_at = utcnow()
    session.flush()
    return c


def _set_budget(session: Session, c: Campaign, budget_fen: int | None) -> None:
    """Set the cap with a conditional UPDATE: a charge racing this edit cannot end up above the new cap."""
    cond = Campaign.spent_fen <= budget_fen if budget_fen is not None else Campaign.id == c.id
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == c.id, cond)
        .values(budget_fen=budget_fen)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(c)
        raise CampaignInvalid(
            details=[
                _problem("budget_fen", "below_spent", f"already spent {c.spent_fen} fen; the budget cannot be less")
            ]
        )
    session.refresh(c, ["spent_fen", "budget_fen"])


def _move(session: Session, c: Campaign, frm: str, to: str, **values: Any) -> None:
    """Move the stored status with a conditional UPDATE so two operators cannot both publish or cancel."""
    if c.status == "cancelled":
        raise CampaignClosed(id=c.id)
    now = utcnow()
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == c.id, Campaign.status == frm)
        .values(status=to, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(c)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CampaignBadTransition(status=status_of(c))


def publish_campaign(session: Session, *, workspace_id: int, campaign_id: int) -> Campaign:
    """Publish a draft: from now on its status follows its dates."""
    c = get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    check_campaign(session, c)
    _move(session, c, "draft", "published", published_at=utcnow())
    return c


def cancel_campaign(session: Session, *, workspace_id: int, campaign_id: int) -> Campaign:
    """Call a campaign off (draft or published); its activities keep their own status."""
    c = get_campaign(session, workspace_id=workspace_id, campaign_id=campaign_id)
    session.refresh(c)
    _move(session, c, c.status, "cancelled", cancelled_at=utcnow())
    return c
