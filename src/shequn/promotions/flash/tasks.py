"""Background jobs and signal receivers of promotions.flash."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shequn.core import jobs, signals
from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.promotions.common import register_demo_step, register_summarizer
from shequn.promotions.flash import consumer, demo, service
from shequn.promotions.flash.models import FlashSale

log = logging.getLogger(__name__)


def sweep() -> None:
    """Every minute: write pending stream entries, expire unpaid reservations, queue reminders, copy counters."""
    if service.redis_url():
        service.drain(max_batches=200)
        consumer.trim_stream()
    with session_scope() as session:
        while service.expire_due(session) > 0:
            session.commit()
    with session_scope() as session:
        service.send_due_reminders(session)
    if service.redis_url():
        with session_scope() as session:
            recent = utcnow() - timedelta(hours=1)
            for sale in session.scalars(
                select(FlashSale).where(FlashSale.status != "draft", FlashSale.ends_at >= recent)
            ).all():
                service.sync_outcomes(session, sale)


def _on_orders(signal: signals.Signal) -> None:
    """Imported paid orders pay the matching reservations (same customer, the sale's SKU)."""
    paid_ids = list(signal.payload.get("paid_order_ids") or [])
    if not paid_ids:
        return
    with session_scope() as session:
        service.match_paid_orders(session, workspace_id=signal.workspace_id, order_ids=paid_ids)


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    jobs.register_periodic("flash.sweep", sweep, hour="*", minute="*")
    signals.connect("commerce.orders_changed", _on_orders)
    register_summarizer("flash_sale", service.summarize)
    register_demo_step("flash_sale", demo.demo_step)
