"""A plain-Python evaluation of segment rules: the reference the SQL and numpy evaluators are tested against."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shequn.audience.rules import FIELDS, activity_column, activity_key, compare


def epoch_day(at: datetime) -> int:
    """Days since 1970-01-01 (UTC) of an aware timestamp: the day column of customer_activity."""
    return int(at.timestamp() // 86400)


@dataclass
class World:
    """Everything a rule can read, as plain Python data."""

    customers: dict[int, dict[str, Any]]  # live customers: id → attributes named as in rules.FIELDS
    tags: dict[int, dict[int, float]] = field(default_factory=dict)  # tag id → {customer id: weight}
    # (customer id, kind, ref, day, count, amount)
    activity: list[tuple[int, str, str, int, int, int]] = field(default_factory=list)
    segments: dict[int, set[int]] = field(default_factory=dict)  # segment id → member ids


def window_sums(world: World, node: dict[str, Any], as_of: datetime) -> dict[int, int]:
    """customer id → summed count or amount of the leaf's activity inside its window."""
    kind, ref = activity_key(node)
    use_count = activity_column(node) == "count"
    days = node.get("days")
    today = epoch_day(as_of)
    sums: dict[int, int] = defaultdict(int)
    for row in world.activity:
        if row[1] != kind or row[2] != ref:
            continue
        if days is not None and not today - days < row[3] <= today:
            continue
        sums[row[0]] += row[4] if use_count else row[5]
    return sums


def _attr(node: dict[str, Any], value: Any, as_of: datetime) -> bool:
    op = node["op"]
    arg: Any = node.get("value")
    if op == "is_set":
        return value is not None
    if op == "is_not_set":
        return value is None
    if FIELDS[node["field"]].type == "list":
        found = arg in (value or [])
        return found if op == "contains" else not found
    if value is None:
        return op in ("ne", "not_in")
    if op == "in":
        return value in arg
    if op == "not_in":
        return value not in arg
    if op == "between":
        return bool(arg[0] <= value <= arg[1])
    if op == "within_days":
        return bool(value >= as_of - timedelta(days=arg))
    if op == "before_days":
        return bool(value < as_of - timedelta(days=arg))
    return compare(op, value, arg)


def evaluate(rule: dict[str, Any], world: World, as_of: datetime) -> set[int]:
    """The ids of live customers the (validated) rule matches."""
    everyone = set(world.customers)
    kind = rule["type"]
    if kind == "and":
        out = set(everyone)
        for child in rule["rules"]:
            out &= evaluate(child, world, as_of)
        return out
    if kind == "or":
        out = set()
        for child in rule["rules"]:
            out |= evaluate(child, world, as_of)
        return out
    if kind == "not":
        return everyone - evaluate(rule["rule"], world, as_of)
    if kind == "attr":
        return {cid for cid, attrs in world.customers.items() if _attr(rule, attrs.get(rule["field"]), as_of)}
    if kind == "tag":
        weights = world.tags.get(rule["tag_id"], {})
        if rule["op"] == "weight_gte":
            return {cid for cid, w in weights.items() if w >= rule["value"] and cid in everyone}
        tagged = everyone & set(weights)
        return tagged if rule["op"] == "has" else everyone - tagged
    if kind in ("purchase", "event"):
        sums = window_sums(world, rule, as_of)
        return {cid for cid in everyone if compare(rule["op"], sums.get(cid, 0), rule["value"])}
    members = everyone & world.segments.get(rule["segment_id"], set())
    return members if rule["op"] == "in" else everyone - members
