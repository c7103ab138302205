"""Analytics services: ingest tracked events idempotently and feed audience's activity table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shequn.analytics.models import Event
from shequn.analytics.schemas import EventIn, IngestResult
from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed

EVENTS = cast(Table, Event.__table__)
MAX_PROPS_BYTES = 8 * 1024
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Client clocks drift: an event may claim to be up to a day ahead of ours, not more.
MAX_CLOCK_SKEW = timedelta(days=1)
ENGAGE_KEY = "category"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Problem = dict[str, str]


def _problem(index: int, field: str, code: str, message: str) -> Problem:
    return {"field": f"events[{index}].{field}", "code": code, "message": message}


def _check_event(index: int, ev: EventIn, now: datetime) -> list[Problem]:
    """What is wrong with one event before any lookup (time, text, props, who it names)."""
    problems = []
    for field in ("event_id", "name"):
        if _CONTROL.search(getattr(ev, field)):
            problems.append(_problem(index, field, "bad_value", f"{field} may not contain control characters"))
    at = ev.occurred_at
    if at.tzinfo is None:
        problems.append(_problem(index, "occurred_at", "naive_time", "occurred_at needs a time zone"))
    elif not EARLIEST <= at <= now + MAX_CLOCK_SKEW:
        problems.append(_problem(index, "occurred_at", "out_of_range", "occurred_at is before 2000 or in the future"))
    try:
        raw = orjson.dumps(ev.props)
    except orjson.JSONEncodeError:
        problems.append(_problem(index, "props", "bad_value", "props hold a value that cannot be stored"))
    else:
        if len(raw) > MAX_PROPS_BYTES:
            problems.append(_problem(index, "props", "too_large", f"props may take at most {MAX_PROPS_BYTES} bytes"))
        elif b"\\u0000" in raw:
            problems.append(_problem(index, "props", "bad_value", "props may not contain NUL characters"))
    category = ev.props.get(ENGAGE_KEY)
    if isinstance(category, str) and len(category.strip()) > 64:
        problems.append(_problem(index, f"props.{ENGAGE_KEY}", "too_long", "category has at most 64 characters"))
    if ev.customer_id is not None and ev.identity is not None:
        problems.append(_problem(index, "identity", "ambiguous", "give customer_id or identity, not both"))
    elif ev.identity is not None and ev.identity.kind not in audience_service.LOOKUP_KINDS:
        kinds = ", ".join(sorted(audience_service.LOOKUP_KINDS))
        problems.append(_problem(index, "identity.kind", "unknown_kind", f"kind must be one of {kinds}"))
    return problems


def _resolve(
    session: Session, workspace_id: int, events: Sequence[EventIn], problems: list[Problem]
) -> list[int | None]:
    """The live customer of each event (merges followed); unknown customer ids are problems, unknown
    identities are not (the person may simply not have bought anything yet)."""
    asked = {ev.customer_id for ev in events if ev.customer_id is not None}
    by_id = audience_service.live_customer_ids(session, workspace_id=workspace_id, ids=asked)
    idents = {(ev.identity.source, ev.identity.kind, ev.identity.value) for ev in events if ev.identity is not None}
    by_ident = audience_service.find_customers_by_identity(session, workspace_id=workspace_id, identities=idents)
    out: list[int | None] = []
    for i, ev in enumerate(events):
        if ev.customer_id is not None:
            if ev.customer_id not in by_id:
                problems.append(_problem(i, "customer_id", "unknown_customer", "no such customer in this workspace"))
            out.append(by_id.get(ev.customer_id))
        elif ev.identity is not None:
            out.append(by_ident.get((ev.identity.source, ev.identity.kind, ev.identity.value)))
        else:
            out.append(None)
    return out


def _activity(events: Sequence[EventIn], customers: Sequence[int | None]) -> list[audience_service.ActivityRow]:
    """Activity rows of stored events: the event by name, and an engagement with a category when props name one."""
    rows = []
    for ev, cid in zip(events, customers, strict=True):
        if cid is None:
            continue
        day = audience_service.epoch_day(ev.occurred_at)
        rows.append(audience_service.ActivityRow(cid, "event", ev.name, day))
        category = ev.props.get(ENGAGE_KEY)
        if isinstance(category, str) and category.strip():
            rows.append(audience_service.ActivityRow(cid, "engage", category.strip(), day))
    return rows


def ingest_events(session: Session, *, workspace_id: int, events: Sequence[EventIn]) -> IngestResult:
    """Store a batch of events all or none; an event_id already received is skipped as a duplicate."""
    now = utcnow()
    problems = [p for i, ev in enumerate(events) for p in _check_event(i, ev, now)]
    if problems:
        raise ValidationFailed(details=problems)
    customers = _resolve(session, workspace_id, events, problems)
    if problems:
        raise ValidationFailed(details=problems)
    first: dict[str, int] = {}
    for i, ev in enumerate(events):
        first.setdefault(ev.event_id, i)  # a key repeated inside the batch counts once
    unique = sorted(first.values())
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": workspace_id,
            "customer_id": customers[i],
            "name": events[i].name,
            "occurred_at": events[i].occurred_at,
            "props": events[i].props,
            "event_key": events[i].event_id,
            "received_at": now,
        }
        for i in unique
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(EVENTS)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["workspace_id", "event_key"])
        .returning(EVENTS.c.event_key)
    )
    stored = set(session.scalars(stmt))
    kept = [i for i in unique if events[i].event_id in stored]
    audience_service.add_activity(
        session,
        workspace_id=workspace_id,
        rows=_activity([events[i] for i in kept], [customers[i] for i in kept]),
    )
    unresolved = sum(1 for i in kept if customers[i] is None and events[i].identity is not None)
    return IngestResult(accepted=len(kept), duplicates=len(events) - len(kept), unresolved=unresolved)
