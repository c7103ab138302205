"""Gatherings API: online and offline gatherings, registration, check-in, feedback."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from shequn.community.gatherings import service
from shequn.community.gatherings.errors import RegistrationNotFound
from shequn.community.gatherings.models import GatheringRegistration
from shequn.community.gatherings.schemas import (
    CancelIn,
    CheckinIn,
    CheckinOut,
    FeedbackOut,
    GatheringIn,
    GatheringOut,
    GatheringPatch,
    RegisterIn,
    RegisterOut,
    RegistrationOut,
    ReportOut,
)
from shequn.core.db import new_session
from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1/gatherings", tags=["gatherings"])


def registration_out(db: Session, reg: GatheringRegistration) -> RegistrationOut:
    """A registration with its waitlist position."""
    out = RegistrationOut.model_validate(reg)
    out.waitlist_position = service.waitlist_position(db, reg)
    return out


@router.get("", response_model=Paginated[GatheringOut])
def list_gatherings(
    status: Literal["draft", "published", "cancelled", "finished"] | None = None,
    community_id: int | None = Query(None, ge=1, le=2**63 - 1),
    upcoming: bool | None = Query(None, description="true: not over yet (soonest first); false: over"),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[GatheringOut]:
    """The workspace's gatherings."""
    rows, total = service.list_gatherings(
        db,
        workspace_id=actor.workspace_id,
        status=status,
        community_id=community_id,
        upcoming=upcoming,
        limit=page.limit,
        offset=page.offset,
    )
    return Paginated.of([GatheringOut.model_validate(g) for g in rows], total, page.limit, page.offset)


@router.post("", response_model=GatheringOut, status_code=201)
def create_gathering(
    body: GatheringIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> GatheringOut:
    """Create a draft gathering (publish it to open registration)."""
    g = service.create_gathering(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    identity_service.record_audit(db, actor, "gathering.create", "gathering", g.id, {"title": g.title})
    db.commit()
    return GatheringOut.model_validate(g)


@router.get("/{gathering_id}", response_model=GatheringOut)
def get_gathering(
    gathering_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> GatheringOut:
    """One gathering."""
    return GatheringOut.model_validate(
        service.get_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id)
    )


@router.patch("/{gathering_id}", response_model=GatheringOut)
def update_gathering(
    gathering_id: DbId, body: GatheringPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> GatheringOut:
    """Edit a gathering; raising the capacity promotes from the waitlist."""
    g = service.update_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id, data=body)
    db.commit()
    return GatheringOut.model_validate(g)


@router.post("/{gathering_id}/publish", response_model=GatheringOut)
def publish(
    gathering_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> GatheringOut:
    """Open registration."""
    g = service.publish_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id)
    identity_service.record_audit(db, actor, "gathering.publish", "gathering", g.id, {})
    db.commit()
    return GatheringOut.model_validate(g)


@router.post("/{gathering_id}/cancel", response_model=GatheringOut)
def cancel(
    gathering_id: DbId,
    body: CancelIn | None = None,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> GatheringOut:
    """Call the gathering off (registrants are told through the gathering.cancelled signal)."""
    reason = body.reason if body else ""
    g = service.cancel_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id, reason=reason)
    identity_service.record_audit(db, actor, "gathering.cancel", "gathering", g.id, {"reason": reason})
    db.commit()
    return GatheringOut.model_validate(g)


@router.post("/{gathering_id}/finish", response_model=GatheringOut)
def finish(
    gathering_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> GatheringOut:
    """Mark the gathering as held (done automatically after the end)."""
    g = service.finish_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id)
    db.commit()
    return GatheringOut.model_validate(g)


@router.get("/{gathering_id}/registrations", response_model=Paginated[RegistrationOut])
def list_registrations(
    gathering_id: DbId,
    status: Literal["confirmed", "waitlisted", "cancelled"] | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[RegistrationOut]:
    """Registrations in queue order (the waitlist with positions)."""
    service.get_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id)
    rows, total = service.list_registrations(
        db,
        workspace_id=actor.workspace_id,
        gathering_id=gathering_id,
        status=status,
        limit=page.limit,
        offset=page.offset,
    )
    return Paginated.of([registration_out(db, r) for r in rows], total, page.limit, page.offset)


@router.post("/{gathering_id}/registrations", response_model=RegisterOut, status_code=201)
def register_customer(
    gathering_id: DbId,
    body: RegisterIn,
    response: Response,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> RegisterOut:
    """Register a customer on their behalf (201 new; 200 with already_registered for an existing one)."""
    result = service.register(
        db, workspace_id=actor.workspace_id, gathering_id=gathering_id, customer_id=body.customer_id, source="api"
    )
    db.commit()
    if result.already_registered:
        response.status_code = 200
    return RegisterOut(
        registration=registration_out(db, result.registration), already_registered=result.already_registered
    )


@router.post("/{gathering_id}/registrations/{registration_id}/cancel", response_model=RegistrationOut)
def cancel_registration(
    gathering_id: DbId,
    registration_id: DbId,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> RegistrationOut:
    """Cancel someone's place (the first on the waitlist moves up)."""
    reg = service.get_registration(db, workspace_id=actor.workspace_id, registration_id=registration_id)
    if reg.gathering_id != gathering_id:
        raise RegistrationNotFound(id=registration_id)
    reg = service.cancel_registration(
        db, workspace_id=actor.workspace_id, registration_id=registration_id, by="operator"
    )
    db.commit()
    return registration_out(db, reg)


@router.post("/{gathering_id}/checkins", response_model=CheckinOut)
def check_in(
    gathering_id: DbId, body: CheckinIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CheckinOut:
    """Check someone in by the code they show or the token in their QR."""
    result = service.check_in(
        db,
        workspace_id=actor.workspace_id,
        gathering_id=gathering_id,
        code=body.code,
        token=body.token,
        operator_id=actor.operator_id,
    )
    db.commit()
    return CheckinOut(
        registration=registration_out(db, result.registration), method=result.method, checked_in_at=result.checked_in_at
    )


@router.get("/{gathering_id}/report", response_model=ReportOut)
def report(gathering_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> ReportOut:
    """Attendance (rate, no-shows, late cancellations), feedback summary (NPS-like) and reminder status."""
    ws = actor.workspace_id
    return ReportOut(
        attendance=service.attendance(db, workspace_id=ws, gathering_id=gathering_id),
        feedback=service.feedback_summary(db, workspace_id=ws, gathering_id=gathering_id),
        reminders=service.reminder_status(db, workspace_id=ws, gathering_id=gathering_id),
    )


@router.get("/{gathering_id}/feedback", response_model=list[FeedbackOut])
def feedback(
    gathering_id: DbId,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[FeedbackOut]:
    """The gathering's feedback, newest first."""
    service.get_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id)
    rows = service.list_feedback(
        db, workspace_id=actor.workspace_id, gathering_id=gathering_id, limit=page.limit, offset=page.offset
    )
    return [FeedbackOut.model_validate(f) for f in rows]


def registrants_csv(workspace_id: int, gathering_id: int, tz: str) -> Iterator[str]:
    """The registrants as CSV (UTF-8 BOM so Excel reads Chinese; phones masked), in its own session."""
    first = True
    with new_session() as session:
        for row in service.export_rows(session, workspace_id=workspace_id, gathering_id=gathering_id, tz=tz):
            buf = io.StringIO()
            csv.writer(buf).writerow(row)
            yield ("\ufeff" if first else "") + buf.getvalue()
            first = False


@router.get("/{gathering_id}/registrations.csv")
def export_registrations(
    gathering_id: DbId, actor: Actor = Depends(require(Perm.EXPORT)), db: Session = Depends(get_db)
) -> StreamingResponse:
    """Download the registrants (phones masked)."""
    g = service.get_gathering(db, workspace_id=actor.workspace_id, gathering_id=gathering_id)
    tz = identity_service.workspace_timezone(db, actor.workspace_id)
    return StreamingResponse(
        registrants_csv(actor.workspace_id, g.id, tz),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gathering-{g.id}-registrations.csv"'},
    )
