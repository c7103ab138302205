"""The numpy engine against the Python reference and the compiled SQL, on SQLite and PostgreSQL: random
customers (with NULLs), tags, activity and rule trees, inserted for real; then random changes that the
cached snapshot must pick up from the change log without rebuilding."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from shequn.audience import activity, engine, segments
from shequn.audience.activity import ActivityRow
from shequn.audience.engine import arrays as engine_arrays
from shequn.audience.engine import cache as engine_cache
from shequn.audience.models import (
    AudienceSettings,
    Customer,
    CustomerActivity,
    CustomerChange,
    CustomerTag,
    Segment,
    SegmentChange,
    SegmentMember,
    SegmentSize,
    Tag,
)
from shequn.audience.rule_py import World, epoch_day
from shequn.audience.rule_py import evaluate as evaluate_py
from shequn.audience.rules import COUNT_OPS, FIELDS, LIFECYCLE_STAGES, OPS, RFM_GROUPS, check_rule, walk
from tests.conftest import Tenant

AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = epoch_day(AS_OF)
STRING_POOL: dict[str, list[str | None]] = {
    "gender": ["", "f", "m"],
    "province": ["浙江", "上海", ""],
    "city": ["杭州", "上海", "宁波"],
    "rfm_group": [None, *RFM_GROUPS[:3]],
    "lifecycle": [None, *LIFECYCLE_STAGES[:3]],
}
NUMBER_POOL = [0, 1, 2, 3, 5, 100, 9_999, 10_000, 2**31 - 1]
MONEY_POOL = [*NUMBER_POOL, 2**40, 2**62]
DAY_POOL = [0, 1, 7, 30, 31, 90, 365]
PLATFORMS = ["weibo", "douyin", "tmall"]
EVENTS = ["share", "like", "view"]
CATEGORIES = ["绿茶", "红茶"]
PRODUCTS = [11, 12]
AMOUNTS = [0, 1, 5_000, 10_000, 2**40]


@pytest.fixture(autouse=True)
def _no_after_commit_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The change log stays; the jobs it signals do not run (they recompute lifecycle and rule tags from
    the real date, which would rewrite the generated features under the reference's feet)."""
    monkeypatch.setattr(activity, "send_on_commit", lambda *args, **kwargs: None)


# --- the generated world --------------------------------------------------------------------------


def _date(days: int, seconds: int) -> datetime:
    """A timestamp days (and seconds) before AS_OF: whole days hit within/before boundaries exactly."""
    return AS_OF - timedelta(days=days, seconds=seconds, microseconds=seconds * 7 % 1_000_000)


def _number(name: str) -> st.SearchStrategy[int | None]:
    if name in ("r_score", "f_score", "m_score"):
        return st.one_of(st.none(), st.integers(1, 5))
    pool = MONEY_POOL if name in engine.WIDE else NUMBER_POOL
    return st.sampled_from(pool)


def _maybe_date(name: str) -> st.SearchStrategy[datetime | None]:
    when = st.builds(_date, st.sampled_from([-1, *DAY_POOL, 400]), st.sampled_from([0, 0, 1, 3_600]))
    return st.one_of(st.none(), when) if FIELDS[name].nullable else when


person = st.fixed_dictionaries(
    {
        **{name: st.sampled_from(pool) for name, pool in STRING_POOL.items()},
        **{name: _number(name) for name, f in FIELDS.items() if f.type == "number"},
        **{name: _maybe_date(name) for name, f in FIELDS.items() if f.type == "date"},
        "platforms": st.lists(st.sampled_from(PLATFORMS), max_size=3, unique=True),
    }
)
activity_key = st.one_of(
    st.tuples(st.just("event"), st.sampled_from(EVENTS)),
    st.tuples(st.just("order"), st.just("")),
    st.tuples(st.just("category"), st.sampled_from(CATEGORIES)),
    st.tuples(st.just("product"), st.sampled_from([str(p) for p in PRODUCTS])),
)
# (customer index, kind/ref, days before today (negative: future), count, amount)
WINDOWS = [1, 7, 30, 60]
# Days before today, crowded around the window edges (today - days is outside, today is inside).
AGO = [-1, 0, 1, 2, 6, 7, 8, 29, 30, 31, 59, 60, 61, 200]
activity_row = st.tuples(
    st.integers(0, 11), activity_key, st.sampled_from(AGO), st.integers(0, 4), st.sampled_from(AMOUNTS)
)
tag_row = st.tuples(st.integers(0, 11), st.sampled_from([0, 1]), st.sampled_from([0.5, 1.0, 1.5, 3.0]))


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["attr", "attr", "attr", "tag", "event", "purchase", "segment"]))
    if kind == "attr":
        # NULL handling is where evaluators differ most: nullable fields come up twice as often.
        name = draw(st.sampled_from([*FIELDS, *(n for n, f in FIELDS.items() if f.nullable)]))
        spec = FIELDS[name]
        op = draw(st.sampled_from(OPS[spec.type]))
        node: dict[str, Any] = {"type": "attr", "field": name, "op": op}
        if op in ("is_set", "is_not_set"):
            return node
        if spec.type == "list":
            node["value"] = draw(st.sampled_from([*PLATFORMS, "xiaohongshu"]))
        elif spec.type == "string":
            pool = [v for v in STRING_POOL[name] if v is not None] + ["absent"]
            if op in ("in", "not_in"):
                node["value"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
            else:
                node["value"] = draw(st.sampled_from(pool))
        elif spec.type == "date":
            node["value"] = draw(st.sampled_from(DAY_POOL))
        elif op == "between":
            node["value"] = sorted(draw(st.lists(st.sampled_from(MONEY_POOL), min_size=2, max_size=2)))
        else:
            node["value"] = draw(st.sampled_from([0, 1, 3, 5, 10_000, 2**31 - 1, 2**40, 2**62, -1]))
        return node
    if kind == "tag":
        node = {
            "type": "tag",
            "tag_id": draw(st.sampled_from([0, 1, 2])),
            "op": draw(st.sampled_from(["has", "not_has", "weight_gte"])),
        }
        if node["op"] == "weight_gte":
            node["value"] = draw(st.sampled_from([0, 1, 1.5, 2]))
        return node  # tag_id is an index into the workspace's tags until _bind
    if kind == "segment":
        return {"type": "segment", "segment_id": 0, "op": draw(st.sampled_from(["in", "not_in"]))}
    node = {"type": kind, "op": draw(st.sampled_from(COUNT_OPS))}
    days = draw(st.sampled_from([None, *WINDOWS]))
    if days is not None:
        node["days"] = days
    if kind == "event":
        node["event"] = draw(st.sampled_from([*EVENTS, "never"]))
        node["value"] = draw(st.integers(0, 6))
        return node
    target = draw(st.sampled_from(["order", "category", "product"]))
    if target == "category":
        node["category"] = draw(st.sampled_from([*CATEGORIES, "白茶"]))
    elif target == "product":
        node["product_id"] = draw(st.sampled_from([*PRODUCTS, 99]))
    metric = draw(st.sampled_from(["count", "amount"]))
    node["metric"] = metric
    node["value"] = draw(st.sampled_from(AMOUNTS)) if metric == "amount" else draw(st.integers(0, 6))
    return node


rules = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda rs: {"type": "and", "rules": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda rs: {"type": "or", "rules": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda r: {"type": "not", "rule": r}, inner),
    ),
    max_leaves=6,
)


@dataclass
class Model:
    """The generated data as the reference sees it (ids are the database's)."""

    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    merged: set[int] = field(default_factory=set)
    tags: dict[int, dict[int, float]] = field(default_factory=dict)
    cells: dict[tuple[int, str, str, int], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    segment_id: int = 0
    members: set[int] = field(default_factory=set)
    tag_ids: list[int] = field(default_factory=list)

    def world(self) -> World:
        """rule_py's view: live customers only."""
        live = {cid: attrs for cid, attrs in self.customers.items() if cid not in self.merged}
        rows = [(cid, k, r, d, n, a) for (cid, k, r, d), (n, a) in self.cells.items()]
        return World(live, self.tags, rows, {self.segment_id: set(self.members)})

    def bind(self, rule: dict[str, Any]) -> dict[str, Any]:
        """The rule with tag and segment placeholders pointing at this workspace's rows."""
        if rule["type"] in ("and", "or"):
            return {**rule, "rules": [self.bind(r) for r in rule["rules"]]}
        if rule["type"] == "not":
            return {**rule, "rule": self.bind(rule["rule"])}
        if rule["type"] == "tag":
            return {**rule, "tag_id": self.tag_ids[rule["tag_id"]]}
        if rule["type"] == "segment":
            return {**rule, "segment_id": self.segment_id}
        return rule


def _wipe(db: Session, ws: int) -> None:
    db.rollback()  # a failed example may leave its transaction aborted
    for model in (
        SegmentMember,
        SegmentChange,
        SegmentSize,
        Segment,
        CustomerChange,
        CustomerActivity,
        CustomerTag,
        Tag,
        AudienceSettings,
    ):
        db.execute(delete(model).where(model.workspace_id == ws))
    db.execute(update(Customer).where(Customer.workspace_id == ws).values(merged_into_id=None))
    db.execute(delete(Customer).where(Customer.workspace_id == ws))
    db.commit()
    engine.clear_cache()


def _complete(person: dict[str, Any]) -> dict[str, Any]:
    """Every rule attribute, missing ones at the column's default, as stored."""
    default = {"string": "", "number": 0, "list": [], "date": AS_OF}
    return {name: person.get(name, None if f.nullable else default[f.type]) for name, f in FIELDS.items()}


def _add_customers(db: Session, ws: int, model: Model, people: list[dict[str, Any]]) -> list[int]:
    people = [_complete(p) for p in people]
    rows = [Customer(workspace_id=ws, **p) for p in people]
    db.add_all(rows)
    db.flush()
    for c, p in zip(rows, people, strict=True):
        model.customers[c.id] = dict(p)
    return [c.id for c in rows]


def _add_activity(db: Session, ws: int, model: Model, ids: list[int], rows: list[tuple[Any, ...]]) -> None:
    out = []
    for i, (kind, ref), ago, n, amount in rows:
        cid = ids[i % len(ids)]
        out.append(ActivityRow(cid, kind, ref, TODAY - ago, n, amount))
        cell = model.cells[(cid, kind, ref, TODAY - ago)]
        cell[0] += n
        cell[1] += amount
    activity.add_activity(db, workspace_id=ws, rows=out)


def _set_tag(db: Session, ws: int, model: Model, cid: int, tag: int, weight: float | None) -> None:
    tag_id = model.tag_ids[tag]
    db.execute(delete(CustomerTag).where(CustomerTag.customer_id == cid, CustomerTag.tag_id == tag_id))
    model.tags[tag_id].pop(cid, None)
    if weight is not None:
        db.add(CustomerTag(customer_id=cid, tag_id=tag_id, workspace_id=ws, weight=weight))
        model.tags[tag_id][cid] = weight
    db.flush()


def _load(db: Session, ws: int, people: list[dict[str, Any]], acts: list[Any], tags: list[Any], data: Any) -> Model:
    model = Model()
    ids = _add_customers(db, ws, model, people)
    for n in range(3):
        tag = Tag(workspace_id=ws, name=f"t{n}")
        db.add(tag)
        db.flush()
        model.tag_ids.append(tag.id)
        model.tags[tag.id] = {}
    for i, tag_index, weight in tags:
        _set_tag(db, ws, model, ids[i % len(ids)], tag_index, weight)
    _add_activity(db, ws, model, ids, acts)
    seg = Segment(workspace_id=ws, name="fixed", kind="static", rule={"type": "and", "rules": []})
    db.add(seg)
    db.flush()
    model.segment_id = seg.id
    model.members = set(data.draw(st.lists(st.sampled_from(ids), unique=True)))
    db.add_all(SegmentMember(segment_id=seg.id, customer_id=c, workspace_id=ws) for c in model.members)
    # Merge a few customers into others: they leave every evaluation.
    for loser in data.draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)):
        winner = next((c for c in ids if c != loser and c not in model.merged), None)
        if winner is not None and winner not in model.merged:
            db.execute(update(Customer).where(Customer.id == loser).values(merged_into_id=winner))
            model.merged.add(loser)
    db.commit()
    return model


def _sql_known_wrong(rule: dict[str, Any], dialect: str) -> bool:
    """Leaves rule_sql gets wrong on PostgreSQL today (reported; drop this once rule_sql is fixed):
    `contains` binds its JSON array as a JSON string, so it never matches; an int4 column (or a sum of
    counts) compared with a value outside int4 binds it as ::INTEGER and the query fails."""
    if dialect != "postgresql":
        return False
    for node in walk(rule):
        counts = node["type"] in ("event", "purchase") and node.get("metric") != "amount"
        if counts and not -(2**31) <= node["value"] < 2**31:
            return True
        if node["type"] != "attr":
            continue
        if FIELDS[node["field"]].type == "list":
            return True
        values = node.get("value")
        values = values if isinstance(values, list) else [values]
        narrow = FIELDS[node["field"]].type == "number" and node["field"] not in engine.WIDE
        if narrow and any(isinstance(v, int) and not -(2**31) <= v < 2**31 for v in values):
            return True
    return False


def _check(db: Session, ws: int, model: Model, rule: dict[str, Any], sample: list[int]) -> None:
    check_rule(rule)
    want = sorted(evaluate_py(rule, model.world(), AS_OF))
    got = engine.evaluate(db, workspace_id=ws, rule=rule, as_of=AS_OF)
    assert got == want, (rule, got, want)
    if not _sql_known_wrong(rule, db.get_bind().dialect.name):
        sql = sorted(segments.evaluate_sql(db, workspace_id=ws, rule=rule, as_of=AS_OF))
        assert sql == want, (rule, sql, want)
    some = engine.evaluate_ids(db, workspace_id=ws, rule=rule, as_of=AS_OF, ids=sample)
    assert some == sorted(set(want) & set(sample)), (rule, sample)


# --- every leaf on a world of edges --------------------------------------------------------------


def _edge_people() -> list[dict[str, Any]]:
    """Customers whose values sit on the grid's boundaries: all NULL, ordinary, huge, and one merged."""
    blank = {name: None for name, f in FIELDS.items() if f.nullable}
    return [
        {**blank, "gender": "", "province": "", "city": "", "created_at": _date(30, 0), "platforms": []},
        {
            "gender": "f",
            "city": "杭州",
            "rfm_group": "important_value",
            "lifecycle": "new",
            "orders_count": 3,
            "total_spent": 10_000,
            "r_score": 1,
            "f_score": 5,
            "m_score": 3,
            "first_order_at": _date(30, 0),
            "last_order_at": _date(7, 1),
            "created_at": _date(365, 0),
            "platforms": ["weibo"],
        },
        {
            "gender": "m",
            "province": "上海",
            "city": "上海",
            "rfm_group": "general_keep",
            "lifecycle": "at_risk",
            "total_spent": 2**62,
            "avg_order_value": 2**40,
            "followers_total": 2**31 - 1,
            "influence": -1,
            "r_score": 5,
            "first_order_at": _date(365, 0),
            "last_order_at": _date(8, 0),
            "created_at": _date(-1, 0),
            "platforms": ["weibo", "douyin", 3],
        },
        {"gender": "f", "rfm_group": "important_value", "total_spent": 10_000, "platforms": ["weibo"]},  # merged
    ]


EDGE_ACTIVITY = [  # (customer index, kind/ref, days before today, count, amount)
    (0, ("event", "share"), 0, 1, 0),
    (0, ("event", "share"), 7, 2, 0),
    (0, ("event", "share"), 30, 4, 0),
    (1, ("event", "share"), 8, 1, 0),
    (1, ("event", "share"), -1, 10, 0),
    (2, ("event", "share"), 365, 3, 0),
    (3, ("event", "share"), 1, 9, 0),
    (1, ("order", ""), 6, 1, 10_000),
    (1, ("category", "绿茶"), 6, 2, 10_000),
    (1, ("product", "11"), 29, 1, 2**40),
    (2, ("order", ""), 30, 3, 2**40),
    (2, ("category", "绿茶"), 31, 1, 1),
]


def _edge_leaves() -> list[dict[str, Any]]:
    """Every operator of every leaf type against values on and beside the edge world's values."""
    out: list[dict[str, Any]] = []
    for name, spec in FIELDS.items():
        for op in OPS[spec.type]:
            leaf: dict[str, Any] = {"type": "attr", "field": name, "op": op}
            if op in ("is_set", "is_not_set"):
                out.append(leaf)
            elif spec.type == "list":
                out += [{**leaf, "value": v} for v in ("weibo", "douyin", "3", "absent")]
            elif spec.type == "date":
                out += [{**leaf, "value": v} for v in (0, 7, 8, 30, 31, 365, 366)]
            elif spec.type == "string" and op in ("in", "not_in"):
                out += [{**leaf, "value": v} for v in (["important_value"], ["absent"], ["", "杭州", "new"])]
            elif spec.type == "string":
                out += [{**leaf, "value": v} for v in ("", "f", "杭州", "important_value", "new", "absent")]
            elif op == "between":
                out += [{**leaf, "value": v} for v in ([0, 0], [1, 3], [3, 10_000], [-1, 2**62], [2**31, 2**62])]
            else:
                out += [{**leaf, "value": v} for v in (-1, 0, 1, 3, 5, 10_000, 2**31 - 1, 2**40, 2**62)]
    for tag in (0, 1, 2):
        out += [{"type": "tag", "tag_id": tag, "op": op} for op in ("has", "not_has")]
        out += [{"type": "tag", "tag_id": tag, "op": "weight_gte", "value": v} for v in (0, 0.5, 1, 1.5, 2)]
    targets = [
        {"type": "event", "event": "share"},
        {"type": "event", "event": "never"},
        {"type": "purchase"},
        {"type": "purchase", "category": "绿茶", "metric": "amount"},
        {"type": "purchase", "product_id": 11, "metric": "amount"},
        {"type": "purchase", "category": "白茶"},
    ]
    for target in targets:
        for days in (None, 1, 7, 8, 30, 31):
            for op in COUNT_OPS:
                for value in (0, 1, 2, 3, 10_000, 2**40):
                    leaf = {**target, "op": op, "value": value}
                    out.append(leaf if days is None else {**leaf, "days": days})
    out += [{"type": "segment", "segment_id": 0, "op": op} for op in ("in", "not_in")]
    return out


def test_every_leaf_matches_the_reference(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    _wipe(db, ws)
    model = Model()
    ids = _add_customers(db, ws, model, _edge_people())
    for n in range(3):
        tag = Tag(workspace_id=ws, name=f"t{n}")
        db.add(tag)
        db.flush()
        model.tag_ids.append(tag.id)
        model.tags[tag.id] = {}
    for i, tag, weight in [(0, 0, 1.0), (1, 0, 1.5), (3, 0, 5.0), (2, 1, 0.5)]:
        _set_tag(db, ws, model, ids[i], tag, weight)
    _add_activity(db, ws, model, ids, EDGE_ACTIVITY)
    seg = Segment(workspace_id=ws, name="fixed", kind="static", rule={"type": "and", "rules": []})
    db.add(seg)
    db.flush()
    model.segment_id, model.members = seg.id, {ids[0], ids[3]}
    db.add_all(SegmentMember(segment_id=seg.id, customer_id=c, workspace_id=ws) for c in model.members)
    db.execute(update(Customer).where(Customer.id == ids[3]).values(merged_into_id=ids[1]))
    model.merged.add(ids[3])
    db.commit()
    for leaf in _edge_leaves():
        rule = model.bind(leaf)
        _check(db, ws, model, rule, ids)
        _check(db, ws, model, {"type": "not", "rule": rule}, ids[1:])


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(person, min_size=1, max_size=12),
    acts=st.lists(activity_row, min_size=5, max_size=40),
    tags=st.lists(tag_row, max_size=10),
    tree=st.lists(rules, min_size=6, max_size=6),
    later=st.lists(person, max_size=2),
    changes=st.lists(
        st.tuples(st.integers(0, 11), person, st.lists(activity_row, max_size=3), st.sampled_from([None, 0.5, 2.0])),
        max_size=5,
    ),
    merge_every_time=st.booleans(),
    pooled=st.booleans(),
    data=st.data(),
)
def test_engine_equals_reference_and_sql_then_catches_up(
    db: Session, tenant: Tenant, monkeypatch, people, acts, tags, tree, later, changes, merge_every_time, pooled, data
) -> None:
    ws = tenant.workspace_id
    # Reloaded rows either wait in the unsorted tail or are merged into the sorted base at once; on
    # PostgreSQL, reloads are read over the session or over pooled connections.
    monkeypatch.setattr(engine_arrays, "MERGE_SHARE", 0.0 if merge_every_time else 0.1)
    monkeypatch.setattr(engine_cache, "MERGE_IN_BACKGROUND", False)  # deterministic: merged before the next look
    monkeypatch.setattr(engine_cache, "PARALLEL_RELOAD", 1 if pooled else 2_000)
    _wipe(db, ws)
    model = _load(db, ws, people, acts, tags, data)
    ids = sorted(model.customers)
    for rule in tree:
        _check(db, ws, model, model.bind(rule), ids[::2])
    built = engine.snapshot_info(db, workspace_id=ws)
    assert built is not None and built.builds == 1
    db.commit()

    # Changes, each logged as the services log them: attributes, tags, activity, newcomers, merges.
    for i, attrs, rows, weight in changes:
        cid = ids[i % len(ids)]
        db.execute(update(Customer).where(Customer.id == cid).values(**attrs))
        model.customers[cid] = dict(attrs)
        _set_tag(db, ws, model, cid, i % 2, weight)
        _add_activity(db, ws, model, [cid], rows)
        activity.mark_changed(db, workspace_id=ws, customer_ids=[cid])
    newcomers = _add_customers(db, ws, model, later)  # not logged: found as newer than the snapshot
    live = [c for c in ids if c not in model.merged]
    if len(live) > 2 and data.draw(st.booleans()):
        loser, winner = live[0], live[1]
        db.execute(update(Customer).where(Customer.id == loser).values(merged_into_id=winner))
        model.merged.add(loser)
        activity.mark_changed(db, workspace_id=ws, customer_ids=[loser, winner])
    db.commit()
    for rule in tree:
        _check(db, ws, model, model.bind(rule), [*ids[1::2], *newcomers])
    after = engine.snapshot_info(db, workspace_id=ws)
    assert after is not None and after.builds == 1, "caught up without rebuilding"
    assert after.customers == len(model.customers) - len(model.merged)
    db.commit()
