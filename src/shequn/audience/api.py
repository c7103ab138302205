"""Audience API: customers, their identities and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shequn.audience import rfm, service
from shequn.audience.schemas import CustomerDetailOut, CustomerOut, IdentityOut
from shequn.core.schemas import JobOut, Paginated
from shequn.core.security import mask_email
from shequn.core.web import DbId, Page, get_db, page_params, request_locale
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1/customers", tags=["audience"])


class TimelineOut(BaseModel):
    """A timeline entry."""

    at: datetime
    kind: str
    title: str
    amount: int | None
    details: dict[str, Any]


def identity_out(ident: Any) -> IdentityOut:
    """An identity with PII masked: phone hashes are never shown, emails masked."""
    value = ident.value
    if ident.kind == "phone_hash":
        value = "••••"
    elif ident.kind == "email":
        value = mask_email(value)
    return IdentityOut(
        source=ident.source, kind=ident.kind, value=value, verified=ident.verified, followers=ident.followers
    )


@router.get("", response_model=Paginated[CustomerOut])
def list_customers(
    q: str = Query("", max_length=100, description="name, phone, id, email or platform id"),
    city: str = Query("", max_length=32),
    platform: str = Query("", max_length=32),
    min_spent: int | None = Query(None, ge=0, le=2**62, description="fen"),
    min_orders: int | None = Query(None, ge=0, le=10**9),
    rfm_group: str = Query("", max_length=24, description="an RFM group code, see GET /api/v1/rfm"),
    sort: str = Query("recent", pattern="^(recent|spent|orders|influence|newest)$"),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[CustomerOut]:
    """Search and filter customers."""
    flt = service.CustomerFilter(
        q=q, city=city, platform=platform, min_spent=min_spent, min_orders=min_orders, rfm_group=rfm_group, sort=sort
    )
    rows, total = service.list_customers(
        db, workspace_id=actor.workspace_id, flt=flt, limit=page.limit, offset=page.offset
    )
    return Paginated[CustomerOut].of([CustomerOut.model_validate(c) for c in rows], total, page.limit, page.offset)


@router.get("/{customer_id}", response_model=CustomerDetailOut)
def get_customer(
    customer_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> CustomerDetailOut:
    """One customer with identities (follows merges)."""
    c = service.get_customer(db, workspace_id=actor.workspace_id, customer_id=customer_id)
    idents = service.list_identities(db, workspace_id=actor.workspace_id, customer_id=c.id)
    return CustomerDetailOut(**CustomerOut.model_validate(c).model_dump(), identities=[identity_out(i) for i in idents])


@router.get("/{customer_id}/timeline", response_model=list[TimelineOut])
def timeline(
    customer_id: DbId,
    limit: int = Query(50, ge=1, le=200),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[TimelineOut]:
    """The customer's timeline, newest first."""
    c = service.get_customer(db, workspace_id=actor.workspace_id, customer_id=customer_id)
    entries = service.customer_timeline(db, workspace_id=actor.workspace_id, customer_id=c.id, limit=limit)
    return [TimelineOut(at=e.at, kind=e.kind, title=e.title, amount=e.amount, details=e.details) for e in entries]


rfm_router = APIRouter(prefix="/api/v1/rfm", tags=["audience"])


class RfmGroupOut(BaseModel):
    """One RFM group and how many customers are in it."""

    code: str
    name: str
    customers: int


@rfm_router.get("", response_model=list[RfmGroupOut])
def rfm_groups(
    request: Request, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[RfmGroupOut]:
    """Customers per RFM group (the eight groups of the classic model), named in the request's language."""
    english = request_locale(request) == "en"
    counts = service.rfm_group_counts(db, workspace_id=actor.workspace_id)
    return [
        RfmGroupOut(code=code, name=rfm.GROUP_NAMES[code][1 if english else 0], customers=n)
        for code, n in counts.items()
    ]


@rfm_router.post("/refresh", response_model=JobOut, status_code=202)
def refresh_rfm(actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> JobOut:
    """Recompute RFM scores now (imports queue this by themselves when they finish)."""
    job = service.request_rfm_refresh(db, workspace_id=actor.workspace_id, created_by=actor.operator_id)
    db.commit()
    return JobOut.model_validate(job)
