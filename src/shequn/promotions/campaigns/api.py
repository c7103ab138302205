"""Operator API of promotions.campaigns: create, edit, publish, cancel, list, read, live results."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.campaigns import service
from shequn.promotions.campaigns.models import Campaign
from shequn.promotions.campaigns.schemas import (
    ActivityOut,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    DayOut,
    KpiOut,
    ResultsOut,
)

router = APIRouter(prefix="/api/v1/campaigns", tags=["promotions"])
StatusParam = Literal["draft", "scheduled", "running", "ended", "cancelled"]


def campaign_out(c: Campaign) -> CampaignOut:
    """A campaign with its derived status."""
    return CampaignOut(
        id=c.id,
        name=c.name,
        goal=c.goal,
        description=c.description,
        status=service.status_of(c),
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        budget_fen=c.budget_fen,
        spent_fen=c.spent_fen,
        target_segment_id=c.target_segment_id,
        target_community_id=c.target_community_id,
        channels=list(c.channels or []),
        kpis=dict(c.kpis or {}),
        utm_campaign=c.utm_campaign,
        published_at=c.published_at,
        cancelled_at=c.cancelled_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def _audited(db: Session, actor: Actor, c: Campaign, action: str, details: dict[str, Any]) -> CampaignOut:
    """Record the operator's change in the audit log, commit (the boundary) and return the campaign."""
    identity_service.record_audit(db, actor, f"campaign.{action}", "campaign", c.id, details)
    db.commit()
    return campaign_out(c)


@router.get("", response_model=Paginated[CampaignOut])
def list_campaigns(
    status: StatusParam | None = None,
    q: str = Query("", max_length=100, description="part of the name"),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[CampaignOut]:
    """The workspace's campaigns, latest start first."""
    rows, total = service.list_campaigns(
        db, workspace_id=actor.workspace_id, status=status, q=q, limit=page.limit, offset=page.offset
    )
    return Paginated.of([campaign_out(c) for c in rows], total, page.limit, page.offset)


@router.post("", response_model=CampaignOut, status_code=201)
def create_campaign(
    body: CampaignIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CampaignOut:
    """Create a campaign (a draft unless publish is true)."""
    c = service.create_campaign(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    return _audited(db, actor, c, "create", {"name": c.name})


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(
    campaign_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> CampaignOut:
    """One campaign."""
    return campaign_out(service.get_campaign(db, workspace_id=actor.workspace_id, campaign_id=campaign_id))


@router.patch("/{campaign_id}", response_model=CampaignOut)
def update_campaign(
    campaign_id: DbId, body: CampaignPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CampaignOut:
    """Edit a campaign (a cancelled one cannot change)."""
    c = service.update_campaign(db, workspace_id=actor.workspace_id, campaign_id=campaign_id, data=body)
    return _audited(db, actor, c, "update", {"fields": sorted(body.model_dump(exclude_unset=True))})


@router.post("/{campaign_id}/publish", response_model=CampaignOut)
def publish_campaign(
    campaign_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CampaignOut:
    """Publish a draft: from now on its status follows its dates."""
    c = service.publish_campaign(db, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    return _audited(db, actor, c, "publish", {})


@router.post("/{campaign_id}/cancel", response_model=CampaignOut)
def cancel_campaign(
    campaign_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CampaignOut:
    """Call the campaign off."""
    c = service.cancel_campaign(db, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    return _audited(db, actor, c, "cancel", {})


@router.get("/{campaign_id}/results", response_model=ResultsOut)
def campaign_results(
    campaign_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> ResultsOut:
    """Live results: activities, KPIs against targets, funnel, budget burn, activity per day."""
    r = service.campaign_results(db, workspace_id=actor.workspace_id, campaign_id=campaign_id)
    c = r.campaign
    return ResultsOut(
        campaign=campaign_out(c),
        audience_size=r.audience_size,
        kpis=[KpiOut(metric=k.metric, target=k.target, actual=k.actual, progress=k.progress) for k in r.kpis],
        funnel={**dict(r.funnel), "gmv_fen": r.actuals["gmv_fen"]},
        budget={
            "budget_fen": c.budget_fen,
            "spent_fen": c.spent_fen,
            "remaining_fen": r.remaining_fen,
            "share": r.budget_share,
            "activity_cost_fen": r.activity_cost_fen,
        },
        activities=[ActivityOut.model_validate(a, from_attributes=True) for a in r.activities],
        days=[DayOut(day=d.day, orders=d.orders, gmv_fen=d.gmv_fen, participations=d.participations) for d in r.days],
    )
