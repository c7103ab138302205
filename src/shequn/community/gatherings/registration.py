"""Registration: one place per customer, seats under concurrency, the waitlist and its promotion, cancelling.

Capacity is a counter on the gathering moved only by conditional UPDATEs
(`seats_taken = seats_taken + 1 WHERE seats_taken < capacity`): on PostgreSQL the row lock makes
concurrent registrations queue and re-check; on SQLite the write lock serialises them. So there are
never more confirmed registrations than seats, without a read-then-write race.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community.gatherings import community_link
from shequn.community.gatherings.errors import (
    CancelNotAllowed,
    GatheringFull,
    GatheringNotOpen,
    MembersOnly,
    RegistrationClosed,
    RegistrationNotFound,
    RegistrationNotOpen,
)
from shequn.community.gatherings.manage import get_gathering_for_update
from shequn.community.gatherings.models import Gathering, GatheringRegistration
from shequn.core.clock import utcnow
from shequn.core.signals import send_on_commit
from shequn.core.sqlutil import changed

# Check-in codes avoid characters people misread at a desk: no 0/O, 1/I/L.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
CODE_ATTEMPTS = 8
LATE_CANCEL = timedelta(hours=24)


@dataclass
class RegisterResult:
    """A registration and whether it existed already (a double registration returns the first one)."""

    registration: GatheringRegistration
    already_registered: bool


class _Raced(Exception):
    """Another request changed the registration between our read and our write."""


def new_code() -> str:
    """A short random check-in code from the unambiguous alphabet."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """What staff type, as stored: upper case without spaces or dashes."""
    return "".join(ch for ch in (raw or "").upper() if ch not in " -_\t")


def find_registration(session: Session, *, gathering_id: int, customer_id: int) -> GatheringRegistration | None:
    """The customer's registration for a gathering, if any."""
    return session.scalar(
        select(GatheringRegistration).where(
            GatheringRegistration.gathering_id == gathering_id, GatheringRegistration.customer_id == customer_id
        )
    )


def find_recent_device_registration(
    session: Session, *, gathering_id: int, device_id: str, since: datetime
) -> GatheringRegistration | None:
    """A live registration made from this device since a moment (a newcomer's retry after a lost reply)."""
    if not device_id:
        return None
    return session.scalar(
        select(GatheringRegistration)
        .where(
            GatheringRegistration.gathering_id == gathering_id,
            GatheringRegistration.device_id == device_id,
            GatheringRegistration.source == "h5",
            GatheringRegistration.status != "cancelled",
            GatheringRegistration.created_at >= since,
        )
        .order_by(GatheringRegistration.id.desc())
        .limit(1)
    )


def get_registration(session: Session, *, workspace_id: int, registration_id: int) -> GatheringRegistration:
    """A registration of this workspace (RegistrationNotFound otherwise)."""
    reg = session.get(GatheringRegistration, registration_id)
    if reg is None or reg.workspace_id != workspace_id:
        raise RegistrationNotFound(id=registration_id)
    return reg


def check_can_register(session: Session, g: Gathering, *, customer_id: int | None, now: datetime) -> None:
    """The gathering is published, the window open, and (members-only) the customer belongs."""
    if g.status != "published":
        raise GatheringNotOpen(status=g.status)
    if g.registration_opens_at and now < g.registration_opens_at:
        raise RegistrationNotOpen(opens_at=g.registration_opens_at.isoformat())
    if now >= (g.registration_closes_at or g.starts_at) or now >= g.ends_at:
        raise RegistrationClosed()
    if g.visibility == "members" and not community_link.is_member(
        session, workspace_id=g.workspace_id, community_id=g.community_id, customer_id=customer_id
    ):
        raise MembersOnly()


def _take_seat(session: Session, gathering_id: int) -> bool:
    """Take one seat if one is free (atomic); False when full."""
    taken = changed(
        session,
        update(Gathering)
        .where(
            Gathering.id == gathering_id,
            (Gathering.capacity.is_(None)) | (Gathering.seats_taken < Gathering.capacity),
        )
        .values(seats_taken=Gathering.seats_taken + 1),
    )
    return taken == 1


def _release_seat(session: Session, gathering_id: int) -> None:
    changed(
        session,
        update(Gathering)
        .where(Gathering.id == gathering_id, Gathering.seats_taken > 0)
        .values(seats_taken=Gathering.seats_taken - 1),
    )


def _waitlist_delta(session: Session, gathering_id: int, delta: int) -> None:
    count = Gathering.waitlist_count + delta
    changed(
        session,
        update(Gathering).where(Gathering.id == gathering_id).values(waitlist_count=case((count < 0, 0), else_=count)),
    )


def register(
    session: Session,
    *,
    workspace_id: int,
    gathering_id: int,
    customer_id: int,
    source: str = "h5",
    device_id: str = "",
    now: datetime | None = None,
) -> RegisterResult:
    """Register a customer: a seat if one is free, else the waitlist (or GatheringFull without one)."""
    now = now or utcnow()
    g = get_gathering_for_update(session, workspace_id=workspace_id, gathering_id=gathering_id)
    # A merged-away customer registers as the surviving record (one person, one place).
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    customer_id = customer.id
    existing = find_registration(session, gathering_id=g.id, customer_id=customer_id)
    if existing is not None and existing.status != "cancelled":
        return RegisterResult(existing, True)
    check_can_register(session, g, customer_id=customer_id, now=now)
    for _ in range(CODE_ATTEMPTS):
        try:
            with session.begin_nested():  # the seat and the row commit together or not at all
                reg = _place(session, g, existing, customer_id, source, device_id, customer.name, customer.phone_masked)
        except (IntegrityError, _Raced):
            again = find_registration(session, gathering_id=g.id, customer_id=customer_id)
            if again is not None and again.status != "cancelled":
                session.refresh(again)
                return RegisterResult(again, True)
            existing = again
            continue  # a check-in code clash with another registration: draw a new code
        session.refresh(g)
        _announce(session, g, reg, "gathering.registered")
        return RegisterResult(reg, False)
    raise RuntimeError("could not draw a unique check-in code")  # 31^6 codes: practically unreachable


def _place(
    session: Session,
    g: Gathering,
    existing: GatheringRegistration | None,
    customer_id: int,
    source: str,
    device_id: str,
    name: str,
    phone_masked: str,
) -> GatheringRegistration:
    """Take a seat or a waitlist place and write the registration (inside the caller's savepoint)."""
    now = utcnow()
    confirmed = _take_seat(session, g.id)
    if not confirmed:
        session.refresh(g, ["waitlist_enabled", "capacity"])
        if not g.waitlist_enabled:
            raise GatheringFull(capacity=g.capacity)
        _waitlist_delta(session, g.id, +1)
    status = "confirmed" if confirmed else "waitlisted"
    values = {
        "status": status,
        "source": source[:12],
        "device_id": device_id[:64],
        "name": name[:120],
        "phone_masked": phone_masked[:20],
        "queued_at": now,
        "confirmed_at": now if confirmed else None,
        "promoted_at": None,
        "cancelled_at": None,
        "cancelled_by": "",
        "late_cancel": False,
        "updated_at": now,
    }
    if existing is None:
        reg = GatheringRegistration(
            workspace_id=g.workspace_id, gathering_id=g.id, customer_id=customer_id, code=new_code(), **values
        )
        session.add(reg)
        session.flush()
        return reg
    # Coming back after cancelling: the same row (and code) is reused, queued anew at the back.
    done = changed(
        session,
        update(GatheringRegistration)
        .where(GatheringRegistration.id == existing.id, GatheringRegistration.status == "cancelled")
        .values(**values),
    )
    if not done:
        raise _Raced()
    session.refresh(existing)
    return existing


def _announce(session: Session, g: Gathering, reg: GatheringRegistration, name: str) -> None:
    send_on_commit(
        session,
        name,
        g.workspace_id,
        gathering_id=g.id,
        registration_id=reg.id,
        customer_id=reg.customer_id,
        status=reg.status,
        community_id=g.community_id,
    )


def cancel_registration(
    session: Session,
    *,
    workspace_id: int,
    registration_id: int,
    by: str,
    customer_id: int | None = None,
    now: datetime | None = None,
) -> GatheringRegistration:
    """Cancel a place (member: only their own); a freed seat goes to the first on the waitlist."""
    now = now or utcnow()
    reg = get_registration(session, workspace_id=workspace_id, registration_id=registration_id)
    if customer_id is not None and reg.customer_id != customer_id:
        raise RegistrationNotFound(id=registration_id)
    session.refresh(reg)
    if reg.status == "cancelled":
        return reg  # cancelling twice changes nothing
    g = get_gathering_for_update(session, workspace_id=workspace_id, gathering_id=reg.gathering_id)
    if reg.checked_in_at is not None or now >= g.ends_at or g.status == "finished":
        raise CancelNotAllowed()
    was = reg.status
    late = was == "confirmed" and g.starts_at - now < LATE_CANCEL
    done = changed(
        session,
        update(GatheringRegistration)
        .where(GatheringRegistration.id == reg.id, GatheringRegistration.status == was)
        .values(status="cancelled", cancelled_at=now, cancelled_by=by, late_cancel=late, updated_at=now),
    )
    session.refresh(reg)
    if not done:  # a concurrent cancel or promotion got there first: start again from the current state
        if reg.status == "cancelled":
            return reg
        return cancel_registration(
            session, workspace_id=workspace_id, registration_id=registration_id, by=by, customer_id=customer_id, now=now
        )
    if was == "confirmed":
        _release_seat(session, g.id)
        if g.status == "published":
            promote_waitlist(session, g)
    else:
        _waitlist_delta(session, g.id, -1)
    session.refresh(g)
    _announce(session, g, reg, "gathering.registration_cancelled")
    return reg


def promote_waitlist(session: Session, g: Gathering) -> list[GatheringRegistration]:
    """Give free seats to the waitlist in order (first queued, first promoted); returns who moved up."""
    promoted: list[GatheringRegistration] = []
    now = utcnow()
    while _take_seat(session, g.id):
        candidate = session.scalar(
            select(GatheringRegistration)
            .where(GatheringRegistration.gathering_id == g.id, GatheringRegistration.status == "waitlisted")
            .order_by(GatheringRegistration.queued_at, GatheringRegistration.id)
            .limit(1)
        )
        if candidate is None:
            _release_seat(session, g.id)
            break
        done = changed(
            session,
            update(GatheringRegistration)
            .where(GatheringRegistration.id == candidate.id, GatheringRegistration.status == "waitlisted")
            .values(status="confirmed", confirmed_at=now, promoted_at=now, updated_at=now),
        )
        session.refresh(candidate)
        if not done:  # cancelled or promoted by someone else meanwhile: give the seat back, look again
            _release_seat(session, g.id)
            continue
        _waitlist_delta(session, g.id, -1)
        promoted.append(candidate)
        _announce(session, g, candidate, "gathering.promoted")
    session.refresh(g)
    return promoted


def waitlist_position(session: Session, reg: GatheringRegistration) -> int | None:
    """1 for the next in line; None unless waitlisted."""
    if reg.status != "waitlisted":
        return None
    ahead = session.scalar(
        select(func.count(GatheringRegistration.id)).where(
            GatheringRegistration.gathering_id == reg.gathering_id,
            GatheringRegistration.status == "waitlisted",
            (GatheringRegistration.queued_at < reg.queued_at)
            | ((GatheringRegistration.queued_at == reg.queued_at) & (GatheringRegistration.id < reg.id)),
        )
    )
    return int(ahead or 0) + 1


def list_registrations(
    session: Session,
    *,
    workspace_id: int,
    gathering_id: int,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[GatheringRegistration], int]:
    """A page of a gathering's registrations: confirmed and cancelled by time, the waitlist in its order."""
    q = select(GatheringRegistration).where(
        GatheringRegistration.workspace_id == workspace_id, GatheringRegistration.gathering_id == gathering_id
    )
    if status:
        q = q.where(GatheringRegistration.status == status)
    total = session.scalar(q.with_only_columns(func.count(GatheringRegistration.id))) or 0
    rows = session.scalars(
        q.order_by(GatheringRegistration.queued_at, GatheringRegistration.id).limit(limit).offset(offset)
    )
    return list(rows), total


def list_registrations_of(
    session: Session, *, workspace_id: int, customer_id: int, limit: int = 50
) -> list[tuple[GatheringRegistration, Gathering]]:
    """A member's registrations with their gatherings, latest gathering first."""
    rows = session.execute(
        select(GatheringRegistration, Gathering)
        .join(Gathering, Gathering.id == GatheringRegistration.gathering_id)
        .where(GatheringRegistration.workspace_id == workspace_id, GatheringRegistration.customer_id == customer_id)
        .order_by(Gathering.starts_at.desc(), Gathering.id.desc())
        .limit(limit)
    )
    return [(r, g) for r, g in rows.all()]
