"""The per-customer activity table (orders, categories, products, tracked events per day) and the
customer change log that keeps segments current.

Higher domains feed activity through the service (commerce on orders, analytics on events). Every
write here appends the customers to customer_changes in the same transaction; after commit a signal
asks for an incremental segment refresh, which re-evaluates only those customers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, SessionTransaction

from shequn.audience.models import AudienceSettings
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.signals import send_on_commit

CUSTOMERS_CHANGED = "audience.customers_changed"
PURCHASE_KINDS = ("order", "category", "product")
CHANGE_LOG_INLINE = 50_000  # more changed customers than this in one transaction → a full refresh instead
# What changed about the customers mark_changed logs (bits, stored in customer_changes.kinds): the segment
# snapshot re-reads activity rows only after activity changed, and the incremental job re-derives
# lifecycle and interests only after their inputs changed. 0 (not said) reads as EVERYTHING.
PURCHASES, ATTRIBUTES, TAGS, EVENTS, ENGAGEMENT = 1, 2, 4, 8, 16
ACTIVITY = PURCHASES | EVENTS | ENGAGEMENT
EVERYTHING = ACTIVITY | ATTRIBUTES | TAGS
# Which kinds a change of a customer_activity kind is (other kinds: any activity).
ACTIVITY_KINDS = {
    "order": PURCHASES,
    "category": PURCHASES,
    "product": PURCHASES,
    "event": EVENTS,
    "engage": ENGAGEMENT,
}
# The inputs of lifecycle (order days, purchase facts) and interests (category and engagement rows,
# interest tags' weights and opt-outs).
LIFECYCLE_INPUTS = PURCHASES | ATTRIBUTES
INTEREST_INPUTS = PURCHASES | ENGAGEMENT | TAGS


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """Activity of one customer on one day: count and amount (fen) for a kind and ref."""

    customer_id: int
    kind: str
    ref: str
    day: int
    count: int = 1
    amount: int = 0


def _aggregate(rows: Iterable[ActivityRow]) -> dict[tuple[int, str, str, int], list[int]]:
    acc: dict[tuple[int, str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        cell = acc[(r.customer_id, r.kind, r.ref[:64], r.day)]
        cell[0] += r.count
        cell[1] += r.amount
    return acc


def add_activity(session: Session, *, workspace_id: int, rows: Iterable[ActivityRow]) -> None:
    """Add counts and amounts to the customers' days (upsert), and log the customers as changed."""
    acc = _aggregate(rows)
    if not acc:
        return
    Bulk(session).executemany(
        "INSERT INTO customer_activity (workspace_id, customer_id, kind, ref, day, count, amount) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, kind, ref, day) DO UPDATE SET "
        "count = customer_activity.count + excluded.count, amount = customer_activity.amount + excluded.amount",
        [(workspace_id, cid, kind, ref, day, n, amount) for (cid, kind, ref, day), (n, amount) in acc.items()],
    )
    kinds = 0
    min_days: dict[int, int] = {}
    for cid, kind, _, day in acc:
        kinds |= ACTIVITY_KINDS.get(kind, ACTIVITY)
        min_days[cid] = min(min_days.get(cid, day), day)
    mark_changed(session, workspace_id=workspace_id, customer_ids=min_days, kinds=kinds, min_days=min_days)


def replace_activity(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Collection[int],
    kinds: Sequence[str],
    rows: Iterable[ActivityRow],
) -> None:
    """Replace these customers' activity of these kinds by rows (after orders changed or moved)."""
    if not customer_ids:
        return
    bulk = Bulk(session)
    for kind in kinds:  # kinds come from code constants
        bulk.select_in(
            "DELETE FROM customer_activity WHERE workspace_id = ? AND kind = ? AND customer_id {in}",
            sorted(customer_ids),
            [workspace_id, kind],
        )
    add_activity(session, workspace_id=workspace_id, rows=rows)
    mark_changed(session, workspace_id=workspace_id, customer_ids=customer_ids)


def _delete_activity(bulk: Bulk, workspace_id: int, customer_ids: Sequence[int], kinds: Sequence[str]) -> None:
    """Delete these customers' rows of these kinds."""
    for kind in kinds:  # kinds come from code constants
        if bulk.pg:
            # Joined to the unnested ids, not `= ANY(ids)`: as a filter, ANY searches the array row by row,
            # and with statistics that lag a bulk load (rows inserted earlier in this transaction) the
            # planner scans the kind's whole index range — 11 s for 20k ids over 150k rows (measured).
            bulk.execute(
                "DELETE FROM customer_activity a USING unnest(?::bigint[]) AS t(id) "
                "WHERE a.workspace_id = ? AND a.kind = ? AND a.customer_id = t.id",
                [list(customer_ids), workspace_id, kind],
            )
        else:
            bulk.select_in(
                "DELETE FROM customer_activity WHERE workspace_id = ? AND kind = ? AND customer_id {in}",
                customer_ids,
                [workspace_id, kind],
            )


def epoch_day_sql(bulk: Bulk, column: str) -> str:
    """SQL for epoch_day() of a UTC timestamp column (the day column of customer_activity)."""
    if bulk.pg:
        return f"(({column} AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC; julianday of a bare date is always N.5.
    return f"CAST(julianday(substr({column}, 1, 10)) - 2440587.5 AS INTEGER)"


def replace_activity_from(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Sequence[int],
    kinds: Sequence[str],
    selects: Sequence[tuple[str, Sequence[Any]]],
    fresh: bool = False,
) -> None:
    """Replace these customers' activity of these kinds by the rows of a higher domain's SELECTs
    (fresh=True: the caller knows they have none of these kinds yet, so nothing is deleted).

    Each SELECT yields (workspace_id, customer_id, kind, ref, day, count, amount) and marks where the
    customer ids go with `{in}` (its params bind the `?`s before it). The rows never pass through
    Python: a bulk derivation of a million orders' activity is one INSERT … SELECT per kind.
    """
    if not customer_ids:
        return
    bulk = Bulk(session)
    ids = sorted(customer_ids)
    if not fresh:
        _delete_activity(bulk, workspace_id, ids, kinds)
    for sql, params in selects:
        bulk.select_in(
            f"INSERT INTO customer_activity (workspace_id, customer_id, kind, ref, day, count, amount) {sql}",
            ids,
            params,
        )
    mark_changed(session, workspace_id=workspace_id, customer_ids=ids)


def add_activity_from(
    session: Session,
    *,
    workspace_id: int,
    selects: Sequence[tuple[str, Sequence[Any]]],
    ids: Sequence[Any] = (),
    min_days: Mapping[int, int],
) -> None:
    """Add the rows of a higher domain's SELECTs to the customers' days (upsert), and log those customers
    (min_days: each one's earliest day written) as changed purchases. The SELECTs are as for
    replace_activity_from, with `{in}` bound to ids (the caller's, e.g. new orders)."""
    bulk = Bulk(session)
    for sql, params in selects:
        bulk.select_in(
            f"INSERT INTO customer_activity (workspace_id, customer_id, kind, ref, day, count, amount) {sql} "
            "ON CONFLICT (customer_id, kind, ref, day) DO UPDATE SET count = customer_activity.count + excluded.count, "
            "amount = customer_activity.amount + excluded.amount",
            ids,
            params,
        )
    mark_changed(session, workspace_id=workspace_id, customer_ids=min_days, kinds=PURCHASES, min_days=min_days)


def move_activity(session: Session, *, workspace_id: int, pairs: Sequence[tuple[int, int]]) -> None:
    """Fold (loser, winner) customers' activity and tags into the winner."""
    if not pairs:
        return
    bulk = Bulk(session)
    losers = sorted({loser for loser, _ in pairs})
    winner_of = dict(pairs)
    moved = [
        ActivityRow(winner_of[cid], kind, ref, day, n, amount)
        for cid, kind, ref, day, n, amount in bulk.select_in(
            "SELECT customer_id, kind, ref, day, count, amount FROM customer_activity "
            "WHERE workspace_id = ? AND customer_id {in}",
            losers,
            [workspace_id],
        )
    ]
    tags = bulk.select_in(
        "SELECT customer_id, tag_id, weight, source FROM customer_tags WHERE workspace_id = ? AND customer_id {in}",
        losers,
        [workspace_id],
    )
    # Segment memberships stay: the incremental refresh sees the loser is no longer live and records it leaving.
    for table in ("customer_activity", "customer_tags"):
        bulk.select_in(
            f"DELETE FROM {table} WHERE workspace_id = ? AND customer_id {{in}}",
            losers,
            [workspace_id],
        )
    add_activity(session, workspace_id=workspace_id, rows=moved)
    bulk.executemany(
        "INSERT INTO customer_tags (customer_id, tag_id, workspace_id, weight, source, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, tag_id) DO UPDATE SET "
        "weight = CASE WHEN excluded.weight > customer_tags.weight THEN excluded.weight ELSE customer_tags.weight END",
        [(winner_of[cid], tag, workspace_id, w, src, bulk.ts(utcnow())) for cid, tag, w, src in tags],
    )
    mark_changed(session, workspace_id=workspace_id, customer_ids={c for pair in pairs for c in pair})


def mark_changed(
    session: Session,
    *,
    workspace_id: int,
    customer_ids: Collection[int],
    kinds: int = EVERYTHING,
    min_days: Mapping[int, int] | None = None,
) -> None:
    """Log customers whose features changed (kinds: what changed, see ACTIVITY; min_days: the earliest
    activity day changed per customer, when only rows from that day on were written); segments
    re-evaluate them after commit."""
    if not customer_ids:
        return
    if len(customer_ids) > CHANGE_LOG_INLINE:
        # A change this wide is cheaper to apply as one full refresh than customer by customer.
        bump_epoch(session, workspace_id=workspace_id, features=True)
        return
    bulk = Bulk(session)
    now = bulk.ts(utcnow())
    days = min_days or {}
    if kinds & ACTIVITY:
        bulk.insert(
            "customer_changes",
            ("workspace_id", "customer_id", "kinds", "min_day", "created_at"),
            [(workspace_id, c, kinds, days.get(c), now) for c in customer_ids],
        )
    else:
        logged = _log_returning_ids(bulk, workspace_id, sorted(customer_ids), kinds, now)
        session.info.setdefault(_QUIET, {}).update(dict.fromkeys(logged, kinds))
    send_on_commit(session, CUSTOMERS_CHANGED, workspace_id, full=False)


_QUIET = "shequn.audience.quiet_changes"


def _log_returning_ids(bulk: Bulk, workspace_id: int, customer_ids: Sequence[int], kinds: int, now: Any) -> list[int]:
    if bulk.pg:
        rows = bulk.execute(
            "INSERT INTO customer_changes (workspace_id, customer_id, kinds, created_at) "
            "SELECT ?, unnest(?::bigint[]), ?, ? RETURNING id",
            [workspace_id, list(customer_ids), kinds, now],
        )
        return [int(r[0]) for r in rows]
    out: list[int] = []
    for start in range(0, len(customer_ids), 8_000):  # 4 parameters a row, SQLite binds at most 32,766
        chunk = customer_ids[start : start + 8_000]
        marks = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
        params = [v for c in chunk for v in (workspace_id, c, kinds, now)]
        sql = f"INSERT INTO customer_changes (workspace_id, customer_id, kinds, created_at) VALUES {marks} RETURNING id"
        out += [int(r[0]) for r in bulk.execute(sql, params)]
    return out


def quiet_changes(session: Session) -> dict[int, int]:
    """Change-log ids this transaction wrote for changes without activity, and their kinds (the segment
    snapshot then reloads those customers' attributes and tags only)."""
    return dict(session.info.get(_QUIET, {}))


@event.listens_for(Session, "after_transaction_end")
def _forget_quiet_changes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_QUIET, None)


def bump_epoch(session: Session, *, workspace_id: int, features: bool = False) -> None:
    """Record a whole-workspace change (RFM, lifecycle, a huge import): snapshots rebuild, segments refresh fully.

    features=True when raw facts changed for too many customers to log: the full refresh then also
    recomputes the derived features (lifecycle, interests) before the segments.
    """
    settings = get_settings(session, workspace_id=workspace_id)
    settings.epoch += 1
    session.flush()
    send_on_commit(session, CUSTOMERS_CHANGED, workspace_id, full=True, features=features)


def get_settings(session: Session, *, workspace_id: int) -> AudienceSettings:
    """The workspace's audience settings row, created with defaults on first use."""
    row = session.scalar(
        select(AudienceSettings).where(AudienceSettings.workspace_id == workspace_id).with_for_update()
    )
    if row is None:
        row = AudienceSettings(
            workspace_id=workspace_id,
            rfm_window_days=365,
            interest_half_life_days=90,
            lifecycle_new_days=30,
            lifecycle_active_days=90,
            lifecycle_lapsed_days=180,
            epoch=0,
            changes_cursor=0,
        )
        session.add(row)
        session.flush()
    return row


def lock_settings(session: Session, *, workspace_id: int) -> AudienceSettings:
    """The settings row, held until this transaction ends: one segment refresh or change applier at a time.

    PostgreSQL locks the row (FOR UPDATE in get_settings). SQLite has no row locks and takes its write
    lock only at a transaction's first write, so a no-op update takes it now, before the caller reads
    the change log: two appliers that both read it first then raced to insert the same interest tags.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(AudienceSettings)
            .where(AudienceSettings.workspace_id == workspace_id)
            .values(epoch=AudienceSettings.epoch)
            .execution_options(synchronize_session=False)
        )
    return get_settings(session, workspace_id=workspace_id)
