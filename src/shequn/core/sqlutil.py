"""SQL helpers shared by domains: conditional writes that carry concurrency rules (counters, slots, state moves)
and per-local-day counts that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, Result, Update, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def changed(session: Session, stmt: Update) -> int:
    """Run a conditional UPDATE (no ORM sync: callers refresh what they hold); the rows it changed."""
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount)


def rowcount(result: Result[Any]) -> int:
    """Rows a conditional statement changed (what decides who won a race)."""
    return int(cast(CursorResult[Any], result).rowcount)


def dialect_insert(session: Session, model: Any) -> Any:
    """An INSERT with ON CONFLICT support in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def count_by_local_day(session: Session, column: Any, where: Sequence[ColumnElement[bool]], tz: str) -> dict[str, int]:
    """Rows per local day (YYYY-MM-DD in tz) of a UTC timestamp column, for the rows matching where.

    Grouped by UTC hour in the database (at most 24 rows a day come back, however many rows match), then mapped
    to local days here, so any zone with whole-hour offsets, DST included, lands on the right day.
    """
    if session.get_bind().dialect.name == "postgresql":
        hour = func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    else:
        hour = func.strftime("%Y-%m-%d %H", column)
    zone = ZoneInfo(tz)
    out: dict[str, int] = {}
    for bucket, n in session.execute(select(hour, func.count()).where(*where).group_by(hour)):
        day = datetime.strptime(str(bucket), "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone).date().isoformat()
        out[day] = out.get(day, 0) + int(n)
    return out
