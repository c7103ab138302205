"""What the segment engine reads from the database: customers, tags and activity, as arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shequn.audience.engine.arrays import ALL_DAYS, NO_DAYS, NULL_US, pg_array
from shequn.audience.rules import FIELDS
from shequn.core.bulk import Bulk

PG_READERS = 2  # connections reading customer_activity in parallel during a PostgreSQL build
PG_CHUNK = 1_000_000  # activity ids per array query (bounds the server's memory per query)
STRINGS = tuple(n for n, f in FIELDS.items() if f.type == "string")
NUMBERS = tuple(n for n, f in FIELDS.items() if f.type == "number")
DATES = tuple(n for n, f in FIELDS.items() if f.type == "date")
LISTS = tuple(n for n, f in FIELDS.items() if f.type == "list")


@dataclass
class People:
    """Customer rows read from the database, column by column."""

    ids: np.ndarray  # int64
    live: np.ndarray  # bool: merged_into_id IS NULL
    strings: dict[str, tuple[list[str | None], np.ndarray]]  # name → (distinct values, index per customer)
    numbers: dict[str, tuple[np.ndarray, np.ndarray | None]]  # name → (int64 values, NULL mask if nullable)
    dates: dict[str, np.ndarray]  # int64 µs, NULL_US for NULL
    lists: dict[str, dict[str, np.ndarray]]  # list field → element → ids of the customers holding it


@dataclass
class Facts:
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


def date_sql(col: str) -> str:
    """A SQLite timestamp column as integer microseconds since 1970 (NULL stays NULL)."""
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds, then the digits after the point.
    return f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + CAST(substr({col} || '000000', 21, 6) AS INTEGER))"


def strings_of(value: Any) -> list[str]:
    """The text elements of a JSON array (other JSON never equals a rule's text argument)."""
    items = orjson.loads(value) if isinstance(value, str | bytes) else value
    return [p for p in items if isinstance(p, str)] if isinstance(items, list) else []


def holders(ids: Sequence[int], values: Sequence[Any]) -> dict[str, np.ndarray]:
    """element → ids of the customers whose JSON list holds it."""
    out: dict[str, list[int]] = {}
    for cid, value in zip(ids, values, strict=True):
        for item in strings_of(value):
            out.setdefault(item, []).append(cid)
    return {item: np.array(held, np.int64) for item, held in out.items()}


def dictionary(values: Sequence[str | None]) -> tuple[list[str | None], np.ndarray]:
    """(distinct values, int32 index of each value among them)."""
    index: dict[str | None, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], np.int32)
    return list(index), codes


def people_from_rows(rows: Sequence[Sequence[Any]]) -> People:
    """Rows of customer_sql, as columns."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * (2 + len(STRINGS) + len(NUMBERS) + len(DATES) + len(LISTS))
    at = 2
    strings = {name: dictionary(cols[at + i]) for i, name in enumerate(STRINGS)}
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
    return People(
        ids=np.array(cols[0], np.int64),
        live=np.array(cols[1], bool),
        strings=strings,
        numbers=numbers,
        dates=dates,
        lists={name: holders(cols[0], cols[at + i]) for i, name in enumerate(LISTS)},
    )


def customer_sql(pg: bool) -> str:
    """SELECT of what rules read of a customer, for `WHERE workspace_id = ? AND <more>`."""
    cols = ["id", "CASE WHEN merged_into_id IS NULL THEN 1 ELSE 0 END", *STRINGS, *NUMBERS]
    if pg:
        cols += [f"CAST(EXTRACT(EPOCH FROM {name}) * 1000000 AS BIGINT)" for name in DATES]
        cols += [f"CAST({name} AS TEXT)" for name in LISTS]
    else:
        cols += [date_sql(name) for name in DATES]
        cols += list(LISTS)
    return f"SELECT {', '.join(cols)} FROM customers WHERE workspace_id = ? AND "


def read_people(bulk: Bulk, workspace_id: int, ids: Sequence[int] | None) -> People:
    """Customer rows: the live ones of the workspace, or these ids in any state."""
    if ids is None and bulk.pg:
        return read_people_pg(bulk, workspace_id)
    sql = customer_sql(bulk.pg)
    if ids is None:
        return people_from_rows(bulk.execute(sql + "merged_into_id IS NULL", [workspace_id]))
    return people_from_rows(bulk.select_in(sql + "id {in}", ids, [workspace_id]))


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


def from_groups(ids: np.ndarray, groups: Sequence[tuple[Any, bytes]]) -> tuple[list[str | None], np.ndarray]:
    """(value, ids holding it) groups as a dictionary over ids (a customer missing from the groups, one
    merged between the two statements, reads as NULL until its logged change reloads it)."""
    order = np.argsort(ids)
    codes = np.full(len(ids), -1, np.int32)
    values: list[str | None] = []
    for value, blob in groups:
        held = pg_array(blob, 8, ">i8")
        at = np.minimum(np.searchsorted(ids[order], held), max(len(ids) - 1, 0))
        found = ids[order][at] == held if len(ids) else np.zeros(len(held), bool)
        codes[order[at[found]]] = len(values)
        values.append(value)
    values.append(None)  # index -1
    return values, codes


def read_people_pg(bulk: Bulk, workspace_id: int) -> People:
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
        ids = pg_array(row.pop(0), 8, ">i8")
        # Strings travel once per distinct value (with the ids holding it), not once per customer.
        strings = {}
        for name in STRINGS:  # names come from rules.FIELDS
            cur.execute(_PG_GROUPS.format(name=name), (workspace_id,))
            strings[name] = from_groups(ids, cur.fetchall())
        lists = {}
        for name in LISTS:
            cur.execute(_PG_LIST.format(name=name), (workspace_id,))
            lists[name] = {str(item): pg_array(blob, 8, ">i8") for item, blob in cur.fetchall()}
    finally:
        cur.close()
    values = {name: pg_array(row.pop(0), 8, ">i8") for name in NUMBERS}
    nulls = {name: pg_array(row.pop(0), 1, "?") for name in nullable}
    dates = {}
    for name in DATES:
        raw = pg_array(row.pop(0), 8, ">i8")
        dates[name] = np.where(raw == np.iinfo(np.int64).min, NULL_US, raw + PG_EPOCH_US)
    numbers = {name: (values[name], nulls.get(name)) for name in NUMBERS}
    return People(ids, np.ones(len(ids), bool), strings, numbers, dates, lists)


def read_tags(bulk: Bulk, workspace_id: int, ids: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def read_facts(
    bulk: Bulk,
    workspace_id: int,
    ids: Sequence[int] | None,
    engine: Engine | None = None,
    since: Sequence[int] | None = None,
    tagged: Sequence[int] | None = None,
) -> Facts:
    """Tags and activity of the workspace (or of these customers: their activity from since[i] on, the
    tags of those among tagged, or of all when None)."""
    tags = read_tags(bulk, workspace_id, ids if tagged is None else tagged)
    if ids is None and bulk.pg:
        cust, code, keys, day, count, amount = read_activity_pg(bulk, workspace_id, engine)
        return Facts(*tags, cust, code, keys, day, count, amount)
    cust, pairs, day, count, amount = read_activity(bulk, workspace_id, ids, since)
    return Facts(*tags, cust, pairs, [], day, count, amount)


def by_day(ids: Sequence[int], since: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """(ids, first days) of the customers whose activity rows are to be read (NO_DAYS: none)."""
    if since is None:
        return list(ids), [ALL_DAYS] * len(ids)
    keep = [(c, d) for c, d in zip(ids, since, strict=True) if d != NO_DAYS]
    return [c for c, _ in keep], [d for _, d in keep]


def read_on_pool(
    engine: Engine,
    workspace_id: int,
    ids: list[int],
    known: dict[tuple[str, str], int],
    since: list[int],
    tagged: list[int],
) -> tuple[People, Facts]:
    """read_people and read_facts of these customers over three pooled PostgreSQL connections at once,
    activity (from since[i] on) as binary arrays with its (kind, ref) as codes of known (a new key comes
    as text)."""
    act_ids, act_since = by_day(ids, since)
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
        out: list[Any] = [pg_array(row[0], 8, ">i8"), pg_array(row[1], 4, ">i4"), pg_array(row[2], 4, ">i4")]
        out += [pg_array(row[3], 4, ">i4"), pg_array(row[4], 8, ">i8"), list(row[5] or [])]
        return out

    jobs: list[Callable[[Bulk], Any]] = [
        lambda b: (read_people(b, workspace_id, ids), read_tags(b, workspace_id, tagged)),
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
    facts = Facts(tag_cust, tag_id, weight, cust, code, every, day, count, amount)
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


def read_activity(
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
        for cid, first in zip(*by_day(ids, since), strict=True):
            groups.setdefault(first, []).append(cid)
        for first, group in groups.items():  # by customer only: see read_tags
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


def read_activity_pg(
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
        cust, pairs, day, count, amount = read_activity(bulk, workspace_id, None)
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
                packed = pg_array(row[1], 8, ">i8")
                out.append(
                    [
                        pg_array(row[0], 8, ">i8"),
                        (packed & 0xFFFFFFFF).astype(np.uint32).view(np.int32),
                        pg_array(row[2], 4, ">i4"),
                        pg_array(row[3], 8, ">i8"),
                        (packed >> 32).astype(np.int32),
                    ]
                )
        finally:
            c.close()
        return out

    chunks = parallel(bulk, engine, read, ranges)
    cust, day, count, amount, hashed = (np.concatenate([c[i] for c in chunks]) for i in range(5))
    order = np.argsort(hashes)
    at = np.minimum(np.searchsorted(hashes[order], hashed), max(len(hashes) - 1, 0))
    # A key first written after the skip scan: its customer's change is logged later, so it reloads then.
    known = hashes[order][at] == hashed if len(hashes) else np.zeros(len(hashed), bool)
    code = order[at[known]].astype(np.int32)
    return cust[known], code, keys, day[known], count[known], amount[known]


def parallel(
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
