"""Console: gatherings, registrations, check-in desk, attendance and feedback."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from markupsafe import Markup
from pydantic import ValidationError

from shequn.community.gatherings import service as gatherings_service
from shequn.community.gatherings.schemas import GatheringIn, GatheringPatch
from shequn.console.pages import gatherings_desk as desk
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.db import new_session
from shequn.core.errors import ShequnError, ValidationFailed
from shequn.core.fmt import zone
from shequn.core.settings import get_settings
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

TEXT_FIELDS = ("title", "description", "agenda", "join_url", "venue", "city", "address", "cover_url")
TIME_FIELDS = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at")
CHOICE_FIELDS = ("mode", "format", "visibility")
NOTICES = {
    "created": "gathering.done.created",
    "saved": "gathering.done.saved",
    "published": "gathering.done.published",
    "cancelled": "gathering.done.cancelled",
    "finished": "gathering.done.finished",
    "reg_cancelled": "gathering.done.reg_cancelled",
}
TABS = ("upcoming", "past", "all")


def public_base(request: Request) -> str:
    """Where members and scanning phones reach this server (SHEQUN_PUBLIC_URL, else this request's host)."""
    return (get_settings().public_url or str(request.base_url)).rstrip("/")


# --- form values ↔ schema -----------------------------------------------------------------------


def _local(value: datetime | None, tz: str) -> str:
    """A UTC time as the value of a datetime-local input in the workspace zone."""
    return value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _parse_time(raw: str, tz: str) -> datetime | None:
    """A datetime-local value typed in the workspace zone, as an aware UTC time (None if blank)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    return datetime.fromisoformat(raw).replace(tzinfo=zone(tz)).astimezone(UTC)


def form_values(g: Any, tz: str) -> dict[str, str]:
    """A gathering (or the defaults for a new one) as form strings."""
    if g is None:
        return {
            "mode": "offline",
            "format": "meetup",
            "visibility": "public",
            "checkin_opens_minutes": "60",
            "waitlist_enabled": "on",
        }
    out = {k: str(getattr(g, k) or "") for k in (*TEXT_FIELDS, *CHOICE_FIELDS)}
    out.update({k: _local(getattr(g, k), tz) for k in TIME_FIELDS})
    out["community_id"] = str(g.community_id or "")
    out["capacity"] = "" if g.capacity is None else str(g.capacity)
    out["checkin_opens_minutes"] = str(g.checkin_opens_minutes)
    out["waitlist_enabled"] = "on" if g.waitlist_enabled else ""
    return out


def _to_payload(values: dict[str, str], tz: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Form strings → schema fields, with per-field errors for what cannot be read."""
    payload: dict[str, Any] = {k: values.get(k, "").strip() for k in (*TEXT_FIELDS, *CHOICE_FIELDS)}
    errors: list[dict[str, str]] = []
    for k in TIME_FIELDS:
        try:
            payload[k] = _parse_time(values.get(k, ""), tz)
        except ValueError:
            errors.append({"field": k, "message": "not a date and time"})
    for k in ("capacity", "community_id", "checkin_opens_minutes"):
        raw = values.get(k, "").strip()
        if not raw:
            payload[k] = None
        elif raw.isdigit() and len(raw) < 12:
            payload[k] = int(raw)
        else:
            errors.append({"field": k, "message": "not a whole number"})
    payload["waitlist_enabled"] = values.get("waitlist_enabled") == "on"
    if payload.get("checkin_opens_minutes") is None:
        payload["checkin_opens_minutes"] = 60
    return payload, errors


def _pydantic_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": str(e["loc"][0]) if e["loc"] else "", "message": e["msg"]} for e in exc.errors()]


def _field_errors(ctx: Console, errors: list[dict[str, str]]) -> dict[str, str]:
    """Field → message in the operator's language (the field's label key if we have one)."""
    out: dict[str, str] = {}
    for e in errors:
        field = e.get("field", "")
        key = f"gathering.err.{field}"
        text = ctx.t(key)
        out[field] = f"{text}（{e['message']}）" if ctx.locale == "zh-CN" and text != key else e["message"]
    return out


def _form_page(
    request: Request, ctx: Console, *, g: Any, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request,
        "gathering_form.html",
        ctx,
        status=status,
        g=g,
        values=values,
        errors=errors,
        communities=gatherings_service.community_choices(ctx.db, workspace_id=ctx.workspace.id),
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# --- list, new, edit ----------------------------------------------------------------------------


@router.get("/gatherings")
def gatherings_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Upcoming (soonest first) or past gatherings with seats, waitlist and status."""
    ctx.require(Perm.READ)
    tab = request.query_params.get("tab", "upcoming")
    tab = tab if tab in TABS else "upcoming"
    page = page_number(request.query_params.get("page"))
    upcoming = {"upcoming": True, "past": False, "all": None}[tab]
    rows, total = gatherings_service.list_gatherings(
        ctx.db, workspace_id=ctx.workspace.id, upcoming=upcoming, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    done = request.query_params.get("done", "")
    return render(
        request,
        "gatherings.html",
        ctx,
        gatherings=rows,
        tab=tab,
        tabs=TABS,
        pages=pager(total, page),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
    )


@router.get("/gatherings/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form."""
    ctx.require(Perm.WRITE)
    return _form_page(request, ctx, g=None, values=form_values(None, ctx.workspace.timezone), errors={})


@router.post("/gatherings/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft from the form (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    values = await _form(request)
    payload, errors = _to_payload(values, ctx.workspace.timezone)
    if not errors:
        try:
            data = GatheringIn.model_validate({k: v for k, v in payload.items() if v is not None and v != ""})
            g = gatherings_service.create_gathering(
                ctx.db, workspace_id=ctx.workspace.id, data=data, created_by=ctx.operator_id
            )
            identity_service.record_audit(ctx.db, ctx.actor, "gathering.create", "gathering", g.id, {"title": g.title})
            ctx.db.commit()
            return RedirectResponse(f"/gatherings/{g.id}?done=created", status_code=303)
        except ValidationError as exc:
            errors = _pydantic_errors(exc)
        except ValidationFailed as exc:
            ctx.db.rollback()
            errors = list(exc.details or [{"field": "", "message": exc.message(ctx.locale)}])
        except ShequnError as exc:  # e.g. the chosen community is gone
            ctx.db.rollback()
            errors = [{"field": "community_id", "message": exc.message(ctx.locale)}]
    return _form_page(request, ctx, g=None, values=values, errors=_field_errors(ctx, errors), status=422)


@router.get("/gatherings/{gathering_id}/edit")
def edit_form(gathering_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the gathering."""
    ctx.require(Perm.WRITE)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    return _form_page(request, ctx, g=g, values=form_values(g, ctx.workspace.timezone), errors={})


@router.post("/gatherings/{gathering_id}/edit")
async def save(gathering_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save the edit (a larger capacity promotes from the waitlist at once)."""
    ctx.require(Perm.WRITE)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    values = await _form(request)
    payload, errors = _to_payload(values, ctx.workspace.timezone)
    if not errors:
        try:
            data = GatheringPatch.model_validate(payload)
            gatherings_service.update_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=g.id, data=data)
            ctx.db.commit()
            return RedirectResponse(f"/gatherings/{g.id}?done=saved", status_code=303)
        except ValidationError as exc:
            errors = _pydantic_errors(exc)
        except ValidationFailed as exc:
            ctx.db.rollback()
            errors = list(exc.details or [{"field": "", "message": exc.message(ctx.locale)}])
        except ShequnError as exc:
            ctx.db.rollback()
            errors = [{"field": "", "message": exc.message(ctx.locale)}]
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    return _form_page(request, ctx, g=g, values=values, errors=_field_errors(ctx, errors), status=422)


# --- detail, status actions, registrations ------------------------------------------------------


@router.get("/gatherings/{gathering_id}")
def detail(gathering_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The gathering with its registrations (filter by status), attendance, feedback and reminders."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ws, gathering_id=gathering_id)
    status = request.query_params.get("status", "")
    status = status if status in ("confirmed", "waitlisted", "cancelled") else ""
    page = page_number(request.query_params.get("page"))
    regs, total = gatherings_service.list_registrations(
        ctx.db, workspace_id=ws, gathering_id=g.id, status=status or None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    done = request.query_params.get("done", "")
    base = public_base(request)
    venue = gatherings_service.venue_url(base, ctx.workspace.slug, g) if g.mode == "offline" else ""
    return render(
        request,
        "gathering.html",
        ctx,
        g=g,
        regs=regs,
        positions={r.id: gatherings_service.waitlist_position(ctx.db, r) for r in regs if r.status == "waitlisted"},
        reminded=gatherings_service.reminder_kinds_of(ctx.db, registration_ids=[r.id for r in regs]),
        filter_status=status,
        pages=pager(total, page),
        attendance=gatherings_service.attendance(ctx.db, workspace_id=ws, gathering_id=g.id),
        feedback=gatherings_service.feedback_summary(ctx.db, workspace_id=ws, gathering_id=g.id),
        comments=gatherings_service.list_feedback(ctx.db, workspace_id=ws, gathering_id=g.id, limit=10),
        reminders=gatherings_service.reminder_status(ctx.db, workspace_id=ws, gathering_id=g.id),
        community=gatherings_service.community_name(ctx.db, workspace_id=ws, community_id=g.community_id),
        member_url=f"{base}/m/{ctx.workspace.slug}/g/{g.id}",
        venue_url=venue,
        # segno's SVG of our own signed URL: markup without user text in it.
        venue_qr=Markup(gatherings_service.qr_svg(venue, scale=3)) if venue and g.status == "published" else "",
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        error=request.query_params.get("error", "")[:200],
    )


def _act(ctx: Console, gathering_id: int, action: str, reason: str = "") -> Response:
    ws = ctx.workspace.id
    try:
        if action == "publish":
            gatherings_service.publish_gathering(ctx.db, workspace_id=ws, gathering_id=gathering_id)
        elif action == "cancel":
            gatherings_service.cancel_gathering(ctx.db, workspace_id=ws, gathering_id=gathering_id, reason=reason)
        else:
            gatherings_service.finish_gathering(ctx.db, workspace_id=ws, gathering_id=gathering_id)
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        details = exc.details if isinstance(exc.details, list) else []
        extra = "; ".join(str(d.get("field", "")) for d in details if isinstance(d, dict))
        message = exc.message(ctx.locale) + (f" ({extra})" if extra else "")
        return RedirectResponse(f"/gatherings/{gathering_id}?error={_q(message)}", status_code=303)
    identity_service.record_audit(ctx.db, ctx.actor, f"gathering.{action}", "gathering", gathering_id, {})
    ctx.db.commit()
    past = {"publish": "published", "cancel": "cancelled", "finish": "finished"}[action]
    return RedirectResponse(f"/gatherings/{gathering_id}?done={past}", status_code=303)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:200])


@router.post("/gatherings/{gathering_id}/publish")
def publish(gathering_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Open registration."""
    ctx.require(Perm.WRITE)
    return _act(ctx, gathering_id, "publish")


@router.post("/gatherings/{gathering_id}/cancel")
async def cancel(gathering_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Call the gathering off."""
    ctx.require(Perm.WRITE)
    reason = (await _form(request)).get("reason", "")
    return _act(ctx, gathering_id, "cancel", reason)


@router.post("/gatherings/{gathering_id}/finish")
def finish(gathering_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Mark as held."""
    ctx.require(Perm.WRITE)
    return _act(ctx, gathering_id, "finish")


@router.post("/gatherings/{gathering_id}/registrations/{registration_id}/cancel")
def cancel_registration(gathering_id: DbId, registration_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Cancel someone's place; the first on the waitlist moves up."""
    ctx.require(Perm.WRITE)
    ws = ctx.workspace.id
    reg = gatherings_service.get_registration(ctx.db, workspace_id=ws, registration_id=registration_id)
    if reg.gathering_id != gathering_id:
        return RedirectResponse(f"/gatherings/{gathering_id}", status_code=303)
    try:
        gatherings_service.cancel_registration(ctx.db, workspace_id=ws, registration_id=reg.id, by="operator")
    except ShequnError as exc:
        ctx.db.rollback()
        return RedirectResponse(f"/gatherings/{gathering_id}?error={_q(exc.message(ctx.locale))}", status_code=303)
    ctx.db.commit()
    return RedirectResponse(f"/gatherings/{gathering_id}?done=reg_cancelled", status_code=303)


def _csv(workspace_id: int, gathering_id: int, tz: str) -> Iterator[str]:
    first = True
    with new_session() as session:
        for row in gatherings_service.export_rows(session, workspace_id=workspace_id, gathering_id=gathering_id, tz=tz):
            buf = io.StringIO()
            csv.writer(buf).writerow(row)
            yield ("\ufeff" if first else "") + buf.getvalue()
            first = False


@router.get("/gatherings/{gathering_id}/registrations.csv")
def export(gathering_id: DbId, ctx: Console = Depends(console)) -> Response:
    """The registrants as CSV (phones masked; UTF-8 with BOM for Excel)."""
    ctx.require(Perm.EXPORT)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    return StreamingResponse(
        _csv(ctx.workspace.id, g.id, ctx.workspace.timezone),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gathering-{g.id}-registrations.csv"'},
    )


# The check-in desk and the scan page live beside this module; one router serves both.
router.include_router(desk.router)
