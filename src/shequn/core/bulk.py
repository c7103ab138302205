"""Raw DB-API bulk helpers for the import hot path (SQLite executemany, PostgreSQL COPY / ANY()).

SQLAlchemy's per-parameter processing costs more than SQLite's own work when a batch writes tens
of thousands of rows, so imports speak to the driver directly — always with bound parameters;
table and column names come from the code, never from input.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from shequn.core.errors import InvalidText

SQLITE_CHUNK = 30_000  # SQLite ≥ 3.32 binds up to 32,766 parameters per statement


class Bulk:
    """The session's raw connection plus value adapters for its dialect."""

    def __init__(self, session: Session) -> None:
        conn = session.connection()
        self.dialect = conn.dialect.name
        self.pg = self.dialect == "postgresql"
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        self.raw: Any = dbapi

    def ts(self, value: datetime | None) -> Any:
        """A timestamp as the column stores it (naive UTC text on SQLite, as SQLAlchemy writes it)."""
        if value is None or self.pg:
            return value
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" cut before the offset: one call instead of replace + isoformat.
        return value.isoformat(" ", "microseconds")[:26]

    @staticmethod
    def js(value: Any) -> str:
        """A JSON column value."""
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError as exc:
            raise InvalidText() from exc

    def _sql(self, sql: str) -> str:
        if self.pg:
            return sql.replace("?j", "%s::jsonb").replace("?", "%s")
        return sql.replace("?j", "?")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows (tuples in column order); JSON values must already be strings from js()."""
        if not rows:
            return
        cols = ", ".join(columns)
        cur = self.raw.cursor()
        try:
            if self.pg:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        finally:
            cur.close()

    def executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run one statement for many parameter tuples (`?` placeholders, `?j` for JSON)."""
        if not rows:
            return
        cur = self.raw.cursor()
        try:
            cur.executemany(self._sql(sql), rows)
        finally:
            cur.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (if any)."""
        cur = self.raw.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def select_in(self, sql: str, values: Sequence[Any], params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run sql whose `{in}` marks `column IN (values)`; params bind the `?`s before it."""
        out: list[tuple[Any, ...]] = []
        if not values:
            return out
        if self.pg:
            return self.execute(sql.replace("{in}", "= ANY(?)"), [*params, list(values)])
        for i in range(0, len(values), SQLITE_CHUNK):
            chunk = values[i : i + SQLITE_CHUNK]
            marks = "IN (" + ", ".join("?" * len(chunk)) + ")"
            out.extend(self.execute(sql.replace("{in}", marks), [*params, *chunk]))
        return out

    def parse_ts(self, value: Any) -> datetime | None:
        """A timestamp read by raw SQL, as an aware UTC datetime."""
        if value is None:
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector around bulk work.

    A bulk batch allocates hundreds of thousands of short-lived tuples and no cycles; with the
    collector on, its full passes rescan every live object of the process (measured: ~15% of an import,
    and half a second of one drain), and find nothing to free.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def flatten(groups: Iterable[Sequence[Any]]) -> list[Any]:
    """Concatenate sequences."""
    return [x for g in groups for x in g]
