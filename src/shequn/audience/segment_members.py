"""Reading segment membership: member pages, history, sizes, a customer's segments and exports.

Writes to membership happen only in audience.segments (refresh); this module only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer, CustomerIdentity, Segment, SegmentChange, SegmentMember, SegmentSize
from shequn.audience.segments import get_segment


def membership_table() -> Table:
    """The segment membership table (segment_id, customer_id, workspace_id) for set-based reads such as
    another domain's INSERT … SELECT over a segment's members; read-only outside this module."""
    return SegmentMember.__table__  # type: ignore[return-value]


def list_members(
    session: Session, *, workspace_id: int, segment_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[Customer], int]:
    """A page of a segment's members (biggest spenders first) and the total."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    q = (
        select(Customer)
        .join(SegmentMember, SegmentMember.customer_id == Customer.id)
        .where(SegmentMember.segment_id == seg.id, Customer.workspace_id == workspace_id)
    )
    people = list(session.scalars(q.order_by(Customer.total_spent.desc(), Customer.id).limit(limit).offset(offset)))
    return people, seg.members_count


def list_history(
    session: Session, *, workspace_id: int, segment_id: int, limit: int = 100, customer_id: int | None = None
) -> list[SegmentChange]:
    """Who entered or left the segment, newest first."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    q = select(SegmentChange).where(SegmentChange.segment_id == seg.id, SegmentChange.workspace_id == workspace_id)
    if customer_id is not None:
        q = q.where(SegmentChange.customer_id == customer_id)
    return list(session.scalars(q.order_by(SegmentChange.id.desc()).limit(limit)))


def list_sizes(session: Session, *, workspace_id: int, segment_id: int, limit: int = 200) -> list[tuple[datetime, int]]:
    """The segment's size after each refresh, oldest first (the last `limit` points)."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    rows = session.execute(
        select(SegmentSize.at, SegmentSize.size)
        .where(SegmentSize.segment_id == seg.id, SegmentSize.workspace_id == workspace_id)
        .order_by(SegmentSize.id.desc())
        .limit(limit)
    ).all()
    return [(at, size) for at, size in reversed(rows)]


def customer_segments(session: Session, *, workspace_id: int, customer_id: int) -> list[Segment]:
    """Segments a customer is currently in."""
    return list(
        session.scalars(
            select(Segment)
            .join(SegmentMember, SegmentMember.segment_id == Segment.id)
            .where(
                SegmentMember.workspace_id == workspace_id,
                SegmentMember.customer_id == customer_id,
                Segment.deleted_at.is_(None),
            )
            .order_by(Segment.name)
        )
    )


def iter_member_rows(session: Session, *, workspace_id: int, segment_id: int, batch: int = 5_000) -> Iterator[Customer]:
    """Every member, in id order, a batch at a time (exports)."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    after = 0
    while True:
        page = list(
            session.scalars(
                select(Customer)
                .join(SegmentMember, SegmentMember.customer_id == Customer.id)
                .where(SegmentMember.segment_id == seg.id, Customer.workspace_id == workspace_id, Customer.id > after)
                .order_by(Customer.id)
                .limit(batch)
            )
        )
        if not page:
            return
        yield from page
        after = page[-1].id
        session.expunge_all()


def iter_member_identities(
    session: Session, *, workspace_id: int, segment_id: int, source: str, batch: int = 5_000
) -> Iterator[tuple[int, str, str, str]]:
    """Members' platform identities on one source, never phone hashes: (customer id, source, kind, value)."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    after = 0
    while True:
        rows = session.execute(
            select(
                CustomerIdentity.id,
                CustomerIdentity.customer_id,
                CustomerIdentity.source,
                CustomerIdentity.kind,
                CustomerIdentity.value,
            )
            .join(SegmentMember, SegmentMember.customer_id == CustomerIdentity.customer_id)
            .where(
                SegmentMember.segment_id == seg.id,
                CustomerIdentity.workspace_id == workspace_id,
                CustomerIdentity.source == source,
                CustomerIdentity.kind.not_in(("phone_hash", "email")),
                CustomerIdentity.id > after,
            )
            .order_by(CustomerIdentity.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        for _, cid, src, kind, value in rows:
            yield int(cid), str(src), str(kind), str(value)
        after = rows[-1][0]
