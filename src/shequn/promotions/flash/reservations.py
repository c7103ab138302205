"""Reservations after the claim: payment, expiry (stock goes back), cancellation, matching shop orders.

State changes are conditional UPDATEs on `state = 'reserved'`, and payment also on `expires_at > now`, so
paying and expiring can never both win: expiry only touches reservations already past their pay-by time.
Expiry closes the Redis record first (idempotent, returns the stock there), then the database row; a crash
between the two is finished by the next sweep.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.db import on_commit
from shequn.core.sqlutil import rowcount
from shequn.promotions.flash import redis_store
from shequn.promotions.flash.claims import redis_url
from shequn.promotions.flash.errors import ReservationClosed, ReservationExpired, ReservationNotFound
from shequn.promotions.flash.models import FlashCustomerCount, FlashReservation, FlashSale

SWEEP_BATCH = 500


def _return_stock(session: Session, row: FlashReservation) -> None:
    session.execute(update(FlashSale).where(FlashSale.id == row.sale_id).values(sold=FlashSale.sold - row.qty))
    session.execute(
        update(FlashCustomerCount)
        .where(FlashCustomerCount.sale_id == row.sale_id, FlashCustomerCount.customer_id == row.customer_id)
        .values(qty=FlashCustomerCount.qty - row.qty)
    )


def _close(session: Session, row: FlashReservation, state: str, now: datetime, *, due_only: bool) -> bool:
    stmt = update(FlashReservation).where(FlashReservation.id == row.id, FlashReservation.state == "reserved")
    if due_only:
        stmt = stmt.where(FlashReservation.expires_at <= now)
    if rowcount(session.execute(stmt.values(state=state, closed_at=now))) != 1:
        return False
    _return_stock(session, row)
    return True


def expire_due(session: Session, *, sale_id: int | None = None, now: datetime | None = None) -> int:
    """Expire reservations past their pay-by time and return their stock; returns how many (caller commits)."""
    now = now or utcnow()
    stmt = select(FlashReservation).where(FlashReservation.state == "reserved", FlashReservation.expires_at <= now)
    if sale_id is not None:
        stmt = stmt.where(FlashReservation.sale_id == sale_id)
    rows = list(session.scalars(stmt.order_by(FlashReservation.id).limit(SWEEP_BATCH)))
    r = redis_store.client(redis_url()) if redis_url() else None
    n = 0
    for row in rows:
        if r is not None:
            redis_store.close_reservation(r, sale_id=row.sale_id, ref=row.ref, state="expired")
        n += _close(session, row, "expired", now, due_only=True)
    session.flush()
    return n


def find_reservation(session: Session, *, workspace_id: int, ref: str) -> FlashReservation | None:
    """A reservation by its ref; on the Redis engine a claim not yet written is written first."""
    stmt = select(FlashReservation).where(FlashReservation.workspace_id == workspace_id, FlashReservation.ref == ref)
    row = session.scalar(stmt)
    if row is None and redis_url():
        from shequn.promotions.flash import consumer

        consumer.drain(max_batches=20)
        row = session.scalar(stmt.execution_options(populate_existing=True))
    return row


def get_reservation(
    session: Session, *, workspace_id: int, ref: str, customer_id: int | None = None
) -> FlashReservation:
    """A reservation of this workspace (and customer, for members), expired on read when it is due."""
    row = find_reservation(session, workspace_id=workspace_id, ref=ref)
    if row is None or (customer_id is not None and row.customer_id != customer_id):
        raise ReservationNotFound()
    if row.state == "reserved" and row.expires_at <= utcnow():
        expire_due(session, sale_id=row.sale_id)
        session.refresh(row)
    return row


def pay_reservation(
    session: Session, *, workspace_id: int, ref: str, order_ref: str = "", now: datetime | None = None
) -> FlashReservation:
    """Confirm payment; paying twice returns the paid reservation, paying an expired one is refused."""
    now = now or utcnow()
    row = find_reservation(session, workspace_id=workspace_id, ref=ref)
    if row is None:
        raise ReservationNotFound()
    if row.state == "paid":
        return row
    if row.state == "expired" or (row.state == "reserved" and row.expires_at <= now):
        raise ReservationExpired()
    if row.state != "reserved":
        raise ReservationClosed(state=row.state)
    moved = rowcount(
        session.execute(
            update(FlashReservation)
            .where(
                FlashReservation.id == row.id, FlashReservation.state == "reserved", FlashReservation.expires_at > now
            )
            .values(state="paid", paid_at=now, order_ref=order_ref[:100])
        )
    )
    if moved != 1:
        session.refresh(row)
        if row.state == "paid":
            return row
        raise ReservationExpired()
    session.execute(
        update(FlashSale).where(FlashSale.id == row.sale_id).values(paid_units=FlashSale.paid_units + row.qty)
    )
    session.refresh(row)
    _mirror_on_commit(session, row, "paid")
    return row


def cancel_reservation(
    session: Session, *, workspace_id: int, ref: str, customer_id: int | None = None
) -> FlashReservation:
    """Give a reserved reservation back (member or operator); its stock returns to the sale."""
    row = get_reservation(session, workspace_id=workspace_id, ref=ref, customer_id=customer_id)
    if row.state == "cancelled":
        return row
    if row.state != "reserved":
        raise ReservationClosed(state=row.state)
    if not _close(session, row, "cancelled", utcnow(), due_only=False):
        session.refresh(row)
        raise ReservationClosed(state=row.state)
    session.refresh(row)
    # Database first, Redis after commit: a cancel racing a payment must not return paid stock. If the Redis
    # step is lost, Redis under-sells (never over-sells) until the sale is reloaded.
    _mirror_on_commit(session, row, "cancelled")
    return row


def _mirror_on_commit(session: Session, row: FlashReservation, state: str) -> None:
    if not redis_url():
        return
    sale_id, ref = row.sale_id, row.ref

    def mirror() -> None:
        redis_store.close_reservation(redis_store.client(redis_url()), sale_id=sale_id, ref=ref, state=state)

    on_commit(session, mirror)


def list_reservations(
    session: Session,
    *,
    workspace_id: int,
    sale_id: int | None = None,
    customer_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[FlashReservation]:
    """Reservations of a sale or a customer, newest first."""
    stmt = select(FlashReservation).where(FlashReservation.workspace_id == workspace_id)
    if sale_id is not None:
        stmt = stmt.where(FlashReservation.sale_id == sale_id)
    if customer_id is not None:
        stmt = stmt.where(FlashReservation.customer_id == customer_id)
    return list(session.scalars(stmt.order_by(FlashReservation.id.desc()).limit(limit).offset(offset)))


def match_paid_orders(session: Session, *, workspace_id: int, order_ids: list[int]) -> int:
    """Pay reservations matched by imported paid orders (same customer, a line with the sale's SKU).

    Every import batch lands here with up to thousands of paid orders, and almost always no open
    reservation: the open ones are read first, so a batch costs one query unless a buyer is waiting.
    """
    from shequn.commerce import service as commerce_service

    if not order_ids:
        return 0
    waiting: dict[int, list[tuple[str, str]]] = {}  # customer → [(sale SKU, reservation ref)], oldest first
    for cid, sku, ref in session.execute(
        select(FlashReservation.customer_id, FlashSale.sku, FlashReservation.ref)
        .join(FlashSale, FlashSale.id == FlashReservation.sale_id)
        .where(FlashReservation.workspace_id == workspace_id, FlashReservation.state == "reserved")
        .order_by(FlashReservation.id)
    ):
        waiting.setdefault(cid, []).append((sku, ref))
    if not waiting:
        return 0
    orders = commerce_service.orders_of_customers(
        session, workspace_id=workspace_id, order_ids=order_ids, customer_ids=waiting
    )
    lines = commerce_service.list_line_items(session, workspace_id=workspace_id, order_ids=[o.id for o in orders])
    paid = 0
    for order in orders:
        skus = {li.sku for li in lines[order.id] if li.sku}
        assert order.customer_id is not None
        for sku, ref in list(waiting[order.customer_id]):
            if sku not in skus:
                continue
            waiting[order.customer_id].remove((sku, ref))  # one order pays a reservation once
            try:
                pay_reservation(
                    session, workspace_id=workspace_id, ref=ref, order_ref=f"{order.source}:{order.source_order_id}"
                )
                paid += 1
            except (ReservationExpired, ReservationClosed):
                continue
    return paid
