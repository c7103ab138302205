"""The demo brand's promotions layer: a running "双11 茶友节" campaign in which every registered promotions demo
step creates its activities, and a past 618 campaign; run as a job after the commerce and community demos."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.campaigns.schemas import CampaignIn
from shequn.promotions.common import demo_steps

log = logging.getLogger(__name__)
CST = ZoneInfo("Asia/Shanghai")
DOUBLE11 = "双11 茶友节"
SIX18 = "618 年中茶礼节"


@dataclass(frozen=True)
class DemoCampaign:
    """What the demo brand's campaign looks like before it exists."""

    name: str
    starts_at: datetime
    ends_at: datetime
    utm_campaign: str
    goal: str
    budget_fen: int
    kpis: dict[str, int]
    channels: tuple[str, ...]
    description: str
    segment_hint: str
    community_hint: str


def _double11(now: datetime) -> DemoCampaign:
    """The latest 双11 season (presale from 20 Oct), kept open two weeks past the demo load as a 返场.

    Outside the season the campaign simply runs around now, untagged (no demo order carries a tag then).
    """
    local = now.astimezone(CST)
    year = local.year if (local.month, local.day) >= (10, 20) else local.year - 1
    season_start = datetime(year, 10, 20, tzinfo=CST)
    in_season = now - season_start <= timedelta(days=53)  # up to 12 Dec: 双11 and its 返场
    return DemoCampaign(
        name=DOUBLE11,
        starts_at=season_start if in_season else now - timedelta(days=3),
        ends_at=max(datetime(year, 11, 12, tzinfo=CST), now + timedelta(days=14)),
        utm_campaign=f"double11_{year}" if in_season else "",
        goal="conversion",
        budget_fen=5_000_000,  # ¥50,000 for coupons, flash-sale discounts and prizes
        kpis={"participants": 300, "claims": 600, "redemptions": 60, "gmv_fen": 30_000_000, "new_members": 20},
        channels=("wecom_group", "wechat_group", "weibo", "h5", "live"),
        description="双11 会员专享：领券、秒杀、抽奖、答题与晒茶挑战，社群与直播间同步推广。",
        segment_hint="绿茶",
        community_hint="茶友品鉴群",
    )


def _six18(now: datetime) -> DemoCampaign:
    """The latest finished 618 season (25 May – 18 Jun), for history: tagged orders against targets."""
    local = now.astimezone(CST)
    year = local.year if (local.month, local.day) > (6, 18) else local.year - 1
    return DemoCampaign(
        name=SIX18,
        starts_at=datetime(year, 5, 25, tzinfo=CST),
        ends_at=datetime(year, 6, 19, tzinfo=CST),
        utm_campaign=f"618_{year}",
        goal="conversion",
        budget_fen=3_000_000,
        kpis={"orders": 400, "gmv_fen": 12_000_000},
        channels=("wechat_group", "weibo", "douyin"),
        description="618 年中大促：满 300 减 30，社交渠道带 UTM 标记引流。",
        segment_hint="高客单",
        community_hint="茶友品鉴群",
    )


def _pick(choices: list[tuple[int, str]], hint: str) -> int | None:
    """The first choice whose name contains hint, else the first one (None when there are none)."""
    for cid, name in choices:
        if hint in name:
            return cid
    return choices[0][0] if choices else None


def ensure_demo_campaign(session: Session, *, workspace_id: int, spec: DemoCampaign) -> tuple[int, bool]:
    """The campaign named spec.name (created and published once); its id and whether it was created now."""
    from shequn.audience import service as audience_service
    from shequn.community import service as community_service

    rows, _ = campaigns_service.list_campaigns(session, workspace_id=workspace_id, q=spec.name, limit=50)
    for c in rows:
        if c.name == spec.name:
            return c.id, False
    segments = [(s.id, s.name) for s in audience_service.list_segments(session, workspace_id=workspace_id)]
    communities = [(c.id, c.name) for c in community_service.list_communities(session, workspace_id=workspace_id)]
    data = CampaignIn(
        name=spec.name,
        goal=spec.goal,
        description=spec.description,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        budget_fen=spec.budget_fen,
        target_segment_id=_pick(segments, spec.segment_hint),
        target_community_id=_pick(communities, spec.community_hint),
        channels=list(spec.channels),
        kpis=spec.kpis,
        utm_campaign=spec.utm_campaign,
        publish=True,
    )
    c = campaigns_service.create_campaign(session, workspace_id=workspace_id, data=data)
    return c.id, True


def run_demo(session: Session, *, workspace_id: int) -> dict[str, Any]:
    """Both demo campaigns, then every registered demo step inside 双11 (each step is idempotent itself)."""
    now = utcnow()
    main_id, created = ensure_demo_campaign(session, workspace_id=workspace_id, spec=_double11(now))
    past_id, _ = ensure_demo_campaign(session, workspace_id=workspace_id, spec=_six18(now))
    session.commit()
    result: dict[str, Any] = {"campaign_id": main_id, "created": created, "past_campaign_id": past_id}
    for name, step in demo_steps():
        try:
            result[name] = step(session, workspace_id=workspace_id, campaign_id=main_id)
            session.commit()
        except Exception as exc:  # one capability's broken demo must not keep the others' from the brand
            session.rollback()
            log.exception("promotions demo step %s failed", name)
            result[name] = {"error": type(exc).__name__}
    return result
