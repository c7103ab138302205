"""Keeping snapshots current from the change log, and the process-wide cache of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, SessionTransaction

from shequn.audience.activity import ACTIVITY, EVERYTHING, TAGS
from shequn.audience.engine.arrays import ALL_DAYS, NO_DAYS, merge_view
from shequn.audience.engine.reads import Facts, read_facts, read_on_pool, read_people, read_tags
from shequn.audience.engine.snapshot import Snapshot
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow

REBUILD_BACKLOG = 100_000  # more logged changes than this since the last look: a rebuild is cheaper
MERGE_IN_BACKGROUND = True  # on a thread, after the evaluation that crowded the snapshot has returned
LAG = 600.0  # seconds a change-log row may take to become visible after it was written (open transactions)
RESCAN_EVERY = 1.0  # seconds between re-reads of log ids below the newest applied that were missing
STALE_AFTER = 12 * 3600.0  # seconds without a look after which the log may have been pruned: rebuild
PARALLEL_RELOAD = 2_000  # reload at least this many customers over pooled connections at once
MAX_GAPS = 5_000  # unapplied id ranges looked up one by one (PostgreSQL); beyond, the recent log is re-read


def _lineage(bulk: Bulk, workspace_id: int) -> tuple[int, Any]:
    """(epoch, when the workspace was created), in one round trip: a moved epoch means a whole-workspace
    change; a new creation time means the database was emptied or restored under this process (ids,
    epoch and change log start again). Either way the snapshot rebuilds."""
    row = bulk.execute(
        "SELECT (SELECT epoch FROM audience_settings WHERE workspace_id = ?), "
        "(SELECT created_at FROM workspaces WHERE id = ?)",
        [workspace_id, workspace_id],
    )[0]
    return int(row[0] or 0), row[1]


_LogRow = tuple[int, int, int, int | None]  # id, customer id, kinds, earliest activity day (see activity)


def _log(bulk: Bulk, workspace_id: int, after: int, upto: int | None = None, limit: int = 0) -> list[_LogRow]:
    """(id, customer id, kinds, min_day) of the change-log rows with after < id (<= upto), in id order."""
    sql = "SELECT id, customer_id, kinds, min_day FROM customer_changes WHERE workspace_id = ? AND id > ?"
    params: list[Any] = [workspace_id, after]
    if upto is not None:
        sql += " AND id <= ?"
        params.append(upto)
    sql += " ORDER BY id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [(int(i), int(c), int(k), None if d is None else int(d)) for i, c, k, d in bulk.execute(sql, params)]


def _unapplied(bulk: Bulk, snap: Snapshot, workspace_id: int, top: int) -> list[_LogRow]:
    """Log rows between the low-water mark and top that the snapshot has not applied: on PostgreSQL only
    the id ranges between applied ids are read (the recent log of a busy workspace is 100,000s of rows)."""
    seen = np.fromiter(snap.seen, np.int64, len(snap.seen))  # no Python-level loop over 100,000s of ids
    seen = np.sort(seen[seen <= top])
    edges = np.concatenate([np.array([snap.low_water], np.int64), seen, np.array([top + 1], np.int64)])
    gaps = np.flatnonzero(np.diff(edges) > 1)
    if not bulk.pg or len(gaps) > MAX_GAPS:
        return [r for r in _log(bulk, workspace_id, snap.low_water, top) if r[0] not in snap.seen]
    if not len(gaps):
        return []
    found = bulk.execute(
        "SELECT c.id, c.customer_id, c.kinds, c.min_day FROM unnest(?::bigint[], ?::bigint[]) AS g(lo, hi) "
        "JOIN customer_changes c ON c.workspace_id = ? AND c.id > g.lo AND c.id < g.hi ORDER BY c.id",
        [edges[gaps].tolist(), edges[gaps + 1].tolist(), workspace_id],
    )
    return [(int(i), int(c), int(k), None if d is None else int(d)) for i, c, k, d in found]


def _kinds_of(rows: Sequence[_LogRow]) -> dict[int, int]:
    """Customer → what its log rows say changed (0, not said, counts as everything)."""
    out: dict[int, int] = {}
    for _, cid, kinds, _ in rows:
        out[cid] = out.get(cid, 0) | (kinds or EVERYTHING)
    return out


def _first_days(rows: Sequence[_LogRow]) -> dict[int, int]:
    """Customer → the first day from which the log rows say its activity rows may have changed (ALL_DAYS
    for any, NO_DAYS when no row says activity changed)."""
    out: dict[int, int] = {}
    for _, cid, kinds, min_day in rows:
        day = NO_DAYS
        if (kinds or EVERYTHING) & ACTIVITY:
            day = ALL_DAYS if min_day is None or not kinds else min_day
        out[cid] = min(out.get(cid, NO_DAYS), day)
    return out


def note(snap: Snapshot, rows: Sequence[tuple[Any, ...]]) -> None:
    """Record rows as applied, then move the low-water mark past ids first seen more than LAG ago: a
    smaller id still missing was written before them, so its transaction has been open longer than LAG
    and is taken as rolled back."""
    now = time.monotonic()
    for row in rows:
        snap.seen.setdefault(row[0], now)
        snap.top = max(snap.top, row[0])
    old = []
    for i, at in snap.seen.items():  # in the order first seen
        if at >= now - LAG:
            break
        old.append(i)
    if old:
        snap.low_water = max(snap.low_water, *old)
        snap.seen = {i: at for i, at in snap.seen.items() if i > snap.low_water}
    snap.synced_at = now


def reload_customers(
    snap: Snapshot,
    bulk: Bulk,
    workspace_id: int,
    ids: Collection[int],
    engine: Engine | None = None,
    first_days: dict[int, int] | None = None,
    tagged: Collection[int] | None = None,
) -> None:
    """Re-read what the snapshot holds of these customers: attributes; tags (of those among tagged, unless
    None); activity rows, all of them or, with first_days, those from the customer's first day on (NO_DAYS
    or absent: none)."""
    asked = sorted(ids)
    if not asked:
        return
    since = None if first_days is None else [first_days.get(c, NO_DAYS) for c in asked]
    tags = asked if tagged is None else sorted(tagged)
    if since is not None and all(d == NO_DAYS for d in since):
        tag_cust, tag_id, weight = read_tags(bulk, workspace_id, tags)
        none = np.zeros(0, np.int64)
        facts = Facts(tag_cust, tag_id, weight, none, [], [], none.astype(np.int32), none, none)
        snap.reload(read_people(bulk, workspace_id, asked), facts, asked, since, tags)
        return
    if engine is not None and len(asked) >= PARALLEL_RELOAD and not has_writes(bulk):
        # The session has written nothing, so other connections see just what it would.
        every = since if since is not None else [ALL_DAYS] * len(asked)
        people, facts = read_on_pool(engine, workspace_id, asked, snap.act_code, every, tags)
    else:
        people = read_people(bulk, workspace_id, asked)
        facts = read_facts(bulk, workspace_id, asked, None, since, tags)
    snap.reload(people, facts, asked, since, tags)


def _sync(snap: Snapshot, session: Session, bulk: Bulk, workspace_id: int, engine: Engine | None) -> set[int] | None:
    """Reload the customers logged since the snapshot last looked; None when it must be rebuilt instead.

    Ids come from a sequence but commit in any order, so rows between the low-water mark and the newest
    id applied are looked at again while some id there is unaccounted for (`seen` holds the applied).
    """
    if time.monotonic() - snap.synced_at > STALE_AFTER or _lineage(bulk, workspace_id) != snap.lineage:
        return None
    top = max(snap.top, snap.low_water)
    rows = _log(bulk, workspace_id, top, limit=REBUILD_BACKLOG + 1)
    if top - snap.low_water > len(snap.seen) and time.monotonic() - snap.rescanned_at >= RESCAN_EVERY:
        # Ids we have not seen: other workspaces' rows, or rows of transactions open when we looked. This
        # re-reads the workspace's log of the last LAG seconds, so not at every look of a busy job.
        rows += _unapplied(bulk, snap, workspace_id, top)
        snap.rescanned_at = time.monotonic()
    if len(rows) > REBUILD_BACKLOG:
        return None
    # Customers created without a log entry (an import of people with no orders) still belong.
    # NOT INDEXED: SQLite would rather scan the workspace's index entries than search the rowid range.
    table = "customers" if bulk.pg else "customers NOT INDEXED"
    found = bulk.execute(f"SELECT id FROM {table} WHERE id > ? AND workspace_id = ?", [snap.max_id, workspace_id])
    newcomers = {int(r[0]) for r in found}
    # The log says which customers changed activity, and from which day: only those rows are re-read
    # (they are the bulk of a reload). Newcomers, customers a rolled-back transaction touched, and
    # customers the snapshot does not know yet are read whole.
    first_days = _first_days(rows)
    kinds = _kinds_of(rows)
    whole = newcomers | snap.dirty
    if first_days:
        ids = np.fromiter(first_days, np.int64, len(first_days))
        whole |= set(ids[snap.rows_of(ids) < 0].tolist())
    for cid in whole:
        first_days[cid], kinds[cid] = ALL_DAYS, EVERYTHING
    changed = set(first_days)
    if changed:
        tagged = [c for c, k in kinds.items() if k & TAGS]  # tags are re-read only after a change of tags
        reload_customers(snap, bulk, workspace_id, changed, engine, first_days, tagged)
        snap.max_id = max(snap.max_id, *newcomers) if newcomers else snap.max_id
    snap.dirty = set()
    note(snap, rows)
    return changed


def _build(bulk: Bulk, workspace_id: int, engine: Engine | None) -> tuple[Snapshot, set[int]]:
    """A snapshot from scratch; the change log is read first, so later changes are found by _sync."""
    lineage = _lineage(bulk, workspace_id)
    rows = bulk.execute(
        "SELECT MAX(id) FROM customer_changes WHERE workspace_id = ? AND created_at < ?",
        [workspace_id, bulk.ts(utcnow() - timedelta(seconds=LAG))],
    )
    low_water = int(rows[0][0] or 0)
    recent = _log(bulk, workspace_id, low_water)
    snap = Snapshot(read_people(bulk, workspace_id, None), read_facts(bulk, workspace_id, None, engine))
    snap.lineage = lineage
    snap.low_water = low_water
    note(snap, recent)
    touched = {r[1] for r in recent}
    if engine is not None and touched:
        # Activity came over other connections, blind to this session's own uncommitted writes.
        reload_customers(snap, bulk, workspace_id, touched)
    return snap, touched


def has_writes(bulk: Bulk) -> bool:
    """Whether the session's transaction has written anything (which a rollback would undo)."""
    if bulk.pg:
        return bool(bulk.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")[0][0])
    return bool(bulk.raw.in_transaction)


# --- the process-wide cache ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotInfo:
    """What a cached snapshot holds and how it got there (for tests, benchmarks and diagnostics)."""

    builds: int
    patches: int
    customers: int
    activity_rows: int
    tag_rows: int
    epoch: int
    low_water: int
    nbytes: int  # of the arrays held


@dataclass
class _Entry:
    lock: threading.RLock = field(default_factory=threading.RLock)
    snapshot: Snapshot | None = None
    builds: int = 0
    patches: int = 0


_registry: dict[tuple[str, int], _Entry] = {}
_registry_lock = threading.Lock()
TOUCHED = "shequn.engine.touched"


def entry_of(session: Session, workspace_id: int) -> _Entry:
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _registry_lock:
        return _registry.setdefault((url, workspace_id), _Entry())


@contextmanager
def current(session: Session, workspace_id: int) -> Iterator[Snapshot]:
    """The workspace's snapshot, brought up to date, locked for the caller."""
    entry = entry_of(session, workspace_id)
    bulk = Bulk(session)
    with entry.lock:
        snap = entry.snapshot
        bind = session.get_bind()
        pool = bind if bulk.pg and isinstance(bind, Engine) else None
        touched = _sync(snap, session, bulk, workspace_id, pool) if snap is not None else None
        rebuilt = snap is None or touched is None
        if rebuilt:
            entry.snapshot = snap = None  # let the old arrays go before the new ones arrive
            snap, touched = _build(bulk, workspace_id, pool)
            entry.snapshot = snap
            entry.builds += 1
        elif touched:
            entry.patches += 1
        assert snap is not None and touched is not None
        if (rebuilt or touched) and has_writes(bulk):
            # This transaction's own writes are now in a shared snapshot: undo them if it rolls back.
            session.info.setdefault(TOUCHED, []).append((entry, snap, None if rebuilt else touched))
        yield snap
        merge = not snap.merging and (snap.tags.crowded() or snap.activity.crowded())
        snap.merging |= merge
    if merge:
        _merge_soon(entry, snap)


def _merge_soon(entry: _Entry, snap: Snapshot) -> None:
    """Merge the snapshot's appended rows once the caller has its answer (10M rows take about a second)."""

    def run() -> None:
        # The merge itself runs without the lock, so evaluations and reloads go on meanwhile (a job
        # waiting a second or two for it would miss its target); install applies what they changed.
        with entry.lock:
            todo = [(rows, *rows.view()) for rows in (snap.tags, snap.activity) if rows.crowded()]
        try:
            done = [(rows, gen, merge_view(view)) for rows, gen, view in todo]
        except BaseException:
            done = []
            raise
        finally:
            with entry.lock:
                for rows, gen, merged in done:
                    rows.install(gen, merged)
                for rows, *_ in todo:
                    rows.dropped = None  # installed, or given up
                snap.merging = False

    if MERGE_IN_BACKGROUND:
        threading.Thread(target=run, name="segment-snapshot-merge", daemon=True).start()
    else:
        run()


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(TOUCHED, None)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    for entry, snap, touched in session.info.pop(TOUCHED, []):
        with entry.lock:
            if entry.snapshot is snap:
                if touched is None:
                    entry.snapshot = None
                else:
                    snap.dirty |= touched


def catch_up(session: Session, *, workspace_id: int, log: Sequence[tuple[int, ...]] = ()) -> None:
    """Bring the workspace's snapshot up to date now (before the transaction writes, reloads read over
    pooled connections in parallel; afterwards they must go through the session).

    log: (id, customer id, …) change-log rows the caller is about to act on. Those the snapshot has not
    applied (a transaction that committed an older id late, after the last re-read) are reloaded now.
    """
    with current(session, workspace_id) as snap:
        missed = [r for r in log if r[0] not in snap.seen and r[0] <= max(snap.top, snap.low_water)]
        if missed:
            reload_customers(snap, Bulk(session), workspace_id, {r[1] for r in missed})
            note(snap, missed)
            if has_writes(Bulk(session)):
                entry = entry_of(session, workspace_id)
                session.info.setdefault(TOUCHED, []).append((entry, snap, {r[1] for r in missed}))


def snapshot_info(session: Session, *, workspace_id: int) -> SnapshotInfo | None:
    """The cached snapshot of the session's database and workspace, as last brought up to date."""
    entry = entry_of(session, workspace_id)
    with entry.lock:
        snap = entry.snapshot
        if snap is None:
            return None
        return SnapshotInfo(
            builds=entry.builds,
            patches=entry.patches,
            customers=int(snap.alive.sum()),
            activity_rows=len(snap.activity),
            tag_rows=len(snap.tags),
            epoch=snap.lineage[0],
            low_water=snap.low_water,
            nbytes=snap.nbytes(),
        )


def clear_cache() -> None:
    """Forget every snapshot (tests, and after restoring a database under a running process)."""
    with _registry_lock:
        _registry.clear()
