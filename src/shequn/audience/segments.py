"""Segments: saved audiences over the rule language, kept current incrementally, with membership history.

A dynamic segment is refreshed two ways. Incrementally: every change to a customer's features is
logged in customer_changes; after commit a job re-derives lifecycle, interests and rule tags for only
the logged customers, re-evaluates them against every dynamic segment and records who entered or left
(with the numpy engine, the default, it all reads the warm snapshot, caught up before the job writes;
with the SQL engine, rule_sql restricted to those ids). Fully: a job re-evaluates the whole workspace —
nightly, after whole-workspace changes (RFM, lifecycle), and when a rule is edited. Static segments are
snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import engine, rule_sql
from shequn.audience.activity import (
    EVERYTHING,
    INTEREST_INPUTS,
    LIFECYCLE_INPUTS,
    get_settings,
    lock_settings,
    quiet_changes,
)
from shequn.audience.errors import SegmentNotFound
from shequn.audience.interests import refresh_interests
from shequn.audience.lifecycle import refresh_lifecycle
from shequn.audience.models import (
    Customer,
    CustomerChange,
    Segment,
    SegmentSize,
    Tag,
)
from shequn.audience.rules import RuleRefs, check_rule
from shequn.audience.tags import refresh_rule_tags, rule_tags_in_order
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.errors import Conflict, ValidationFailed

SEGMENT_REFRESH_JOB = "audience.refresh_segments"
SEGMENT_CHANGES_JOB = "audience.apply_customer_changes"
INCREMENTAL_CHUNK = 2_000  # ids per restricted query: each leaf repeats the list, SQLite binds ≤ 32,766
CHANGES_PER_ROUND = 50_000
KINDS = ("dynamic", "static")


@dataclass
class RefreshResult:
    """What one refresh changed."""

    segment_id: int
    size: int
    entered: int
    left: int
    ms: int

    def as_dict(self) -> dict[str, int]:
        """JSON-friendly form for job results."""
        return {"segment_id": self.segment_id, "size": self.size, "entered": self.entered, "left": self.left}


# --- validation ---------------------------------------------------------------------------------


def check_segment_rule(
    session: Session, *, workspace_id: int, rule: Any, segment_id: int | None = None, path: str = "rule"
) -> RuleRefs:
    """Validate shape and references: tags exist and are live, segments exist, no segment refers to itself."""
    refs = check_rule(rule, path)
    errors: list[dict[str, str]] = []
    if refs.tag_ids:
        live = {
            tid: deleted
            for tid, deleted in session.execute(
                select(Tag.id, Tag.deleted_at).where(Tag.workspace_id == workspace_id, Tag.id.in_(refs.tag_ids))
            )
        }
        for tid, where in refs.tag_ids.items():
            if tid not in live:
                errors.append({"field": where, "code": "unknown_tag", "message": f"no tag {tid} in this workspace"})
            elif live[tid] is not None:
                errors.append({"field": where, "code": "deleted_tag", "message": f"tag {tid} was deleted"})
    for sid, where in refs.segment_ids.items():
        if segment_id is not None and sid == segment_id:
            errors.append({"field": where, "code": "self_reference", "message": "a segment cannot contain itself"})
        elif _get_live(session, workspace_id, sid) is None:
            errors.append({"field": where, "code": "unknown_segment", "message": f"no segment {sid}"})
        elif segment_id is not None and segment_id in _reachable(session, workspace_id, sid):
            errors.append(
                {"field": where, "code": "segment_cycle", "message": f"segment {sid} refers back to this one"}
            )
    if errors:
        raise ValidationFailed(details=errors)
    return refs


def _get_live(session: Session, workspace_id: int, segment_id: int) -> Segment | None:
    return session.scalar(
        select(Segment).where(
            Segment.workspace_id == workspace_id, Segment.id == segment_id, Segment.deleted_at.is_(None)
        )
    )


def _refs_of(segment: Segment) -> set[int]:
    try:
        return set(check_rule(segment.rule).segment_ids) if segment.kind == "dynamic" else set()
    except ValidationFailed:
        return set()


def _tag_refs(tag: Tag) -> set[int]:
    try:
        return set(check_rule(tag.rule).segment_ids) if tag.rule else set()
    except ValidationFailed:
        return set()


def _reachable(session: Session, workspace_id: int, start: int) -> set[int]:
    """Segments reachable from start through segment references (start included)."""
    seen, todo = set(), [start]
    while todo:
        sid = todo.pop()
        if sid in seen:
            continue
        seen.add(sid)
        seg = _get_live(session, workspace_id, sid)
        if seg is not None:
            todo.extend(_refs_of(seg))
    return seen


# --- CRUD ---------------------------------------------------------------------------------------


def _check_name(session: Session, workspace_id: int, name: str, exclude: int | None = None) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed(details=[{"field": "name", "message": "1–100 characters"}])
    clash = session.scalar(
        select(Segment.id).where(
            Segment.workspace_id == workspace_id,
            Segment.name == name,
            Segment.deleted_at.is_(None),
            Segment.id != (exclude or 0),
        )
    )
    if clash is not None:
        raise Conflict("segment_name_taken", details=[{"field": "name", "message": "a segment has this name"}])
    return name


def create_segment(
    session: Session,
    *,
    workspace_id: int,
    name: str,
    rule: Any,
    kind: str = "dynamic",
    description: str = "",
    created_by: int | None = None,
    as_of: datetime | None = None,
) -> Segment:
    """Create a segment and fill it now (a static one keeps this snapshot)."""
    if kind not in KINDS:
        raise ValidationFailed(details=[{"field": "kind", "message": "dynamic or static"}])
    name = _check_name(session, workspace_id, name)
    check_segment_rule(session, workspace_id=workspace_id, rule=rule)
    seg = Segment(
        workspace_id=workspace_id,
        name=name,
        description=description[:500],
        kind=kind,
        rule=rule,
        members_count=0,
        created_by=created_by,
    )
    session.add(seg)
    session.flush()
    refresh_segment(session, workspace_id=workspace_id, segment_id=seg.id, as_of=as_of, cause="snapshot")
    return seg


def create_static_segment(
    session: Session,
    *,
    workspace_id: int,
    name: str,
    customer_ids: Sequence[int],
    description: str = "",
    created_by: int | None = None,
) -> Segment:
    """A static segment of exactly these customers (discovery, uploads); it has no rule to re-run."""
    name = _check_name(session, workspace_id, name)
    seg = Segment(
        workspace_id=workspace_id,
        name=name,
        description=description[:500],
        kind="static",
        rule={},
        members_count=0,
        created_by=created_by,
    )
    session.add(seg)
    session.flush()
    live = {
        r[0]
        for r in Bulk(session).select_in(
            "SELECT id FROM customers WHERE workspace_id = ? AND merged_into_id IS NULL AND id {in}",
            sorted(set(customer_ids)),
            [workspace_id],
        )
    }
    now = utcnow()
    _apply_diff(session, seg, sorted(live), [], "snapshot", now)
    seg.members_count = len(live)
    seg.refreshed_at = now
    _record_size(session, seg, now)
    session.flush()
    return seg


def update_segment(
    session: Session,
    *,
    workspace_id: int,
    segment_id: int,
    name: str | None = None,
    description: str | None = None,
    rule: Any = None,
    as_of: datetime | None = None,
) -> Segment:
    """Rename, describe or change the rule (which refreshes a dynamic segment fully)."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    if name is not None:
        seg.name = _check_name(session, workspace_id, name, exclude=seg.id)
    if description is not None:
        seg.description = description[:500]
    if rule is not None:
        check_segment_rule(session, workspace_id=workspace_id, rule=rule, segment_id=seg.id)
        seg.rule = rule
    seg.updated_at = utcnow()
    session.flush()
    if rule is not None and seg.kind == "dynamic":
        refresh_segment(session, workspace_id=workspace_id, segment_id=seg.id, as_of=as_of)
    return seg


def delete_segment(session: Session, *, workspace_id: int, segment_id: int) -> None:
    """Soft-delete a segment nobody else refers to; its members are released."""
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    users = [s.name for s in list_segments(session, workspace_id=workspace_id) if segment_id in _refs_of(s)]
    users += [t.name for t in rule_tags_in_order(session, workspace_id=workspace_id) if segment_id in _tag_refs(t)]
    if users:
        raise Conflict(
            "segment_in_use",
            details=[{"field": "segment_id", "message": f"used by {', '.join(users)}", "segments": users}],
        )
    seg.deleted_at = utcnow()
    Bulk(session).execute("DELETE FROM segment_members WHERE segment_id = ?", [seg.id])
    seg.members_count = 0
    session.flush()


def get_segment(session: Session, *, workspace_id: int, segment_id: int) -> Segment:
    """A live segment of the workspace, or SegmentNotFound."""
    seg = _get_live(session, workspace_id, segment_id)
    if seg is None:
        raise SegmentNotFound()
    return seg


def list_segments(session: Session, *, workspace_id: int) -> list[Segment]:
    """The workspace's live segments, newest first."""
    return list(
        session.scalars(
            select(Segment)
            .where(Segment.workspace_id == workspace_id, Segment.deleted_at.is_(None))
            .order_by(Segment.id.desc())
        )
    )


# --- evaluation ---------------------------------------------------------------------------------


def evaluate_sql(
    session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime, ids: Sequence[int] | None = None
) -> list[int]:
    """Matching customer ids by the compiled SQL (optionally only among ids, in chunks)."""
    dialect = session.get_bind().dialect.name
    if ids is None:
        q = rule_sql.members_query(rule, workspace_id=workspace_id, as_of=as_of, dialect=dialect)
        return list(session.scalars(q))
    out: list[int] = []
    for i in range(0, len(ids), INCREMENTAL_CHUNK):
        chunk = ids[i : i + INCREMENTAL_CHUNK]
        q = rule_sql.members_query(rule, workspace_id=workspace_id, as_of=as_of, dialect=dialect, ids=chunk)
        out.extend(session.scalars(q))
    return out


def _engine_enabled() -> bool:
    from shequn.core.settings import get_settings as app_settings

    return app_settings().segment_engine == "numpy"


def evaluate_full(session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime) -> list[int]:
    """Every matching customer id: the numpy engine when enabled, else SQL."""
    if _engine_enabled():
        return engine.evaluate(session, workspace_id=workspace_id, rule=rule, as_of=as_of)
    return evaluate_sql(session, workspace_id=workspace_id, rule=rule, as_of=as_of)


def evaluate_ids(
    session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime, ids: Sequence[int]
) -> list[int]:
    """The matching customers among ids: the numpy engine's snapshot when enabled, else SQL restricted to ids."""
    if _engine_enabled():
        return engine.evaluate_ids(session, workspace_id=workspace_id, rule=rule, as_of=as_of, ids=ids)
    return evaluate_sql(session, workspace_id=workspace_id, rule=rule, as_of=as_of, ids=ids)


def preview(
    session: Session, *, workspace_id: int, rule: Any, as_of: datetime | None = None, sample: int = 10
) -> tuple[int, list[Customer]]:
    """Live count and a sample of members for a rule being edited (validated first)."""
    check_segment_rule(session, workspace_id=workspace_id, rule=rule)
    as_of = as_of or utcnow()
    dialect = session.get_bind().dialect.name
    cond = rule_sql.condition(rule, workspace_id=workspace_id, as_of=as_of, dialect=dialect)
    base = [Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None), cond]
    count = session.scalar(select(func.count()).select_from(Customer).where(*base)) or 0
    people = list(session.scalars(select(Customer).where(*base).order_by(Customer.total_spent.desc()).limit(sample)))
    return int(count), people


# --- refresh ------------------------------------------------------------------------------------


def _members(bulk: Bulk, segment_id: int, ids: Sequence[int] | None = None) -> set[int]:
    if ids is None:
        return {
            r[0] for r in bulk.execute("SELECT customer_id FROM segment_members WHERE segment_id = ?", [segment_id])
        }
    return {
        r[0]
        for r in bulk.select_in(
            "SELECT customer_id FROM segment_members WHERE segment_id = ? AND customer_id {in}", ids, [segment_id]
        )
    }


def _apply_diff(
    session: Session, seg: Segment, entered: Sequence[int], left: Sequence[int], cause: str, now: datetime
) -> None:
    """Write who entered and left, and the history rows that say so."""
    bulk = Bulk(session)
    at = bulk.ts(now)
    bulk.insert(
        "segment_members",
        ("segment_id", "customer_id", "workspace_id", "entered_at"),
        [(seg.id, cid, seg.workspace_id, at) for cid in entered],
    )
    bulk.select_in("DELETE FROM segment_members WHERE segment_id = ? AND customer_id {in}", list(left), [seg.id])
    history = [(seg.workspace_id, seg.id, cid, True, cause, at) for cid in entered]
    history += [(seg.workspace_id, seg.id, cid, False, cause, at) for cid in left]
    bulk.insert("segment_changes", ("workspace_id", "segment_id", "customer_id", "entered", "cause", "at"), history)


def _record_size(session: Session, seg: Segment, now: datetime) -> None:
    session.add(SegmentSize(workspace_id=seg.workspace_id, segment_id=seg.id, at=now, size=seg.members_count))


def refresh_segment(
    session: Session, *, workspace_id: int, segment_id: int, as_of: datetime | None = None, cause: str = "full"
) -> RefreshResult:
    """Re-evaluate a segment over the whole workspace and write the difference."""
    started = time.perf_counter()
    seg = get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    now = as_of or utcnow()
    session.flush()
    new = set(evaluate_full(session, workspace_id=workspace_id, rule=seg.rule, as_of=now))
    old = _members(Bulk(session), seg.id)
    entered, left = sorted(new - old), sorted(old - new)
    _apply_diff(session, seg, entered, left, cause, now)
    seg.members_count = len(new)
    seg.refreshed_at = now
    seg.refresh_ms = int((time.perf_counter() - started) * 1000)
    _record_size(session, seg, now)
    session.flush()
    return RefreshResult(seg.id, len(new), len(entered), len(left), seg.refresh_ms)


def dynamic_in_order(session: Session, *, workspace_id: int) -> list[Segment]:
    """Dynamic segments ordered so a segment comes after the segments its rule refers to."""
    segs = {s.id: s for s in list_segments(session, workspace_id=workspace_id) if s.kind == "dynamic"}
    out: list[Segment] = []
    done: set[int] = set()

    def visit(sid: int, stack: frozenset[int]) -> None:
        if sid in done or sid not in segs or sid in stack:
            return
        for dep in _refs_of(segs[sid]):
            visit(dep, stack | {sid})
        done.add(sid)
        out.append(segs[sid])

    for sid in sorted(segs):
        visit(sid, frozenset())
    return out


def refresh_all(session: Session, *, workspace_id: int, as_of: datetime | None = None) -> list[RefreshResult]:
    """Full refresh of every dynamic segment; the change log up to now is then applied."""
    settings = lock_settings(session, workspace_id=workspace_id)  # one refresh at a time
    last = session.scalar(select(func.max(CustomerChange.id)).where(CustomerChange.workspace_id == workspace_id))
    refresh_rule_tags(session, workspace_id=workspace_id, as_of=as_of)
    results = [
        refresh_segment(session, workspace_id=workspace_id, segment_id=s.id, as_of=as_of)
        for s in dynamic_in_order(session, workspace_id=workspace_id)
    ]
    settings.changes_cursor = max(settings.changes_cursor, last or 0)
    session.flush()
    return results


def apply_changes(session: Session, *, workspace_id: int, as_of: datetime | None = None) -> dict[str, int]:
    """Re-evaluate only the customers logged as changed since the cursor, against every dynamic segment."""
    started = time.perf_counter()
    stats = {"customers": 0, "entered": 0, "left": 0, "rounds": 0, "catch_up_ms": 0, "derive_ms": 0, "segments_ms": 0}
    if _engine_enabled():
        # Before the first write: the snapshot reloads the logged customers over parallel connections.
        engine.catch_up(session, workspace_id=workspace_id)
        stats["catch_up_ms"] = _ms_since(started)
    settings = lock_settings(session, workspace_id=workspace_id)  # one applier at a time
    now = as_of or utcnow()
    # A round derives lifecycle, interests, then rule tags, then evaluates segments, each after what it
    # reads, so the changes it logs itself are settled for the customers it went through, unless a rule
    # tag reads a segment (evaluated after it): then those customers go round again.
    closed = not any(_tag_refs(t) for t in rule_tags_in_order(session, workspace_id=workspace_id))
    settled: set[int] = set()
    while True:
        rows = session.execute(
            select(CustomerChange.id, CustomerChange.customer_id, CustomerChange.kinds)
            .where(CustomerChange.workspace_id == workspace_id, CustomerChange.id > settings.changes_cursor)
            .order_by(CustomerChange.id)
            .limit(CHANGES_PER_ROUND)
        ).all()
        if not rows:
            break
        if _engine_enabled():
            engine.catch_up(session, workspace_id=workspace_id, log=[(int(i), int(c)) for i, c, _ in rows])
        own = quiet_changes(session) if closed else {}
        kinds: dict[int, int] = {}
        for i, cid, k in rows:
            if not (i in own and cid in settled):
                kinds[cid] = kinds.get(cid, 0) | (k or EVERYTHING)  # 0: not said, so anything
        if kinds:
            stats["customers"] += len(kinds)
            stats["rounds"] += 1
            _reevaluate(session, workspace_id, kinds, now, stats)
            settled.update(kinds)
        settings.changes_cursor = rows[-1][0]
        session.flush()
    return stats


def _reevaluate(
    session: Session, workspace_id: int, kinds: dict[int, int], now: datetime, stats: dict[str, int]
) -> None:
    # Derived features first, rule tags last (their rules may test the others). Each logs its own changes,
    # which the next round re-checks and finds settled. Lifecycle and interests are re-derived only for
    # customers whose logged change touched their inputs (an event without a category touches neither).
    started = time.perf_counter()
    ids = sorted(kinds)
    for refresh, inputs in ((refresh_lifecycle, LIFECYCLE_INPUTS), (refresh_interests, INTEREST_INPUTS)):
        some = [c for c in ids if kinds[c] & inputs]
        if some:
            refresh(session, workspace_id=workspace_id, ids=some, as_of=now)
    refresh_rule_tags(session, workspace_id=workspace_id, ids=ids, as_of=now)
    stats["derive_ms"] += _ms_since(started)
    started = time.perf_counter()
    bulk = Bulk(session)
    for seg in dynamic_in_order(session, workspace_id=workspace_id):
        new = set(evaluate_ids(session, workspace_id=workspace_id, rule=seg.rule, as_of=now, ids=ids))
        old = _members(bulk, seg.id, ids)
        entered, left = sorted(new - old), sorted(old - new)
        if not entered and not left:
            continue
        _apply_diff(session, seg, entered, left, "incremental", now)
        seg.members_count += len(entered) - len(left)
        _record_size(session, seg, now)
        stats["entered"] += len(entered)
        stats["left"] += len(left)
    stats["segments_ms"] += _ms_since(started)


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def prune_changes(session: Session, *, workspace_id: int) -> int:
    """Drop change-log rows every consumer has applied."""
    cursor = get_settings(session, workspace_id=workspace_id).changes_cursor
    rows = Bulk(session).execute(
        "DELETE FROM customer_changes WHERE workspace_id = ? AND id <= ? RETURNING id", [workspace_id, cursor]
    )
    return len(rows)
