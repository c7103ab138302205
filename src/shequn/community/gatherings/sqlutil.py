"""A small helper for the conditional UPDATEs that carry gatherings' concurrency rules."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Update
from sqlalchemy.orm import Session


def changed(session: Session, stmt: Update) -> int:
    """Run a conditional UPDATE (no ORM sync: callers refresh what they hold) and return the rows it changed."""
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount)
