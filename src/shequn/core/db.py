"""Database engine and sessions; after-commit hooks for jobs and signals."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from shequn.core.settings import get_settings

_lock = threading.Lock()
_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None

AFTER_COMMIT_KEY = "shequn.after_commit"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets readers run beside the single writer; busy_timeout waits instead of failing."""
    cache_kib = get_settings().sqlite_cache_mb * 1024
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA temp_store=MEMORY")
    # Identity keys are hashes, so index inserts land on random pages: a big page cache is what keeps a
    # million-customer import from turning into random disk reads.
    cur.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
    cur.execute("PRAGMA mmap_size=1073741824")  # shared through the OS page cache, unlike cache_size
    # Checkpoint every ~32 MB of WAL rather than 4 MB: hot index pages are then written once per
    # checkpoint instead of many times during a bulk import.
    cur.execute("PRAGMA wal_autocheckpoint=8000")
    cur.close()


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine with the settings each dialect needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    global _engine, _factory
    with _lock:
        if _engine is None:
            settings = get_settings()
            _engine = make_engine(settings.effective_database_url, settings.sql_echo)
            _factory = sessionmaker(bind=_engine, expire_on_commit=False)
        return _engine


def reset_engine() -> None:
    """Drop the cached engine (tests switch databases through this)."""
    global _engine, _factory
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _factory = None


def new_session() -> Session:
    """Open a session on the process engine; the caller (a boundary) commits."""
    get_engine()
    assert _factory is not None
    return _factory()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work for jobs and the CLI: commit on success, roll back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run callback after the session's transaction commits; dropped if it rolls back."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop(AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)


def reserve_ids(session: Session, table: str, count: int) -> list[int]:
    """Reserve count ids of table's identity for a bulk insert.

    Bulk imports need ids before inserting child rows, without a round trip per row.
    """
    if count <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table, "n": count},
        ).scalars()
        return [int(r) for r in rows]
    # SQLite: AUTOINCREMENT never hands out an id at or below sqlite_sequence.seq, and this
    # UPDATE takes the database write lock, so the reserved block is ours alone.
    conn.execute(
        text(
            "INSERT INTO sqlite_sequence(name, seq) SELECT :t, COALESCE((SELECT MAX(id) FROM "
            + _quote(table)
            + "), 0) WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :t)"
        ),
        {"t": table},
    )
    last = conn.execute(
        text("UPDATE sqlite_sequence SET seq = seq + :n WHERE name = :t RETURNING seq"),
        {"t": table, "n": count},
    ).scalar_one()
    return list(range(int(last) - count + 1, int(last) + 1))


def _quote(identifier: str) -> str:
    """Quote a table name known to the code (never user input)."""
    if not identifier.replace("_", "").isalnum():
        raise ValueError(f"bad identifier {identifier!r}")
    return f'"{identifier}"'


def analyze(session: Session, tables: Sequence[str]) -> None:
    """Refresh the planner's statistics after a bulk change.

    Without them SQLite picks the (workspace, placed_at) index for "orders of one customer" and scans
    millions of rows; a sampled ANALYZE takes about a second on a million customers.
    """
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=400")
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {_quote(table)}")
    else:
        conn.exec_driver_sql("ANALYZE " + ", ".join(_quote(t) for t in tables))
