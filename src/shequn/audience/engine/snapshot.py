"""One workspace's customers, tags and activity as arrays, indexed by row."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import BigInteger

from shequn.audience.engine.arrays import ALL_DAYS, NO_DAYS, NULL_US, Grouped, fit
from shequn.audience.engine.reads import DATES, LISTS, NUMBERS, STRINGS, Facts, People
from shequn.audience.models import Customer
from shequn.audience.rules import FIELDS

DENSE_FACTOR = 8  # an id → row table may span this many ids per customer (int32 each)
WIDE = frozenset(n for n in NUMBERS if isinstance(Customer.__table__.c[n].type, BigInteger))  # int64 columns


class IdIndex:
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


class Snapshot:
    """One workspace's customers, tags and activity as arrays, indexed by row."""

    def __init__(self, people: People, facts: Facts) -> None:
        order = np.argsort(people.ids, kind="stable")
        self.ids = people.ids[order]
        self.alive = people.live[order]
        self.vocab: dict[str, dict[str, int]] = {name: {} for name in STRINGS}
        self.strings = {name: self._encode(name, people.strings[name])[order] for name in STRINGS}
        self.numbers = {name: self._narrow(name, people.numbers[name][0][order]) for name in NUMBERS}
        self.nulls = {name: self._nulls(people, name)[order] for name in NUMBERS if FIELDS[name].nullable}
        self.dates = {name: people.dates[name][order] for name in DATES}
        self.index = IdIndex(self.ids)
        self.max_id = int(self.ids.max(initial=0))
        self.lists: dict[str, dict[str, np.ndarray]] = {name: {} for name in LISTS}
        self._set_lists(np.zeros(0, np.int64), people)
        self.tag_code: dict[int, int] = {}
        self.act_code: dict[tuple[str, str], int] = {}
        tag_rows, tag_code, tag_weight = self._tag_rows(facts)
        self.tags = Grouped(tag_code, {"cust": tag_rows, "weight": tag_weight})
        act = self._activity_rows(facts)
        self.activity = Grouped(act[0], {"cust": act[1], "day": act[2], "count": act[3], "amount": act[4]})
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
        return values.astype(np.int64) if name in WIDE else fit(values)

    @staticmethod
    def _nulls(people: People, name: str) -> np.ndarray:
        values, nulls = people.numbers[name]
        return np.zeros(len(values), bool) if nulls is None else nulls

    def _set_lists(self, rows: np.ndarray, people: People) -> None:
        """Clear list elements of rows, then set those people hold (their rows must exist)."""
        for name, elements in self.lists.items():
            for held in elements.values():
                held[rows] = False
            for item, ids in people.lists[name].items():
                if item not in elements:
                    elements[item] = np.zeros(len(self.alive), bool)
                at = self.rows_of(ids)
                elements[item][at[at >= 0]] = True

    def _tag_rows(self, facts: Facts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.rows_of(facts.tag_cust)
        known = rows >= 0
        codes = np.array([self.tag_code.setdefault(t, len(self.tag_code)) for t in facts.tag_id.tolist()], np.int32)
        return rows[known].astype(np.int32), codes[known], facts.weight[known]

    def _activity_rows(self, facts: Facts) -> tuple[np.ndarray, ...]:
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
            fit(facts.count[known]),
            fit(facts.amount[known]),
        )

    # reloading

    def reload(
        self,
        people: People,
        facts: Facts,
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
            self.tags.drop(flags(self, at[at >= 0]))
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
        return column if fit(values).dtype.itemsize <= column.dtype.itemsize else column.astype(np.int64)

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
        self.index = IdIndex(self.ids)  # linear in customers: a few ms per sync that brings newcomers
        self.max_id = max(self.max_id, int(ids.max()))


def flags(snap: Snapshot, rows: np.ndarray) -> np.ndarray:
    flag = np.zeros(len(snap), bool)
    flag[rows] = True
    return flag
