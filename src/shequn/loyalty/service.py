"""Points ledger: award, spend, balance and history, each movement exactly once and never below zero.

Every movement is an entry keyed by (workspace, customer, reason, ref): a retry of the same movement finds
its entry and changes nothing. The balance row moves only by one conditional UPDATE
(`balance = balance + delta WHERE balance + delta >= 0`): on PostgreSQL the row lock queues concurrent
spends and each re-checks; on SQLite the write lock serialises them. The UPDATE and the entry's INSERT share a
savepoint, so a lost race on the unique key undoes the balance change too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.loyalty.errors import BadPointsAmount, InsufficientPoints
from shequn.loyalty.models import PointsBalance, PointsEntry

MAX_POINTS = 10**9  # one movement; keeps sums far inside BIGINT


@dataclass(frozen=True)
class Movement:
    """The outcome of award/spend: the balance now and whether this call made the movement (False: a retry)."""

    balance: int
    created: bool
    entry_id: int


def _ensure_balance_row(session: Session, workspace_id: int, customer_id: int) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(PointsBalance).values(
        workspace_id=workspace_id,
        customer_id=customer_id,
        balance=0,
        earned_total=0,
        spent_total=0,
        updated_at=utcnow(),
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["workspace_id", "customer_id"]))


def _find_entry(session: Session, workspace_id: int, customer_id: int, reason: str, ref: str) -> PointsEntry | None:
    return session.scalar(
        select(PointsEntry).where(
            PointsEntry.workspace_id == workspace_id,
            PointsEntry.customer_id == customer_id,
            PointsEntry.reason == reason,
            PointsEntry.ref == ref,
        )
    )


def _check_amount(points: int, field: str = "points") -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0 or points > MAX_POINTS:
        raise BadPointsAmount(details=[{"field": field, "message": f"1 to {MAX_POINTS}"}])


def move_points(
    session: Session, *, workspace_id: int, customer_id: int, delta: int, reason: str, ref: str, note: str = ""
) -> Movement:
    """Apply one ledger movement exactly once; raises InsufficientPoints if it would go below zero."""
    reason, ref = reason[:32], ref[:96]
    existing = _find_entry(session, workspace_id, customer_id, reason, ref)
    if existing is not None:
        return Movement(get_balance(session, workspace_id=workspace_id, customer_id=customer_id), False, existing.id)
    _ensure_balance_row(session, workspace_id, customer_id)
    now = utcnow()
    try:
        with session.begin_nested():
            result = session.execute(
                update(PointsBalance)
                .where(
                    PointsBalance.workspace_id == workspace_id,
                    PointsBalance.customer_id == customer_id,
                    PointsBalance.balance + delta >= 0,
                )
                .values(
                    balance=PointsBalance.balance + delta,
                    earned_total=PointsBalance.earned_total + max(delta, 0),
                    spent_total=PointsBalance.spent_total + max(-delta, 0),
                    updated_at=now,
                )
                .returning(PointsBalance.balance)
                .execution_options(synchronize_session=False)
            )
            row = cast(CursorResult[Any], result).first()
            if row is None:
                raise InsufficientPoints(needed=-delta)
            entry = PointsEntry(
                workspace_id=workspace_id,
                customer_id=customer_id,
                delta=delta,
                reason=reason,
                ref=ref,
                note=note[:200],
                balance_after=int(row[0]),
                created_at=now,
            )
            session.add(entry)
            session.flush()
    except IntegrityError:
        # A concurrent request made the same movement first (its savepoint won); ours is undone.
        found = _find_entry(session, workspace_id, customer_id, reason, ref)
        if found is None:
            raise
        return Movement(get_balance(session, workspace_id=workspace_id, customer_id=customer_id), False, found.id)
    return Movement(int(row[0]), True, entry.id)


def award_points(
    session: Session, *, workspace_id: int, customer_id: int, points: int, reason: str, ref: str, note: str = ""
) -> int:
    """Add points once per (customer, reason, ref); returns the balance."""
    _check_amount(points)
    return move_points(
        session, workspace_id=workspace_id, customer_id=customer_id, delta=points, reason=reason, ref=ref, note=note
    ).balance


def spend_points(
    session: Session, *, workspace_id: int, customer_id: int, points: int, reason: str, ref: str, note: str = ""
) -> int:
    """Take points once per (customer, reason, ref); raises InsufficientPoints; returns the balance."""
    _check_amount(points)
    return move_points(
        session, workspace_id=workspace_id, customer_id=customer_id, delta=-points, reason=reason, ref=ref, note=note
    ).balance


def get_balance(session: Session, *, workspace_id: int, customer_id: int) -> int:
    """The customer's current points (0 when none were ever awarded)."""
    value = session.scalar(
        select(PointsBalance.balance).where(
            PointsBalance.workspace_id == workspace_id, PointsBalance.customer_id == customer_id
        )
    )
    return int(value or 0)


def get_totals(session: Session, *, workspace_id: int, customer_id: int) -> tuple[int, int, int]:
    """(balance, earned in total, spent in total)."""
    row = session.execute(
        select(PointsBalance.balance, PointsBalance.earned_total, PointsBalance.spent_total).where(
            PointsBalance.workspace_id == workspace_id, PointsBalance.customer_id == customer_id
        )
    ).first()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def list_entries(
    session: Session, *, workspace_id: int, customer_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[PointsEntry], int]:
    """The customer's ledger, newest first, and the number of entries."""
    where = (PointsEntry.workspace_id == workspace_id, PointsEntry.customer_id == customer_id)
    total = session.scalar(select(func.count()).select_from(PointsEntry).where(*where)) or 0
    rows = session.scalars(
        select(PointsEntry).where(*where).order_by(PointsEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total)


def adjust_points(
    session: Session, *, workspace_id: int, customer_id: int, delta: int, ref: str, note: str = ""
) -> Movement:
    """An operator's manual correction (positive or negative), once per ref; the customer must be this workspace's."""
    if not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_POINTS:
        raise BadPointsAmount(details=[{"field": "delta", "message": f"non-zero, at most {MAX_POINTS} either way"}])
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    return move_points(
        session, workspace_id=workspace_id, customer_id=customer.id, delta=delta, reason="adjust", ref=ref, note=note
    )
