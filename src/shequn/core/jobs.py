"""Background jobs on Huey: a JobRun row per job, enqueued after commit, retried, idempotent.

One generic Huey task runs any registered handler by the job's kind, so tasks carry only a job id
and the Huey instance can be built lazily from settings (SQLite file by default, Redis when set).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.db import new_session, on_commit
from shequn.core.models import JobRun
from shequn.core.settings import get_settings

log = logging.getLogger(__name__)

MAX_RETRIES = 3
RETRY_DELAY_S = 5


@dataclass
class JobContext:
    """What a handler gets: its session, its job row, and a checkpoint that commits progress."""

    session: Session
    job: JobRun

    def checkpoint(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Record progress and commit the work so far (the job runner is a commit boundary)."""
        self.job.progress_done = done
        if total is not None:
            self.job.progress_total = total
        if message is not None:
            self.job.message = message[:255]
        self.session.commit()


Handler = Callable[[JobContext], dict[str, Any]]
_handlers: dict[str, Handler] = {}
# name → (hour, minute, callback): crontab tasks the consumer runs (nightly recomputations).
_periodic: dict[str, tuple[str, str, Callable[[], None]]] = {}
_huey: Huey | None = None
_huey_lock = threading.Lock()


def register_job(kind: str, handler: Handler) -> None:
    """Register the handler for a job kind (explicit registry, no discovery)."""
    _handlers[kind] = handler


def register_periodic(name: str, callback: Callable[[], None], *, hour: str = "3", minute: str = "0") -> None:
    """Run callback on a crontab schedule (server time) in whichever process runs the consumer."""
    _periodic[name] = (hour, minute, callback)


def get_huey() -> Huey:
    """The process's Huey instance, built from settings on first use."""
    global _huey
    with _huey_lock:
        if _huey is None:
            _huey = _build_huey()
        return _huey


def reset_huey() -> None:
    """Forget the Huey instance (tests change settings between runs)."""
    global _huey
    with _huey_lock:
        _huey = None


def _build_huey() -> Huey:
    settings = get_settings()
    huey: Huey
    if settings.jobs_mode == "immediate":
        huey = Huey("shequn", immediate=True)
    elif settings.redis_url:
        huey = RedisHuey("shequn", url=settings.redis_url)
    else:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("shequn", filename=str(settings.var_dir / "jobs.db"))
    task = huey.task(retries=MAX_RETRIES, retry_delay=RETRY_DELAY_S, context=True, name="shequn.run_job")(_run_job_task)
    huey.shequn_run_job = task
    for name, (hour, minute, callback) in _periodic.items():
        huey.periodic_task(crontab(hour=hour, minute=minute), name=name)(callback)
    return huey


def _run_job_task(job_id: int, task: Any = None) -> None:
    retries_left = task.retries if task is not None else 0
    run_job(job_id, final_attempt=retries_left == 0)


def enqueue_job(
    session: Session,
    *,
    workspace_id: int | None,
    kind: str,
    params: dict[str, Any],
    created_by: int | None = None,
    idempotency_key: str | None = None,
) -> JobRun:
    """Create a JobRun and hand it to the queue once the transaction commits."""
    if kind not in _handlers:
        raise ValueError(f"unknown job kind {kind!r}")
    if idempotency_key:
        existing = session.scalar(
            select(JobRun).where(JobRun.workspace_id == workspace_id, JobRun.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return existing
    job = JobRun(
        workspace_id=workspace_id,
        kind=kind,
        params=params,
        created_by=created_by,
        idempotency_key=idempotency_key,
        status="queued",
    )
    session.add(job)
    session.flush()
    job_id = job.id
    on_commit(session, lambda: _dispatch(job_id))
    return job


def _dispatch(job_id: int) -> None:
    get_huey().shequn_run_job(job_id)


def run_job(job_id: int, *, final_attempt: bool = True) -> None:
    """Run one job by id: skip finished ones, record failures, re-raise so Huey retries."""
    with new_session() as session:
        job = session.get(JobRun, job_id)
        if job is None or job.status == "succeeded":
            return  # idempotent: a redelivered job that already finished does nothing
        handler = _handlers.get(job.kind)
        if handler is None:
            job.status, job.error = "failed", f"no handler for {job.kind}"
            session.commit()
            return
        job.status, job.attempts, job.started_at, job.error = "running", job.attempts + 1, utcnow(), ""
        session.commit()
        try:
            result = handler(JobContext(session, job))
        except Exception as exc:
            session.rollback()
            job = session.get(JobRun, job_id)
            assert job is not None
            job.error = f"{type(exc).__name__}: {exc}"[:4000]
            job.status = "failed" if final_attempt else "queued"
            job.finished_at = utcnow() if final_attempt else None
            session.commit()
            log.exception("job %s (%s) failed", job_id, job.kind)
            raise
        job.result = result
        job.status = "succeeded"
        job.finished_at = utcnow()
        if job.progress_total and job.progress_done < job.progress_total:
            job.progress_done = job.progress_total
        session.commit()


class _EmbeddedConsumer(Consumer):
    """A Huey consumer that lives inside the web server, so it leaves signals to uvicorn."""

    def _set_signal_handlers(self) -> None:
        pass


_consumer: _EmbeddedConsumer | None = None


def start_embedded_worker() -> None:
    """Start worker threads inside this process (the default for a single-machine install)."""
    global _consumer
    huey = get_huey()
    if huey.immediate or _consumer is not None:
        return
    _consumer = _EmbeddedConsumer(huey, workers=get_settings().job_workers, worker_type="thread")
    _consumer.start()


def stop_embedded_worker() -> None:
    """Stop the in-process workers, letting running jobs finish."""
    global _consumer
    if _consumer is not None:
        _consumer.stop(graceful=True)
        _consumer = None


def run_worker(workers: int) -> None:
    """Run a dedicated worker process (production: `shequn worker`)."""
    Consumer(get_huey(), workers=workers, worker_type="thread").run()


def get_job(session: Session, *, workspace_id: int, job_id: int) -> JobRun | None:
    """A job of this workspace, or None."""
    job = session.get(JobRun, job_id)
    if job is None or job.workspace_id != workspace_id:
        return None
    return job


def list_jobs(session: Session, *, workspace_id: int, kind: str | None = None, limit: int = 20) -> list[JobRun]:
    """The workspace's most recent jobs."""
    q = select(JobRun).where(JobRun.workspace_id == workspace_id)
    if kind:
        q = q.where(JobRun.kind == kind)
    return list(session.scalars(q.order_by(JobRun.id.desc()).limit(limit)))
