"""Operator API of loyalty (points)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.web import DbId, get_db
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.loyalty import service
from shequn.loyalty.schemas import AdjustIn, AdjustOut, PointsEntryOut, PointsOut

router = APIRouter(tags=["loyalty"])


@router.get("/api/v1/customers/{customer_id}/points", response_model=PointsOut)
def customer_points(
    customer_id: DbId,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> PointsOut:
    """A customer's balance and ledger, newest first."""
    customer = audience_service.get_customer(db, workspace_id=actor.workspace_id, customer_id=customer_id)
    balance, earned, spent = service.get_totals(db, workspace_id=actor.workspace_id, customer_id=customer.id)
    rows, total = service.list_entries(
        db, workspace_id=actor.workspace_id, customer_id=customer.id, limit=limit, offset=offset
    )
    return PointsOut(
        customer_id=customer.id,
        balance=balance,
        earned_total=earned,
        spent_total=spent,
        entries=[PointsEntryOut.model_validate(r) for r in rows],
        entries_total=total,
    )


@router.post("/api/v1/points/adjust", response_model=AdjustOut)
def adjust(body: AdjustIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> AdjustOut:
    """Correct a customer's points by hand (audited); the same ref twice moves the points once."""
    ref = body.ref or uuid.uuid4().hex
    moved = service.adjust_points(
        db, workspace_id=actor.workspace_id, customer_id=body.customer_id, delta=body.delta, ref=ref, note=body.note
    )
    if moved.created:
        identity_service.record_audit(
            db,
            actor,
            "points.adjust",
            "customer",
            body.customer_id,
            {"delta": body.delta, "ref": ref, "note": body.note},
        )
    db.commit()
    return AdjustOut(
        customer_id=body.customer_id, balance=moved.balance, entry_id=moved.entry_id, created=moved.created
    )
