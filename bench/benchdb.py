"""Database set-up shared by the benches."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from shequn.core import db as core_db


def ensure_pg_database(url: str) -> None:
    """Create the PostgreSQL database of url if it does not exist (connecting to `postgres` to do it)."""
    base, name = url.rsplit("/", 1)
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://") + "/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    core_db.reset_engine()
