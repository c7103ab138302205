"""A segment's profile: size, spend, RFM and lifecycle mix, top categories, cities and tags.

Every figure is one grouped query joined on segment_members, so a profile of a 500k-member segment
costs a few index scans, not a walk over its members in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer, CustomerActivity, CustomerTag, SegmentMember, Tag
from shequn.audience.segment_members import list_sizes
from shequn.audience.segments import get_segment

TOP = 10


@dataclass
class SegmentProfile:
    """The numbers behind a segment's profile page; lists hold (key, count, amount fen)."""

    size: int = 0
    buyers: int = 0
    total_spent: int = 0
    avg_orders: float = 0.0
    rfm: list[tuple[str, int, int]] = field(default_factory=list)
    lifecycle: list[tuple[str, int, int]] = field(default_factory=list)
    categories: list[tuple[str, int, int]] = field(default_factory=list)
    cities: list[tuple[str, int, int]] = field(default_factory=list)
    tags: list[tuple[str, int, int]] = field(default_factory=list)
    sizes: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def avg_spent(self) -> int:
        """Average spend per member (fen)."""
        return self.total_spent // self.size if self.size else 0


def _members_join(q: Any, segment_id: int) -> Any:
    return q.join(SegmentMember, SegmentMember.customer_id == Customer.id).where(SegmentMember.segment_id == segment_id)


def _grouped(session: Session, segment_id: int, column: Any, limit: int | None = None) -> list[tuple[str, int, int]]:
    q = _members_join(
        select(column, func.count(), func.coalesce(func.sum(Customer.total_spent), 0)).select_from(Customer),
        segment_id,
    ).group_by(column)
    q = q.order_by(func.count().desc(), column)
    if limit:
        q = q.limit(limit)
    return [(str(k) if k is not None else "", int(n), int(s)) for k, n, s in session.execute(q)]


def segment_profile(session: Session, *, workspace_id: int, segment_id: int) -> SegmentProfile:
    """The profile of a segment's current members."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    totals: Any = session.execute(
        _members_join(
            select(
                func.count(),
                func.count().filter(Customer.orders_count > 0),
                func.coalesce(func.sum(Customer.total_spent), 0),
                func.coalesce(func.sum(Customer.orders_count), 0),
            ).select_from(Customer),
            seg.id,
        )
    ).one()
    size, buyers, spent, orders = totals
    categories = session.execute(
        select(
            CustomerActivity.ref,
            func.count(func.distinct(CustomerActivity.customer_id)),
            func.sum(CustomerActivity.amount),
        )
        .join(SegmentMember, SegmentMember.customer_id == CustomerActivity.customer_id)
        .where(SegmentMember.segment_id == seg.id, CustomerActivity.kind == "category")
        .group_by(CustomerActivity.ref)
        .order_by(func.sum(CustomerActivity.amount).desc())
        .limit(TOP)
    ).all()
    tags = session.execute(
        select(Tag.name, func.count())
        .select_from(CustomerTag)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .join(SegmentMember, SegmentMember.customer_id == CustomerTag.customer_id)
        .where(SegmentMember.segment_id == seg.id, Tag.deleted_at.is_(None))
        .group_by(Tag.name)
        .order_by(func.count().desc(), Tag.name)
        .limit(TOP)
    ).all()
    return SegmentProfile(
        size=int(size),
        buyers=int(buyers),
        total_spent=int(spent),
        avg_orders=round(int(orders) / int(size), 2) if size else 0.0,
        rfm=[r for r in _grouped(session, seg.id, Customer.rfm_group) if r[0]],
        lifecycle=[r for r in _grouped(session, seg.id, Customer.lifecycle) if r[0]],
        categories=[(str(k), int(n), int(a or 0)) for k, n, a in categories],
        cities=[r for r in _grouped(session, seg.id, Customer.city, TOP + 1) if r[0]][:TOP],
        tags=[(str(k), int(n), 0) for k, n in tags],
        sizes=list_sizes(session, workspace_id=workspace_id, segment_id=seg.id),
    )
