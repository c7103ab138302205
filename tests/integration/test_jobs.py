"""Jobs: enqueued only after commit, idempotent, retried; the real Huey worker on SQLite and Redis."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from shequn.core import jobs
from shequn.core.db import new_session
from shequn.core.models import JobRun
from shequn.core.settings import get_settings
from tests.conftest import REDIS_URL, REQUIRE_SERVICES, Tenant

calls: list[int] = []


def _ok(ctx: jobs.JobContext) -> dict[str, Any]:
    calls.append(ctx.job.id)
    ctx.checkpoint(5, 10, "half")
    return {"n": ctx.job.params.get("n", 0)}


_failures = {"left": 0}


def _flaky(ctx: jobs.JobContext) -> dict[str, Any]:
    if _failures["left"] > 0:
        _failures["left"] -= 1
        raise RuntimeError("temporary outage")
    return {"ok": True}


jobs.register_job("test.ok", _ok)
jobs.register_job("test.flaky", _flaky)


def test_job_runs_only_after_commit(db, tenant: Tenant) -> None:
    calls.clear()
    job = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind="test.ok", params={"n": 1})
    assert calls == []  # not before commit
    db.rollback()
    assert calls == []  # dropped with the rollback
    job = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind="test.ok", params={"n": 2})
    db.commit()
    assert calls == [job.id]
    with new_session() as s:
        row = s.get(JobRun, job.id)
        assert row.status == "succeeded" and row.result == {"n": 2} and row.progress_done == 10


def test_job_idempotency_key_and_rerun(db, tenant: Tenant) -> None:
    calls.clear()
    a = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind="test.ok", params={}, idempotency_key="k1")
    db.commit()
    b = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind="test.ok", params={}, idempotency_key="k1")
    db.commit()
    assert a.id == b.id and calls == [a.id]
    jobs.run_job(a.id)  # a redelivered, finished job does nothing
    assert calls == [a.id]


def test_failed_attempts_are_recorded_then_retried(db, tenant: Tenant) -> None:
    job = JobRun(workspace_id=tenant.workspace_id, kind="test.flaky", params={}, status="queued")
    db.add(job)
    db.commit()
    _failures["left"] = 1
    with pytest.raises(RuntimeError):
        jobs.run_job(job.id, final_attempt=False)
    with new_session() as s:
        row = s.get(JobRun, job.id)
        assert row.status == "queued" and "temporary outage" in row.error and row.attempts == 1
    jobs.run_job(job.id)
    with new_session() as s:
        row = s.get(JobRun, job.id)
        assert row.status == "succeeded" and row.attempts == 2 and row.error == ""


def _run_with_worker(db, tenant: Tenant, redis_url: str = "") -> None:
    os.environ["SHEQUN_JOBS_MODE"] = "embedded"
    if redis_url:
        os.environ["SHEQUN_REDIS_URL"] = redis_url
    get_settings.cache_clear()
    jobs.reset_huey()
    try:
        if redis_url:
            jobs.get_huey().flush()
        jobs.start_embedded_worker()
        _failures["left"] = 1  # the first attempt fails; Huey retries it
        ok = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind="test.ok", params={"n": 7})
        flaky = jobs.enqueue_job(db, workspace_id=tenant.workspace_id, kind="test.flaky", params={})
        db.commit()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with new_session() as s:
                states = {s.get(JobRun, ok.id).status, s.get(JobRun, flaky.id).status}
            if states == {"succeeded"}:
                break
            time.sleep(0.2)
        with new_session() as s:
            assert s.get(JobRun, ok.id).result == {"n": 7}
            f = s.get(JobRun, flaky.id)
            assert f.status == "succeeded" and f.attempts == 2
    finally:
        jobs.stop_embedded_worker()
        os.environ["SHEQUN_JOBS_MODE"] = "immediate"
        os.environ.pop("SHEQUN_REDIS_URL", None)
        get_settings.cache_clear()
        jobs.reset_huey()


def test_embedded_worker_with_sqlite_queue(db, tenant: Tenant, monkeypatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_DELAY_S", 0)
    _run_with_worker(db, tenant)


@pytest.mark.redis
def test_worker_with_redis_queue(db, tenant: Tenant, monkeypatch) -> None:
    if not REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("SHEQUN_REQUIRE_SERVICES=1 but SHEQUN_TEST_REDIS_URL is not set")
        pytest.skip("SHEQUN_TEST_REDIS_URL not set")
    monkeypatch.setattr(jobs, "RETRY_DELAY_S", 0)
    _run_with_worker(db, tenant, REDIS_URL)


@pytest.mark.redis
def test_separate_worker_process_runs_imports(db, tenant: Tenant, backend: str) -> None:
    """Production topology: the web process only enqueues (SHEQUN_JOBS_MODE=external) and a separate
    `shequn worker` process, sharing Redis and the database, runs the import."""
    import subprocess
    import sys

    from shequn.commerce import service as commerce_service
    from shequn.identity.service import Actor

    if not REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("SHEQUN_REQUIRE_SERVICES=1 but SHEQUN_TEST_REDIS_URL is not set")
        pytest.skip("SHEQUN_TEST_REDIS_URL not set")
    env = {**os.environ, "SHEQUN_JOBS_MODE": "external", "SHEQUN_REDIS_URL": REDIS_URL}
    os.environ.update({"SHEQUN_JOBS_MODE": "external", "SHEQUN_REDIS_URL": REDIS_URL})
    get_settings.cache_clear()
    jobs.reset_huey()
    worker = None
    try:
        jobs.get_huey().flush()
        data = (
            b"source_order_id,status,total,currency,created_at,buyer_id,sku,title,quantity,unit_price\n"
            b"W-1,paid,100,CNY,2026-01-01 10:00:00,b1,S,t,1,100\n"
        )
        actor = Actor(workspace_id=tenant.workspace_id, role="owner")
        job = commerce_service.start_import(db, actor, filename="w.csv", data=data, source="shequn", shop_id="s")
        db.commit()
        with new_session() as s:
            assert s.get(JobRun, job.id).status == "queued"  # nobody in this process runs it
        worker = subprocess.Popen(
            [sys.executable, "-m", "shequn.cli.main", "worker", "--threads", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        status = "queued"
        while time.monotonic() < deadline and status not in ("succeeded", "failed"):
            time.sleep(0.3)
            with new_session() as s:
                status = s.get(JobRun, job.id).status
        assert status == "succeeded"
        with new_session() as s:
            assert s.get(JobRun, job.id).result["created"] == 1
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        os.environ["SHEQUN_JOBS_MODE"] = "immediate"
        os.environ.pop("SHEQUN_REDIS_URL", None)
        get_settings.cache_clear()
        jobs.reset_huey()
