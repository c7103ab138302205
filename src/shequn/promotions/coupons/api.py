"""Operator API of promotions.coupons: templates, grants, codes, fan-out, redemption and reversal."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from shequn.core import jobs
from shequn.core.errors import NotFound
from shequn.core.schemas import JobOut, Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.coupons import service
from shequn.promotions.coupons.schemas import (
    CodesIn,
    FanoutIn,
    GrantIn,
    GrantOut,
    RedeemedOut,
    RedeemIn,
    RedeemOut,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
)

router = APIRouter(prefix="/api/v1/coupons", tags=["promotions"])


class StatusIn(BaseModel):
    """A status change."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "paused", "ended"]


class ReverseIn(BaseModel):
    """An order refunded or cancelled."""

    model_config = ConfigDict(extra="forbid")

    order_ref: str = Field(min_length=1, max_length=120)


class ResultsOut(BaseModel):
    """What a template achieved."""

    issued: int
    holders: int
    redeemed: int
    expired: int
    reversed: int
    redemption_rate: float
    discount_fen: int
    gmv_fen: int
    codes: int
    codes_claimed: int
    per_day: list[tuple[str, int]]


@router.get("/templates", response_model=Paginated[TemplateOut])
def list_templates(
    status: Literal["draft", "active", "paused", "ended"] | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[TemplateOut]:
    """The workspace's coupon templates, newest first."""
    rows, total = service.list_templates(
        db, workspace_id=actor.workspace_id, status=status, limit=page.limit, offset=page.offset
    )
    return Paginated.of([TemplateOut.model_validate(t) for t in rows], total, page.limit, page.offset)


@router.post("/templates", response_model=TemplateOut, status_code=201)
def create_template(
    body: TemplateIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> TemplateOut:
    """Create a draft template (activate it to open claims)."""
    tpl = service.create_template(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    identity_service.record_audit(db, actor, "coupon.create", "coupon_template", tpl.id, {"name": tpl.name})
    db.commit()
    return TemplateOut.model_validate(tpl)


@router.get("/templates/{template_id}", response_model=TemplateOut)
def get_template(
    template_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> TemplateOut:
    """One template with its counters."""
    return TemplateOut.model_validate(
        service.get_template(db, workspace_id=actor.workspace_id, template_id=template_id)
    )


@router.patch("/templates/{template_id}", response_model=TemplateOut)
def update_template(
    template_id: DbId, body: TemplatePatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> TemplateOut:
    """Change a template (kind and code mode are fixed once coupons exist)."""
    tpl = service.update_template(db, workspace_id=actor.workspace_id, template_id=template_id, data=body)
    identity_service.record_audit(
        db, actor, "coupon.update", "coupon_template", tpl.id, body.model_dump(mode="json", exclude_unset=True)
    )
    db.commit()
    return TemplateOut.model_validate(tpl)


@router.post("/templates/{template_id}/status", response_model=TemplateOut)
def set_status(
    template_id: DbId, body: StatusIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> TemplateOut:
    """Activate, pause, resume or end a template."""
    tpl = service.set_status(db, workspace_id=actor.workspace_id, template_id=template_id, status=body.status)
    identity_service.record_audit(db, actor, f"coupon.{body.status}", "coupon_template", tpl.id, {})
    db.commit()
    return TemplateOut.model_validate(tpl)


@router.get("/templates/{template_id}/results", response_model=ResultsOut)
def results(template_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> ResultsOut:
    """Issued, redeemed, redemption rate, discount given, GMV of orders using it, claims per day."""
    tpl = service.get_template(db, workspace_id=actor.workspace_id, template_id=template_id)
    r = service.template_results(db, tpl)
    codes, claimed = service.code_counts(db, workspace_id=actor.workspace_id, template_id=tpl.id)
    return ResultsOut(
        issued=r.issued,
        holders=r.holders,
        redeemed=r.redeemed,
        expired=r.expired,
        reversed=r.reversed,
        redemption_rate=round(r.redemption_rate, 4),
        discount_fen=r.discount_fen,
        gmv_fen=r.gmv_fen,
        codes=codes,
        codes_claimed=claimed,
        per_day=[(d.isoformat(), n) for d, n in r.per_day],
    )


@router.get("/templates/{template_id}/grants", response_model=Paginated[GrantOut])
def list_grants(
    template_id: DbId,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[GrantOut]:
    """A page of the template's coupons held by customers."""
    tpl = service.get_template(db, workspace_id=actor.workspace_id, template_id=template_id)
    rows, total = service.list_grants(
        db, workspace_id=actor.workspace_id, template_id=tpl.id, limit=page.limit, offset=page.offset
    )
    return Paginated.of([GrantOut.model_validate(g) for g in rows], total, page.limit, page.offset)


@router.post("/templates/{template_id}/grants", response_model=GrantOut, status_code=201)
def grant(
    template_id: DbId, body: GrantIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> GrantOut:
    """Issue one coupon to one customer (idempotent by source_ref)."""
    g = service.grant_coupon(
        db,
        workspace_id=actor.workspace_id,
        template_id=template_id,
        customer_id=body.customer_id,
        source="api",
        source_ref=body.source_ref,
    )
    db.commit()
    return GrantOut.model_validate(g)


@router.post("/templates/{template_id}/codes")
def generate_codes(
    template_id: DbId, body: CodesIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> dict[str, int]:
    """Generate unique codes for a unique-code template."""
    made = service.generate_codes(
        db, workspace_id=actor.workspace_id, template_id=template_id, count=body.count, length=body.length
    )
    identity_service.record_audit(db, actor, "coupon.codes", "coupon_template", template_id, {"count": made})
    db.commit()
    return {"generated": made}


@router.get("/templates/{template_id}/codes.csv")
def export_codes(
    template_id: DbId, actor: Actor = Depends(require(Perm.EXPORT)), db: Session = Depends(get_db)
) -> StreamingResponse:
    """Download the codes: unclaimed in full (to hand out), claimed masked."""
    tpl = service.get_template(db, workspace_id=actor.workspace_id, template_id=template_id)
    identity_service.record_audit(db, actor, "coupon.export_codes", "coupon_template", tpl.id, {})
    db.commit()
    return StreamingResponse(
        service.codes_csv(actor.workspace_id, tpl.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coupon-{tpl.id}-codes.csv"'},
    )


@router.post("/templates/{template_id}/fanout", response_model=JobOut, status_code=202)
def fanout(
    template_id: DbId, body: FanoutIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> JobOut:
    """Issue the template to every member of a segment, with a delivery message each (a job with progress)."""
    job = service.start_fanout(
        db,
        workspace_id=actor.workspace_id,
        template_id=template_id,
        segment_id=body.segment_id,
        message=body.message,
        created_by=actor.operator_id,
    )
    identity_service.record_audit(
        db, actor, "coupon.fanout", "coupon_template", template_id, {"segment_id": body.segment_id}
    )
    db.commit()
    db.refresh(job)
    return JobOut.model_validate(job)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> JobOut:
    """A fan-out job's progress and report."""
    job = jobs.get_job(db, workspace_id=actor.workspace_id, job_id=job_id)
    if job is None or job.kind != service.FANOUT_JOB:
        raise NotFound(id=job_id)
    return JobOut.model_validate(job)


@router.post("/redeem", response_model=RedeemOut)
def redeem(body: RedeemIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> RedeemOut:
    """Use coupons (by code or grant id) on an order: discount computed and checked; retry-safe per order_ref."""
    done = service.redeem(
        db,
        workspace_id=actor.workspace_id,
        order_ref=body.order_ref,
        amount_fen=body.amount_fen,
        shipping_fen=body.shipping_fen,
        customer_id=body.customer_id,
        codes=body.codes,
        grant_ids=body.grant_ids,
        lines=[service.Line(sku=li.sku, category=li.category, amount_fen=li.amount_fen) for li in body.lines],
    )
    db.commit()
    return RedeemOut(
        order_ref=done.order_ref,
        amount_fen=done.amount_fen,
        discount_fen=done.discount_fen,
        coupons=[
            RedeemedOut(grant_id=c.grant_id, template_id=c.template_id, discount_fen=c.discount_fen)
            for c in done.coupons
        ],
    )


@router.post("/reverse")
def reverse(
    body: ReverseIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> dict[str, int]:
    """An order refunded or cancelled: its coupons return (if still valid) and the budget is refunded."""
    n = service.reverse_order(db, workspace_id=actor.workspace_id, order_ref=body.order_ref)
    db.commit()
    return {"reversed": n}
