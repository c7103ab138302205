"""Member plumbing: the member session cookie → Member, the device cookie, workspace by slug, H5 rendering."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shequn import __version__
from shequn.audience import service as audience_service
from shequn.core import fmt
from shequn.core.errors import NotFound, Unauthenticated
from shequn.core.i18n import translate
from shequn.core.settings import get_settings
from shequn.core.web import get_db, request_locale
from shequn.identity import service as identity_service

MEMBER_COOKIE = "shequn_member"
DEVICE_COOKIE = "shequn_device"
MEMBER_PREFIXES = ("/m/", "/api/v1/m/")
_DIR = Path(__file__).parent
env = Environment(
    loader=FileSystemLoader(str(_DIR / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class MemberLoginRequired(Unauthenticated):
    """A member endpoint reached without a live member session."""

    code = "member_login_required"


class WorkspaceNotFound(NotFound):
    """No brand with this slug (member links carry the slug)."""

    code = "workspace_not_found"


@dataclass(frozen=True)
class WorkspaceRef:
    """The brand a member page belongs to (plain values)."""

    id: int
    slug: str
    name: str
    timezone: str
    currency: str
    locale: str


@dataclass(frozen=True)
class Member:
    """The signed-in member of a request."""

    workspace_id: int
    workspace_slug: str
    customer_id: int
    name: str
    phone_masked: str
    device_id: str
    locale: str


# --- device cookie ------------------------------------------------------------------------------


class DeviceCookieMiddleware:
    """Give every member-page visitor a stable random device id (anti-fraud: 'same device as the inviter').

    Pure ASGI so it costs nothing outside /m/ and /api/v1/m/; the id is readable by routes at once through
    `device_id(request)`, even on the first visit before the browser sends the cookie back.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(MEMBER_PREFIXES):
            await self.app(scope, receive, send)
            return
        existing = _cookie(scope, DEVICE_COOKIE)
        device = existing if existing and len(existing) <= 64 else secrets.token_urlsafe(18)
        scope.setdefault("state", {})["device_id"] = device

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and device != existing:
                cookie = f"{DEVICE_COOKIE}={device}; Path=/; Max-Age=63072000; HttpOnly; SameSite=Lax"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(scope: Scope, name: str) -> str:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return ""


def device_id(request: Request) -> str:
    """The visitor's device id (set by DeviceCookieMiddleware)."""
    return str(getattr(request.state, "device_id", "") or request.cookies.get(DEVICE_COOKIE, ""))


# --- workspace and member -----------------------------------------------------------------------


def _ref(ws: Any) -> WorkspaceRef:
    if ws is None:
        raise WorkspaceNotFound()
    return WorkspaceRef(ws.id, ws.slug, ws.name, ws.timezone, ws.currency, ws.locale)


def workspace_by_slug(db: Session, slug: str) -> WorkspaceRef:
    """The brand of a member URL, or 404."""
    return _ref(identity_service.get_workspace_by_slug(db, slug))


def workspace_by_id(db: Session, workspace_id: int) -> WorkspaceRef:
    """The brand of an id, or 404."""
    return _ref(identity_service.get_workspace(db, workspace_id))


def public_base(request: Request) -> str:
    """The address members reach this server at (SHEQUN_PUBLIC_URL, else the request's own)."""
    return (get_settings().public_url or str(request.base_url)).rstrip("/")


def _token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("member "):
        return auth[7:].strip()
    return request.cookies.get(MEMBER_COOKIE, "")


def _member_of(db: Session, request: Request, ident: audience_service.MemberIdentity) -> Member:
    ws = identity_service.get_workspace(db, ident.workspace_id)
    return Member(
        workspace_id=ident.workspace_id,
        workspace_slug=ws.slug if ws else "",
        customer_id=ident.customer_id,
        name=ident.name,
        phone_masked=ident.phone_masked,
        device_id=device_id(request) or ident.device_id,
        locale=request_locale(request),
    )


def optional_member(request: Request, db: Session = Depends(get_db)) -> Member | None:
    """The signed-in member, or None."""
    ident = audience_service.get_member_session(db, token=_token(request))
    if ident is None:
        return None
    db.commit()  # get_member_session may touch last_seen_at; a read-only page is its own boundary
    return _member_of(db, request, ident)


def member(request: Request, db: Session = Depends(get_db)) -> Member:
    """The signed-in member (member API dependency): 401 member_login_required without a session."""
    found = optional_member(request, db)
    if found is None:
        raise MemberLoginRequired()
    return found


def member_in(request: Request, db: Session, workspace: WorkspaceRef) -> Member | None:
    """The signed-in member if their session belongs to this page's brand (a session never crosses brands)."""
    found = optional_member(request, db)
    return found if found is not None and found.workspace_id == workspace.id else None


def start_session(response: Response, token: str) -> None:
    """Put a member session token in its cookie."""
    response.set_cookie(
        MEMBER_COOKIE,
        token,
        max_age=audience_service.MEMBER_SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        path="/",
    )


def sign_in_new_member(
    db: Session, request: Request, response: Response, *, workspace_id: int, name: str, phone: str | None = None
) -> Member:
    """Create the customer for a newcomer, sign them in (cookie on response) and return them."""
    ident, token = audience_service.sign_in_newcomer(
        db, workspace_id=workspace_id, name=name, phone=phone, device_id=device_id(request)
    )
    start_session(response, token)
    return _member_of(db, request, ident)


def safe_member_next(workspace: WorkspaceRef, value: str | None) -> str:
    """Only paths inside this brand's member pages are followed after sign-in."""
    home = f"/m/{workspace.slug}/"
    if not value or not value.startswith(home) or "\\" in value or "\n" in value or "//" in value:
        return home
    return value


# --- rendering ----------------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    *,
    workspace: WorkspaceRef,
    member: Member | None,
    status: int = 200,
    **variables: Any,
) -> HTMLResponse:
    """Render an H5 page (templates get t, money, dt, number, member, workspace)."""
    locale = request_locale(request) if request.query_params.get("lang") or request.cookies.get("shequn_lang") else ""
    locale = locale or workspace.locale or "zh-CN"

    def _t(key: str, **params: Any) -> str:
        return translate(key, locale, **params)

    def _money(fen: int | None) -> str:
        return fmt.money(fen, workspace.currency)

    def _dt(value: datetime | None, pattern: str = "%m-%d %H:%M") -> str:
        return fmt.local_dt(value, workspace.timezone, pattern)

    html = env.get_template(template).render(
        request=request,
        t=_t,
        locale=locale,
        money=_money,
        dt=_dt,
        number=fmt.number,
        member=member,
        workspace=workspace,
        version=__version__,
        **variables,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
