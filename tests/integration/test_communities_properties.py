"""Property test: any sequence of membership operations keeps the books straight (SQLite and PostgreSQL).

Invariants after every step: members_count equals the seated (active + muted) rows and never exceeds the
capacity; each member's latest history row ends in its current status; one row per customer.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.models import CommunityMember, CommunityMemberChange
from shequn.core.errors import ShequnError
from tests.conftest import Tenant
from tests.integration.test_communities_core import make_customers

PEOPLE = 4
OPS = ("join_h5", "join_invite", "join_approved", "leave", "remove", "approve", "reject", "mute", "unmute", "restore")
_names = itertools.count()

steps = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, PEOPLE - 1)), min_size=1, max_size=25)


def _apply(db: Session, ws: int, cid: int, op: str, customer_id: int) -> None:
    kw: dict[str, Any] = {"workspace_id": ws, "community_id": cid}
    if op.startswith("join"):
        source = {"join_h5": "h5", "join_invite": "invite", "join_approved": "invite"}[op]
        community_service.join_community(
            db, **kw, customer_id=customer_id, source=source, approved=op == "join_approved"
        )
        return
    if op in ("leave", "remove"):
        community_service.leave_community(
            db, **kw, customer_id=customer_id, cause="left" if op == "leave" else "removed"
        )
        return
    member = community_service.get_membership(db, **kw, customer_id=customer_id)
    if member is None:
        return
    action = {"approve": "approve", "reject": "reject", "mute": "mute", "unmute": "unmute", "restore": "restore"}[op]
    community_service.member_action(db, **kw, member_id=member.id, action=action, minutes=5)


def _check(db: Session, ws: int, cid: int, capacity: int | None) -> None:
    db.expire_all()
    community = community_service.get_community(db, workspace_id=ws, community_id=cid)
    seated = db.scalar(
        select(func.count()).where(
            CommunityMember.community_id == cid, CommunityMember.status.in_(community_service.SEATED)
        )
    )
    assert community.members_count == seated
    assert capacity is None or seated <= capacity
    for member in db.scalars(select(CommunityMember).where(CommunityMember.community_id == cid)):
        last = db.scalar(
            select(CommunityMemberChange.to_status)
            .where(CommunityMemberChange.member_id == member.id)
            .order_by(CommunityMemberChange.id.desc())
            .limit(1)
        )
        # A pending row may exist without history only for an instant inside join; after a step it has one.
        assert last == member.status, (member.status, last)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=steps, visibility=st.sampled_from(["public", "semi_public", "private"]), capacity=st.sampled_from([None, 2]))
def test_membership_books_balance(
    db: Session, tenant: Tenant, ops: list[tuple[str, int]], visibility: str, capacity: int | None
) -> None:
    ws = tenant.workspace_id
    n = next(_names)
    community = community_service.create_community(
        db, workspace_id=ws, name=f"性质测试{n}", visibility=visibility, capacity=capacity
    )
    people = make_customers(db, ws, PEOPLE, prefix=f"prop{n}")
    db.commit()
    for op, who in ops:
        try:
            _apply(db, ws, community.id, op, people[who])
            db.commit()
        except ShequnError:
            db.rollback()  # refused steps (full, removed, invite required, bad transition) change nothing
        _check(db, ws, community.id, capacity)
