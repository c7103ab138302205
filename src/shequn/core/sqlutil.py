"""Helpers for the conditional writes that carry concurrency rules (counters, slots, state moves)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, Update
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
