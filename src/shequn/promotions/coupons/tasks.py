"""Background jobs and signal receivers of promotions.coupons: fan-out, order matching, expiry, demo layer."""

from __future__ import annotations

import logging
from typing import Any

from shequn.core import jobs, signals
from shequn.core.db import session_scope
from shequn.core.signals import Signal
from shequn.promotions.common import register_demo_step, register_summarizer
from shequn.promotions.coupons import demo, service
from shequn.promotions.coupons.matching import JOB_CHUNK, workspace_has_coupons

log = logging.getLogger(__name__)


def _fanout_job(ctx: jobs.JobContext) -> dict[str, Any]:
    p = ctx.job.params
    report = service.run_fanout(
        ctx.session,
        workspace_id=int(p["workspace_id"]),
        template_id=int(p["template_id"]),
        segment_id=int(p["segment_id"]),
        message=str(p.get("message") or ""),
        checkpoint=ctx.checkpoint,
    )
    return report.as_dict()


def _match_job(ctx: jobs.JobContext) -> dict[str, Any]:
    p = ctx.job.params
    ids = [int(i) for i in p.get("order_ids", [])]
    return service.match_orders(ctx.session, workspace_id=int(p["workspace_id"]), order_ids=ids)


def _on_orders_changed(signal: Signal) -> None:
    """Queue matching of the changed orders (in chunks) for workspaces that have coupons at all."""
    ids = [int(i) for i in signal.payload.get("order_ids", [])]
    if not ids:
        return
    with session_scope() as session:
        if not workspace_has_coupons(session, workspace_id=signal.workspace_id):
            return
        for start in range(0, len(ids), JOB_CHUNK):
            jobs.enqueue_job(
                session,
                workspace_id=signal.workspace_id,
                kind=service.MATCH_JOB,
                params={"workspace_id": signal.workspace_id, "order_ids": ids[start : start + JOB_CHUNK]},
            )


def expire_all() -> None:
    """Nightly: coupons past their validity become expired and release their budget."""
    with session_scope() as session:
        n = service.expire_grants(session)
    log.info("coupons: %d grants expired", n)


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    jobs.register_job(service.FANOUT_JOB, _fanout_job)
    jobs.register_job(service.MATCH_JOB, _match_job)
    jobs.register_periodic("coupons.expire", expire_all, hour="*", minute="23")
    signals.connect("commerce.orders_changed", _on_orders_changed)
    register_summarizer("coupon", service.summarize)
    register_demo_step("coupons", demo.demo_coupons)
