"""Keeping segments current on SQLite and PostgreSQL: the cached snapshot catches up from the change log
without rebuilding, and the incremental job recomputes derived features (lifecycle, interests, rule
tags) for only the customers the log names and only for the kinds of change it logged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from shequn.audience import activity, engine, segment_members, segments
from shequn.audience.activity import ActivityRow
from shequn.audience.engine import arrays as engine_arrays
from shequn.audience.engine import cache as engine_cache
from shequn.audience.engine import reads as engine_reads
from shequn.audience.models import (
    Customer,
    CustomerChange,
    CustomerTag,
    Tag,
)
from tests.conftest import Tenant
from tests.integration.test_segment_engine import (
    AS_OF,
    CATEGORIES,
    TODAY,
    Model,
    _add_activity,
    _add_customers,
    _check,
    _date,
    _wipe,
)


@pytest.fixture(autouse=True)
def _no_after_commit_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in test_segment_engine: the change log stays, the jobs it signals do not run."""
    monkeypatch.setattr(activity, "send_on_commit", lambda *args, **kwargs: None)


# --- keeping current -------------------------------------------------------------------------------


def _people(db: Session, ws: int, n: int) -> list[int]:
    rows = [Customer(workspace_id=ws, city="杭州", rfm_group="important_value") for _ in range(n)]
    db.add_all(rows)
    db.commit()
    return [c.id for c in rows]


SHARERS = {"type": "event", "event": "share", "days": 7, "op": "gte", "value": 2}


def test_snapshot_catches_up_from_the_change_log_without_rebuilding(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    engine.clear_cache()
    ids = _people(db, ws, 5)
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == []
    db.commit()
    activity.add_activity(db, workspace_id=ws, rows=[ActivityRow(ids[1], "event", "share", TODAY, 2)])
    db.commit()
    engine.catch_up(db, workspace_id=ws)
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == [ids[1]]
    db.execute(update(Customer).where(Customer.id == ids[2]).values(city="上海"))
    activity.mark_changed(db, workspace_id=ws, customer_ids=[ids[2]])
    db.commit()
    in_city = {"type": "attr", "field": "city", "op": "eq", "value": "上海"}
    assert engine.evaluate(db, workspace_id=ws, rule=in_city, as_of=AS_OF) == [ids[2]]
    tag = Tag(workspace_id=ws, name="vip")
    db.add(tag)
    db.flush()
    db.add(CustomerTag(customer_id=ids[3], tag_id=tag.id, workspace_id=ws, weight=2.0))
    activity.mark_changed(db, workspace_id=ws, customer_ids=[ids[3]])
    db.commit()
    tagged = {"type": "tag", "tag_id": tag.id, "op": "has"}
    assert engine.evaluate(db, workspace_id=ws, rule=tagged, as_of=AS_OF) == [ids[3]]
    db.execute(delete(CustomerTag).where(CustomerTag.customer_id == ids[3]))
    activity.mark_changed(db, workspace_id=ws, customer_ids=[ids[3]])
    db.commit()
    assert engine.evaluate(db, workspace_id=ws, rule=tagged, as_of=AS_OF) == []
    info = engine.snapshot_info(db, workspace_id=ws)
    assert info is not None and (info.builds, info.patches) == (1, 4)
    assert (info.customers, info.activity_rows, info.tag_rows) == (5, 1, 0) and info.nbytes > 0

    # A whole-workspace change (RFM, lifecycle) rebuilds.
    db.execute(update(Customer).where(Customer.workspace_id == ws).values(rfm_group=None))
    activity.bump_epoch(db, workspace_id=ws)
    db.commit()
    grouped = {"type": "attr", "field": "rfm_group", "op": "is_set"}
    assert engine.evaluate(db, workspace_id=ws, rule=grouped, as_of=AS_OF) == []
    info = engine.snapshot_info(db, workspace_id=ws)
    assert info is not None and info.builds == 2 and info.epoch == 1


@pytest.mark.parametrize("merge_share", [0.0, 0.1])
def test_reloaded_activity_keeps_windows_exact(
    db: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, merge_share: float
) -> None:
    ws = tenant.workspace_id
    _wipe(db, ws)
    monkeypatch.setattr(engine_arrays, "MERGE_SHARE", merge_share)
    monkeypatch.setattr(engine_cache, "MERGE_IN_BACKGROUND", False)
    model = Model()
    ids = _add_customers(db, ws, model, [{}, {}, {}])
    model.tag_ids = []
    share = ("event", "share")
    _add_activity(db, ws, model, ids, [(i, share, ago, 1, 0) for i in range(3) for ago in (0, 8, 30, 61)])
    db.commit()
    windows = [
        {"type": "event", "event": "share", "days": d, "op": op, "value": v}
        for d in (1, 7, 8, 9, 30, 31, 60, 62)
        for op in ("gte", "eq")
        for v in (1, 2, 3)
    ]
    for rule in windows[:3]:
        _check(db, ws, model, rule, ids)
    # Customer 1 gains rows on both sides of every edge; its old rows are masked and re-read.
    _add_activity(db, ws, model, [ids[1]], [(0, share, ago, 1, 0) for ago in (-1, 1, 7, 9, 31, 60, 62)])
    db.commit()
    for rule in windows:
        _check(db, ws, model, rule, ids)
    info = engine.snapshot_info(db, workspace_id=ws)
    assert info is not None and info.builds == 1


def test_a_rolled_back_change_leaves_the_snapshot(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    engine.clear_cache()
    ids = _people(db, ws, 3)
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == []
    db.commit()
    # The transaction sees its own change, then rolls back: the shared snapshot must forget it.
    activity.add_activity(db, workspace_id=ws, rows=[ActivityRow(ids[0], "event", "share", TODAY, 5)])
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == [ids[0]]
    db.rollback()
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == []
    info = engine.snapshot_info(db, workspace_id=ws)
    assert info is not None and info.builds == 1


def test_a_big_backlog_rebuilds(db: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tenant.workspace_id
    engine.clear_cache()
    monkeypatch.setattr(engine_cache, "REBUILD_BACKLOG", 2)
    ids = _people(db, ws, 4)
    engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF)
    db.commit()
    activity.add_activity(db, workspace_id=ws, rows=[ActivityRow(c, "event", "share", TODAY, 3) for c in ids])
    db.commit()
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == ids
    info = engine.snapshot_info(db, workspace_id=ws)
    assert info is not None and info.builds == 2


def test_refresh_segment_uses_the_engine(db: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    from shequn.core.settings import get_settings

    ws = tenant.workspace_id
    engine.clear_cache()
    monkeypatch.setenv("SHEQUN_SEGMENT_ENGINE", "numpy")
    get_settings.cache_clear()
    try:
        ids = _people(db, ws, 3)
        activity.add_activity(db, workspace_id=ws, rows=[ActivityRow(ids[2], "event", "share", TODAY, 4)])
        seg = segments.create_segment(db, workspace_id=ws, name="sharers", rule=SHARERS, as_of=AS_OF)
        db.commit()
        assert seg.members_count == 1
        assert engine.snapshot_info(db, workspace_id=ws) is not None
    finally:
        monkeypatch.delenv("SHEQUN_SEGMENT_ENGINE")
        get_settings.cache_clear()


# --- the incremental job: derived features from the snapshot, only what changed -------------------------


@pytest.fixture
def use_engine(monkeypatch: pytest.MonkeyPatch) -> Any:
    from shequn.core.settings import get_settings

    def use(name: str) -> None:
        monkeypatch.setenv("SHEQUN_SEGMENT_ENGINE", name)
        get_settings.cache_clear()

    yield use
    monkeypatch.delenv("SHEQUN_SEGMENT_ENGINE", raising=False)
    get_settings.cache_clear()


def _log_size(db: Session, ws: int) -> int:
    return len(db.execute(select(CustomerChange.id).where(CustomerChange.workspace_id == ws)).all())


def _bought(db: Session, ws: int, cid: int, ago: Sequence[int], category: str = "绿茶") -> None:
    """Orders days ago, as commerce records them: purchase facts, then activity (which logs the change)."""
    days = sorted(ago)
    db.execute(
        update(Customer)
        .where(Customer.id == cid)
        .values(
            orders_count=Customer.orders_count + len(days),
            first_order_at=func.coalesce(Customer.first_order_at, _date(days[-1], 0)),
            last_order_at=_date(days[0], 0),
        )
    )
    rows = [
        ActivityRow(cid, kind, ref, TODAY - d, 1, 5_000)
        for d in days
        for kind, ref in (("order", ""), ("category", category))
    ]
    activity.add_activity(db, workspace_id=ws, rows=rows)


@pytest.mark.parametrize("engine_name", ["numpy", "sql"])
def test_an_event_only_change_touches_no_derived_feature_and_one_round_settles(
    db: Session, tenant: Tenant, use_engine: Any, engine_name: str
) -> None:
    ws = tenant.workspace_id
    use_engine(engine_name)
    engine.clear_cache()
    _wipe(db, ws)
    ids = _people(db, ws, 3)
    _bought(db, ws, ids[0], [400])  # lapsed
    _bought(db, ws, ids[1], [10, 40])  # active
    db.commit()
    lapsed_sharers = {
        "type": "and",
        "rules": [{"type": "attr", "field": "lifecycle", "op": "eq", "value": "lapsed"}, SHARERS],
    }
    won_back = {"type": "attr", "field": "lifecycle", "op": "eq", "value": "won_back"}
    made = [
        segments.create_segment(db, workspace_id=ws, name=name, rule=rule, as_of=AS_OF)
        for name, rule in (("lapsed sharers", lapsed_sharers), ("won back", won_back))
    ]
    segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)  # lifecycle and interests of the buyers
    db.commit()
    stage = {c.id: c.lifecycle for c in db.scalars(select(Customer).where(Customer.id.in_(ids)))}
    assert stage == {ids[0]: "lapsed", ids[1]: "active", ids[2]: None}

    # A share event only: the job re-derives nothing it would write, logs nothing, and needs one round.
    activity.add_activity(db, workspace_id=ws, rows=[ActivityRow(ids[0], "event", "share", TODAY, 2)])
    db.commit()
    logged = _log_size(db, ws)
    stats = segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)
    db.commit()
    assert (stats["customers"], stats["rounds"], stats["entered"]) == (1, 1, 1)
    assert _log_size(db, ws) == logged, "no lifecycle, interest or tag change was logged"
    db.expire_all()
    assert db.get(Customer, ids[0]).lifecycle == "lapsed"  # type: ignore[union-attr]
    assert segment_members.list_members(db, workspace_id=ws, segment_id=made[0].id)[1] == 1

    # An order today: lifecycle moves (won back after a long gap), the interest weight grows, and both
    # segments follow in the same round.
    _bought(db, ws, ids[0], [0])
    db.commit()
    stats = segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)
    db.commit()
    assert (stats["customers"], stats["rounds"], stats["entered"], stats["left"]) == (1, 1, 1, 1)
    db.expire_all()
    assert db.get(Customer, ids[0]).lifecycle == "won_back"  # type: ignore[union-attr]
    interest = db.scalar(select(Tag).where(Tag.workspace_id == ws, Tag.kind == "interest"))
    assert interest is not None and interest.customers_count == 2
    weights = dict(
        db.execute(select(CustomerTag.customer_id, CustomerTag.weight).where(CustomerTag.tag_id == interest.id)).all()
    )
    assert weights[ids[0]] >= 3.0 and set(weights) == {ids[0], ids[1]}
    for seg in made:
        db.refresh(seg)
        full = segments.evaluate_sql(db, workspace_id=ws, rule=seg.rule, as_of=AS_OF)
        stored = [c.id for c in segment_members.list_members(db, workspace_id=ws, segment_id=seg.id)[0]]
        assert sorted(stored) == sorted(full) and seg.members_count == len(full)
    assert [len(segment_members.list_members(db, workspace_id=ws, segment_id=s.id)[0]) for s in made] == [0, 1]


@pytest.mark.parametrize("engine_name", ["numpy", "sql"])
def test_logged_kinds_are_honoured(
    db: Session, tenant: Tenant, use_engine: Any, engine_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change log stores what changed and from which day: an event-only change re-reads no purchase
    rows into the snapshot and re-derives neither lifecycle nor interests; an order, or a row that says
    nothing (kinds 0, as written before the column), re-derives both and re-reads every row."""
    ws = tenant.workspace_id
    use_engine(engine_name)
    engine.clear_cache()
    _wipe(db, ws)
    ids = _people(db, ws, 2)
    _bought(db, ws, ids[0], [40, 200])
    db.commit()
    buyers = {"type": "purchase", "category": "绿茶", "metric": "count", "op": "gte", "value": 2}
    made = segments.create_segment(db, workspace_id=ws, name="buyers", rule=buyers, as_of=AS_OF)
    segments.create_segment(db, workspace_id=ws, name="sharers", rule=SHARERS, as_of=AS_OF)
    segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)
    db.commit()

    read: list[str] = []  # kinds of the activity rows the snapshot re-reads through the session
    real_read = engine_reads.read_activity

    def spy_read(*args: Any, **kwargs: Any) -> Any:
        out = real_read(*args, **kwargs)
        read.extend(kind for kind, _ in out[1])
        return out

    derived: list[str] = []
    real_lifecycle, real_interests = segments.refresh_lifecycle, segments.refresh_interests

    def spy_lifecycle(*args: Any, **kwargs: Any) -> Any:
        derived.append("lifecycle")
        return real_lifecycle(*args, **kwargs)

    def spy_interests(*args: Any, **kwargs: Any) -> Any:
        derived.append("interests")
        return real_interests(*args, **kwargs)

    monkeypatch.setattr(engine_reads, "read_activity", spy_read)
    monkeypatch.setattr(segments, "refresh_lifecycle", spy_lifecycle)
    monkeypatch.setattr(segments, "refresh_interests", spy_interests)

    activity.add_activity(db, workspace_id=ws, rows=[ActivityRow(ids[0], "event", "share", TODAY, 3)])
    db.commit()
    last = db.execute(select(CustomerChange.kinds, CustomerChange.min_day).order_by(CustomerChange.id.desc())).first()
    assert last is not None and tuple(last) == (activity.EVENTS, TODAY)
    stats = segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)
    db.commit()
    assert (stats["customers"], stats["entered"]) == (1, 1)
    assert derived == [], "an event-only change re-derives neither lifecycle nor interests"
    if engine_name == "numpy":
        assert read == ["event"], "only the rows of the changed day are re-read"
    # The snapshot kept the older purchase rows it did not re-read, and took the new event.
    assert engine.evaluate(db, workspace_id=ws, rule=buyers, as_of=AS_OF) == [ids[0]]
    assert engine.evaluate(db, workspace_id=ws, rule=SHARERS, as_of=AS_OF) == [ids[0]]
    assert segment_members.list_members(db, workspace_id=ws, segment_id=made.id)[1] == 1

    # An order: lifecycle and interests are re-derived.
    read.clear()
    _bought(db, ws, ids[1], [5])
    db.commit()
    segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)
    db.commit()
    assert derived == ["lifecycle", "interests"]
    if engine_name == "numpy":
        assert sorted(set(read)) == ["category", "order"]

    # A row that does not say what changed (written before the column existed) means everything.
    derived.clear()
    read.clear()
    db.add(CustomerChange(workspace_id=ws, customer_id=ids[0], kinds=0, created_at=AS_OF))
    db.commit()
    segments.apply_changes(db, workspace_id=ws, as_of=AS_OF)
    db.commit()
    assert derived == ["lifecycle", "interests"]
    if engine_name == "numpy":
        assert sorted(set(read)) == ["category", "event", "order"]
    assert engine.evaluate(db, workspace_id=ws, rule=buyers, as_of=AS_OF) == [ids[0]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshot_derivation_equals_the_database_one(db: Session, tenant: Tenant, use_engine: Any, seed: int) -> None:
    """Lifecycle stages and interest tags derived for some customers from the snapshot equal those
    derived from the database, writes and change counts included."""
    import random

    from shequn.audience import interests, lifecycle

    ws = tenant.workspace_id
    rnd = random.Random(seed)
    engine.clear_cache()
    _wipe(db, ws)
    ids = _people(db, ws, 24)
    for cid in ids:
        if rnd.random() < 0.8:
            _bought(
                db,
                ws,
                cid,
                rnd.sample([0, 1, 20, 29, 30, 89, 90, 95, 179, 180, 181, 400, 900], rnd.randint(1, 4)),
                rnd.choice(CATEGORIES),
            )
        if rnd.random() < 0.5:
            refs = rnd.choice(CATEGORIES)
            activity.add_activity(
                db,
                workspace_id=ws,
                rows=[ActivityRow(cid, "engage", refs, TODAY - rnd.choice([0, 3, 90, 200]), rnd.randint(0, 3))],
            )
        if rnd.random() < 0.2:  # purchase facts without activity rows (orders from before activity existed)
            db.execute(
                update(Customer)
                .where(Customer.id == cid)
                .values(orders_count=1, last_order_at=_date(rnd.choice([5, 100, 300]), 0))
            )
    db.commit()
    use_engine("sql")
    lifecycle.refresh_lifecycle(db, workspace_id=ws, ids=ids[::2], as_of=AS_OF)
    interests.refresh_interests(db, workspace_id=ws, ids=ids[::2], as_of=AS_OF)
    db.commit()  # a first state to differ from: half the customers derived

    def derive(name: str) -> tuple[Any, ...]:
        use_engine(name)
        moved = lifecycle.refresh_lifecycle(db, workspace_id=ws, ids=ids, as_of=AS_OF)
        result = interests.refresh_interests(db, workspace_id=ws, ids=ids, as_of=AS_OF)
        db.flush()
        stages = sorted(db.execute(select(Customer.id, Customer.lifecycle).where(Customer.workspace_id == ws)).all())
        rows = sorted(
            db.execute(
                select(CustomerTag.customer_id, Tag.interest_key, CustomerTag.weight)
                .join(Tag, Tag.id == CustomerTag.tag_id)
                .where(CustomerTag.workspace_id == ws)
            ).all()
        )
        counts = sorted(db.execute(select(Tag.interest_key, Tag.customers_count).where(Tag.workspace_id == ws)).all())
        db.rollback()
        return moved, result.as_dict(), stages, rows, counts

    engine.catch_up(db, workspace_id=ws)
    assert derive("numpy") == derive("sql")


def test_a_merge_computed_outside_the_lock_keeps_what_changed_meanwhile() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    model: list[tuple[int, int, int, int]] = []  # (code, customer row, day, count)

    def rows(n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        code = rng.integers(0, 5, n).astype(np.int32)
        cols = {"cust": rng.integers(0, 100, n).astype(np.int32), "day": rng.integers(0, 50, n).astype(np.int32)}
        cols["count"] = rng.integers(1, 9, n).astype(np.int64)
        model.extend(
            zip(code.tolist(), cols["cust"].tolist(), cols["day"].tolist(), cols["count"].tolist(), strict=True)
        )
        return code, cols

    def drop(grouped: Any, customers: list[int]) -> None:
        flag = np.zeros(100, bool)
        flag[customers] = True
        grouped.drop(flag)
        model[:] = [r for r in model if not flag[r[1]]]

    grouped = engine_arrays.Grouped(*rows(2_000))
    drop(grouped, [1, 2, 3])
    grouped.append(*rows(300))
    gen, view = grouped.view()
    drop(grouped, [2, 5, 8])  # while the merge runs: drops of merged rows and of tail rows
    grouped.append(*rows(200))
    drop(grouped, [9])
    grouped.install(gen, engine_arrays.merge_view(view))
    for code in range(5):
        cust, day, count = grouped.select(code, ["day", "count"])
        got = sorted(zip(cust.tolist(), day.tolist(), count.tolist(), strict=True))
        assert got == sorted((c, d, n) for k, c, d, n in model if k == code)
    assert len(grouped) == len(model)


def test_one_applier_at_a_time(db: Session, tenant: Tenant) -> None:
    """A second applier waits for the first to commit before it reads anything (SQLite has no row locks)."""
    import threading
    import time

    from shequn.core import db as core_db

    ws = tenant.workspace_id
    activity.get_settings(db, workspace_id=ws)
    db.commit()
    first, second = core_db.new_session(), core_db.new_session()
    got: list[float] = []

    def other() -> None:
        activity.lock_settings(second, workspace_id=ws)
        got.append(time.monotonic())
        second.commit()

    try:
        activity.lock_settings(first, workspace_id=ws)
        waiter = threading.Thread(target=other)
        waiter.start()
        time.sleep(0.5)
        assert got == []  # still waiting
        released = time.monotonic()
        first.commit()
        waiter.join(10)
        assert got and got[0] >= released
    finally:
        first.close()
        second.close()
