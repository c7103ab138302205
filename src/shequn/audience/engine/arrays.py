"""Array helpers of the segment engine and the grouped rows (activity, tags) it keeps per customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Merge appended rows into the sorted base once dead + appended rows pass this share of it: a merge of
# 10M rows takes about a second, while a million unsorted rows add only a few ms to each leaf.
MERGE_SHARE = 0.1
NULL_US = np.iinfo(np.int64).min  # a NULL timestamp
EXACT_FLOAT = 2**53  # float64 sums of integers are exact below this
# A reload re-reads a customer's activity rows from a day on: ALL_DAYS for every row, NO_DAYS for none.
ALL_DAYS = -(2**31)
NO_DAYS = 2**31 - 1


def fit(values: np.ndarray) -> np.ndarray:
    """Integers as int32 when every value fits (memory), else int64."""
    if values.dtype == np.int32:
        return values
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    if len(values) == 0 or (int(values.min()) >= lo and int(values.max()) <= hi):
        return values.astype(np.int32)
    return values.astype(np.int64)


def sort_key(code: np.ndarray, day: np.ndarray | None) -> np.ndarray:
    """One int64 per row ordering rows by (code, day)."""
    key = code.astype(np.int64) << 32
    return key if day is None else key | (day.astype(np.int64) + 2**31)


def sort_order(code: np.ndarray, day: np.ndarray | None) -> np.ndarray:
    """A permutation sorting rows by (code, day)."""
    if len(code) and code.max() < 2**16 and (day is None or int(day.max()) - int(day.min()) < 2**16):
        # Two stable radix sorts (numpy sorts 16-bit keys in linear time) beat one int64 sort.
        order = np.arange(len(code)) if day is None else np.argsort((day - day.min()).astype(np.uint16), kind="stable")
        return order[np.argsort(code[order].astype(np.uint16), kind="stable")]
    return np.argsort(sort_key(code, day), kind="stable")


def row_sums(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """int64 total of values per customer row (0 for rows with none)."""
    if len(values) == 0:
        return np.zeros(n, np.int64)
    bound = max(-int(values.min()), int(values.max()))  # np.abs would overflow on the smallest int
    if bound * len(values) < EXACT_FLOAT:
        return np.bincount(rows, weights=values, minlength=n).astype(np.int64)
    out = np.zeros(n, np.int64)
    np.add.at(out, rows, values.astype(np.int64))
    return out


def pg_array(blob: bytes | None, width: int, dtype: str) -> np.ndarray:
    """The elements of a PostgreSQL binary one-dimensional array without NULLs (array_send)."""
    if blob is None:
        return np.zeros(0, np.dtype(dtype).newbyteorder("="))
    n = (len(blob) - 20) // (4 + width)  # 20-byte header, then (length, value) per element
    rec = np.frombuffer(blob, np.dtype([("len", ">i4"), ("v", dtype)]), count=n, offset=20)
    return rec["v"].astype(np.dtype(dtype).newbyteorder("="))


# --- grouped rows (activity, tags) ------------------------------------------------------------------


class Grouped:
    """Rows keyed by a small integer code: a base sorted by (code, day) with per-code offsets, and a
    tail of rows appended since, unsorted. Rows of reloaded customers are masked until the next merge."""

    def __init__(self, code: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        order = sort_order(code, cols.get("day"))
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
        self.install(gen, merge_view(view))

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


def merge_view(view: tuple[Any, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(sorted base, offsets) of Grouped.view() with the tail folded in and masked rows left out."""
    offsets, base, live, tail_code, tail = view
    n_codes = max(len(offsets) - 1, int(tail_code.max(initial=-1)) + 1)
    base_code = np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets))
    if live is not None:
        base_code = base_code[live]
        base = {name: values[live] for name, values in base.items()}
    order = sort_order(tail_code, tail.get("day"))
    tail_code = tail_code[order]
    tail = {name: values[order] for name, values in tail.items()}
    at = np.searchsorted(sort_key(base_code, base.get("day")), sort_key(tail_code, tail.get("day")), "right")
    out = {}
    for name, values in base.items():
        extra = tail[name]
        kind = np.promote_types(values.dtype, fit(extra).dtype if extra.dtype.kind == "i" else extra.dtype)
        out[name] = np.insert(values.astype(kind, copy=False), at, extra)
    codes = np.insert(base_code, at, tail_code)
    return out, np.searchsorted(codes, np.arange(n_codes + 1))
