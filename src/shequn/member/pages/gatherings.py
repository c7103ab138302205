"""Member H5 and member API: gatherings, register, my ticket (code + QR), cancel, check in, feedback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community.gatherings import service as gatherings_service
from shequn.community.gatherings.errors import RegistrationNotFound
from shequn.community.gatherings.schemas import (
    CheckinOut,
    FeedbackIn,
    FeedbackOut,
    MemberRegisterIn,
    MemberRegisterOut,
    PublicGatheringOut,
    RegistrationOut,
    SelfCheckinIn,
    TicketOut,
)
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m/gatherings", tags=["member"])
# A newcomer retrying from the same phone within this time is the same person, not a second customer.
RETRY_WINDOW = timedelta(minutes=10)


def public_out(g: Any) -> PublicGatheringOut:
    """A gathering as members see it."""
    left = None if g.capacity is None else max(g.capacity - g.seats_taken, 0)
    return PublicGatheringOut.model_validate({**_fields(g), "seats_left": left})


def _fields(g: Any) -> dict[str, Any]:
    return {name: getattr(g, name) for name in PublicGatheringOut.model_fields if name != "seats_left"}


def _reg_out(db: Session, reg: Any) -> RegistrationOut:
    out = RegistrationOut.model_validate(reg)
    out.waitlist_position = gatherings_service.waitlist_position(db, reg)
    return out


def _mine(db: Session, member: mweb.Member, gathering_id: int) -> Any:
    """The member's registration for a gathering of their workspace (404 otherwise)."""
    g = gatherings_service.get_gathering(db, workspace_id=member.workspace_id, gathering_id=gathering_id)
    reg = gatherings_service.find_registration(db, gathering_id=g.id, customer_id=member.customer_id)
    if reg is None:
        raise RegistrationNotFound(id=gathering_id)
    return g, reg


def _ticket(request: Request, db: Session, g: Any, reg: Any) -> TicketOut:
    url = gatherings_service.scan_url(mweb.public_base(request), reg)
    return TicketOut(
        registration=_reg_out(db, reg),
        checkin_url=url,
        qr_svg=gatherings_service.qr_svg(url) if reg.status == "confirmed" else "",
        join_url=g.join_url if reg.status == "confirmed" and g.mode == "online" and g.status == "published" else "",
    )


# --- member API ---------------------------------------------------------------------------------


@api.get("", response_model=list[PublicGatheringOut])
def open_gatherings(
    member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> list[PublicGatheringOut]:
    """Gatherings the member can register for (public ones and those of their communities)."""
    rows = gatherings_service.list_open_gatherings(db, workspace_id=member.workspace_id, customer_id=member.customer_id)
    return [public_out(g) for g in rows]


@api.get("/mine", response_model=list[RegistrationOut])
def my_registrations(
    member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> list[RegistrationOut]:
    """The member's registrations, latest gathering first."""
    rows = gatherings_service.list_registrations_of(
        db, workspace_id=member.workspace_id, customer_id=member.customer_id
    )
    return [_reg_out(db, reg) for reg, _g in rows]


def _returning_newcomer(db: Session, request: Request, response: Response, ws: mweb.WorkspaceRef, g: Any) -> Any:
    """A newcomer whose first try registered but whose reply was lost: the same device, minutes ago."""
    device = mweb.device_id(request)
    if not device:
        return None
    reg = gatherings_service.find_recent_device_registration(
        db, gathering_id=g.id, device_id=device, since=utcnow() - RETRY_WINDOW
    )
    if reg is None:
        return None
    ticket, _ = audience_service.issue_member_ticket(db, workspace_id=ws.id, customer_id=reg.customer_id)
    token = audience_service.redeem_member_ticket(db, workspace_id=ws.id, ticket=ticket, device_id=device)
    mweb.start_session(response, token)
    return reg.customer_id


@api.post("/{gathering_id}/register", response_model=MemberRegisterOut)
def register(
    gathering_id: DbId,
    body: MemberRegisterIn,
    request: Request,
    response: Response,
    member: mweb.Member | None = Depends(mweb.optional_member),
    db: Session = Depends(get_db),
) -> MemberRegisterOut:
    """Register (a double registration returns the first one with already_registered); newcomers sign up here."""
    ws = mweb.workspace_by_slug(db, body.workspace)
    g = gatherings_service.get_gathering(db, workspace_id=ws.id, gathering_id=gathering_id)
    customer_id = member.customer_id if member is not None and member.workspace_id == ws.id else None
    gatherings_service.check_visible_to(db, g, customer_id=customer_id)
    if customer_id is None:
        customer_id = _returning_newcomer(db, request, response, ws, g)
    if customer_id is None:
        # Refuse before creating anyone: no customer is made for a gathering nobody can join.
        gatherings_service.check_can_register(db, g, customer_id=None, now=utcnow())
        customer_id = mweb.sign_in_new_member(
            db, request, response, workspace_id=ws.id, name=body.name, phone=body.phone or None
        ).customer_id
    result = gatherings_service.register(
        db,
        workspace_id=ws.id,
        gathering_id=g.id,
        customer_id=customer_id,
        source="h5",
        device_id=mweb.device_id(request),
    )
    db.commit()
    return MemberRegisterOut(
        registration=_reg_out(db, result.registration),
        already_registered=result.already_registered,
        next=f"/m/{ws.slug}/g/{g.id}/ticket",
    )


@api.get("/{gathering_id}/ticket", response_model=TicketOut)
def ticket(
    gathering_id: DbId, request: Request, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> TicketOut:
    """The member's ticket: check-in code and the QR staff scan at the desk."""
    g, reg = _mine(db, member, gathering_id)
    return _ticket(request, db, g, reg)


@api.post("/{gathering_id}/cancel", response_model=RegistrationOut)
def cancel(
    gathering_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> RegistrationOut:
    """Cancel my place (safe to repeat); the first on the waitlist moves up."""
    _g, reg = _mine(db, member, gathering_id)
    reg = gatherings_service.cancel_registration(
        db, workspace_id=member.workspace_id, registration_id=reg.id, by="member", customer_id=member.customer_id
    )
    db.commit()
    return _reg_out(db, reg)


@api.post("/{gathering_id}/checkin", response_model=CheckinOut)
def self_checkin(
    gathering_id: DbId, body: SelfCheckinIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> CheckinOut:
    """Check myself in: online with a tap, offline with the key from the venue's QR."""
    result = gatherings_service.self_check_in(
        db, workspace_id=member.workspace_id, gathering_id=gathering_id, customer_id=member.customer_id, key=body.key
    )
    db.commit()
    return CheckinOut(
        registration=_reg_out(db, result.registration), method=result.method, checked_in_at=result.checked_in_at
    )


@api.post("/{gathering_id}/feedback", response_model=FeedbackOut, status_code=201)
def feedback(
    gathering_id: DbId, body: FeedbackIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> FeedbackOut:
    """Rate the gathering (attendees only, once)."""
    fb = gatherings_service.give_feedback(
        db,
        workspace_id=member.workspace_id,
        gathering_id=gathering_id,
        customer_id=member.customer_id,
        rating=body.rating,
        comment=body.comment,
    )
    db.commit()
    return FeedbackOut.model_validate(fb)


# --- H5 pages -----------------------------------------------------------------------------------


def _message(request: Request, ws: mweb.WorkspaceRef, member: Any, exc: ShequnError) -> HTMLResponse:
    return mweb.render(
        request,
        "gathering_message.html",
        workspace=ws,
        member=member,
        status=exc.status_code,
        message=exc.message(ws.locale or "zh-CN"),
    )


@router.get("/m/{ws_slug}/g", response_class=HTMLResponse)
def list_page(ws_slug: str, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """Open gatherings and, for a signed-in member, their own registrations."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    cid = member.customer_id if member else None
    gatherings = gatherings_service.list_open_gatherings(db, workspace_id=ws.id, customer_id=cid)
    mine = gatherings_service.list_registrations_of(db, workspace_id=ws.id, customer_id=cid) if cid else []
    return mweb.render(
        request,
        "gatherings.html",
        workspace=ws,
        member=member,
        gatherings=[public_out(g) for g in gatherings],
        mine=[(r, g) for r, g in mine if r.status != "cancelled"],
    )


@router.get("/m/{ws_slug}/g/{gathering_id}", response_class=HTMLResponse)
def detail_page(ws_slug: str, gathering_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """One gathering: what, when, where, seats; register (or my status)."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    cid = member.customer_id if member else None
    try:
        g = gatherings_service.get_gathering(db, workspace_id=ws.id, gathering_id=gathering_id)
        gatherings_service.check_visible_to(db, g, customer_id=cid)
    except ShequnError as exc:
        return _message(request, ws, member, exc)
    reg = gatherings_service.find_registration(db, gathering_id=g.id, customer_id=cid) if cid else None
    refusal = ""
    if reg is None or reg.status == "cancelled":
        try:
            gatherings_service.check_can_register(db, g, customer_id=cid, now=utcnow())
        except ShequnError as exc:
            refusal = exc.message(ws.locale or "zh-CN")
    return mweb.render(
        request,
        "gathering.html",
        workspace=ws,
        member=member,
        g=public_out(g),
        reg=reg,
        refusal=refusal,
        community=gatherings_service.community_name(db, workspace_id=ws.id, community_id=g.community_id),
    )


@router.get("/m/{ws_slug}/g/{gathering_id}/ticket", response_class=HTMLResponse)
def ticket_page(ws_slug: str, gathering_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """My ticket: the code, the QR, cancel, check in (online), and feedback once I attended."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    if member is None:
        return _message(request, ws, None, mweb.MemberLoginRequired())
    try:
        g, reg = _mine(db, member, gathering_id)
    except ShequnError as exc:
        return _message(request, ws, member, exc)
    t = _ticket(request, db, g, reg)
    return mweb.render(
        request,
        "gathering_ticket.html",
        workspace=ws,
        member=member,
        g=public_out(g),
        mode=g.mode,
        reg=t.registration,
        qr=Markup(t.qr_svg),  # SVG made by segno from our own signed URL: no user text in it
        join_url=t.join_url,
        feedback=gatherings_service.get_feedback_of(db, gathering_id=g.id, customer_id=member.customer_id),
        can_self_checkin=g.mode == "online" and _window_open(g),
        checkin_minutes=g.checkin_opens_minutes,
    )


def _window_open(g: Any) -> bool:
    try:
        gatherings_service.check_window(g, utcnow())
    except ShequnError:
        return False
    return True


@router.get("/m/{ws_slug}/g/{gathering_id}/checkin", response_class=HTMLResponse)
def venue_checkin_page(
    ws_slug: str, gathering_id: DbId, request: Request, k: str = "", db: Session = Depends(get_db)
) -> HTMLResponse:
    """What a member sees after scanning the venue's QR: one button to check in."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    try:
        g = gatherings_service.get_gathering(db, workspace_id=ws.id, gathering_id=gathering_id)
        gatherings_service.check_visible_to(db, g, customer_id=member.customer_id if member else None)
    except ShequnError as exc:
        return _message(request, ws, member, exc)
    reg = (
        gatherings_service.find_registration(db, gathering_id=g.id, customer_id=member.customer_id) if member else None
    )
    return mweb.render(
        request, "gathering_checkin.html", workspace=ws, member=member, g=public_out(g), reg=reg, key=k[:200]
    )
