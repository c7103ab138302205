"""A rule over a snapshot's rows as boolean masks, leaf by leaf (the semantics of rule_py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shequn.audience.engine.arrays import NULL_US, row_sums
from shequn.audience.engine.snapshot import Snapshot
from shequn.audience.rule_py import epoch_day
from shequn.audience.rules import FIELDS, activity_column, activity_key
from shequn.core.bulk import Bulk

_CMP: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "eq": np.equal,
    "ne": np.not_equal,
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}


def _us(at: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of an aware timestamp, exactly."""
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


class Evaluator:
    """One rule over the snapshot's rows (or some of them) as boolean masks, leaf by leaf."""

    def __init__(self, snap: Snapshot, bulk: Bulk, as_of: datetime, rows: np.ndarray | None) -> None:
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
            held = self.snap.lists[name].get(arg)
            found = np.zeros(self.size, bool) if held is None else self.pick(held)
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
            sums = self.pick(row_sums(cust, values, len(self.snap)))
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
