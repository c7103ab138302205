"""Settings: workspace and team, API tokens, and the audit log."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from shequn.console.web import (
    PER_PAGE,
    Console,
    ConsoleRoute,
    console,
    console_post,
    page_number,
    pager,
    render,
)
from shequn.core.errors import ShequnError
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm, Role, can_grant

router = APIRouter(route_class=ConsoleRoute)


def _grantable(ctx: Console, *, tokens: bool = False) -> list[str]:
    """Roles this operator may hand out (tokens are never owners)."""
    return [r.value for r in Role if can_grant(ctx.actor.role, r.value) and not (tokens and r is Role.OWNER)]


def _error_text(ctx: Console, exc: ShequnError) -> str:
    details = [f"{d.get('field')}: {d.get('message')}" for d in (exc.details or []) if isinstance(d, dict)]
    return exc.message(ctx.locale) + (f" ({'; '.join(details)})" if details else "")


def _team_page(
    request: Request,
    ctx: Console,
    *,
    error: str = "",
    notice: str = "",
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    members = identity_service.list_members(ctx.db, workspace_id=ctx.workspace.id)
    return render(
        request,
        "settings_team.html",
        ctx,
        status=status,
        members=members,
        roles=_grantable(ctx),
        error=error,
        notice=notice,
        values=values or {"role": "operator"},
        timezones=TIMEZONES,
    )


TIMEZONES = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
    "UTC",
]
NOTICES = {"saved": "settings.saved", "removed": "settings.removed", "role": "settings.role_changed"}


@router.get("/settings")
def team(request: Request, ctx: Console = Depends(console)) -> Response:
    """Workspace facts and its operators."""
    ctx.require(Perm.READ)
    notice = (
        ctx.t("settings.invited", email=request.query_params["invited"]) if request.query_params.get("invited") else ""
    )
    done = request.query_params.get("done", "")
    if done in NOTICES:
        notice = ctx.t(NOTICES[done])
    return _team_page(request, ctx, notice=notice)


def _team_action(request: Request, ctx: Console, action: Callable[[], object], *, done: str) -> Response:
    """Run a settings change: commit and redirect with a notice, or show the form's error in place.

    Permission and not-found errors are not form errors: they render the console's 403/404 pages.
    """
    try:
        action()
    except ShequnError as exc:
        if exc.status_code in (403, 404):
            raise
        ctx.db.rollback()
        return _team_page(request, ctx, error=_error_text(ctx, exc), status=exc.status_code)
    ctx.db.commit()
    return RedirectResponse(f"/settings?done={done}", status_code=303)


@router.post("/settings/workspace")
def save_workspace(
    request: Request,
    name: str = Form(""),
    timezone: str = Form(""),
    currency: str = Form(""),
    locale: str = Form("zh-CN"),
    ctx: Console = Depends(console_post),
) -> Response:
    """Change the workspace's name, timezone, currency and locale (owners)."""
    ctx.require(Perm.MANAGE_WORKSPACE)
    return _team_action(
        request,
        ctx,
        lambda: identity_service.update_workspace(
            ctx.db, ctx.actor, name=name, timezone=timezone.strip(), currency=currency.strip().upper(), locale=locale
        ),
        done="saved",
    )


@router.post("/settings/team/{operator_id}/role")
def change_role(
    request: Request, operator_id: DbId, role: str = Form(""), ctx: Console = Depends(console_post)
) -> Response:
    """Change an operator's role here."""
    return _team_action(
        request,
        ctx,
        lambda: identity_service.set_member_role(ctx.db, ctx.actor, operator_id=operator_id, role=role),
        done="role",
    )


@router.post("/settings/team/{operator_id}/remove")
def remove(request: Request, operator_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Remove an operator from this workspace."""
    return _team_action(
        request,
        ctx,
        lambda: identity_service.remove_member(ctx.db, ctx.actor, operator_id=operator_id),
        done="removed",
    )


@router.post("/settings/team")
def invite(
    request: Request,
    email: str = Form(""),
    name: str = Form(""),
    password: str = Form(""),
    role: str = Form("viewer"),
    ctx: Console = Depends(console_post),
) -> Response:
    """Add an operator with a role no higher than one's own."""
    ctx.require(Perm.MANAGE_OPERATORS)
    try:
        op = identity_service.invite_operator(
            ctx.db, ctx.actor, email=email, name=name.strip(), password=password, role=role
        )
    except ShequnError as exc:
        if exc.status_code == 403:
            raise
        ctx.db.rollback()
        return _team_page(
            request,
            ctx,
            error=_error_text(ctx, exc),
            status=exc.status_code,
            values={"email": email, "name": name, "role": role},
        )
    ctx.db.commit()
    return RedirectResponse(f"/settings?invited={op.email}", status_code=303)


def _tokens_page(request: Request, ctx: Console, *, secret: str = "", error: str = "", status: int = 200) -> Response:
    tokens = identity_service.list_api_tokens(ctx.db, ctx.actor)
    creators = identity_service.operator_names(ctx.db, {t.created_by for t in tokens if t.created_by})
    return render(
        request,
        "settings_tokens.html",
        ctx,
        status=status,
        tokens=tokens,
        creators=creators,
        roles=_grantable(ctx, tokens=True),
        secret=secret,
        error=error,
    )


@router.get("/settings/tokens")
def tokens(request: Request, ctx: Console = Depends(console)) -> Response:
    """The workspace's API tokens."""
    ctx.require(Perm.MANAGE_TOKENS)
    return _tokens_page(request, ctx)


@router.post("/settings/tokens")
def create_token(
    request: Request,
    name: str = Form(""),
    role: str = Form("operator"),
    ctx: Console = Depends(console_post),
) -> Response:
    """Issue a token and show its secret this once (only the hash is kept)."""
    ctx.require(Perm.MANAGE_TOKENS)
    try:
        plain, _ = identity_service.create_api_token(ctx.db, ctx.actor, name=name, role=role)
    except ShequnError as exc:
        if exc.status_code == 403:
            raise
        ctx.db.rollback()
        return _tokens_page(request, ctx, error=_error_text(ctx, exc), status=exc.status_code)
    ctx.db.commit()
    response = _tokens_page(request, ctx, secret=plain)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(token_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Revoke a token of this workspace."""
    ctx.require(Perm.MANAGE_TOKENS)
    identity_service.revoke_api_token(ctx.db, ctx.actor, token_id)
    ctx.db.commit()
    return RedirectResponse("/settings/tokens", status_code=303)


@router.get("/audit")
def audit(request: Request, ctx: Console = Depends(console)) -> Response:
    """Who changed what, newest first."""
    ctx.require(Perm.VIEW_AUDIT)
    page = page_number(request.query_params.get("page"))
    rows, total = identity_service.list_audit(ctx.db, ctx.actor, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    names = identity_service.operator_names(ctx.db, {r.actor_operator_id for r in rows if r.actor_operator_id})
    return render(request, "audit.html", ctx, rows=rows, names=names, pg=pager(total, page))
