"""Console: the check-in desk (type a code → result) and the page staff reach by scanning a member's QR."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from shequn.community.gatherings import service as gatherings_service
from shequn.console.web import Console, ConsoleRoute, console, console_post, render
from shequn.core.errors import ShequnError
from shequn.core.web import DbId
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)
RECENT = 15


def _desk(
    request: Request, ctx: Console, g: Any, *, result: dict[str, Any] | None = None, status: int = 200
) -> Response:
    """The desk page, or only its result panel when htmx asks."""
    partial = bool(request.headers.get("hx-request"))
    ws = ctx.workspace.id
    return render(
        request,
        "gathering_desk_result.html" if partial else "gathering_desk.html",
        ctx,
        status=status,
        g=g,
        result=result,
        recent=gatherings_service.recent_checkins(ctx.db, workspace_id=ws, gathering_id=g.id, limit=RECENT),
        attendance=gatherings_service.attendance(ctx.db, workspace_id=ws, gathering_id=g.id),
    )


def _outcome(ctx: Console, exc: ShequnError) -> dict[str, Any]:
    details = exc.details if isinstance(exc.details, dict) else {}
    return {"ok": False, "code": exc.code, "message": exc.message(ctx.locale), "name": details.get("name", "")}


@router.get("/gatherings/{gathering_id}/desk")
def desk(gathering_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The check-in desk: a code box and the latest arrivals."""
    ctx.require(Perm.WRITE)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    return _desk(request, ctx, g)


@router.post("/gatherings/{gathering_id}/desk")
async def desk_check_in(gathering_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Check in by the typed code (a wrong or reused code says so, and nothing is written twice)."""
    ctx.require(Perm.WRITE)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    form = await request.form()
    code = form.get("code")
    return _check(request, ctx, g, code=code if isinstance(code, str) else "", token=None)


def _check(request: Request, ctx: Console, g: Any, *, code: str | None, token: str | None) -> Response:
    try:
        done = gatherings_service.check_in(
            ctx.db,
            workspace_id=ctx.workspace.id,
            gathering_id=g.id,
            code=code[:32] if code else None,
            token=token[:200] if token else None,
            operator_id=ctx.operator_id,
        )
    except ShequnError as exc:
        if exc.status_code == 404 and exc.code != "checkin_code_invalid":
            raise
        ctx.db.rollback()
        return _desk(
            request, ctx, g, result=_outcome(ctx, exc), status=200 if request.headers.get("hx-request") else 422
        )
    ctx.db.commit()
    reg = done.registration
    result = {"ok": True, "code": "checked_in", "name": reg.name, "phone": reg.phone_masked, "at": done.checked_in_at}
    return _desk(request, ctx, g, result=result)


@router.get("/gatherings/{gathering_id}/scan")
def scan(gathering_id: DbId, request: Request, t: str = "", ctx: Console = Depends(console)) -> Response:
    """What staff see after scanning a member's QR: who it is, and one button to check them in."""
    ctx.require(Perm.WRITE)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    reg = gatherings_service.registration_by_token(ctx.db, g, t[:200])
    return render(request, "gathering_scan.html", ctx, g=g, reg=reg, token=t[:200], status=200 if reg else 422)


@router.post("/gatherings/{gathering_id}/scan")
async def scan_check_in(gathering_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Check in the scanned ticket."""
    ctx.require(Perm.WRITE)
    g = gatherings_service.get_gathering(ctx.db, workspace_id=ctx.workspace.id, gathering_id=gathering_id)
    form = await request.form()
    token = form.get("t")
    return _check(request, ctx, g, code=None, token=token if isinstance(token, str) else "")
