"""Compile a segment rule to one parameterised SQL query (SQLAlchemy Core; no string splicing).

Every leaf is a plain predicate on customers or a semi-join (IN / NOT IN a grouped subquery), so the
same query runs on SQLite and PostgreSQL and no leaf ever evaluates to NULL (see rules.py).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, cast, column, exists, false, func, not_, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB

from shequn.audience.models import Customer, CustomerActivity, CustomerTag, SegmentMember
from shequn.audience.rule_py import epoch_day
from shequn.audience.rules import FIELDS, activity_column, activity_key, compare

C = Customer.__table__.c
A = CustomerActivity.__table__.c
T = CustomerTag.__table__.c
M = SegmentMember.__table__.c


class _Compiler:
    """Turns one rule into a boolean SQL expression over customers."""

    def __init__(self, workspace_id: int, as_of: datetime, dialect: str, ids: Collection[int] | None) -> None:
        self.workspace_id = workspace_id
        self.as_of = as_of
        self.dialect = dialect
        self.ids = ids

    def node(self, rule: dict[str, Any]) -> ColumnElement[bool]:
        kind = rule["type"]
        if kind == "and":
            return and_(*(self.node(r) for r in rule["rules"]))
        if kind == "or":
            return or_(*(self.node(r) for r in rule["rules"]))
        if kind == "not":
            return not_(self.node(rule["rule"]))
        return {"attr": self.attr, "tag": self.tag, "purchase": self.activity, "event": self.activity}.get(
            kind, self.segment
        )(rule)

    def attr(self, rule: dict[str, Any]) -> ColumnElement[bool]:
        name, op = rule["field"], rule["op"]
        value: Any = rule.get("value")
        spec = FIELDS[name]
        col = C[name]
        if op == "is_set":
            return col.is_not(None)
        if op == "is_not_set":
            return col.is_(None)
        if spec.type == "list":
            return self.contains(col, value) if op == "contains" else not_(self.contains(col, value))
        cond: ColumnElement[bool]
        if op == "within_days":
            cond = col >= self.as_of - timedelta(days=value)
        elif op == "before_days":
            cond = col < self.as_of - timedelta(days=value)
        elif op == "between":
            cond = col.between(value[0], value[1])
        elif op in ("in", "not_in"):
            cond = col.in_(value) if op == "in" else col.not_in(value)
        else:
            cond = {
                "eq": col == value,
                "ne": col != value,
                "gt": col > value,
                "gte": col >= value,
                "lt": col < value,
                "lte": col <= value,
            }[op]
        if not spec.nullable:
            return cond
        # NULL never compares; ne / not_in count a missing value as "not equal".
        return or_(col.is_(None), cond) if op in ("ne", "not_in") else and_(col.is_not(None), cond)

    def contains(self, col: Any, value: str) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            return cast(col, JSONB).op("@>")(cast(json.dumps([value]), JSONB))
        each = func.json_each(col).table_valued("value")
        return exists(select(1).select_from(each).where(column("value") == value))

    def restrict(self, customer_col: Any) -> list[ColumnElement[bool]]:
        return [customer_col.in_(self.ids)] if self.ids is not None else []

    def tag(self, rule: dict[str, Any]) -> ColumnElement[bool]:
        where = [T.tag_id == rule["tag_id"], *self.restrict(T.customer_id)]
        if rule["op"] == "weight_gte":
            where.append(T.weight >= rule["value"])
        tagged = select(T.customer_id).where(*where)
        return C.id.not_in(tagged) if rule["op"] == "not_has" else C.id.in_(tagged)

    def activity(self, rule: dict[str, Any]) -> ColumnElement[bool]:
        kind, ref = activity_key(rule)
        # Restricted to ids (already scoped to the workspace by the outer query), the subquery leaves out
        # workspace_id so the planner uses the (customer_id, kind, ref, day) key, not the workspace index.
        scope = self.restrict(A.customer_id) if self.ids is not None else [A.workspace_id == self.workspace_id]
        where = [A.kind == kind, A.ref == ref, *scope]
        if rule.get("days") is not None:
            today = epoch_day(self.as_of)
            where += [A.day > today - rule["days"], A.day <= today]
        total = func.sum(A[activity_column(rule)])
        op, value = rule["op"], rule["value"]
        test = {
            "eq": total == value,
            "ne": total != value,
            "gt": total > value,
            "gte": total >= value,
            "lt": total < value,
            "lte": total <= value,
        }[op]
        grouped = select(A.customer_id).where(*where).group_by(A.customer_id)
        zero_matches = compare(op, 0, value)
        if zero_matches:
            # Customers with no activity in the window match, so select who does NOT match instead.
            return C.id.not_in(grouped.having(not_(test)))
        return C.id.in_(grouped.having(test))

    def segment(self, rule: dict[str, Any]) -> ColumnElement[bool]:
        members = select(M.customer_id).where(M.segment_id == rule["segment_id"], *self.restrict(M.customer_id))
        return C.id.in_(members) if rule["op"] == "in" else C.id.not_in(members)


def condition(
    rule: dict[str, Any], *, workspace_id: int, as_of: datetime, dialect: str, ids: Collection[int] | None = None
) -> ColumnElement[bool]:
    """The rule as a boolean expression over the customers table."""
    return _Compiler(workspace_id, as_of, dialect, ids).node(rule)


def members_query(
    rule: dict[str, Any], *, workspace_id: int, as_of: datetime, dialect: str, ids: Collection[int] | None = None
) -> Select[Any]:
    """SELECT the ids of live customers (optionally only among ids) that the rule matches."""
    where = [C.workspace_id == workspace_id, C.merged_into_id.is_(None)]
    if ids is not None:
        where.append(C.id.in_(ids) if ids else false())
    cond = condition(rule, workspace_id=workspace_id, as_of=as_of, dialect=dialect, ids=ids)
    return select(C.id).where(*where, cond if cond is not None else true())
