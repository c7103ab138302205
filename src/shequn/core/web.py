"""HTTP plumbing shared by every domain: request sessions, errors as {code, message, details},
locale negotiation, pagination, request size limits and idempotency keys."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shequn.core.clock import utcnow
from shequn.core.db import new_session
from shequn.core.errors import InvalidText, ShequnError
from shequn.core.i18n import negotiate, normalize_locale, translate
from shequn.core.models import IdempotencyRecord
from shequn.core.settings import get_settings

log = logging.getLogger(__name__)
IDEMPOTENCY_TTL = timedelta(hours=24)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_DB_INT = 2**63 - 1
# Ids in URLs: anything outside BIGINT could never exist, so it is refused before it reaches a driver.
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


def get_db() -> Iterator[Session]:
    """A session per request; routes that change data call commit() before returning (the boundary)."""
    session = new_session()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def request_locale(request: Request) -> str:
    """The request's locale: ?lang=, then the console cookie, then Accept-Language."""
    explicit = request.query_params.get("lang") or request.cookies.get("shequn_lang")
    if explicit:
        return normalize_locale(explicit)
    return negotiate(request.headers.get("accept-language"))


class Page(BaseModel):
    """Pagination parameters."""

    limit: int
    offset: int


def page_params(
    limit: int = Query(50, ge=1, le=500, description="items per page"),
    offset: int = Query(0, ge=0, le=10**9, description="items to skip"),
) -> Page:
    """limit/offset query parameters."""
    return Page(limit=limit, offset=offset)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"code": code, "message": message, "details": details}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def install_error_handlers(app: Any) -> None:
    """Map domain errors, validation errors and HTTP errors onto {code, message, details}."""

    @app.exception_handler(ShequnError)
    async def _domain(request: Request, exc: ShequnError) -> JSONResponse:
        locale = request_locale(request)
        return JSONResponse(error_body(exc.code, exc.message(locale), exc.details), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        locale = request_locale(request)
        details = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body("validation_failed", translate("error.validation_failed", locale), details), status_code=422
        )

    @app.exception_handler(UnicodeEncodeError)
    async def _bad_text(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # Raised by the database driver when a client sent lone surrogates inside a JSON string.
        return await _domain(request, InvalidText())

    @app.exception_handler(ValueError)
    async def _nul_text(request: Request, exc: ValueError) -> JSONResponse:
        # psycopg refuses NUL characters in text ("cannot contain NUL (0x00) bytes"): bad input, not a fault.
        if "NUL" not in str(exc):
            raise exc
        return await _domain(request, InvalidText())

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot hold (e.g. a number past BIGINT) is bad input, not a server fault.
        locale = request_locale(request)
        return JSONResponse(
            error_body(
                "validation_failed",
                translate("error.validation_failed", locale),
                [{"field": "", "message": "a value is out of range"}],
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        locale = request_locale(request)
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            403: "permission_denied",
            413: "too_large",
        }.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            error_body(
                code,
                translate(f"error.{code}", locale),
                exc.detail if exc.detail and not isinstance(exc.detail, str) else None,
            ),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


def _json_response(status: int, body: dict[str, Any]) -> tuple[list[Message], bytes]:
    raw = orjson.dumps(body)
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
    }
    return [start, {"type": "http.response.body", "body": raw}], raw


async def _send_json(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    messages, _ = _json_response(status, body)
    if extra:
        messages[0]["headers"] = list(messages[0]["headers"]) + extra
    for m in messages:
        await send(m)


class BodyLimitMiddleware:
    """Refuse request bodies over the upload limit: by Content-Length before reading, and by counting
    when a client streams without one (chunked), so no body can grow past the limit in memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = get_settings().max_upload_mb * 1024 * 1024 + 64 * 1024
        length = headers.get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await self._refuse(send, headers)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await self._refuse(send, headers)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, headers: dict[bytes, bytes]) -> None:
        locale = negotiate(headers.get(b"accept-language", b"").decode() or None)
        limit_mb = get_settings().max_upload_mb
        await _send_json(send, 413, error_body("too_large", translate("error.too_large", locale, limit_mb=limit_mb)))


class IdempotencyMiddleware:
    """Idempotency-Key on writes: the first response is stored and replayed for 24 h, errors included.

    Scoped by the credential (token or session cookie), so two clients never see each other's replies.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key_raw = headers.get(b"idempotency-key")
        if key_raw is None:
            await self.app(scope, receive, send)
            return
        locale = negotiate(headers.get(b"accept-language", b"").decode() or None)
        key = key_raw.decode("latin-1").strip()
        if not key or len(key) > 255:
            await _send_json(
                send, 400, error_body("bad_idempotency_key", translate("error.bad_idempotency_key", locale), None)
            )
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        credential = headers.get(b"authorization") or headers.get(b"cookie", b"")
        scope_hash = hashlib.sha256(credential).hexdigest()[:40]
        request_hash = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()

        record_id, replay = _claim(scope_hash, key, request_hash, locale)
        if replay is not None:
            status, payload = replay
            await _send_json(send, status, payload, [(b"idempotent-replayed", b"true")])
            return

        sent = False

        async def replay_receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status_code = 500
        content_type = ""
        chunks: list[bytes] = []

        async def capture_send(message: Message) -> None:
            nonlocal status_code, content_type
            if message["type"] == "http.response.start":
                status_code = message["status"]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            _finish(record_id, status_code, b"".join(chunks), content_type)


def _claim(
    scope_hash: str, key: str, request_hash: str, locale: str
) -> tuple[int | None, tuple[int, dict[str, Any]] | None]:
    """Insert a pending record, or return the stored reply (or a conflict) for a retried key."""
    with new_session() as s:
        s.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope_hash,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at < utcnow() - IDEMPOTENCY_TTL,
            )
        )
        rec = IdempotencyRecord(scope=scope_hash, key=key, request_hash=request_hash)
        s.add(rec)
        try:
            s.commit()
            return rec.id, None
        except IntegrityError:
            s.rollback()
        existing = s.scalar(
            select(IdempotencyRecord).where(IdempotencyRecord.scope == scope_hash, IdempotencyRecord.key == key)
        )
        if existing is None:  # expired and deleted between our statements: treat as in progress
            return None, (
                409,
                error_body("idempotency_in_progress", translate("error.idempotency_in_progress", locale)),
            )
        if existing.request_hash != request_hash:
            return None, (422, error_body("idempotency_key_reused", translate("error.idempotency_key_reused", locale)))
        if existing.status_code is None:
            return None, (
                409,
                error_body("idempotency_in_progress", translate("error.idempotency_in_progress", locale)),
            )
        try:
            payload = orjson.loads(existing.response_body or "null")
        except orjson.JSONDecodeError:
            payload = {"body": existing.response_body}
        return None, (existing.status_code, payload)


def _finish(record_id: int | None, status: int, body: bytes, content_type: str) -> None:
    """Store the reply; a server error frees the key so the client can retry for real."""
    if record_id is None:
        return
    with new_session() as s:
        if status >= 500:
            s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        else:
            s.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == record_id)
                .values(
                    status_code=status, response_body=body.decode("utf-8", "replace"), content_type=content_type[:100]
                )
            )
        s.commit()
