"""Commerce jobs: file imports and the demo-data load, with progress checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from shequn.audience import service as audience_service
from shequn.commerce import derive, service
from shequn.commerce.canonical import ParsedRow, ProductIn
from shequn.commerce.ingest import ImportStats, import_orders
from shequn.core import signals
from shequn.core.db import session_scope
from shequn.core.jobs import JobContext, enqueue_job, register_job, register_periodic
from shequn.core.settings import get_settings
from shequn.core.signals import Signal
from shequn.identity import service as identity_service
from shequn.identity.service import Actor

BIG_IMPORT = 5_000
DRAIN_EVERY = 1_000_000  # written orders between drains in one import: bounds a drain, see _progress
log = logging.getLogger(__name__)


def _progress(ctx: JobContext, total: int) -> Callable[[ImportStats], None]:
    """The per-batch hook of a bulk import: record progress (which commits the batch), and drain the
    backlog every DRAIN_EVERY written orders, so no drain holds millions of orders in one transaction.

    Not more often: every drain logs its customers as changed, and the segment engine rebuilds its
    snapshot after a big change. With jobs run inline (SHEQUN_JOBS_MODE=immediate), a drain every 200k
    orders made a million-customer load rebuild it again and again (about 1.3k orders/s by its second
    million); with queued jobs, draining every 250k or every 1M took the same 19 minutes.
    """
    ws = ctx.job.workspace_id
    assert ws is not None
    next_drain = [DRAIN_EVERY]

    def on_batch(stats: ImportStats) -> None:
        ctx.job.result = stats.as_dict()
        ctx.checkpoint(stats.received, max(total, stats.received), "importing")
        written = stats.created + stats.updated
        if written >= next_drain[0]:
            derive.drain(ctx.session, workspace_id=ws)
            ctx.session.commit()
            next_drain[0] = written + DRAIN_EVERY

    return on_batch


def _after_bulk(ctx: JobContext, stats: ImportStats) -> None:
    """After an import: derive what it left in the backlog, refresh planner statistics when it was
    large, and RFM when anything changed."""
    ws = ctx.job.workspace_id
    assert ws is not None
    changed = stats.created + stats.updated
    if changed >= BIG_IMPORT:
        service.refresh_statistics(ctx.session)
    ctx.checkpoint(ctx.job.progress_done, None, "deriving")
    drained = derive.drain(ctx.session, workspace_id=ws)
    if changed:
        audience_service.request_rfm_refresh(ctx.session, workspace_id=ws)
    log.info("import job %s derived %s customers, %s days", ctx.job.id, drained.customers, drained.days)
    ctx.session.commit()


def _count_records(data: bytes, filename: str) -> int:
    """A cheap estimate of the record count for the progress bar (lines for CSV; 0 = unknown)."""
    if filename.lower().endswith((".csv", ".jsonl", ".ndjson")):
        return max(data.count(b"\n") - (0 if filename.lower().endswith((".jsonl", ".ndjson")) else 1), 0)
    return 0


def run_order_import(ctx: JobContext) -> dict[str, Any]:
    """Parse the uploaded file and upsert its orders batch by batch, recording bad rows."""
    from shequn.commerce.sources import FileError, parse_orders

    params = ctx.job.params
    data = Path(params["path"]).read_bytes()
    ws = ctx.job.workspace_id
    assert ws is not None
    total = _count_records(data, params["filename"])
    ctx.checkpoint(0, total, "parsing")
    try:
        rows = parse_orders(
            data, params["filename"], source=params.get("source"), shop_id=params.get("shop_id") or "default"
        )

        def on_errors(bad: list[ParsedRow]) -> None:
            service.save_row_errors(ctx.session, workspace_id=ws, job_id=ctx.job.id, rows=bad)

        stats = import_orders(
            ctx.session,
            workspace_id=ws,
            rows=rows,
            batch_size=get_settings().import_batch_size,
            on_batch=_progress(ctx, total),
            on_errors=on_errors,
            derive=False,
        )
    except FileError as exc:
        ctx.session.rollback()
        derive.drain(ctx.session, workspace_id=ws)  # batches committed before the file went bad
        ctx.session.commit()
        _discard_upload(params)  # a rejected file would only be rejected again
        return {
            "file_error": exc.code,
            "file_error_params": exc.params,
            "received": 0,
            "failed": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
        }
    _after_bulk(ctx, stats)
    _discard_upload(params)
    return stats.as_dict()


def _discard_upload(params: dict[str, Any]) -> None:
    """Delete an imported upload: the database now holds what it needs, and the file holds raw PII."""
    Path(params["path"]).unlink(missing_ok=True)


def run_product_import(ctx: JobContext) -> dict[str, Any]:
    """Upsert products from an uploaded product file."""
    from shequn.commerce.sources import FileError
    from shequn.commerce.sources.products import parse_products

    params = ctx.job.params
    ws = ctx.job.workspace_id
    assert ws is not None
    data = Path(params["path"]).read_bytes()
    try:
        parsed = list(parse_products(data, params["filename"]))
    except FileError as exc:
        _discard_upload(params)
        return {"file_error": exc.code, "file_error_params": exc.params}
    good = [p.item for p in parsed if isinstance(p.item, ProductIn)]
    bad = [p for p in parsed if p.error is not None]
    if bad:
        service.save_row_errors(ctx.session, workspace_id=ws, job_id=ctx.job.id, rows=bad)
    actor = Actor(workspace_id=ws, role="operator", operator_id=ctx.job.created_by)
    created, updated = service.upsert_products(ctx.session, actor, good) if good else (0, 0)
    ctx.checkpoint(len(parsed), len(parsed), "done")
    _discard_upload(params)
    return {"received": len(parsed), "created": created, "updated": updated, "failed": len(bad), "unchanged": 0}


def run_demo_load(ctx: JobContext) -> dict[str, Any]:
    """Generate the demo brand's products and orders and import them like any other source."""
    from shequn.commerce.demo import DemoSpec, demo_orders, demo_products, estimate_orders

    params = ctx.job.params
    ws = ctx.job.workspace_id
    assert ws is not None
    spec = DemoSpec(
        customers=int(params.get("customers", 5000)),
        months=int(params.get("months", 12)),
        seed=int(params.get("seed", 42)),
        end=datetime.fromisoformat(params["end"]),
    )
    actor = Actor(workspace_id=ws, role="owner", operator_id=ctx.job.created_by)
    service.upsert_products(ctx.session, actor, demo_products(spec))
    total = estimate_orders(spec)
    ctx.checkpoint(0, total, "generating")

    rows = (ParsedRow(row=i + 1, item=o) for i, o in enumerate(demo_orders(spec)))
    stats = import_orders(
        ctx.session,
        workspace_id=ws,
        rows=rows,
        batch_size=get_settings().import_batch_size,
        on_batch=_progress(ctx, total),
        derive=False,
    )
    _after_bulk(ctx, stats)
    # Other domains add their demo layer (tracked events, tags, segments) once the orders are in.
    signals.send_on_commit(ctx.session, service.DEMO_LOADED, ws, seed=spec.seed)
    return stats.as_dict()


def run_rollup_rebuild(ctx: JobContext) -> dict[str, Any]:
    """Recompute the dashboard rollups (after the workspace's timezone changed)."""
    ws = ctx.job.workspace_id
    assert ws is not None
    return {"days": service.rebuild_rollups(ctx.session, workspace_id=ws)}


def _on_timezone_changed(signal: Signal) -> None:
    with session_scope() as session:
        enqueue_job(session, workspace_id=signal.workspace_id, kind=service.ROLLUP_JOB, params={})


def drain_all_backlogs() -> None:
    """Hourly safety net: derive any backlog an import left behind (one that failed for good)."""
    with session_scope() as session:
        for ws in derive.workspaces_with_backlog(session):
            derive.drain(session, workspace_id=ws)
            session.commit()


def register() -> None:
    """Register commerce job handlers with the queue, and the signals that start jobs."""
    register_periodic("commerce.drain_backlogs", drain_all_backlogs, hour="*", minute="23")
    register_job(service.IMPORT_JOB, run_order_import)
    register_job(service.PRODUCT_IMPORT_JOB, run_product_import)
    register_job(service.DEMO_JOB, run_demo_load)
    register_job(service.ROLLUP_JOB, run_rollup_rebuild)
    signals.connect(identity_service.TIMEZONE_CHANGED, _on_timezone_changed)
