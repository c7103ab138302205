"""Property test (hypothesis): any sequence of registrations, cancellations and capacity changes leaves the
gathering exactly where a simple reference model says — never more confirmed than seats, counters equal to the
rows, no free seat while someone waits, and the waitlist served first come, first served."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from shequn.community.gatherings import service
from shequn.community.gatherings.schemas import GatheringIn, GatheringPatch
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from tests.conftest import Tenant
from tests.integration.test_gatherings import people

PEOPLE = 6
Op = tuple[str, int]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reg"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("cancel"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("cap"), st.integers(1, 5)),
    ),
    min_size=1,
    max_size=25,
)


class Model:
    """The reference: a list of confirmed people, a FIFO waitlist and a capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.confirmed: list[int] = []
        self.waiting: list[int] = []

    def _promote(self) -> None:
        while self.waiting and len(self.confirmed) < self.capacity:
            self.confirmed.append(self.waiting.pop(0))

    def apply(self, op: Op) -> None:
        kind, arg = op
        if kind == "reg" and arg not in self.confirmed and arg not in self.waiting:
            (self.confirmed if len(self.confirmed) < self.capacity else self.waiting).append(arg)
        elif kind == "cancel" and arg in self.confirmed:
            self.confirmed.remove(arg)
            self._promote()
        elif kind == "cancel" and arg in self.waiting:
            self.waiting.remove(arg)
        elif kind == "cap" and arg >= len(self.confirmed):
            self.capacity = arg
            self._promote()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(capacity=st.integers(1, 4), ops=OPS)
def test_registrations_follow_the_reference_model(db: Session, tenant: Tenant, capacity: int, ops: list[Op]) -> None:
    ws = tenant.workspace_id
    customers = people(db, tenant, PEOPLE, prefix="p")
    start = utcnow() + timedelta(days=2)
    g = service.create_gathering(
        db,
        workspace_id=ws,
        data=GatheringIn(
            title="性质测试",
            city="杭州",
            address="x",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            capacity=capacity,
        ),
    )
    service.publish_gathering(db, workspace_id=ws, gathering_id=g.id)
    db.commit()
    model = Model(capacity)
    for kind, arg in ops:
        model.apply((kind, arg))
        try:
            if kind == "reg":
                service.register(db, workspace_id=ws, gathering_id=g.id, customer_id=customers[arg])
            elif kind == "cancel":
                reg = service.find_registration(db, gathering_id=g.id, customer_id=customers[arg])
                if reg is not None:
                    service.cancel_registration(db, workspace_id=ws, registration_id=reg.id, by="member")
            else:
                service.update_gathering(db, workspace_id=ws, gathering_id=g.id, data=GatheringPatch(capacity=arg))
            db.commit()
        except ShequnError as exc:
            db.rollback()
            assert kind == "cap" and exc.code == "gathering_capacity_below_confirmed", exc.code

    db.expire_all()
    rows, _ = service.list_registrations(db, workspace_id=ws, gathering_id=g.id, limit=100)
    confirmed = {customers.index(r.customer_id) for r in rows if r.status == "confirmed"}
    waitlist = [customers.index(r.customer_id) for r in rows if r.status == "waitlisted"]  # in queue order
    assert confirmed == set(model.confirmed)
    assert waitlist == model.waiting
    gathering = service.get_gathering(db, workspace_id=ws, gathering_id=g.id)
    db.refresh(gathering)
    assert gathering.capacity == model.capacity
    assert gathering.seats_taken == len(confirmed) <= model.capacity
    assert gathering.waitlist_count == len(waitlist)
    assert not waitlist or len(confirmed) == model.capacity  # nobody waits while a seat is free
    positions = [service.waitlist_position(db, r) for r in rows if r.status == "waitlisted"]
    assert positions == list(range(1, len(waitlist) + 1))
