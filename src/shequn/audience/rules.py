"""The segment rule language: a JSON tree of and/or/not over customer attributes, tags, purchases,
tracked events and other segments, and its validation with field-level errors.

A rule is plain JSON so it can be stored, sent by the console's builder and diffed:

    {"type": "and", "rules": [
        {"type": "attr", "field": "rfm_group", "op": "in", "value": ["important_value"]},
        {"type": "tag", "tag_id": 3, "op": "has"},
        {"type": "event", "event": "share", "days": 30, "op": "gte", "value": 3},
        {"type": "purchase", "category": "绿茶", "days": 90, "metric": "amount", "op": "gte", "value": 10000}]}

Three evaluators implement it and are property-tested against each other: rule_sql (parameterised SQL
on SQLite and PostgreSQL), rule_py (a plain-Python reference) and engine (numpy, for full refreshes).

Semantics shared by all three, chosen so no leaf is ever "unknown" (SQL NULL) and `not` is plain
negation: a comparison on a missing (NULL) attribute is false, except ne / not_in / is_not_set, which
are true; purchase and event counts over a window treat "no activity" as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shequn.core.errors import ValidationFailed

MAX_DEPTH = 6
MAX_NODES = 100
MAX_LIST = 1000
MAX_DAYS = 3650
MAX_INT = 2**62

FieldType = Literal["string", "number", "date", "list"]


@dataclass(frozen=True)
class Field:
    """A customer attribute a rule may test: its type and whether it may be NULL."""

    type: FieldType
    nullable: bool = False
    choices: tuple[str, ...] = ()


LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed", "won_back")
RFM_GROUPS = (
    "important_value",
    "important_develop",
    "important_keep",
    "important_retain",
    "general_value",
    "general_develop",
    "general_keep",
    "general_retain",
)

# Column names on customers; amounts are integer fen, dates are UTC timestamps.
FIELDS: dict[str, Field] = {
    "gender": Field("string"),
    "province": Field("string"),
    "city": Field("string"),
    "rfm_group": Field("string", nullable=True, choices=RFM_GROUPS),
    "lifecycle": Field("string", nullable=True, choices=LIFECYCLE_STAGES),
    "orders_count": Field("number"),
    "total_spent": Field("number"),
    "avg_order_value": Field("number"),
    "followers_total": Field("number"),
    "influence": Field("number"),
    "r_score": Field("number", nullable=True),
    "f_score": Field("number", nullable=True),
    "m_score": Field("number", nullable=True),
    "first_order_at": Field("date", nullable=True),
    "last_order_at": Field("date", nullable=True),
    "created_at": Field("date"),
    "platforms": Field("list"),
}

OPS: dict[FieldType, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "not_in", "is_set", "is_not_set"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"),
    "date": ("within_days", "before_days", "is_set", "is_not_set"),
    "list": ("contains", "not_contains"),
}
COUNT_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
TAG_OPS = ("has", "not_has", "weight_gte")
SEGMENT_OPS = ("in", "not_in")
ACTIVITY_KINDS = ("order", "category", "product", "event")


class RuleError(Exception):
    """Collects {field, code, message} problems while walking a rule."""


@dataclass
class RuleRefs:
    """What a rule points at outside itself (checked against the database by the caller)."""

    tag_ids: dict[int, str]  # id → JSON path of the first leaf naming it (for field-level errors)
    segment_ids: dict[int, str]


class _Checker:
    """Walks a rule tree once, collecting every problem with its JSON path."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []
        self.nodes = 0
        self.refs = RuleRefs({}, {})

    def fail(self, path: str, code: str, message: str) -> None:
        self.errors.append({"field": path, "code": code, "message": message})

    def node(self, node: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(path, "rule_too_large", f"a rule may have at most {MAX_NODES} conditions")
            return
        if depth > MAX_DEPTH:
            self.fail(path, "rule_too_deep", f"rules may be nested at most {MAX_DEPTH} levels deep")
            return
        if not isinstance(node, dict):
            self.fail(path, "rule_not_object", "each rule must be a JSON object")
            return
        kind = node.get("type")
        check = {
            "and": self.group,
            "or": self.group,
            "not": self.negation,
            "attr": self.attr,
            "tag": self.tag,
            "purchase": self.activity,
            "event": self.activity,
            "segment": self.segment,
        }.get(kind if isinstance(kind, str) else "")
        if check is None:
            self.fail(f"{path}.type", "unknown_rule_type", f"unknown rule type {kind!r}")
            return
        check(node, path, depth)

    def keys(self, node: dict[str, Any], path: str, allowed: set[str]) -> None:
        for key in node:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown_key", f"unknown key {key!r}")

    def group(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.keys(node, path, {"type", "rules"})
        rules = node.get("rules")
        if not isinstance(rules, list) or not rules:
            # An empty group would match everyone (and) or no one (or): never guess.
            self.fail(f"{path}.rules", "empty_group", "a group needs at least one rule")
            return
        for i, child in enumerate(rules):
            self.node(child, f"{path}.rules[{i}]", depth + 1)

    def negation(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.keys(node, path, {"type", "rule"})
        if "rule" not in node:
            self.fail(f"{path}.rule", "required", "not needs a rule")
            return
        self.node(node["rule"], f"{path}.rule", depth + 1)

    def op(self, node: dict[str, Any], path: str, allowed: tuple[str, ...]) -> str | None:
        op = node.get("op")
        if op not in allowed:
            self.fail(f"{path}.op", "bad_operator", f"operator must be one of {', '.join(allowed)}, not {op!r}")
            return None
        return str(op)

    def integer(self, node: dict[str, Any], key: str, path: str, lo: int, hi: int) -> None:
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(f"{path}.{key}", "bad_value", f"{key} must be a whole number from {lo} to {hi}")

    def attr(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.keys(node, path, {"type", "field", "op", "value"})
        name = node.get("field")
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            self.fail(f"{path}.field", "unknown_field", f"unknown field {name!r}; known: {', '.join(FIELDS)}")
            return
        op = self.op(node, path, OPS[spec.type])
        if op is None or op in ("is_set", "is_not_set"):
            return
        value = node.get("value")
        vpath = f"{path}.value"
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                self.fail(vpath, "bad_value", f"{op} needs a list of 1 to {MAX_LIST} values")
            elif not all(isinstance(v, str) and len(v) <= 100 for v in value):
                self.fail(vpath, "bad_value", "values must be text of at most 100 characters")
        elif op == "between":
            if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)):
                self.fail(vpath, "bad_value", "between needs [low, high] whole numbers")
            elif value[0] > value[1]:
                self.fail(vpath, "bad_value", "between needs low ≤ high")
        elif spec.type == "number":
            if not _is_int(value):
                self.fail(vpath, "bad_value", f"{name} compares with a whole number (money in fen)")
        elif spec.type == "date":
            self.integer(node, "value", path, 0, MAX_DAYS)
        elif not isinstance(value, str) or len(value) > 100:
            self.fail(vpath, "bad_value", "value must be text of at most 100 characters")

    def tag(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.keys(node, path, {"type", "tag_id", "op", "value"})
        op = self.op(node, path, TAG_OPS)
        tag_id: Any = node.get("tag_id")
        if not _is_int(tag_id) or tag_id <= 0:
            self.fail(f"{path}.tag_id", "bad_value", "tag_id must be a tag's id")
        else:
            self.refs.tag_ids.setdefault(tag_id, f"{path}.tag_id")
        if op == "weight_gte":
            value = node.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1000:
                self.fail(f"{path}.value", "bad_value", "weight_gte needs a number from 0 to 1000")

    def activity(self, node: dict[str, Any], path: str, depth: int) -> None:
        is_event = node["type"] == "event"
        allowed = {"type", "days", "op", "value"} | ({"event"} if is_event else {"category", "product_id", "metric"})
        self.keys(node, path, allowed)
        if is_event:
            name = node.get("event")
            if not isinstance(name, str) or not 1 <= len(name) <= 64:
                self.fail(f"{path}.event", "bad_value", "event must be an event name of 1 to 64 characters")
        else:
            category, product = node.get("category"), node.get("product_id")
            if category is not None and (not isinstance(category, str) or not 1 <= len(category) <= 64):
                self.fail(f"{path}.category", "bad_value", "category must be text of 1 to 64 characters")
            if product is not None and (not _is_int(product) or product <= 0):
                self.fail(f"{path}.product_id", "bad_value", "product_id must be a product's id")
            if category is not None and product is not None:
                self.fail(f"{path}.product_id", "bad_value", "give a category or a product, not both")
            if node.get("metric", "count") not in ("count", "amount"):
                self.fail(f"{path}.metric", "bad_value", "metric must be count or amount (fen)")
        if node.get("days") is not None:
            self.integer(node, "days", path, 1, MAX_DAYS)
        self.op(node, path, COUNT_OPS)
        self.integer(node, "value", path, 0, MAX_INT)

    def segment(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.keys(node, path, {"type", "segment_id", "op"})
        self.op(node, path, SEGMENT_OPS)
        sid: Any = node.get("segment_id")
        if not _is_int(sid) or sid <= 0:
            self.fail(f"{path}.segment_id", "bad_value", "segment_id must be a segment's id")
        else:
            self.refs.segment_ids.setdefault(sid, f"{path}.segment_id")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT


def check_rule(rule: Any, path: str = "rule") -> RuleRefs:
    """Validate a rule's shape; raise ValidationFailed listing every problem, else return its references."""
    checker = _Checker()
    checker.node(rule, path, 1)
    if checker.errors:
        raise ValidationFailed(details=checker.errors)
    return checker.refs


def activity_key(node: dict[str, Any]) -> tuple[str, str]:
    """(kind, ref) of the customer_activity rows a purchase or event leaf sums."""
    if node["type"] == "event":
        return "event", str(node["event"])
    if node.get("product_id") is not None:
        return "product", str(node["product_id"])
    if node.get("category") is not None:
        return "category", str(node["category"])
    return "order", ""


def activity_column(node: dict[str, Any]) -> str:
    """Which activity column a leaf sums: count, or amount for purchase metric amount."""
    return "amount" if node["type"] == "purchase" and node.get("metric") == "amount" else "count"


def compare(op: str, left: float, right: float) -> bool:
    """The comparison a count/number operator names (shared by the Python and numpy evaluators)."""
    return {
        "eq": left == right,
        "ne": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


def walk(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a (valid) rule, depth first."""
    out = [rule]
    if rule["type"] in ("and", "or"):
        for child in rule["rules"]:
            out.extend(walk(child))
    elif rule["type"] == "not":
        out.extend(walk(rule["rule"]))
    return out
