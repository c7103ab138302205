"""Gatherings themselves: create, edit, publish, cancel, finish, list (operator side and member side)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shequn.community.gatherings import community_link
from shequn.community.gatherings.errors import BadGatheringTransition, CapacityBelowConfirmed, GatheringNotFound
from shequn.community.gatherings.models import Gathering
from shequn.community.gatherings.schemas import GatheringFields, GatheringIn
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed
from shequn.core.signals import send_on_commit
from shequn.core.sqlutil import changed

# Which status may move to which (the state machine the console's buttons follow).
TRANSITIONS = {
    "draft": {"published", "cancelled"},
    "published": {"cancelled", "finished"},
    "cancelled": set(),
    "finished": set(),
}
MAX_DURATION = timedelta(days=14)


def get_gathering(session: Session, *, workspace_id: int, gathering_id: int) -> Gathering:
    """A gathering of this workspace (GatheringNotFound otherwise)."""
    g = session.get(Gathering, gathering_id)
    if g is None or g.workspace_id != workspace_id:
        raise GatheringNotFound(id=gathering_id)
    return g


def get_gathering_for_update(session: Session, *, workspace_id: int, gathering_id: int) -> Gathering:
    """The gathering re-read from the database (counters moved by other transactions' UPDATEs)."""
    g = get_gathering(session, workspace_id=workspace_id, gathering_id=gathering_id)
    session.refresh(g)
    return g


def list_gatherings(
    session: Session,
    *,
    workspace_id: int,
    status: str | None = None,
    community_id: int | None = None,
    upcoming: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Gathering], int]:
    """A page of the workspace's gatherings (soonest first when upcoming, latest first otherwise)."""
    q = select(Gathering).where(Gathering.workspace_id == workspace_id)
    if status:
        q = q.where(Gathering.status == status)
    if community_id:
        q = q.where(Gathering.community_id == community_id)
    now = utcnow()
    if upcoming is True:
        q = q.where(Gathering.ends_at >= now)
    elif upcoming is False:
        q = q.where(Gathering.ends_at < now)
    total = session.scalar(q.with_only_columns(func.count(Gathering.id))) or 0
    order = (Gathering.starts_at.asc(), Gathering.id) if upcoming else (Gathering.starts_at.desc(), Gathering.id.desc())
    rows = session.scalars(q.order_by(*order).limit(limit).offset(offset))
    return list(rows), total


def list_open_gatherings(
    session: Session, *, workspace_id: int, customer_id: int | None, limit: int = 50
) -> list[Gathering]:
    """Published gatherings not yet over that this member may see (public, or of their communities)."""
    now = utcnow()
    q = select(Gathering).where(
        Gathering.workspace_id == workspace_id, Gathering.status == "published", Gathering.ends_at >= now
    )
    communities = community_link.member_community_ids(session, workspace_id=workspace_id, customer_id=customer_id)
    if communities:
        q = q.where(or_(Gathering.visibility == "public", Gathering.community_id.in_(communities)))
    else:
        q = q.where(Gathering.visibility == "public")
    return list(session.scalars(q.order_by(Gathering.starts_at, Gathering.id).limit(limit)))


def check_visible_to(session: Session, g: Gathering, *, customer_id: int | None) -> None:
    """A member sees published (or finished/cancelled, for their history) gatherings they may join."""
    if g.status == "draft":
        raise GatheringNotFound(id=g.id)
    if g.visibility == "members" and not community_link.is_member(
        session, workspace_id=g.workspace_id, community_id=g.community_id, customer_id=customer_id
    ):
        raise GatheringNotFound(id=g.id)


def _check_shape(session: Session, g: Gathering) -> None:
    """Cross-field rules that apply to a new gathering and to every edit."""
    problems: list[dict[str, str]] = []
    if g.ends_at <= g.starts_at:
        problems.append({"field": "ends_at", "message": "must be after starts_at"})
    elif g.ends_at - g.starts_at > MAX_DURATION:
        problems.append({"field": "ends_at", "message": "a gathering lasts at most 14 days"})
    opens, closes = g.registration_opens_at, g.registration_closes_at
    if opens and closes and closes <= opens:
        problems.append({"field": "registration_closes_at", "message": "must be after registration_opens_at"})
    if closes and closes > g.ends_at:
        problems.append({"field": "registration_closes_at", "message": "must not be after ends_at"})
    if g.mode == "online" and g.format == "meetup":
        problems.append({"field": "format", "message": "a meetup is offline"})
    if g.mode == "offline" and g.format == "live":
        problems.append({"field": "format", "message": "a live stream is online"})
    if g.visibility == "members" and not g.community_id:
        problems.append({"field": "community_id", "message": "members-only needs a community"})
    if problems:
        raise ValidationFailed(details=problems)
    if g.community_id:
        community_link.check_community(session, workspace_id=g.workspace_id, community_id=g.community_id)


def _check_publishable(g: Gathering) -> None:
    """What a published gathering must say: where to go (online: a link; offline: a city and address)."""
    problems = []
    if g.mode == "online" and not g.join_url:
        problems.append({"field": "join_url", "message": "an online gathering needs a join URL"})
    if g.mode == "offline" and not (g.city and g.address):
        problems.append({"field": "address", "message": "an offline gathering needs a city and an address"})
    if problems:
        raise ValidationFailed(details=problems)


def create_gathering(
    session: Session, *, workspace_id: int, data: GatheringIn, created_by: int | None = None
) -> Gathering:
    """A new draft gathering."""
    values = data.model_dump(exclude_none=True)
    g = Gathering(workspace_id=workspace_id, created_by=created_by, **_defaults(), **values)
    _check_shape(session, g)
    session.add(g)
    session.flush()
    return g


def _defaults() -> dict[str, Any]:
    now = utcnow()
    return {"status": "draft", "seats_taken": 0, "waitlist_count": 0, "created_at": now, "updated_at": now}


def update_gathering(session: Session, *, workspace_id: int, gathering_id: int, data: GatheringFields) -> Gathering:
    """Change a gathering; a larger capacity promotes people from the waitlist at once."""
    from shequn.community.gatherings import registration  # the waitlist lives there; it imports us

    g = get_gathering_for_update(session, workspace_id=workspace_id, gathering_id=gathering_id)
    if g.status in ("cancelled", "finished"):
        raise BadGatheringTransition(status=g.status)
    changes = data.model_dump(exclude_unset=True)
    if "capacity" in changes and changes["capacity"] is not None and changes["capacity"] < g.seats_taken:
        raise CapacityBelowConfirmed(confirmed=g.seats_taken)
    for key, value in changes.items():
        if value is None and key not in ("capacity", "community_id", "registration_opens_at", "registration_closes_at"):
            continue  # null means "leave as is" for text and required fields
        setattr(g, key, value)
    g.updated_at = utcnow()
    _check_shape(session, g)
    if g.status == "published":
        _check_publishable(g)
    session.flush()
    if "capacity" in changes or "waitlist_enabled" in changes:
        registration.promote_waitlist(session, g)
    return g


def _move(session: Session, g: Gathering, to: str) -> None:
    """Move status with a conditional UPDATE so two operators cannot both publish or cancel."""
    if to not in TRANSITIONS[g.status]:
        raise BadGatheringTransition(status=g.status)
    now = utcnow()
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if to == "published":
        values["published_at"] = now
    if to == "cancelled":
        values["cancelled_at"] = now
    done = changed(
        session,
        update(Gathering).where(Gathering.id == g.id, Gathering.status == g.status).values(**values),
    )
    session.refresh(g)
    if not done:
        raise BadGatheringTransition(status=g.status)


def publish_gathering(session: Session, *, workspace_id: int, gathering_id: int) -> Gathering:
    """Open a draft for registration."""
    g = get_gathering_for_update(session, workspace_id=workspace_id, gathering_id=gathering_id)
    if g.status == "draft":
        _check_publishable(g)
        if g.ends_at <= utcnow():
            raise ValidationFailed(details=[{"field": "ends_at", "message": "the gathering is already over"}])
    _move(session, g, "published")
    send_on_commit(session, "gathering.published", workspace_id, gathering_id=g.id, community_id=g.community_id)
    return g


def cancel_gathering(session: Session, *, workspace_id: int, gathering_id: int, reason: str = "") -> Gathering:
    """Call a gathering off; registrants keep their rows and are told through the signal."""
    g = get_gathering_for_update(session, workspace_id=workspace_id, gathering_id=gathering_id)
    _move(session, g, "cancelled")
    g.cancel_reason = reason[:255]
    session.flush()
    send_on_commit(session, "gathering.cancelled", workspace_id, gathering_id=g.id, community_id=g.community_id)
    return g


def finish_gathering(session: Session, *, workspace_id: int, gathering_id: int) -> Gathering:
    """Mark a published gathering as held (the reminder job does this after the end on its own)."""
    g = get_gathering_for_update(session, workspace_id=workspace_id, gathering_id=gathering_id)
    _move(session, g, "finished")
    send_on_commit(session, "gathering.finished", workspace_id, gathering_id=g.id, community_id=g.community_id)
    return g


def finish_ended(session: Session, *, now: datetime | None = None) -> int:
    """Finish every published gathering whose end has passed (all workspaces); returns how many."""
    now = now or utcnow()
    ended = list(
        session.execute(
            select(Gathering.id, Gathering.workspace_id).where(Gathering.status == "published", Gathering.ends_at < now)
        )
    )
    for gid, ws in ended:
        try:
            finish_gathering(session, workspace_id=ws, gathering_id=gid)
        except BadGatheringTransition:
            continue  # an operator cancelled or finished it meanwhile
    return len(ended)
