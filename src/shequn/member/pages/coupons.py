"""Member H5 and member API: coupons to claim, claim by code, my coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.coupons.errors import CouponCodeInvalid
from shequn.promotions.guard import service as guard_service

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m/coupons", tags=["member"])


class OfferOut(BaseModel):
    """A coupon a member can claim."""

    id: int
    name: str
    description: str
    kind: str
    amount_fen: int
    percent_off: int
    max_discount_fen: int | None
    min_order_fen: int
    ends_at: datetime
    left: int | None  # None: unlimited


class MyCouponOut(BaseModel):
    """A coupon in the member's wallet."""

    id: int
    template_id: int
    name: str
    kind: str
    amount_fen: int
    percent_off: int
    min_order_fen: int
    code: str | None
    state: str  # issued | redeemed | expired | reversed
    valid_from: datetime
    valid_until: datetime


class CodeIn(BaseModel):
    """A code typed by the member."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=32)


def offer_out(t: Any) -> OfferOut:
    """A template as members see it."""
    left = None if t.total_stock is None else max(t.total_stock - t.issued_count, 0)
    return OfferOut(
        id=t.id,
        name=t.name,
        description=t.description,
        kind=t.kind,
        amount_fen=t.amount_fen,
        percent_off=t.percent_off,
        max_discount_fen=t.max_discount_fen,
        min_order_fen=t.min_order_fen,
        ends_at=t.ends_at,
        left=left,
    )


def mine_out(g: Any, t: Any, now: datetime) -> MyCouponOut:
    """A grant with its template's face, in the state the member sees."""
    return MyCouponOut(
        id=g.id,
        template_id=t.id,
        name=t.name,
        kind=t.kind,
        amount_fen=t.amount_fen,
        percent_off=t.percent_off,
        min_order_fen=t.min_order_fen,
        code=g.code,
        state=coupons_service.shown_state(g, now),
        valid_from=g.valid_from,
        valid_until=g.valid_until,
    )


def _guard(db: Session, request: Request, member: mweb.Member, action: str) -> None:
    """Rate limits, bursts and the blacklist before anything is written."""
    guard_service.check_member_action(
        db,
        workspace_id=member.workspace_id,
        action=action,
        customer_id=member.customer_id,
        device_id=member.device_id or mweb.device_id(request) or None,
        phone_hash=audience_service.customer_phone_hash(
            db, workspace_id=member.workspace_id, customer_id=member.customer_id
        ),
        ip=request.client.host if request.client else None,
    )


# --- member API ---------------------------------------------------------------------------------


@api.get("", response_model=list[OfferOut])
def offers(member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> list[OfferOut]:
    """Coupons the member can claim now."""
    return [offer_out(t) for t in coupons_service.list_open_templates(db, workspace_id=member.workspace_id)]


@api.get("/mine", response_model=list[MyCouponOut])
def mine(member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> list[MyCouponOut]:
    """The member's coupons, usable ones first."""
    now = utcnow()
    rows = coupons_service.list_customer_grants(db, workspace_id=member.workspace_id, customer_id=member.customer_id)
    return [mine_out(g, t, now) for g, t in rows]


@api.post("/{template_id}/claim", response_model=MyCouponOut, status_code=201)
def claim(
    template_id: DbId, request: Request, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> MyCouponOut:
    """Claim one coupon (limits, stock and budget decide; a replayed Idempotency-Key returns the same coupon)."""
    _guard(db, request, member, "coupon.claim")
    g = coupons_service.claim_coupon(
        db, workspace_id=member.workspace_id, template_id=template_id, customer_id=member.customer_id
    )
    db.commit()
    t = coupons_service.get_template(db, workspace_id=member.workspace_id, template_id=g.template_id)
    return mine_out(g, t, utcnow())


@api.post("/code", response_model=MyCouponOut, status_code=201)
def claim_code(
    body: CodeIn, request: Request, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> MyCouponOut:
    """Claim by code (public or unique, any case); wrong codes count toward the guessing limit."""
    _guard(db, request, member, "coupon.code")
    try:
        g = coupons_service.claim_by_code(
            db, workspace_id=member.workspace_id, code=body.code, customer_id=member.customer_id
        )
    except CouponCodeInvalid:
        db.rollback()
        guard_service.record_failure(
            db,
            workspace_id=member.workspace_id,
            action="coupon.code",
            customer_id=member.customer_id,
            device_id=member.device_id or mweb.device_id(request) or None,
            ip=request.client.host if request.client else None,
        )
        db.commit()
        raise
    db.commit()
    t = coupons_service.get_template(db, workspace_id=member.workspace_id, template_id=g.template_id)
    return mine_out(g, t, utcnow())


# --- H5 page ------------------------------------------------------------------------------------


@router.get("/m/{ws_slug}/coupons", response_class=HTMLResponse)
def coupons_page(ws_slug: str, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """Coupons to claim, the code form and (signed in) my coupons."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    now = utcnow()
    offers = [offer_out(t) for t in coupons_service.list_open_templates(db, workspace_id=ws.id)]
    mine = (
        [
            mine_out(g, t, now)
            for g, t in coupons_service.list_customer_grants(db, workspace_id=ws.id, customer_id=member.customer_id)
        ]
        if member
        else []
    )
    held = {m.template_id for m in mine}
    return mweb.render(request, "coupons.html", workspace=ws, member=member, offers=offers, mine=mine, held=held)
