"""Console plumbing: the session cookie → Console context, CSRF, rendering, HTML error pages."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from shequn import __version__
from shequn.console import fmt
from shequn.console.charts import bar_svg
from shequn.console.i18n import t
from shequn.core.errors import PermissionDenied, ShequnError
from shequn.core.i18n import normalize_locale
from shequn.core.web import get_db, request_locale
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

SESSION_COOKIE = "shequn_session"
LANG_COOKIE = "shequn_lang"
LOGIN_CSRF_COOKIE = "shequn_login_csrf"
PER_PAGE = 50

_TEMPLATES = Path(__file__).parent / "templates"
env = Environment(
    loader=FileSystemLoader(str(_TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """No live console session: the route answers with a redirect to /login."""


class CsrfFailed(ShequnError):
    """A console POST without the session's CSRF token."""

    code = "csrf"
    status_code = 403


@dataclass(frozen=True)
class WorkspaceInfo:
    """A snapshot of the current workspace (plain values, safe after the session closes)."""

    id: int
    slug: str
    name: str
    timezone: str
    currency: str
    locale: str
    created_at: datetime


@dataclass
class Console:
    """Who is looking at the console, in which workspace and language."""

    db: Session
    token: str
    csrf: str
    operator_id: int
    operator_name: str
    locale: str
    workspace: WorkspaceInfo
    workspaces: list[tuple[int, str, str]]  # (id, name, role)
    actor: Actor
    extra: dict[str, Any] = field(default_factory=dict)

    def t(self, key: str, **params: Any) -> str:
        """A console string in the operator's language."""
        return t(key, self.locale, **params)

    def can(self, perm: Perm) -> bool:
        """Whether the operator's role in this workspace grants perm."""
        return self.actor.can(perm)

    def require(self, perm: Perm) -> None:
        """Raise PermissionDenied (a 403 page) unless the role grants perm."""
        identity_service.check_perm(self.actor, perm)


def safe_next(value: str | None) -> str:
    """Only same-site relative paths are followed after login (no //host, no scheme, no backslashes)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def console(request: Request, db: Session = Depends(get_db)) -> Console:
    """Resolve the session cookie into a Console (or ask the route to redirect to /login)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    cs = identity_service.get_console_session(db, token) if token else None
    if cs is None:
        raise LoginRequired()
    request.state.locale = normalize_locale(cs.locale)
    memberships = identity_service.list_workspaces_for(db, cs.operator_id)
    if not memberships:
        raise PermissionDenied(perm="workspace", role="-")
    by_id = {ws.id: (ws, role) for ws, role in memberships}
    if cs.workspace_id not in by_id:  # membership removed or never chosen: fall back to the first one
        identity_service.switch_workspace(db, cs, memberships[0][0].id)
        db.commit()
    ws, role = by_id[cs.workspace_id or memberships[0][0].id]
    locale = normalize_locale(cs.locale)
    actor = Actor(workspace_id=ws.id, role=role, operator_id=cs.operator_id, locale=locale, ip=_client_ip(request))
    names = identity_service.operator_names(db, {cs.operator_id})
    ctx = Console(
        db=db,
        token=token,
        csrf=cs.csrf_token,
        operator_id=cs.operator_id,
        operator_name=names.get(cs.operator_id, ""),
        locale=locale,
        workspace=WorkspaceInfo(ws.id, ws.slug, ws.name, ws.timezone, ws.currency, ws.locale, ws.created_at),
        workspaces=[(w.id, w.name, r) for w, r in memberships],
        actor=actor,
    )
    request.state.console = ctx
    return ctx


async def console_post(request: Request, ctx: Console = Depends(console)) -> Console:
    """A Console for a state-changing request: the form field `csrf` or header X-CSRF-Token must match."""
    sent = request.headers.get("x-csrf-token", "")
    if not sent:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else ""
    if not sent or not secrets.compare_digest(sent.encode(), ctx.csrf.encode()):
        raise CsrfFailed()
    return ctx


# --- rendering ----------------------------------------------------------------------------------


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (pagination and sort links)."""
    params = {k: v for k, v in request.query_params.items() if v != ""}
    for k, v in changes.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params) if params else "?"


def render(
    request: Request, template: str, ctx: Console | None = None, *, status: int = 200, **variables: Any
) -> HTMLResponse:
    """Render a console template with the helpers every page uses."""
    locale = ctx.locale if ctx else getattr(request.state, "locale", None) or request_locale(request)
    tz = ctx.workspace.timezone if ctx else "Asia/Shanghai"
    currency = ctx.workspace.currency if ctx else "CNY"

    def _t(key: str, **params: Any) -> str:
        return t(key, locale, **params)

    def _tl(prefix: str, value: object) -> str:
        """A label for a data value (status, source, role …); unknown values show as they are."""
        key = f"{prefix}{value}"
        text = t(key, locale)
        return str(value) if text == key else text

    def _money(fen: int | None, cur: str | None = None) -> str:
        return fmt.money(fen, cur or currency)

    def _dt(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return fmt.local_dt(value, tz, pattern)

    html = env.get_template(template).render(
        request=request,
        ctx=ctx,
        locale=locale,
        t=_t,
        tl=_tl,
        money=_money,
        dt=_dt,
        number=fmt.number,
        pct=fmt.pct,
        bar=bar_svg,
        query=lambda **kw: _query(request, **kw),
        path=request.url.path,
        Perm=Perm,
        version=__version__,
        quote=quote,
        **variables,
    )
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error rendered in the console layout (or bare, when there is no session)."""
    ctx: Console | None = getattr(request.state, "console", None)
    return render(request, "error.html", ctx, status=status, status_code=status, message=message)


def login_redirect(request: Request) -> Response:
    """Send the browser to /login, remembering where it wanted to go (htmx gets HX-Redirect)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/login?" + urlencode({"next": safe_next(target)})
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class ConsoleRoute(APIRoute):
    """A route whose errors become HTML pages in the console layout instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler (dependencies run inside it, so their errors are caught too)."""
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except LoginRequired:
                return login_redirect(request)
            except ShequnError as exc:
                locale = getattr(request.state, "locale", None) or request_locale(request)
                return error_page(request, exc.status_code, exc.message(locale))
            except RequestValidationError:
                locale = getattr(request.state, "locale", None) or request_locale(request)
                return error_page(request, 400, t("error.validation_failed", locale))
            except StarletteHTTPException as exc:
                locale = getattr(request.state, "locale", None) or request_locale(request)
                code = {404: "not_found", 403: "permission_denied", 413: "too_large"}.get(exc.status_code, "error")
                return error_page(request, exc.status_code, t(f"error.{code}", locale, role="", limit_mb=""))

        return handler


def page_number(raw: str | None) -> int:
    """A 1-based page number from the query string (junk means page 1)."""
    try:
        return max(1, min(int(raw or 1), 100_000))
    except ValueError:
        return 1


def pager(total: int, page: int, per_page: int = PER_PAGE) -> dict[str, Any]:
    """Page links with ellipses: 1 … 4 5 [6] 7 8 … 20."""
    pages = max(1, -(-total // per_page))
    page = min(page, pages)
    keep = {1, pages, *range(page - 2, page + 3)}
    keep |= {n for n in range(2, pages) if n - 1 in keep and n + 1 in keep}  # no "…" standing for one page
    shown: list[int | None] = []
    for n in range(1, pages + 1):
        if n in keep:
            shown.append(n)
        elif shown and shown[-1] is not None:
            shown.append(None)
    start = (page - 1) * per_page
    return {
        "page": page,
        "pages": pages,
        "total": total,
        "shown": shown,
        "first": start + 1 if total else 0,
        "last": min(start + per_page, total),
    }
