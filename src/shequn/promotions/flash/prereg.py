"""Pre-registration: members ask to be reminded; one reminder per member, queued once before the start."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.signals import send_on_commit
from shequn.core.sqlutil import dialect_insert, rowcount
from shequn.promotions.flash.errors import FlashBadTransition
from shequn.promotions.flash.manage import get_sale, phase_of
from shequn.promotions.flash.models import FlashPreregistration, FlashSale

REMIND_BEFORE = timedelta(minutes=10)
REMINDER_SIGNAL = "promotions.flash_reminders_due"


def preregister(session: Session, *, workspace_id: int, sale_id: int, customer_id: int) -> bool:
    """Ask for a reminder; True if new, False if the member had already asked (retry-safe)."""
    sale = get_sale(session, workspace_id=workspace_id, sale_id=sale_id)
    if not sale.preregistration or phase_of(sale) != "scheduled":
        raise FlashBadTransition(status=phase_of(sale))
    stmt = (
        dialect_insert(session, FlashPreregistration)
        .values(workspace_id=workspace_id, sale_id=sale_id, customer_id=customer_id, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sale_id", "customer_id"])
        .returning(FlashPreregistration.id)
    )
    return session.execute(stmt).first() is not None


def is_preregistered(session: Session, *, sale_id: int, customer_id: int) -> bool:
    """Whether the member asked for a reminder."""
    found = session.scalar(
        select(FlashPreregistration.id).where(
            FlashPreregistration.sale_id == sale_id, FlashPreregistration.customer_id == customer_id
        )
    )
    return found is not None


def preregistration_count(session: Session, *, sale_id: int) -> int:
    """How many members asked for a reminder."""
    return int(
        session.scalar(select(func.count(FlashPreregistration.id)).where(FlashPreregistration.sale_id == sale_id)) or 0
    )


def send_due_reminders(session: Session, *, now: datetime | None = None) -> int:
    """Queue reminders of sales starting within REMIND_BEFORE; each sale once (conditional UPDATE)."""
    now = now or utcnow()
    due = session.scalars(
        select(FlashSale).where(
            FlashSale.status == "published",
            FlashSale.preregistration.is_(True),
            FlashSale.reminder_sent_at.is_(None),
            FlashSale.starts_at > now,
            FlashSale.starts_at <= now + REMIND_BEFORE,
        )
    )
    queued = 0
    for sale in list(due):
        claimed = rowcount(
            session.execute(
                update(FlashSale)
                .where(FlashSale.id == sale.id, FlashSale.reminder_sent_at.is_(None))
                .values(reminder_sent_at=now)
            )
        )
        if claimed == 1:
            queued += _queue(session, sale, now)
    return queued


def _queue(session: Session, sale: FlashSale, now: datetime) -> int:
    """One outbox message per pre-registered member (dedupe key per sale and customer), and mark them."""
    who = select(FlashPreregistration.customer_id).where(
        FlashPreregistration.sale_id == sale.id, FlashPreregistration.reminded_at.is_(None)
    )
    payload = {"sale_id": sale.id, "title": sale.title, "starts_at": sale.starts_at.isoformat()}
    try:
        outbox = importlib.import_module("shequn.core.outbox")
    except ImportError:  # no outbox in this build: the signal below still tells listeners
        outbox = None
    if outbox is not None:
        outbox.enqueue_select(
            session,
            workspace_id=sale.workspace_id,
            customer_ids=who,
            kind="flash.reminder",
            payload=payload,
            dedupe_prefix=f"flash.reminder:{sale.id}:",
        )
    marked = rowcount(
        session.execute(
            update(FlashPreregistration)
            .where(FlashPreregistration.sale_id == sale.id, FlashPreregistration.reminded_at.is_(None))
            .values(reminded_at=now)
        )
    )
    send_on_commit(session, REMINDER_SIGNAL, sale.workspace_id, sale_id=sale.id, count=marked)
    return int(marked)
