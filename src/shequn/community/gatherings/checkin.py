"""Check-in: by the code typed at the desk, by scanning the member's signed QR, or by the member
scanning the venue's QR (offline) / pressing "I'm here" (online). One check-in row per registration."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import segno
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.community.gatherings import community_link
from shequn.community.gatherings.errors import (
    AlreadyCheckedIn,
    CheckinClosed,
    CheckinCodeInvalid,
    CheckinNotOpen,
    GatheringNotOpen,
    RegistrationNotConfirmed,
    RegistrationNotFound,
)
from shequn.community.gatherings.manage import get_gathering
from shequn.community.gatherings.models import Gathering, GatheringCheckin, GatheringRegistration
from shequn.community.gatherings.registration import find_registration, normalize_code
from shequn.core.clock import utcnow
from shequn.core.settings import get_settings
from shequn.core.signals import send_on_commit
from shequn.core.sqlutil import changed


@dataclass
class CheckinResult:
    """A completed check-in."""

    registration: GatheringRegistration
    method: str
    checked_in_at: datetime


def _sign(message: str) -> str:
    key = hmac.new(get_settings().secret_key.encode(), b"shequn.gathering-checkin", hashlib.sha256).digest()
    mac = hmac.new(key, message.encode(), hashlib.sha256).digest()[:15]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def ticket_token(reg: GatheringRegistration) -> str:
    """The signed token in a member's QR: registration id + a MAC over workspace, gathering, id and code."""
    return f"{reg.id}.{_sign(f'ticket:{reg.workspace_id}:{reg.gathering_id}:{reg.id}:{reg.code}')}"


def venue_key(g: Gathering) -> str:
    """The key in the venue's QR (offline self check-in): only people at the venue see it."""
    return _sign(f"venue:{g.workspace_id}:{g.id}:{g.created_at.timestamp():.0f}")


def scan_url(base: str, reg: GatheringRegistration) -> str:
    """The console URL staff open by scanning a member's QR."""
    return f"{base}/gatherings/{reg.gathering_id}/scan?t={ticket_token(reg)}"


def venue_url(base: str, workspace_slug: str, g: Gathering) -> str:
    """The member H5 URL members open by scanning the venue's QR."""
    return f"{base}/m/{workspace_slug}/g/{g.id}/checkin?k={venue_key(g)}"


def qr_svg(data: str, scale: int = 4) -> str:
    """An inline SVG QR code (segno; medium error correction survives a scuffed phone screen)."""
    return str(segno.make(data, error="m").svg_inline(scale=scale, dark="#111", light="#fff"))


def _by_code(session: Session, g: Gathering, code: str) -> GatheringRegistration:
    wanted = normalize_code(code)
    reg = session.scalar(
        select(GatheringRegistration).where(
            GatheringRegistration.gathering_id == g.id, GatheringRegistration.code == wanted
        )
    )
    if reg is None or not wanted:
        raise CheckinCodeInvalid()
    return reg


def _by_token(session: Session, g: Gathering, token: str) -> GatheringRegistration:
    rid_text, _, _mac = token.partition(".")
    if not rid_text.isdigit() or len(rid_text) > 18:
        raise CheckinCodeInvalid()
    reg = session.get(GatheringRegistration, int(rid_text))
    if reg is None or reg.gathering_id != g.id or reg.workspace_id != g.workspace_id:
        raise CheckinCodeInvalid()
    if not hmac.compare_digest(ticket_token(reg), token):
        raise CheckinCodeInvalid()
    return reg


def registration_by_token(session: Session, g: Gathering, token: str) -> GatheringRegistration | None:
    """The registration a scanned ticket token names, or None if the token is not genuine."""
    try:
        return _by_token(session, g, token)
    except CheckinCodeInvalid:
        return None


def check_window(g: Gathering, now: datetime) -> None:
    """Check-in opens checkin_opens_minutes before the start and closes at the end."""
    if g.status == "draft":
        raise GatheringNotOpen(status=g.status)
    if g.status == "cancelled":
        raise CheckinClosed()
    if now < g.starts_at - timedelta(minutes=g.checkin_opens_minutes):
        raise CheckinNotOpen(opens_at=(g.starts_at - timedelta(minutes=g.checkin_opens_minutes)).isoformat())
    if now > g.ends_at:
        raise CheckinClosed()


def check_in(
    session: Session,
    *,
    workspace_id: int,
    gathering_id: int,
    code: str | None = None,
    token: str | None = None,
    operator_id: int | None = None,
    now: datetime | None = None,
) -> CheckinResult:
    """Staff check-in by typed code or scanned ticket token."""
    g = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    reg = _by_token(session, g, token) if token else _by_code(session, g, code or "")
    return _complete(session, g, reg, method="qr" if token else "code", operator_id=operator_id, now=now)


def self_check_in(
    session: Session,
    *,
    workspace_id: int,
    gathering_id: int,
    customer_id: int,
    key: str = "",
    now: datetime | None = None,
) -> CheckinResult:
    """A member checks in: online with a tap, offline only with the key from the venue's QR."""
    g = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    reg = find_registration(session, gathering_id=g.id, customer_id=customer_id)
    if reg is None:
        raise RegistrationNotFound(id=gathering_id)
    if g.mode == "offline" and not hmac.compare_digest(venue_key(g), key or ""):
        raise CheckinCodeInvalid()
    return _complete(session, g, reg, method="self", operator_id=None, now=now)


def _complete(
    session: Session,
    g: Gathering,
    reg: GatheringRegistration,
    *,
    method: str,
    operator_id: int | None,
    now: datetime | None,
) -> CheckinResult:
    """Write the one check-in row, or explain why not (in the order a desk needs to hear it)."""
    now = now or utcnow()
    session.refresh(reg)
    if reg.checked_in_at is not None:
        raise AlreadyCheckedIn(details=_already(reg))
    if reg.status != "confirmed":
        raise RegistrationNotConfirmed(details={"status": reg.status, "name": reg.name})
    check_window(g, now)
    try:
        with session.begin_nested():
            session.add(
                GatheringCheckin(
                    workspace_id=g.workspace_id,
                    gathering_id=g.id,
                    registration_id=reg.id,
                    customer_id=reg.customer_id,
                    method=method,
                    operator_id=operator_id,
                    created_at=now,
                )
            )
            session.flush()
            changed(
                session,
                update(GatheringRegistration)
                .where(GatheringRegistration.id == reg.id)
                .values(checked_in_at=now, updated_at=now),
            )
    except IntegrityError:  # the same code at two desks at once: the first one stands
        session.refresh(reg)
        raise AlreadyCheckedIn(details=_already(reg)) from None
    session.refresh(reg)
    community_link.record_checkin(
        session, workspace_id=g.workspace_id, community_id=g.community_id, customer_id=reg.customer_id
    )
    send_on_commit(
        session,
        "gathering.checked_in",
        g.workspace_id,
        gathering_id=g.id,
        registration_id=reg.id,
        customer_id=reg.customer_id,
        community_id=g.community_id,
        method=method,
    )
    return CheckinResult(reg, method, now)


def _already(reg: GatheringRegistration) -> dict[str, object]:
    return {
        "registration_id": reg.id,
        "name": reg.name,
        "checked_in_at": reg.checked_in_at.isoformat() if reg.checked_in_at else None,
    }
