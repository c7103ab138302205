"""Login, logout, workspace switch and language switch."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from shequn.console.web import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Console,
    ConsoleRoute,
    CsrfFailed,
    console_post,
    render,
    safe_next,
)
from shequn.core.i18n import LOCALES, normalize_locale
from shequn.core.settings import get_settings
from shequn.core.web import get_db, request_locale
from shequn.identity import service as identity_service
from shequn.identity.errors import InvalidCredentials, TooManyAttempts

router = APIRouter(route_class=ConsoleRoute)
YEAR = 365 * 24 * 3600


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, *, error: str = "", email: str = "", status: int = 200) -> Response:
    """The login form with a fresh pre-session CSRF token (double-submit cookie)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    locale = request_locale(request)
    request.state.locale = locale
    response = render(
        request,
        "login.html",
        None,
        status=status,
        error=error,
        email=email,
        login_csrf=token,
        next=safe_next(request.query_params.get("next")),
        locales=LOCALES,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login", secure=_secure(request)
    )
    if request.query_params.get("lang"):
        response.set_cookie(LANG_COOKIE, locale, max_age=YEAR, samesite="lax", path="/", secure=_secure(request))
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login page."""
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/"),
    db: Session = Depends(get_db),
) -> Response:
    """Check the password, open a console session and set the HttpOnly session cookie."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(csrf.encode(), expected.encode()):
        raise CsrfFailed()
    try:
        token, cs = identity_service.login(
            db, email=email, password=password, ip=request.client.host if request.client else ""
        )
    except (InvalidCredentials, TooManyAttempts) as exc:
        db.commit()  # keep the failed-attempt count the service recorded
        return _login_page(request, error=exc.message(request_locale(request)), email=email, status=exc.status_code)
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen and normalize_locale(chosen) != cs.locale:  # the language picked on the login page wins
        identity_service.set_session_locale(db, cs, normalize_locale(chosen))
    db.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=_secure(request),
        max_age=get_settings().session_hours * 3600,
    )
    response.set_cookie(LANG_COOKIE, cs.locale, max_age=YEAR, samesite="lax", path="/", secure=_secure(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """End the session and forget the cookie."""
    identity_service.logout(ctx.db, ctx.token)
    ctx.db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/workspace")
def switch_workspace(request: Request, workspace_id: int = Form(...), ctx: Console = Depends(console_post)) -> Response:
    """Switch to another workspace the operator belongs to (others are a 404)."""
    cs = identity_service.get_console_session(ctx.db, ctx.token)
    assert cs is not None  # console() just found it
    identity_service.switch_workspace(ctx.db, cs, workspace_id)
    ctx.db.commit()
    return RedirectResponse("/", status_code=303)


@router.post("/lang")
def switch_language(
    request: Request, lang: str = Form(...), next: str = Form("/"), ctx: Console = Depends(console_post)
) -> Response:
    """Remember the language on the session, the operator and a cookie."""
    locale = normalize_locale(lang)
    cs = identity_service.get_console_session(ctx.db, ctx.token)
    assert cs is not None
    identity_service.set_session_locale(ctx.db, cs, locale)
    ctx.db.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, locale, max_age=YEAR, samesite="lax", path="/", secure=_secure(request))
    return response
