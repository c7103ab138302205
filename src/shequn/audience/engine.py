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

import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import BigInteger, Engine, event
from sqlalchemy.orm import Session, SessionTransaction

from shequn.audience.activity import ACTIVITY, EVERYTHING, TAGS
from shequn.audience.models import Customer
from shequn.audience.rule_py import epoch_day
from shequn.audience.rules import FIELDS, activity_column, activity_key
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow

REBUILD_BACKLOG = 100_000  # more logged changes than this since the last look: a rebuild is cheaper
# Merge appended rows into the sorted base once dead + appended rows pass this share of it: a merge of
# 10M rows takes about a second, while a million unsorted rows add only a few ms to each leaf.
MERGE_SHARE = 0.1
MERGE_IN_BACKGROUND = True  # on a thread, after the evaluation that crowded the snapshot has returned
LAG = 600.0  # seconds a change-log row may take to become visible after it was written (open transactions)
RESCAN_EVERY = 1.0  # seconds between re-reads of log ids below the newest applied that were missing
STALE_AFTER = 12 * 3600.0  # seconds without a look after which the log may have been pruned: rebuild
PG_READERS = 2  # connections reading customer_activity in parallel during a PostgreSQL build
PG_CHUNK = 1_000_000  # activity ids per array query (bounds the server's memory per query)
PARALLEL_RELOAD = 2_000  # reload at least this many customers over pooled connections at once
MAX_GAPS = 5_000  # unapplied id ranges looked up one by one (PostgreSQL); beyond, the recent log is re-read
NULL_US = np.iinfo(np.int64).min  # a NULL timestamp
EXACT_FLOAT = 2**53  # float64 sums of integers are exact below this
DENSE_FACTOR = 8  # an id → row table may span this many ids per customer (int32 each)
# A reload re-reads a customer's activity rows from a day on: ALL_DAYS for every row, NO_DAYS for none.
ALL_DAYS = -(2**31)
NO_DAYS = 2**31 - 1

STRINGS = tuple(n for n, f in FIELDS.items() if f.type == "string")
NUMBERS = tuple(n for n, f in FIELDS.items() if f.type == "number")
DATES = tuple(n for n, f in FIELDS.items() if f.type == "date")
LISTS = tuple(n for n, f in FIELDS.items() if f.type == "list")
WIDE = frozenset(n for n in NUMBERS if isinstance(Customer.__table__.c[n].type, BigInteger))  # int64 columns

_CMP: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "eq": np.equal,
    "ne": np.not_equal,
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}


# --- small array helpers --------------------------------------------------------------------------


def _us(at: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of an aware timestamp, exactly."""
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _fit(values: np.ndarray) -> np.ndarray:
    """Integers as int32 when every value fits (memory), else int64."""
    if values.dtype == np.int32:
        return values
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    if len(values) == 0 or (int(values.min()) >= lo and int(values.max()) <= hi):
        return values.astype(np.int32)
    return values.astype(np.int64)


def _sort_key(code: np.ndarray, day: np.ndarray | None) -> np.ndarray:
    """One int64 per row ordering rows by (code, day)."""
    key = code.astype(np.int64) << 32
    return key if day is None else key | (day.astype(np.int64) + 2**31)


def _sort_order(code: np.ndarray, day: np.ndarray | None) -> np.ndarray:
    """A permutation sorting rows by (code, day)."""
    if len(code) and code.max() < 2**16 and (day is None or int(day.max()) - int(day.min()) < 2**16):
        # Two stable radix sorts (numpy sorts 16-bit keys in linear time) beat one int64 sort.
        order = np.arange(len(code)) if day is None else np.argsort((day - day.min()).astype(np.uint16), kind="stable")
        return order[np.argsort(code[order].astype(np.uint16), kind="stable")]
    return np.argsort(_sort_key(code, day), kind="stable")


def _sums(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """int64 total of values per customer row (0 for rows with none)."""
    if len(values) == 0:
        return np.zeros(n, np.int64)
    bound = max(-int(values.min()), int(values.max()))  # np.abs would overflow on the smallest int
    if bound * len(values) < EXACT_FLOAT:
        return np.bincount(rows, weights=values, minlength=n).astype(np.int64)
    out = np.zeros(n, np.int64)
    np.add.at(out, rows, values.astype(np.int64))
    return out


def _array(blob: bytes | None, width: int, dtype: str) -> np.ndarray:
    """The elements of a PostgreSQL binary one-dimensional array without NULLs (array_send)."""
    if blob is None:
        return np.zeros(0, np.dtype(dtype).newbyteorder("="))
    n = (len(blob) - 20) // (4 + width)  # 20-byte header, then (length, value) per element
    rec = np.frombuffer(blob, np.dtype([("len", ">i4"), ("v", dtype)]), count=n, offset=20)
    return rec["v"].astype(np.dtype(dtype).newbyteorder("="))


# --- grouped rows (activity, tags) ------------------------------------------------------------------


class _Grouped:
    """Rows keyed by a small integer code: a base sorted by (code, day) with per-code offsets, and a
    tail of rows appended since, unsorted. Rows of reloaded customers are masked until the next merge."""

    def __init__(self, code: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        order = _sort_order(code, cols.get("day"))
        self.base = {name: values[order] for name, values in cols.items()}
        self.offsets = np.searchsorted(code[order], np.arange(int(code.max(initial=-1)) + 2))
        self.live: np.ndarray | None = None
        self.dead = 0
        self.tail_code = code[:0].astype(np.int32)
        self.tail = {name: values[:0] for name, values in cols.items()}
        # For a merge computed outside the lock: which append each tail row came with, and the customer
        # rows dropped since the merge took its view.
        self.gen = 0
        self.tail_gen = np.zeros(0, np.int32)
        self.dropped: list[tuple[np.ndarray, np.ndarray]] | None = None  # (customer rows, first day)

    def __len__(self) -> int:
        return len(self.base["cust"]) - self.dead + len(self.tail_code)

    def select(
        self, code: int, columns: Sequence[str], after: int | None = None, upto: int | None = None
    ) -> list[np.ndarray]:
        """Live rows of code (with after < day <= upto when given): customer rows, then the columns asked."""
        lo, hi = (int(x) for x in self.offsets[code : code + 2]) if code + 1 < len(self.offsets) else (0, 0)
        if after is not None and upto is not None and hi > lo:
            days = self.base["day"][lo:hi]
            lo, hi = lo + int(np.searchsorted(days, after, "right")), lo + int(np.searchsorted(days, upto, "right"))
        names = ["cust", *columns]
        parts = [self.base[name][lo:hi] for name in names]
        if self.live is not None:
            keep = self.live[lo:hi]
            parts = [p[keep] for p in parts]
        if len(self.tail_code):
            hit = self.tail_code == code
            if after is not None and upto is not None:
                day = self.tail["day"]
                hit &= (day > after) & (day <= upto)
            if hit.any():
                parts = [np.concatenate([p, self.tail[name][hit]]) for p, name in zip(parts, names, strict=True)]
        return parts

    def of_customers(self, flag: np.ndarray, columns: Sequence[str]) -> list[np.ndarray]:
        """Live rows of the customer rows flagged True, whatever their code: codes, customer rows, then the
        columns asked (one pass over the rows rather than one select per code)."""
        cust = self.base["cust"]
        hit = np.flatnonzero(flag[cust])
        if self.live is not None:
            hit = hit[self.live[hit]]
        code = (np.searchsorted(self.offsets, hit, "right") - 1).astype(np.int32)
        parts = [code, cust[hit], *(self.base[name][hit] for name in columns)]
        if len(self.tail_code):
            at = np.flatnonzero(flag[self.tail["cust"]])
            extra = [self.tail_code[at], self.tail["cust"][at], *(self.tail[name][at] for name in columns)]
            parts = [np.concatenate([p, x]) for p, x in zip(parts, extra, strict=True)]
        return parts

    def drop(self, flag: np.ndarray, since: np.ndarray | None = None) -> None:
        """Mask the rows of customer rows flagged True (they are about to be reloaded); with since (the
        first day per customer row), only their rows of that day or later."""
        if self.dropped is not None:
            at = np.flatnonzero(flag)
            self.dropped.append((at, np.full(len(at), ALL_DAYS, np.int32) if since is None else since[at]))
        cust = self.base["cust"]
        hit = np.flatnonzero(flag[cust])
        if since is not None:
            hit = hit[self.base["day"][hit] >= since[cust[hit]]]
        if self.live is not None:
            hit = hit[self.live[hit]]
        if len(hit):
            live = np.ones(len(cust), bool) if self.live is None else self.live.copy()  # views keep the old
            live[hit] = False
            self.live = live
            self.dead += len(hit)
        if len(self.tail_code):
            gone = flag[self.tail["cust"]]
            if since is not None:
                gone &= self.tail["day"] >= since[self.tail["cust"]]
            keep = ~gone
            self.tail_code = self.tail_code[keep]
            self.tail_gen = self.tail_gen[keep]
            self.tail = {name: values[keep] for name, values in self.tail.items()}

    def append(self, code: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        """Add rows (codes may be new) to the unsorted tail."""
        if not len(code):
            return
        self.gen += 1
        self.tail_gen = np.concatenate([self.tail_gen, np.full(len(code), self.gen, np.int32)])
        self.tail_code = np.concatenate([self.tail_code, code.astype(np.int32)])
        self.tail = {name: np.concatenate([self.tail[name], cols[name]]) for name in self.tail}

    def crowded(self) -> bool:
        """Whether masked and unsorted rows have grown enough to be worth a merge."""
        return self.dead + len(self.tail_code) > MERGE_SHARE * max(len(self.base["cust"]), 200_000)

    def merge(self) -> None:
        """Fold the tail into the sorted base and forget masked rows (linear: the base is already sorted)."""
        gen, view = self.view()
        self.install(gen, _merged(view))

    def view(self) -> tuple[int, tuple[Any, ...]]:
        """What a merge reads, as it is now (drop and append replace arrays, never change them in place),
        and from now on note the customer rows dropped, for install."""
        self.dropped = []
        return self.gen, (self.offsets, dict(self.base), self.live, self.tail_code, dict(self.tail))

    def install(self, gen: int, merged: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
        """Take a merge of view() (taken at gen), keeping what changed since: rows appended after it stay
        in the tail, and the merged rows of customers dropped after it are masked."""
        parts = self.dropped or []
        self.dropped = None
        self.base, self.offsets = merged
        self.live, self.dead = None, 0
        if parts:
            dropped = np.concatenate([rows for rows, _ in parts])
            cust = self.base["cust"]
            table = np.full(max(int(cust.max(initial=-1)), int(dropped.max(initial=-1))) + 1, NO_DAYS, np.int32)
            for rows, since in parts:
                np.minimum.at(table, rows, since)
            first = table[cust]
            hit = self.base["day"] >= first if "day" in self.base else first < NO_DAYS
            self.dead = int(hit.sum())
            self.live = ~hit if self.dead else None
        later = self.tail_gen > gen
        self.tail_code, self.tail_gen = self.tail_code[later], self.tail_gen[later]
        self.tail = {name: values[later] for name, values in self.tail.items()}


def _merged(view: tuple[Any, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(sorted base, offsets) of _Grouped.view() with the tail folded in and masked rows left out."""
    offsets, base, live, tail_code, tail = view
    n_codes = max(len(offsets) - 1, int(tail_code.max(initial=-1)) + 1)
    base_code = np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets))
    if live is not None:
        base_code = base_code[live]
        base = {name: values[live] for name, values in base.items()}
    order = _sort_order(tail_code, tail.get("day"))
    tail_code = tail_code[order]
    tail = {name: values[order] for name, values in tail.items()}
    at = np.searchsorted(_sort_key(base_code, base.get("day")), _sort_key(tail_code, tail.get("day")), "right")
    out = {}
    for name, values in base.items():
        extra = tail[name]
        kind = np.promote_types(values.dtype, _fit(extra).dtype if extra.dtype.kind == "i" else extra.dtype)
        out[name] = np.insert(values.astype(kind, copy=False), at, extra)
    codes = np.insert(base_code, at, tail_code)
    return out, np.searchsorted(codes, np.arange(n_codes + 1))


# --- what the database gives us ---------------------------------------------------------------------


@dataclass
class _People:
    """Customer rows read from the database, column by column."""

    ids: np.ndarray  # int64
    live: np.ndarray  # bool: merged_into_id IS NULL
    strings: dict[str, tuple[list[str | None], np.ndarray]]  # name → (distinct values, index per customer)
    numbers: dict[str, tuple[np.ndarray, np.ndarray | None]]  # name → (int64 values, NULL mask if nullable)
    dates: dict[str, np.ndarray]  # int64 µs, NULL_US for NULL
    lists: dict[str, dict[str, np.ndarray]]  # list field → element → ids of the customers holding it


@dataclass
class _Facts:
    """Tag and activity rows of some customers (customer ids, not yet snapshot rows)."""

    tag_cust: np.ndarray
    tag_id: np.ndarray
    weight: np.ndarray
    act_cust: np.ndarray
    act_key: list[tuple[str, str]] | np.ndarray  # (kind, ref) per row, or codes into keys
    keys: list[tuple[str, str]]
    day: np.ndarray
    count: np.ndarray
    amount: np.ndarray


def _date_sql(col: str) -> str:
    """A SQLite timestamp column as integer microseconds since 1970 (NULL stays NULL)."""
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds, then the digits after the point.
    return f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + CAST(substr({col} || '000000', 21, 6) AS INTEGER))"


def _strings_of(value: Any) -> list[str]:
    """The text elements of a JSON array (other JSON never equals a rule's text argument)."""
    items = orjson.loads(value) if isinstance(value, str | bytes) else value
    return [p for p in items if isinstance(p, str)] if isinstance(items, list) else []


def _holders(ids: Sequence[int], values: Sequence[Any]) -> dict[str, np.ndarray]:
    """element → ids of the customers whose JSON list holds it."""
    out: dict[str, list[int]] = {}
    for cid, value in zip(ids, values, strict=True):
        for item in _strings_of(value):
            out.setdefault(item, []).append(cid)
    return {item: np.array(held, np.int64) for item, held in out.items()}


def _dictionary(values: Sequence[str | None]) -> tuple[list[str | None], np.ndarray]:
    """(distinct values, int32 index of each value among them)."""
    index: dict[str | None, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], np.int32)
    return list(index), codes


def _people_from_rows(rows: Sequence[Sequence[Any]]) -> _People:
    """Rows of _customer_sql, as columns."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * (2 + len(STRINGS) + len(NUMBERS) + len(DATES) + len(LISTS))
    at = 2
    strings = {name: _dictionary(cols[at + i]) for i, name in enumerate(STRINGS)}
    at += len(STRINGS)
    numbers: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for i, name in enumerate(NUMBERS):
        raw = cols[at + i]
        nulls = np.array([v is None for v in raw], bool) if FIELDS[name].nullable else None
        numbers[name] = (np.array([0 if v is None else v for v in raw], np.int64), nulls)
    at += len(NUMBERS)
    dates = {
        name: np.array([NULL_US if v is None else v for v in cols[at + i]], np.int64) for i, name in enumerate(DATES)
    }
    at += len(DATES)
    return _People(
        ids=np.array(cols[0], np.int64),
        live=np.array(cols[1], bool),
        strings=strings,
        numbers=numbers,
        dates=dates,
        lists={name: _holders(cols[0], cols[at + i]) for i, name in enumerate(LISTS)},
    )


def _customer_sql(pg: bool) -> str:
    """SELECT of what rules read of a customer, for `WHERE workspace_id = ? AND <more>`."""
    cols = ["id", "CASE WHEN merged_into_id IS NULL THEN 1 ELSE 0 END", *STRINGS, *NUMBERS]
    if pg:
        cols += [f"CAST(EXTRACT(EPOCH FROM {name}) * 1000000 AS BIGINT)" for name in DATES]
        cols += [f"CAST({name} AS TEXT)" for name in LISTS]
    else:
        cols += [_date_sql(name) for name in DATES]
        cols += list(LISTS)
    return f"SELECT {', '.join(cols)} FROM customers WHERE workspace_id = ? AND "


def _read_people(bulk: Bulk, workspace_id: int, ids: Sequence[int] | None) -> _People:
    """Customer rows: the live ones of the workspace, or these ids in any state."""
    if ids is None and bulk.pg:
        return _read_people_pg(bulk, workspace_id)
    sql = _customer_sql(bulk.pg)
    if ids is None:
        return _people_from_rows(bulk.execute(sql + "merged_into_id IS NULL", [workspace_id]))
    return _people_from_rows(bulk.select_in(sql + "id {in}", ids, [workspace_id]))


PG_EPOCH_US = 946_684_800_000_000  # binary timestamptz counts microseconds from 2000-01-01
_PG_LIST = (
    "SELECT e.value #>> '{{}}', array_send(array_agg(c.id)) FROM customers c CROSS JOIN LATERAL "
    "jsonb_array_elements(CASE WHEN jsonb_typeof(c.{name}) = 'array' THEN c.{name} ELSE '[]' END) AS e(value) "
    "WHERE c.workspace_id = %s AND c.merged_into_id IS NULL AND jsonb_typeof(e.value) = 'string' GROUP BY 1"
)


_PG_GROUPS = (
    "SELECT {name}, array_send(array_agg(id)) FROM customers "
    "WHERE workspace_id = %s AND merged_into_id IS NULL GROUP BY 1"
)


def _from_groups(ids: np.ndarray, groups: Sequence[tuple[Any, bytes]]) -> tuple[list[str | None], np.ndarray]:
    """(value, ids holding it) groups as a dictionary over ids (a customer missing from the groups, one
    merged between the two statements, reads as NULL until its logged change reloads it)."""
    order = np.argsort(ids)
    codes = np.full(len(ids), -1, np.int32)
    values: list[str | None] = []
    for value, blob in groups:
        held = _array(blob, 8, ">i8")
        at = np.minimum(np.searchsorted(ids[order], held), max(len(ids) - 1, 0))
        found = ids[order][at] == held if len(ids) else np.zeros(len(held), bool)
        codes[order[at[found]]] = len(values)
        values.append(value)
    values.append(None)  # index -1
    return values, codes


def _read_people_pg(bulk: Bulk, workspace_id: int) -> _People:
    """All live customers as binary arrays (a million rows fetched as tuples cost seconds)."""
    nullable = [name for name in NUMBERS if FIELDS[name].nullable]
    parts = ["array_send(array_agg(id))"]
    parts += [f"array_send(array_agg(CAST(COALESCE({name}, 0) AS BIGINT)))" for name in NUMBERS]
    parts += [f"array_send(array_agg({name} IS NULL))" for name in nullable]
    parts += [f"array_send(array_agg(COALESCE({name}, '-infinity')))" for name in DATES]  # -infinity: NULL
    sql = f"SELECT {', '.join(parts)} FROM customers WHERE workspace_id = %s AND merged_into_id IS NULL"
    cur = bulk.raw.cursor(binary=True)
    try:
        cur.execute(sql, (workspace_id,))
        row = list(cur.fetchone())
        ids = _array(row.pop(0), 8, ">i8")
        # Strings travel once per distinct value (with the ids holding it), not once per customer.
        strings = {}
        for name in STRINGS:  # names come from rules.FIELDS
            cur.execute(_PG_GROUPS.format(name=name), (workspace_id,))
            strings[name] = _from_groups(ids, cur.fetchall())
        lists = {}
        for name in LISTS:
            cur.execute(_PG_LIST.format(name=name), (workspace_id,))
            lists[name] = {str(item): _array(blob, 8, ">i8") for item, blob in cur.fetchall()}
    finally:
        cur.close()
    values = {name: _array(row.pop(0), 8, ">i8") for name in NUMBERS}
    nulls = {name: _array(row.pop(0), 1, "?") for name in nullable}
    dates = {}
    for name in DATES:
        raw = _array(row.pop(0), 8, ">i8")
        dates[name] = np.where(raw == np.iinfo(np.int64).min, NULL_US, raw + PG_EPOCH_US)
    numbers = {name: (values[name], nulls.get(name)) for name in NUMBERS}
    return _People(ids, np.ones(len(ids), bool), strings, numbers, dates, lists)


def _read_tags(bulk: Bulk, workspace_id: int, ids: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer ids, tag ids, weights) of the workspace's tags (or of these customers)."""
    sql = "SELECT customer_id, tag_id, weight FROM customer_tags WHERE "
    if ids is None:
        rows = bulk.execute(sql + "workspace_id = ?", [workspace_id])
    else:
        # A customer's rows are all in its workspace; naming the workspace too lets SQLite's planner
        # pick the (workspace, …) index and scan the whole workspace instead of the customers' rows.
        rows = bulk.select_in(sql + "customer_id {in}", ids)
    cols = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return np.array(cols[0], np.int64), np.array(cols[1], np.int64), np.array(cols[2], np.float64)


def _read_facts(
    bulk: Bulk,
    workspace_id: int,
    ids: Sequence[int] | None,
    engine: Engine | None = None,
    since: Sequence[int] | None = None,
    tagged: Sequence[int] | None = None,
) -> _Facts:
    """Tags and activity of the workspace (or of these customers: their activity from since[i] on, the
    tags of those among tagged, or of all when None)."""
    tags = _read_tags(bulk, workspace_id, ids if tagged is None else tagged)
    if ids is None and bulk.pg:
        cust, code, keys, day, count, amount = _read_activity_pg(bulk, workspace_id, engine)
        return _Facts(*tags, cust, code, keys, day, count, amount)
    cust, pairs, day, count, amount = _read_activity(bulk, workspace_id, ids, since)
    return _Facts(*tags, cust, pairs, [], day, count, amount)


def _by_day(ids: Sequence[int], since: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """(ids, first days) of the customers whose activity rows are to be read (NO_DAYS: none)."""
    if since is None:
        return list(ids), [ALL_DAYS] * len(ids)
    keep = [(c, d) for c, d in zip(ids, since, strict=True) if d != NO_DAYS]
    return [c for c, _ in keep], [d for _, d in keep]


def _read_on_pool(
    engine: Engine,
    workspace_id: int,
    ids: list[int],
    known: dict[tuple[str, str], int],
    since: list[int],
    tagged: list[int],
) -> tuple[_People, _Facts]:
    """_read_people and _read_facts of these customers over three pooled PostgreSQL connections at once,
    activity (from since[i] on) as binary arrays with its (kind, ref) as codes of known (a new key comes
    as text)."""
    act_ids, act_since = _by_day(ids, since)
    half = len(act_ids) // 2
    keys = list(known)
    codes = [known[k] for k in keys]

    def run(job: Callable[[Bulk], Any]) -> Any:
        with Session(engine) as session:
            return job(Bulk(session))

    def activity(bulk: Bulk, part: slice) -> list[Any]:
        cur = bulk.raw.cursor(binary=True)
        try:
            # The planner expects many rows and would spend ~0.2 s compiling the query.
            cur.execute("SET LOCAL jit = off")
            args = (act_ids[part], act_since[part], [k for k, _ in keys], [r for _, r in keys], codes)
            cur.execute(_PG_ACTIVITY_OF, args)
            row = cur.fetchone()
        finally:
            cur.close()
        out: list[Any] = [_array(row[0], 8, ">i8"), _array(row[1], 4, ">i4"), _array(row[2], 4, ">i4")]
        out += [_array(row[3], 4, ">i4"), _array(row[4], 8, ">i8"), list(row[5] or [])]
        return out

    jobs: list[Callable[[Bulk], Any]] = [
        lambda b: (_read_people(b, workspace_id, ids), _read_tags(b, workspace_id, tagged)),
        lambda b: activity(b, slice(0, half)),
        lambda b: activity(b, slice(half, None)),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        (people, tags), first, second = pool.map(run, jobs)
    tag_cust, tag_id, weight = tags
    cust, code, day, count, amount = (np.concatenate([first[i], second[i]]) for i in range(5))
    # The snapshot's codes are 0 … n-1; keys it has not seen get n, n+1 … in the order they were read.
    every: list[tuple[str, str]] = [("", "")] * len(keys)
    for key, c in known.items():
        every[c] = key
    unknown = np.flatnonzero(code < 0)
    if len(unknown):
        new_keys: dict[tuple[str, str], int] = {}
        texts = [*first[5], *second[5]]
        pairs = [(k, r) for k, r in (text.split("\x1f", 1) for text in texts)]
        code[unknown] = [new_keys.setdefault(p, len(keys) + len(new_keys)) for p in pairs]
        every += list(new_keys)
    facts = _Facts(tag_cust, tag_id, weight, cust, code, every, day, count, amount)
    return people, facts


# (kind, ref) travel as the snapshot's codes for the keys it knows (a hash join on a few hundred keys);
# the text of the others follows, in row order, for the rows whose code is -1.
_PG_ACTIVITY_OF = (
    "SELECT array_send(array_agg(a.customer_id)), array_send(array_agg(COALESCE(k.code, -1))), "
    "array_send(array_agg(a.day)), array_send(array_agg(a.count)), array_send(array_agg(a.amount)), "
    "array_agg(a.kind || chr(31) || a.ref) FILTER (WHERE k.code IS NULL) "
    "FROM unnest(%s::int8[], %s::int4[]) AS w(customer_id, since) "
    "JOIN customer_activity a ON a.customer_id = w.customer_id AND a.day >= w.since "
    "LEFT JOIN unnest(%s::text[], %s::text[], %s::int4[]) AS k(kind, ref, code) ON a.kind = k.kind AND a.ref = k.ref"
)


def _read_activity(
    bulk: Bulk, workspace_id: int, ids: Sequence[int] | None, since: Sequence[int] | None = None
) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray]:
    """customer_activity rows through the session, a batch at a time (of these customers: from since[i] on)."""
    sql = "SELECT customer_id, kind, ref, day, count, amount FROM customer_activity WHERE "
    cust: list[np.ndarray] = []
    keys: list[tuple[str, str]] = []
    day: list[np.ndarray] = []
    count: list[np.ndarray] = []
    amount: list[np.ndarray] = []

    def take(rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        c, kind, ref, d, n, a = zip(*rows, strict=True)
        cust.append(np.array(c, np.int64))
        keys.extend(zip(kind, ref, strict=True))
        day.append(np.array(d, np.int32))
        count.append(np.array(n, np.int64))
        amount.append(np.array(a, np.int64))

    if ids is not None:
        groups: dict[int, list[int]] = {}
        for cid, first in zip(*_by_day(ids, since), strict=True):
            groups.setdefault(first, []).append(cid)
        for first, group in groups.items():  # by customer only: see _read_tags
            if first == ALL_DAYS:
                take(bulk.select_in(sql + "customer_id {in}", group))
            else:
                take(bulk.select_in(sql + "day >= ? AND customer_id {in}", group, [first]))
    else:
        cur = bulk.raw.cursor()
        try:
            cur.execute(sql + ("workspace_id = %s" if bulk.pg else "workspace_id = ?"), (workspace_id,))
            while batch := cur.fetchmany(200_000):
                take(batch)
        finally:
            cur.close()

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    return cat(cust, np.int64), keys, cat(day, np.int32), cat(count, np.int64), cat(amount, np.int64)


_PG_KEYS = """
WITH RECURSIVE k AS (
  (SELECT kind, ref FROM customer_activity WHERE workspace_id = %(ws)s ORDER BY kind, ref LIMIT 1)
  UNION ALL
  SELECT n.kind, n.ref FROM k CROSS JOIN LATERAL (
    SELECT a.kind, a.ref FROM customer_activity a
    WHERE a.workspace_id = %(ws)s AND (a.kind, a.ref) > (k.kind, k.ref) ORDER BY a.kind, a.ref LIMIT 1) n
) SELECT kind, ref, hashtext(kind || chr(31) || ref) FROM k
"""
# (hash of kind and ref, day) travel packed in one int8: every array element costs the server a call.
_PG_ACTIVITY = (
    "SELECT array_send(array_agg(customer_id)), array_send(array_agg("
    "(CAST(hashtext(kind || chr(31) || ref) AS BIGINT) << 32) | (CAST(day AS BIGINT) & 4294967295))), "
    "array_send(array_agg(count)), array_send(array_agg(amount)) FROM customer_activity "
    "WHERE workspace_id = %s AND id >= %s AND id < %s"
)


def _read_activity_pg(
    bulk: Bulk, workspace_id: int, engine: Engine | None
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray]:
    """All activity as binary arrays by id range, on PG_READERS connections at once.

    The distinct (kind, ref) come from a skip scan of the (workspace, kind, ref, day) index; each row
    carries hashtext(kind, ref) rather than its text, which a dictionary then maps to codes.
    """
    cur = bulk.raw.cursor()
    try:
        cur.execute(_PG_KEYS, {"ws": workspace_id})
        found = cur.fetchall()
        cur.execute("SELECT MIN(id), MAX(id) FROM customer_activity")
        lo, hi = cur.fetchone()
    finally:
        cur.close()
    keys = [(str(k), str(r)) for k, r, _ in found]
    hashes = np.array([h for _, _, h in found], np.int64)
    if len(set(hashes.tolist())) < len(hashes):
        # Two keys share a hash (about one workspace in a million): send codes the slow way.
        cust, pairs, day, count, amount = _read_activity(bulk, workspace_id, None)
        index = {k: i for i, k in enumerate(dict.fromkeys(pairs))}
        return cust, np.array([index[p] for p in pairs], np.int32), list(index), day, count, amount
    if lo is None:
        empty = np.zeros(0, np.int64)
        return empty, empty.astype(np.int32), keys, empty.astype(np.int32), empty, empty
    ranges = [(start, start + PG_CHUNK) for start in range(int(lo), int(hi) + 1, PG_CHUNK)]

    def read(conn: Any, todo: list[tuple[int, int]]) -> list[list[np.ndarray]]:
        out = []
        c = conn.cursor(binary=True)
        try:
            for start, stop in todo:
                c.execute(_PG_ACTIVITY, (workspace_id, start, stop))
                row = c.fetchone()
                packed = _array(row[1], 8, ">i8")
                out.append(
                    [
                        _array(row[0], 8, ">i8"),
                        (packed & 0xFFFFFFFF).astype(np.uint32).view(np.int32),
                        _array(row[2], 4, ">i4"),
                        _array(row[3], 8, ">i8"),
                        (packed >> 32).astype(np.int32),
                    ]
                )
        finally:
            c.close()
        return out

    chunks = _parallel(bulk, engine, read, ranges)
    cust, day, count, amount, hashed = (np.concatenate([c[i] for c in chunks]) for i in range(5))
    order = np.argsort(hashes)
    at = np.minimum(np.searchsorted(hashes[order], hashed), max(len(hashes) - 1, 0))
    # A key first written after the skip scan: its customer's change is logged later, so it reloads then.
    known = hashes[order][at] == hashed if len(hashes) else np.zeros(len(hashed), bool)
    code = order[at[known]].astype(np.int32)
    return cust[known], code, keys, day[known], count[known], amount[known]


def _parallel(
    bulk: Bulk, engine: Engine | None, read: Callable[[Any, list[tuple[int, int]]], list[Any]], ranges: list[Any]
) -> list[Any]:
    """read(connection, ranges) over extra pooled connections in threads, or on the session's own."""
    readers = min(PG_READERS, len(ranges)) if engine is not None else 1
    if readers <= 1:
        return read(bulk.raw, ranges)
    assert engine is not None
    conns = [engine.raw_connection() for _ in range(readers)]
    try:
        with ThreadPoolExecutor(readers) as pool:
            parts = list(pool.map(lambda i: read(conns[i].driver_connection, ranges[i::readers]), range(readers)))
    finally:
        for c in conns:
            c.rollback()
            c.close()
    return [chunk for part in parts for chunk in part]


# --- the snapshot -------------------------------------------------------------------------------------


class _IdIndex:
    """Customer id → snapshot row: a direct table when ids are dense (one workspace's ids from a shared
    sequence usually are), else a binary search over the sorted ids."""

    def __init__(self, ids: np.ndarray) -> None:
        self.table: np.ndarray | None = None
        self.base = 0
        self.sorted_ids = ids[:0]
        self.sorted_rows = np.zeros(0, np.int32)
        lo, hi = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
        if hi - lo < DENSE_FACTOR * len(ids) + 1_000_000:
            self.base = lo
            self.table = np.full(hi - lo + 1, -1, np.int32)
            self.table[ids - lo] = np.arange(len(ids), dtype=np.int32)
        else:
            order = np.argsort(ids, kind="stable")
            self.sorted_ids, self.sorted_rows = ids[order], order.astype(np.int32)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 when unknown."""
        if self.table is not None:
            at = ids - self.base
            ok = (at >= 0) & (at < len(self.table))
            out = np.full(len(ids), -1, np.int64)
            out[ok] = self.table[at[ok]]
            return out
        if not len(self.sorted_ids):
            return np.full(len(ids), -1, np.int64)
        at = np.minimum(np.searchsorted(self.sorted_ids, ids), len(self.sorted_ids) - 1)
        return np.where(self.sorted_ids[at] == ids, self.sorted_rows[at], -1).astype(np.int64)


class _Snapshot:
    """One workspace's customers, tags and activity as arrays, indexed by row."""

    def __init__(self, people: _People, facts: _Facts) -> None:
        order = np.argsort(people.ids, kind="stable")
        self.ids = people.ids[order]
        self.alive = people.live[order]
        self.vocab: dict[str, dict[str, int]] = {name: {} for name in STRINGS}
        self.strings = {name: self._encode(name, people.strings[name])[order] for name in STRINGS}
        self.numbers = {name: self._narrow(name, people.numbers[name][0][order]) for name in NUMBERS}
        self.nulls = {name: self._nulls(people, name)[order] for name in NUMBERS if FIELDS[name].nullable}
        self.dates = {name: people.dates[name][order] for name in DATES}
        self.index = _IdIndex(self.ids)
        self.max_id = int(self.ids.max(initial=0))
        self.lists: dict[str, dict[str, np.ndarray]] = {name: {} for name in LISTS}
        self._set_lists(np.zeros(0, np.int64), people)
        self.tag_code: dict[int, int] = {}
        self.act_code: dict[tuple[str, str], int] = {}
        tag_rows, tag_code, tag_weight = self._tag_rows(facts)
        self.tags = _Grouped(tag_code, {"cust": tag_rows, "weight": tag_weight})
        act = self._activity_rows(facts)
        self.activity = _Grouped(act[0], {"cust": act[1], "day": act[2], "count": act[3], "amount": act[4]})
        # Change-log bookkeeping (see _sync).
        self.lineage: tuple[int, Any] = (0, None)  # see _lineage
        self.low_water = 0
        self.seen: dict[int, float] = {}  # change-log ids above low_water applied → when first seen
        self.top = 0  # the largest change-log id applied
        self.dirty: set[int] = set()
        self.synced_at = time.monotonic()
        self.rescanned_at = 0.0
        self.merging = False

    def nbytes(self) -> int:
        """Memory held in arrays (the Python dictionaries of codes are small beside them)."""
        arrays = [self.ids, self.alive, *self.strings.values(), *self.numbers.values(), *self.nulls.values()]
        arrays += [*self.dates.values(), *(a for e in self.lists.values() for a in e.values())]
        index = (self.index.table, self.index.sorted_ids, self.index.sorted_rows)
        arrays += [a for a in index if a is not None]
        for rows in (self.tags, self.activity):
            arrays += [rows.offsets, rows.tail_code, *rows.base.values(), *rows.tail.values()]
            arrays += [] if rows.live is None else [rows.live]
        return sum(a.nbytes for a in arrays)

    # ids ↔ rows

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of each customer id, -1 when the snapshot does not know it."""
        return self.index.rows(ids)

    def __len__(self) -> int:
        return len(self.ids)

    # column codecs

    def _encode(self, name: str, column: tuple[list[str | None], np.ndarray]) -> np.ndarray:
        """Snapshot codes of a column read as (distinct values, index per customer)."""
        values, codes = column
        index = self.vocab[name]
        remap = np.array([-1 if v is None else index.setdefault(v, len(index)) for v in values], np.int32)
        return remap[codes] if len(codes) else codes

    @staticmethod
    def _narrow(name: str, values: np.ndarray) -> np.ndarray:
        return values.astype(np.int64) if name in WIDE else _fit(values)

    @staticmethod
    def _nulls(people: _People, name: str) -> np.ndarray:
        values, nulls = people.numbers[name]
        return np.zeros(len(values), bool) if nulls is None else nulls

    def _set_lists(self, rows: np.ndarray, people: _People) -> None:
        """Clear list elements of rows, then set those people hold (their rows must exist)."""
        for name, elements in self.lists.items():
            for flags in elements.values():
                flags[rows] = False
            for item, ids in people.lists[name].items():
                if item not in elements:
                    elements[item] = np.zeros(len(self.alive), bool)
                at = self.rows_of(ids)
                elements[item][at[at >= 0]] = True

    def _tag_rows(self, facts: _Facts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.rows_of(facts.tag_cust)
        known = rows >= 0
        codes = np.array([self.tag_code.setdefault(t, len(self.tag_code)) for t in facts.tag_id.tolist()], np.int32)
        return rows[known].astype(np.int32), codes[known], facts.weight[known]

    def _activity_rows(self, facts: _Facts) -> tuple[np.ndarray, ...]:
        rows = self.rows_of(facts.act_cust)
        known = rows >= 0
        if isinstance(facts.act_key, np.ndarray):
            remap = np.array([self.act_code.setdefault(k, len(self.act_code)) for k in facts.keys], np.int32)
            codes = remap[facts.act_key] if len(remap) else facts.act_key.astype(np.int32)
        else:
            codes = np.array([self.act_code.setdefault(k, len(self.act_code)) for k in facts.act_key], np.int32)
        return (
            codes[known],
            rows[known].astype(np.int32),
            facts.day[known].astype(np.int32),
            _fit(facts.count[known]),
            _fit(facts.amount[known]),
        )

    # reloading

    def reload(
        self,
        people: _People,
        facts: _Facts,
        asked: Sequence[int],
        since: Sequence[int] | None = None,
        tagged: Sequence[int] | None = None,
    ) -> None:
        """Replace what the snapshot knows of the asked customers (in id order) by what was read (absent =
        gone); their tags (only of those among tagged, unless None); their activity rows, all of them or,
        with since, those from since[i] on (NO_DAYS: none)."""
        rows = self.rows_of(people.ids)
        new = (rows < 0) & people.live
        if new.any():
            self._append(int(new.sum()))
            rows[new] = np.arange(len(self) - int(new.sum()), len(self))
            self._index(people.ids[new], rows[new])
        known = rows >= 0
        at = rows[known]
        self.alive[at] = people.live[known]
        for name in STRINGS:
            self.strings[name][at] = self._encode(name, people.strings[name])[known]
        for name in NUMBERS:
            values = people.numbers[name][0][known]
            self.numbers[name] = self._widen(self.numbers[name], values)
            self.numbers[name][at] = values
            if name in self.nulls:
                self.nulls[name][at] = self._nulls(people, name)[known]
        for name in DATES:
            self.dates[name][at] = people.dates[name][known]
        self._set_lists(at, people)
        gone = self.rows_of(np.array(sorted(set(asked) - set(people.ids.tolist())), np.int64))
        self.alive[gone[gone >= 0]] = False
        mine = self.rows_of(np.array(asked, np.int64))
        flag = np.zeros(len(self), bool)
        flag[mine[mine >= 0]] = True
        if tagged is None:
            self.tags.drop(flag)
        elif len(tagged):
            at = self.rows_of(np.array(tagged, np.int64))
            self.tags.drop(_flags(self, at[at >= 0]))
        tag_rows, tag_code, tag_weight = self._tag_rows(facts)
        self.tags.append(tag_code, {"cust": tag_rows, "weight": tag_weight})
        first: np.ndarray | None = None
        if since is not None:
            first = np.full(len(self), NO_DAYS, np.int32)
            first[mine[mine >= 0]] = np.asarray(since, np.int32)[mine >= 0]
            flag = first < NO_DAYS
            if not flag.any():
                return
            if (first[flag] == ALL_DAYS).all():
                first = None
        self.activity.drop(flag, first)
        act = self._activity_rows(facts)
        self.activity.append(act[0], {"cust": act[1], "day": act[2], "count": act[3], "amount": act[4]})

    @staticmethod
    def _widen(column: np.ndarray, values: np.ndarray) -> np.ndarray:
        return column if _fit(values).dtype.itemsize <= column.dtype.itemsize else column.astype(np.int64)

    def _append(self, k: int) -> None:
        def grow(a: np.ndarray, fill: Any) -> np.ndarray:
            return np.concatenate([a, np.full(k, fill, a.dtype)])

        self.ids = grow(self.ids, 0)
        self.alive = grow(self.alive, False)
        self.strings = {n: grow(a, -1) for n, a in self.strings.items()}
        self.numbers = {n: grow(a, 0) for n, a in self.numbers.items()}
        self.nulls = {n: grow(a, True) for n, a in self.nulls.items()}
        self.dates = {n: grow(a, NULL_US) for n, a in self.dates.items()}
        self.lists = {n: {item: grow(a, False) for item, a in elements.items()} for n, elements in self.lists.items()}

    def _index(self, ids: np.ndarray, rows: np.ndarray) -> None:
        self.ids[rows] = ids
        self.index = _IdIndex(self.ids)  # linear in customers: a few ms per sync that brings newcomers
        self.max_id = max(self.max_id, int(ids.max()))


# --- evaluation ------------------------------------------------------------------------------------


class _Evaluator:
    """One rule over the snapshot's rows (or some of them) as boolean masks, leaf by leaf."""

    def __init__(self, snap: _Snapshot, bulk: Bulk, as_of: datetime, rows: np.ndarray | None) -> None:
        self.snap = snap
        self.bulk = bulk
        self.as_of = as_of
        self.today = epoch_day(as_of)
        self.rows = rows
        self.size = len(snap) if rows is None else len(rows)
        self.members: dict[int, np.ndarray] = {}

    def pick(self, column: np.ndarray) -> np.ndarray:
        """The column at the rows under evaluation."""
        return column if self.rows is None else column[self.rows]

    def node(self, rule: dict[str, Any]) -> np.ndarray:
        """Mask of the rows the rule matches (not yet limited to live customers)."""
        kind = rule["type"]
        if kind in ("and", "or"):
            out = np.full(self.size, kind == "and")
            for child in rule["rules"]:
                if kind == "and":
                    out &= self.node(child)
                else:
                    out |= self.node(child)
            return out
        if kind == "not":
            return ~self.node(rule["rule"])
        leaf = {"attr": self.attr, "tag": self.tag, "purchase": self.activity, "event": self.activity}
        return leaf.get(kind, self.segment)(rule)

    def attr(self, rule: dict[str, Any]) -> np.ndarray:
        name, op = rule["field"], rule["op"]
        arg: Any = rule.get("value")
        kind = FIELDS[name].type
        if kind == "list":
            flags = self.snap.lists[name].get(arg)
            found = np.zeros(self.size, bool) if flags is None else self.pick(flags)
            return found.copy() if op == "contains" else ~found
        values: np.ndarray
        null: np.ndarray | None
        if kind == "string":
            values = self.pick(self.snap.strings[name])
            null = values < 0
        elif kind == "number":
            values = self.pick(self.snap.numbers[name])
            null = self.pick(self.snap.nulls[name]) if name in self.snap.nulls else None
        else:
            values = self.pick(self.snap.dates[name])
            null = values == NULL_US
        if op in ("is_set", "is_not_set"):
            is_null = np.zeros(self.size, bool) if null is None else null
            return ~is_null if op == "is_set" else is_null.copy()
        cond = self.compare(name, kind, op, arg, values)
        if null is None:
            return cond
        # NULL never compares; ne / not_in count a missing value as "not equal" (rules.py).
        return null | cond if op in ("ne", "not_in") else ~null & cond

    def compare(self, name: str, kind: str, op: str, arg: Any, values: np.ndarray) -> np.ndarray:
        """The operator on non-NULL values (NULL rows are fixed up by the caller)."""
        if kind == "string":
            vocab = self.snap.vocab[name]
            if op in ("in", "not_in"):
                table = np.zeros(len(vocab) + 1, bool)  # the extra last slot is what NULL (-1) reads
                table[[vocab[v] for v in arg if v in vocab]] = True
                found = table[values]
                return found if op == "in" else ~found
            return _CMP[op](values, vocab.get(arg, -2))
        if kind == "date":
            threshold = _us(self.as_of - timedelta(days=arg))
            return values >= threshold if op == "within_days" else values < threshold
        if op == "between":
            return (values >= arg[0]) & (values <= arg[1])
        return _CMP[op](values, arg)

    def tag(self, rule: dict[str, Any]) -> np.ndarray:
        code = self.snap.tag_code.get(rule["tag_id"])
        flag = np.zeros(len(self.snap), bool)
        if code is not None:
            cust, weight = self.snap.tags.select(code, ["weight"])
            if rule["op"] == "weight_gte":
                cust = cust[weight >= rule["value"]]
            flag[cust] = True
        found = self.pick(flag)
        return ~found if rule["op"] == "not_has" else found

    def activity(self, rule: dict[str, Any]) -> np.ndarray:
        code = self.snap.act_code.get(activity_key(rule))
        if code is None:
            sums = np.zeros(self.size, np.int64)
        else:
            days = rule.get("days")
            window = (self.today - days, self.today) if days is not None else (None, None)
            cust, values = self.snap.activity.select(code, [activity_column(rule)], *window)
            sums = self.pick(_sums(cust, values, len(self.snap)))
        return _CMP[rule["op"]](sums, rule["value"])

    def segment(self, rule: dict[str, Any]) -> np.ndarray:
        sid = rule["segment_id"]
        if sid not in self.members:
            # The rule was checked to name this workspace's segments (and a workspace filter would lead
            # SQLite to scan every membership of the workspace).
            rows = self.bulk.execute("SELECT customer_id FROM segment_members WHERE segment_id = ?", [sid])
            at = self.snap.rows_of(np.array([r[0] for r in rows], np.int64))
            flag = np.zeros(len(self.snap), bool)
            flag[at[at >= 0]] = True
            self.members[sid] = flag
        found = self.pick(self.members[sid])
        return found.copy() if rule["op"] == "in" else ~found


# --- keeping snapshots current ----------------------------------------------------------------------


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


def _unapplied(bulk: Bulk, snap: _Snapshot, workspace_id: int, top: int) -> list[_LogRow]:
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


def _note(snap: _Snapshot, rows: Sequence[tuple[Any, ...]]) -> None:
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


def _reload(
    snap: _Snapshot,
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
        tag_cust, tag_id, weight = _read_tags(bulk, workspace_id, tags)
        none = np.zeros(0, np.int64)
        facts = _Facts(tag_cust, tag_id, weight, none, [], [], none.astype(np.int32), none, none)
        snap.reload(_read_people(bulk, workspace_id, asked), facts, asked, since, tags)
        return
    if engine is not None and len(asked) >= PARALLEL_RELOAD and not _has_writes(bulk):
        # The session has written nothing, so other connections see just what it would.
        every = since if since is not None else [ALL_DAYS] * len(asked)
        people, facts = _read_on_pool(engine, workspace_id, asked, snap.act_code, every, tags)
    else:
        people = _read_people(bulk, workspace_id, asked)
        facts = _read_facts(bulk, workspace_id, asked, None, since, tags)
    snap.reload(people, facts, asked, since, tags)


def _sync(snap: _Snapshot, session: Session, bulk: Bulk, workspace_id: int, engine: Engine | None) -> set[int] | None:
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
        _reload(snap, bulk, workspace_id, changed, engine, first_days, tagged)
        snap.max_id = max(snap.max_id, *newcomers) if newcomers else snap.max_id
    snap.dirty = set()
    _note(snap, rows)
    return changed


def _build(bulk: Bulk, workspace_id: int, engine: Engine | None) -> tuple[_Snapshot, set[int]]:
    """A snapshot from scratch; the change log is read first, so later changes are found by _sync."""
    lineage = _lineage(bulk, workspace_id)
    rows = bulk.execute(
        "SELECT MAX(id) FROM customer_changes WHERE workspace_id = ? AND created_at < ?",
        [workspace_id, bulk.ts(utcnow() - timedelta(seconds=LAG))],
    )
    low_water = int(rows[0][0] or 0)
    recent = _log(bulk, workspace_id, low_water)
    snap = _Snapshot(_read_people(bulk, workspace_id, None), _read_facts(bulk, workspace_id, None, engine))
    snap.lineage = lineage
    snap.low_water = low_water
    _note(snap, recent)
    touched = {r[1] for r in recent}
    if engine is not None and touched:
        # Activity came over other connections, blind to this session's own uncommitted writes.
        _reload(snap, bulk, workspace_id, touched)
    return snap, touched


def _has_writes(bulk: Bulk) -> bool:
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
    snapshot: _Snapshot | None = None
    builds: int = 0
    patches: int = 0


_registry: dict[tuple[str, int], _Entry] = {}
_registry_lock = threading.Lock()
_TOUCHED = "shequn.engine.touched"


def _entry(session: Session, workspace_id: int) -> _Entry:
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _registry_lock:
        return _registry.setdefault((url, workspace_id), _Entry())


@contextmanager
def _current(session: Session, workspace_id: int) -> Iterator[_Snapshot]:
    """The workspace's snapshot, brought up to date, locked for the caller."""
    entry = _entry(session, workspace_id)
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
        if (rebuilt or touched) and _has_writes(bulk):
            # This transaction's own writes are now in a shared snapshot: undo them if it rolls back.
            session.info.setdefault(_TOUCHED, []).append((entry, snap, None if rebuilt else touched))
        yield snap
        merge = not snap.merging and (snap.tags.crowded() or snap.activity.crowded())
        snap.merging |= merge
    if merge:
        _merge_soon(entry, snap)


def _merge_soon(entry: _Entry, snap: _Snapshot) -> None:
    """Merge the snapshot's appended rows once the caller has its answer (10M rows take about a second)."""

    def run() -> None:
        # The merge itself runs without the lock, so evaluations and reloads go on meanwhile (a job
        # waiting a second or two for it would miss its target); install applies what they changed.
        with entry.lock:
            todo = [(rows, *rows.view()) for rows in (snap.tags, snap.activity) if rows.crowded()]
        try:
            done = [(rows, gen, _merged(view)) for rows, gen, view in todo]
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
    session.info.pop(_TOUCHED, None)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    for entry, snap, touched in session.info.pop(_TOUCHED, []):
        with entry.lock:
            if entry.snapshot is snap:
                if touched is None:
                    entry.snapshot = None
                else:
                    snap.dirty |= touched


def evaluate(session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime) -> list[int]:
    """Ids of the live customers a (validated) rule matches, in id order, from the cached snapshot."""
    with _current(session, workspace_id) as snap:
        mask = _Evaluator(snap, Bulk(session), as_of, None).node(rule) & snap.alive
        return list(np.sort(snap.ids[mask]).tolist())


def evaluate_ids(
    session: Session, *, workspace_id: int, rule: dict[str, Any], as_of: datetime, ids: Collection[int]
) -> list[int]:
    """The ids among ids that are live customers matching the rule (incremental refresh), in id order."""
    with _current(session, workspace_id) as snap:
        asked = np.unique(np.fromiter(ids, np.int64, len(ids)))
        rows = snap.rows_of(asked)
        known = rows >= 0
        rows = rows[known]
        mask = _Evaluator(snap, Bulk(session), as_of, rows).node(rule) & snap.alive[rows]
        return list(asked[known][mask].tolist())


def _live_rows(snap: _Snapshot, ids: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, snapshot rows) of the live customers among ids, in id order."""
    asked = np.unique(np.fromiter(ids, np.int64, len(ids)))
    rows = snap.rows_of(asked)
    known = rows >= 0
    asked, rows = asked[known], rows[known]
    live = snap.alive[rows]
    return asked[live], rows[live]


def _flags(snap: _Snapshot, rows: np.ndarray) -> np.ndarray:
    flag = np.zeros(len(snap), bool)
    flag[rows] = True
    return flag


def order_days(
    session: Session, *, workspace_id: int, ids: Collection[int]
) -> list[tuple[int, str | None, int | None, int | None, int | None]]:
    """(id, stored lifecycle, first, last, latest before last) order days of the live customers among ids,
    from the snapshot: the days of their order activity with a count, plus the days of their first and last
    order (lifecycle.refresh_lifecycle's inputs); the days are None for customers without orders."""
    with _current(session, workspace_id) as snap:
        asked, rows = _live_rows(snap, ids)
        buyer = rows[snap.numbers["orders_count"][rows] > 0]
        flag = _flags(snap, buyer)
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
    with _current(session, workspace_id) as snap:
        _, rows = _live_rows(snap, ids)
        flag = _flags(snap, rows)
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
    with _current(session, workspace_id) as snap:
        _, rows = _live_rows(snap, ids)
        code, cust, weight = snap.tags.of_customers(_flags(snap, rows), ["weight"])
        tag_of = np.full(len(snap.tag_code) + 1, -1, np.int64)
        for tag_id in tag_ids:
            if tag_id in snap.tag_code:
                tag_of[snap.tag_code[tag_id]] = tag_id
        tag = tag_of[code]
        keep = tag >= 0
        who, tag, weight = snap.ids[cust[keep]].tolist(), tag[keep].tolist(), weight[keep].tolist()
        return [(int(c), int(t), float(w)) for c, t, w in zip(who, tag, weight, strict=True)]


def catch_up(session: Session, *, workspace_id: int, log: Sequence[tuple[int, ...]] = ()) -> None:
    """Bring the workspace's snapshot up to date now (before the transaction writes, reloads read over
    pooled connections in parallel; afterwards they must go through the session).

    log: (id, customer id, …) change-log rows the caller is about to act on. Those the snapshot has not
    applied (a transaction that committed an older id late, after the last re-read) are reloaded now.
    """
    with _current(session, workspace_id) as snap:
        missed = [r for r in log if r[0] not in snap.seen and r[0] <= max(snap.top, snap.low_water)]
        if missed:
            _reload(snap, Bulk(session), workspace_id, {r[1] for r in missed})
            _note(snap, missed)
            if _has_writes(Bulk(session)):
                entry = _entry(session, workspace_id)
                session.info.setdefault(_TOUCHED, []).append((entry, snap, {r[1] for r in missed}))


def snapshot_info(session: Session, *, workspace_id: int) -> SnapshotInfo | None:
    """The cached snapshot of the session's database and workspace, as last brought up to date."""
    entry = _entry(session, workspace_id)
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
