"""Test fixtures: real databases (SQLite always; PostgreSQL when SHEQUN_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="shequn-tests-"))
os.environ.setdefault("SHEQUN_ENV", "test")
os.environ["SHEQUN_VAR_DIR"] = str(_TMP / "var")
os.environ["SHEQUN_JOBS_MODE"] = "immediate"
os.environ.pop("SHEQUN_DATABASE_URL", None)
os.environ.pop("SHEQUN_REDIS_URL", None)

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from shequn.core import db as core_db  # noqa: E402
from shequn.core import jobs  # noqa: E402
from shequn.core.settings import get_settings  # noqa: E402

# Under pytest-xdist every worker gets its own PostgreSQL database and Redis db: tests truncate and flush.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _worker_pg_url(url: str) -> str:
    """The worker's own database next to the configured one (created on first use)."""
    if not url or not WORKER:
        return url
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{WORKER}"
    plain = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def _worker_redis_url(url: str) -> str:
    """The worker's own Redis db: gw0 keeps the configured one, gwN takes N below it."""
    if not url or not WORKER:
        return url
    head, _, db = url.rpartition("/")
    index = int(WORKER.removeprefix("gw") or 0)
    return f"{head}/{max(0, int(db or 0) - index)}"


PG_URL = _worker_pg_url(os.environ.get("SHEQUN_TEST_DATABASE_URL", ""))
REDIS_URL = _worker_redis_url(os.environ.get("SHEQUN_TEST_REDIS_URL", ""))
REQUIRE_SERVICES = os.environ.get("SHEQUN_REQUIRE_SERVICES") == "1"


def _backends() -> list[object]:
    params: list[object] = ["sqlite"]
    marks = [] if PG_URL or REQUIRE_SERVICES else [pytest.mark.skip(reason="SHEQUN_TEST_DATABASE_URL not set")]
    params.append(pytest.param("postgres", marks=[pytest.mark.postgres, *marks]))
    return params


def _configure(url: str) -> None:
    os.environ["SHEQUN_DATABASE_URL"] = url
    get_settings.cache_clear()
    core_db.reset_engine()
    jobs.reset_huey()


_migrated: set[str] = set()


def _url_for(backend: str) -> str:
    if backend == "postgres":
        if not PG_URL:
            pytest.fail("SHEQUN_REQUIRE_SERVICES=1 but SHEQUN_TEST_DATABASE_URL is not set")
        return PG_URL
    return f"sqlite:///{_TMP / 'test.db'}"


def _reset_schema(url: str) -> None:
    """Each run starts from an empty schema built by the migrations."""
    from shequn.core.migrate import upgrade
    from shequn.models_registry import Base

    engine = core_db.get_engine()
    with engine.begin() as conn:
        if url.startswith("postgres"):
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}"'))
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade()


def _truncate() -> None:
    from shequn.models_registry import Base

    engine = core_db.get_engine()
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        else:
            for n in names:
                conn.execute(text(f'DELETE FROM "{n}"'))
            conn.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database under test, migrated once per run and emptied after every test."""
    url = _url_for(request.param)
    _configure(url)
    if url not in _migrated:
        _reset_schema(url)
        _migrated.add(url)
    from shequn.app import register_jobs

    register_jobs()
    yield request.param
    _truncate()


@pytest.fixture
def db(backend: str) -> Iterator[Session]:
    """A session on the database under test (tests commit like a boundary would)."""
    session = core_db.new_session()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@dataclass
class Tenant:
    """A workspace with an owner and API tokens per role."""

    workspace_id: int
    slug: str
    owner_id: int
    tokens: dict[str, str]

    def headers(self, role: str = "owner", **extra: str) -> dict[str, str]:
        """Authorization headers for a token of role."""
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


def make_tenant(session: Session, slug: str, email: str) -> Tenant:
    """Create a workspace, its owner and a token for every role."""
    from shequn.core.security import hash_token, new_token
    from shequn.identity import service
    from shequn.identity.models import ApiToken

    op, ws = service.bootstrap_owner(
        session, email=email, password="password-123", name="Owner", workspace_slug=slug, workspace_name=slug.title()
    )
    tokens = {}
    for role in ("owner", "admin", "operator", "analyst", "viewer"):
        plain = new_token("sqt")
        session.add(ApiToken(workspace_id=ws.id, name=role, token_hash=hash_token(plain), prefix=plain[:8], role=role))
        tokens[role] = plain
    session.commit()
    return Tenant(workspace_id=ws.id, slug=slug, owner_id=op.id, tokens=tokens)


@pytest.fixture
def tenant(db: Session) -> Tenant:
    """The main test workspace."""
    return make_tenant(db, "brand-a", "owner-a@example.com")


@pytest.fixture
def other_tenant(db: Session) -> Tenant:
    """A second workspace, to prove isolation."""
    return make_tenant(db, "brand-b", "owner-b@example.com")


@pytest.fixture
def client(backend: str) -> Iterator[object]:
    """An HTTP client on the real app."""
    from fastapi.testclient import TestClient

    from shequn.app import create_app

    with TestClient(create_app()) as c:
        yield c


FIXTURES = Path(__file__).parent / "fixtures"
