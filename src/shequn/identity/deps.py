"""FastAPI dependencies that turn a request into an Actor (API token) and check permissions."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from shequn.core.web import get_db, request_locale
from shequn.identity import service
from shequn.identity.errors import InvalidToken
from shequn.identity.roles import Perm
from shequn.identity.service import Actor


def api_actor(request: Request, db: Session = Depends(get_db)) -> Actor:
    """Authenticate `Authorization: Bearer <token>`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken()
    actor = service.authenticate_token(
        db, token.strip(), ip=request.client.host if request.client else "", locale=request_locale(request)
    )
    db.commit()  # last_used_at
    return actor


def require(perm: Perm) -> Callable[[Actor], Actor]:
    """A dependency that passes the actor through only if its role grants perm."""

    def checker(actor: Actor = Depends(api_actor)) -> Actor:
        service.check_perm(actor, perm)
        return actor

    return checker
