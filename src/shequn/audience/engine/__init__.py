"""Segment rules evaluated on a numpy columnar snapshot of a workspace: full refreshes in milliseconds.

A snapshot holds the live customers' rule attributes (rules.FIELDS; strings dictionary-encoded, NULL
as -1 or a mask), their tags and their customer_activity rows. It is cached per (database, workspace)
in this process and kept current from the customer change log: every evaluation first reloads only
the customers logged since it last looked, and rebuilds from scratch when the workspace's epoch moved
(RFM, lifecycle, huge imports), when the backlog is large, or when it has not looked for a long time.
Segment references read segment_members from the database at evaluation time. Besides full evaluations,
the incremental job uses it for the changed customers: evaluate_ids, and the inputs of their lifecycle
and interests (order_days, activity_of, tags_of).

The semantics are exactly rule_py's (see rules.py); property tests hold engine, rule_py and rule_sql
equal on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from shequn.audience.engine.arrays import NULL_US
from shequn.audience.engine.cache import SnapshotInfo, catch_up, clear_cache, current, snapshot_info
from shequn.audience.engine.evaluator import Evaluator
from shequn.audience.engine.snapshot import WIDE, Snapshot, flags
from shequn.core.bulk import Bulk

__all__ = [
    "WIDE",
    "SnapshotInfo",
    "activity_of",
    "catch_up",
    "clear_cache",
    "evaluate",
    "evaluate_ids",
    "order_days",
    "snapshot_info",
    "tags_of",
]


def evaluate(session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime) -> list[int]:
    """Ids of the live customers a (validated) rule matches, in id order, from the cached snapshot."""
    with current(session, workspace_id) as snap:
        mask = Evaluator(snap, Bulk(session), as_of, None).node(rule) & snap.alive
        return list(np.sort(snap.ids[mask]).tolist())


def evaluate_ids(
    session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime, ids: Collection[int]
) -> list[int]:
    """The ids among ids that are live customers matching the rule (incremental refresh), in id order."""
    with current(session, workspace_id) as snap:
        asked = np.unique(np.fromiter(ids, np.int64, len(ids)))
        rows = snap.rows_of(asked)
        known = rows >= 0
        rows = rows[known]
        mask = Evaluator(snap, Bulk(session), as_of, rows).node(rule) & snap.alive[rows]
        return list(asked[known][mask].tolist())


def _live_rows(snap: Snapshot, ids: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, snapshot rows) of the live customers among ids, in id order."""
    asked = np.unique(np.fromiter(ids, np.int64, len(ids)))
    rows = snap.rows_of(asked)
    known = rows >= 0
    asked, rows = asked[known], rows[known]
    live = snap.alive[rows]
    return asked[live], rows[live]


def order_days(
    session: Session, *, workspace_id: int, ids: Collection[int]
) -> list[tuple[int, str | None, int | None, int | None, int | None]]:
    """(id, stored lifecycle, first, last, latest before last) order days of the live customers among ids,
    from the snapshot: the days of their order activity with a count, plus the days of their first and last
    order (lifecycle.refresh_lifecycle's inputs); the days are None for customers without orders."""
    with current(session, workspace_id) as snap:
        asked, rows = _live_rows(snap, ids)
        buyer = rows[snap.numbers["orders_count"][rows] > 0]
        flag = flags(snap, buyer)
        code = snap.act_code.get(("order", ""))
        cust, day, count = (
            (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
            if code is None
            else snap.activity.select(code, ["day", "count"])
        )
        keep = flag[cust] & (count > 0)
        parts_c, parts_d = [cust[keep].astype(np.int64)], [day[keep].astype(np.int64)]
        for name in ("first_order_at", "last_order_at"):
            us = snap.dates[name][buyer]
            found = us != NULL_US
            parts_c.append(buyer[found].astype(np.int64))
            parts_d.append(us[found] // 86_400_000_000)
        c, d = np.concatenate(parts_c), np.concatenate(parts_d)
        order = np.lexsort((d, c))
        c, d = c[order], d[order]
        fresh = np.ones(len(c), bool)
        fresh[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
        c, d = c[fresh], d[fresh]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if len(c) else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], len(c)] - 1 if len(c) else np.zeros(0, np.int64)
        days: dict[int, tuple[int, int, int | None]] = {
            int(r): (int(d[a]), int(d[b]), int(d[b - 1]) if b > a else None)
            for r, a, b in zip(c[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)
        }
        names = {code: name for name, code in snap.vocab["lifecycle"].items()}
        stages = snap.strings["lifecycle"][rows].tolist()
        out: list[tuple[int, str | None, int | None, int | None, int | None]] = []
        for cid, row, stage in zip(asked.tolist(), rows.tolist(), stages, strict=True):
            first, last, before = days.get(row, (None, None, None))
            out.append((cid, names.get(stage), first, last, before))
        return out


def activity_of(
    session: Session, *, workspace_id: int, ids: Collection[int], kinds: Collection[str], since: int
) -> list[tuple[int, str, str, int, int]]:
    """(customer id, kind, ref, day, count) of the live customers among ids, for activity of these kinds
    on or after day since, from the snapshot."""
    with current(session, workspace_id) as snap:
        _, rows = _live_rows(snap, ids)
        flag = flags(snap, rows)
        out: list[tuple[int, str, str, int, int]] = []
        for (kind, ref), code in snap.act_code.items():
            if kind not in kinds:
                continue
            cust, day, count = snap.activity.select(code, ["day", "count"], since - 1, 2**31 - 1)
            keep = flag[cust]
            who, d, n = snap.ids[cust[keep]].tolist(), day[keep].tolist(), count[keep].tolist()
            out += [(c, kind, ref, x, k) for c, x, k in zip(who, d, n, strict=True)]
        return out


def tags_of(
    session: Session, *, workspace_id: int, ids: Collection[int], tag_ids: Collection[int]
) -> list[tuple[int, int, float]]:
    """(customer id, tag id, weight) of these tags on the live customers among ids, from the snapshot."""
    with current(session, workspace_id) as snap:
        _, rows = _live_rows(snap, ids)
        code, cust, weight = snap.tags.of_customers(flags(snap, rows), ["weight"])
        tag_of = np.full(len(snap.tag_code) + 1, -1, np.int64)
        for tag_id in tag_ids:
            if tag_id in snap.tag_code:
                tag_of[snap.tag_code[tag_id]] = tag_id
        tag = tag_of[code]
        keep = tag >= 0
        who, tag, weight = snap.ids[cust[keep]].tolist(), tag[keep].tolist(), weight[keep].tolist()
        return [(int(c), int(t), float(w)) for c, t, w in zip(who, tag, weight, strict=True)]
