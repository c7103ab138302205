"""Portable SQL helpers for fission: per-community serialisation and insert-or-ignore."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shequn.core.types import Base

# Advisory-lock namespace, so our keys never collide with another domain's advisory locks.
_LOCK_SPACE = 0x46495353  # "FISS"


def lock_community(session: Session, community_id: int) -> None:
    """Serialise referral-tree changes of one community until the transaction ends.

    Two concurrent joins (A invites B while B invites A) each see the other as a root; without one
    writer at a time both edges would be written and form a cycle. PostgreSQL: a transaction-level
    advisory lock. SQLite: pysqlite opens the transaction at the first write and a WAL database has a
    single writer, so an idempotent UPDATE takes the write lock (waiting on busy_timeout) and every
    read after it sees the latest committed tree.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _LOCK_SPACE, "key": community_id})
    else:
        session.execute(text("UPDATE communities SET id = id WHERE id = :id"), {"id": community_id})


def insert_ignore(session: Session, model: type[Base], values: dict[str, Any], conflict: list[str]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when the row already existed."""
    table = cast(Table, model.__table__)
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = maker(table).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id)
    new_id = session.execute(stmt).scalar()
    return int(new_id) if new_id is not None else None
