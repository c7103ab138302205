"""Property test: any sequence of claims, cancels, payments and expiries keeps the books of a flash sale exact
(both engines) — outcomes as a plain model predicts, sold == paid + reserved <= stock, nobody above the limit,
and stock that expires or is cancelled comes back."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.flash import consumer, service
from shequn.promotions.flash.errors import ReservationClosed, ReservationExpired
from shequn.promotions.flash.models import FlashSale
from tests.conftest import Tenant
from tests.integration import test_flash
from tests.integration.test_flash import customers, make_sale

engine = test_flash.engine  # the claim-engine fixture (SQL, or Redis when a test Redis is set)
STOCK, LIMIT, PEOPLE = 5, 2, 4

Op = tuple[str, int, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.integers(0, PEOPLE - 1), st.integers(1, 2)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("pay"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("expire"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_any_sequence_keeps_the_books(db: Session, tenant: Tenant, engine: str, steps: list[Op]) -> None:
    ws = tenant.workspace_id
    people = customers(db, tenant, PEOPLE)
    sid = make_sale(db, ws, stock=STOCK, limit=LIMIT, ttl=1)
    held = dict.fromkeys(people, 0)
    open_refs: list[tuple[str, int, int]] = []  # (ref, customer, qty) still reserved in the model
    left = STOCK
    clock = utcnow()
    for op, i, q in steps:
        if op == "claim":
            cid = people[i]
            want = "limit_reached" if held[cid] + q > LIMIT else ("sold_out" if left < q else "ok")
            result = service.claim(db, workspace_id=ws, sale_id=sid, customer_id=cid, qty=q, now=clock)
            db.commit()
            assert result.outcome == want, (op, i, q, held, left)
            if want == "ok" and result.reservation is not None:
                held[cid] += q
                left -= q
                open_refs.append((result.reservation.ref, cid, q))
        elif op in ("cancel", "pay") and open_refs:
            ref, cid, qty = open_refs.pop(i % len(open_refs))
            _settle(engine)
            if op == "cancel":
                service.cancel_reservation(db, workspace_id=ws, ref=ref)
                held[cid] -= qty
                left += qty
            else:
                service.pay_reservation(db, workspace_id=ws, ref=ref, now=clock)
            db.commit()
        elif op == "expire":
            _settle(engine)
            clock += timedelta(minutes=2)
            service.expire_due(db, sale_id=sid, now=clock)
            db.commit()
            for _ref, cid, qty in open_refs:
                held[cid] -= qty
                left += qty
            open_refs.clear()
            _expired_cannot_be_paid(db, ws, sid)
    _settle(engine)
    db.expire_all()
    sale = db.get(FlashSale, sid)
    assert sale is not None
    check = service.oversell_check(db, sale)
    assert check.ok and sale.sold == STOCK - left and check.reserved == sum(q for _, _, q in open_refs)
    assert service.stock_left(sale) == left
    db.rollback()


def _settle(engine: str) -> None:
    if engine == "redis":
        consumer.drain()


def _expired_cannot_be_paid(db: Session, ws: int, sid: int) -> None:
    for row in service.list_reservations(db, workspace_id=ws, sale_id=sid, limit=5):
        if row.state == "expired":
            try:
                service.pay_reservation(db, workspace_id=ws, ref=row.ref)
            except (ReservationExpired, ReservationClosed):
                db.rollback()
                continue
            raise AssertionError("an expired reservation was paid")
