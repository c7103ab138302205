"""Segment evaluation at scale: the numpy engine vs the same rule as a plain PostgreSQL query.

Generates (once, deterministic seed) one workspace with 1,000,000 customers (RFM groups and scores
for buyers, skewed cities, lifecycle stages, platforms), three tags and 10,000,000 customer_activity
rows of tracked events and purchases over 365 days into PostgreSQL (and optionally SQLite), then
measures side by side, each a median of --repeat runs:

  a. the rule compiled by rule_sql, run on PostgreSQL after ANALYZE (segments.evaluate_sql);
  b. engine.evaluate on a warm snapshot;
  c. segments.refresh_segment with the numpy engine in steady state (plus the cold snapshot build);
  d. 10,000 customers changed through activity.add_activity (each a share event today, every third
     also a green-tea order), then segments.apply_changes with the numpy engine (catch-up, derived
     features from the snapshot, engine.evaluate_ids) and with the SQL engine (the peer).

    .venv/bin/python bench/bench_segments.py                       # PostgreSQL shequn_bench
    .venv/bin/python bench/bench_segments.py --sqlite var/bench-segments.db --sqlite-scale 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("SHEQUN_VAR_DIR", tempfile.mkdtemp(prefix="shequn-bench-"))
os.environ["SHEQUN_JOBS_MODE"] = "immediate"

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from segments_world import AS_OF, CATEGORIES, OUT, PG_DEFAULT, TAGS, TODAY, Spec, _point_at, prepare
from shequn.audience import activity, engine, interests, lifecycle, segments
from shequn.audience import tags as audience_tags
from shequn.audience.models import Customer, Segment, Tag
from shequn.core import db as core_db
from shequn.core.bulk import Bulk
from shequn.core.settings import get_settings

# --- measuring ----------------------------------------------------------------------------------


def bench_rule(session: Session, ws: int) -> dict[str, Any]:
    """The issue's rule: RFM group, a tag, recent shares and recent green-tea spend."""
    vip = session.scalar(select(Tag.id).where(Tag.workspace_id == ws, Tag.name == TAGS[0][0]))
    return {
        "type": "and",
        "rules": [
            {"type": "attr", "field": "rfm_group", "op": "in", "value": ["important_value", "important_keep"]},
            {"type": "tag", "tag_id": vip, "op": "has"},
            {"type": "event", "event": "share", "days": 30, "op": "gte", "value": 3},
            {
                "type": "purchase",
                "category": CATEGORIES[0][0],
                "days": 90,
                "metric": "amount",
                "op": "gte",
                "value": 10000,
            },
        ],
    }


def _use_engine(name: str) -> None:
    os.environ["SHEQUN_SEGMENT_ENGINE"] = name
    get_settings.cache_clear()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Seconds of each of repeat calls, and the last result."""
    runs, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - start)
    return runs, out


def change_customers(session: Session, ws: int, n: int, seed: int) -> list[int]:
    """n random live customers each gain a share event today, and every third one a green-tea order (its
    order, category and product rows and its purchase facts, as commerce writes them), logged."""
    rng = np.random.default_rng(seed)
    ids = np.array(
        session.scalars(select(Customer.id).where(Customer.workspace_id == ws, Customer.merged_into_id.is_(None))).all()
    )
    chosen = np.sort(rng.choice(ids, n, replace=False)).tolist()
    rows = [activity.ActivityRow(c, "event", "share", TODAY, int(rng.integers(1, 4))) for c in chosen]
    buyers = chosen[::3]
    amounts = [int(rng.integers(50, 200)) * 100 for _ in buyers]
    for c, amount in zip(buyers, amounts, strict=True):
        rows += [
            activity.ActivityRow(c, "order", "", TODAY, 1, amount),
            activity.ActivityRow(c, "category", CATEGORIES[0][0], TODAY, 1, amount),
            activity.ActivityRow(c, "product", "1000", TODAY, 1, amount),
        ]
    bulk = Bulk(session)
    bulk.executemany(
        "UPDATE customers SET orders_count = orders_count + 1, total_spent = total_spent + ?, "
        "last_order_at = ?, first_order_at = COALESCE(first_order_at, ?) WHERE id = ?",
        [(amount, bulk.ts(AS_OF), bulk.ts(AS_OF), c) for c, amount in zip(buyers, amounts, strict=True)],
    )
    activity.add_activity(session, workspace_id=ws, rows=rows)
    session.commit()
    return chosen


def derived(session: Session, ws: int, ids: list[int]) -> dict[str, float]:
    """Seconds of each derived-feature refresh apply_changes runs before evaluating, on ids (rolled back)."""
    out = {}
    steps: list[tuple[str, Callable[..., Any]]] = [
        ("rule_tags_s", audience_tags.refresh_rule_tags),
        ("lifecycle_s", lifecycle.refresh_lifecycle),
        ("interests_s", interests.refresh_interests),
    ]
    for name, step in steps:
        start = time.perf_counter()
        step(session, workspace_id=ws, ids=ids, as_of=AS_OF)
        out[name] = time.perf_counter() - start
        session.rollback()
    return out


def measure(label: str, url: str, ws: int, spec: Spec, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of the table for one database."""
    _point_at(url)
    _use_engine("sql")
    session = core_db.new_session()
    core_db.analyze(session, ["customers", "customer_tags", "customer_activity", "segment_members", "tags"])
    session.commit()
    rule = bench_rule(session, ws)
    seg_id = session.scalar(
        select(Segment.id).where(Segment.workspace_id == ws, Segment.name == "bench rule", Segment.deleted_at.is_(None))
    )
    if seg_id is None:
        seg_id = segments.create_segment(session, workspace_id=ws, name="bench rule", rule=rule, as_of=AS_OF).id
        session.commit()
    r = args.repeat
    out: dict[str, Any] = {
        "db": label,
        "customers": spec.customers,
        "activity_rows": spec.activity,
        "changes": args.changes,
        "cpus": os.cpu_count(),
    }

    def sql_eval() -> list[int]:
        return segments.evaluate_sql(session, workspace_id=ws, rule=rule, as_of=AS_OF)

    def engine_eval() -> list[int]:
        return engine.evaluate(session, workspace_id=ws, rule=rule, as_of=AS_OF)

    def cold() -> list[int]:
        engine.clear_cache()
        return engine_eval()

    full = 1 if args.skip_full else r  # --skip-full: one run each, for the peer and the snapshot
    out["sql_s"], want = timed(sql_eval, full)
    print(f"  (a) plain query: {_ms(out['sql_s'])}, {len(want):,} members", flush=True)
    out["cold_s"], got = timed(cold, 1 if args.skip_full else max(3, r // 2))
    print(f"  cold snapshot build + first evaluate: {_ms(out['cold_s'])}", flush=True)
    out["warm_s"], got = timed(engine_eval, full)
    assert sorted(want) == got, "engine and SQL disagree"
    out["members"] = len(got)
    print(f"  (b) engine, warm: {_ms(out['warm_s'])}", flush=True)
    info = engine.snapshot_info(session, workspace_id=ws)
    assert info is not None
    out["snapshot"] = {
        "customers": info.customers,
        "activity_rows": info.activity_rows,
        "tag_rows": info.tag_rows,
        "mb": round(info.nbytes / 2**20),
    }
    print(f"  snapshot arrays: {info.nbytes / 2**20:,.0f} MB", flush=True)

    def refresh() -> Any:
        res = segments.refresh_segment(session, workspace_id=ws, segment_id=seg_id, as_of=AS_OF)
        session.commit()
        return res

    out["refresh_sql_s"], _ = timed(refresh, full)
    _use_engine("numpy")
    refresh()  # first numpy refresh: the membership written by SQL is already right, nothing to write
    out["refresh_numpy_s"], _ = timed(refresh, full)
    print(f"  (c) refresh_segment: numpy {_ms(out['refresh_numpy_s'])} vs sql {_ms(out['refresh_sql_s'])}", flush=True)

    # (d) Incremental: each run changes fresh customers, then the job applies them: with the numpy engine
    # (the default: catch-up, lifecycle and interests from the snapshot, evaluate_ids), and with the SQL
    # engine (the peer: rule_sql restricted to the ids, lifecycle and interests from the database).
    inc: dict[str, list[float]] = {
        "apply_changes_s": [],
        "catch_up_s": [],
        "derive_s": [],
        "segments_s": [],
        "apply_sql_s": [],
        "evaluate_sql_ids_s": [],
        "rule_tags_s": [],
        "lifecycle_s": [],
        "interests_s": [],
    }
    stats: dict[str, Any] = {}
    for run in range(args.incremental):
        _use_engine("numpy")
        engine.catch_up(session, workspace_id=ws)  # the previous SQL run's changes, untimed
        session.commit()
        change_customers(session, ws, args.changes, seed=1000 + run)
        start = time.perf_counter()
        stats = segments.apply_changes(session, workspace_id=ws, as_of=AS_OF)
        session.commit()
        inc["apply_changes_s"].append(time.perf_counter() - start)
        for name in ("catch_up", "derive", "segments"):
            inc[f"{name}_s"].append(stats[f"{name}_ms"] / 1000)
        print(f"    numpy run {run}: {inc['apply_changes_s'][-1]:.3f}s {stats}", flush=True)
        if run < args.incremental_sql:
            _use_engine("sql")
            chosen = change_customers(session, ws, args.changes, seed=2000 + run)
            start = time.perf_counter()
            segments.evaluate_sql(session, workspace_id=ws, rule=rule, as_of=AS_OF, ids=chosen)
            inc["evaluate_sql_ids_s"].append(time.perf_counter() - start)
            session.rollback()
            for name, took in derived(session, ws, chosen).items():
                inc[name].append(took)
            start = time.perf_counter()
            sql_stats = segments.apply_changes(session, workspace_id=ws, as_of=AS_OF)
            session.commit()
            inc["apply_sql_s"].append(time.perf_counter() - start)
            print(f"    sql run {run}: {inc['apply_sql_s'][-1]:.3f}s {sql_stats}", flush=True)
    _use_engine("numpy")
    out.update(inc)
    out["apply_changes_stats"] = stats
    info = engine.snapshot_info(session, workspace_id=ws)
    assert info is not None
    out["builds_during_incremental"] = info.builds
    print(
        f"  (d) after {args.changes:,} changes: apply_changes {_ms(inc['apply_changes_s'])} "
        f"(catch-up {_ms(inc['catch_up_s'])}), with the SQL engine {_ms(inc['apply_sql_s'])}",
        flush=True,
    )
    assert sorted(segments.evaluate_sql(session, workspace_id=ws, rule=rule, as_of=AS_OF)) == engine_eval()
    members = segments.evaluate_sql(session, workspace_id=ws, rule=rule, as_of=AS_OF)
    stored = session.scalar(select(Segment.members_count).where(Segment.id == seg_id))
    assert stored == len(members), "incremental membership drifted from a full evaluation"
    session.close()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def _ms(runs: Sequence[float]) -> str:
    return f"{statistics.median(runs) * 1000:,.0f} ms (median of {len(runs)})"


def report(results: list[dict[str, Any]]) -> None:
    """The side-by-side table, ratios against the plain query, and the issue's targets."""
    for res in results:
        pg = statistics.median(res["sql_s"])
        rows = [
            ("(a) plain query (rule_sql, after ANALYZE)", res["sql_s"], ""),
            ("(b) engine.evaluate, warm snapshot", res["warm_s"], "≥ 8× faster than (a)"),
            ("(c) refresh_segment, numpy engine, steady state", res["refresh_numpy_s"], "< 2 s"),
            ("    refresh_segment, sql engine (peer)", res["refresh_sql_s"], ""),
            ("    cold snapshot build + first evaluate", res["cold_s"], ""),
            (f"(d) apply_changes after {res['changes']:,} changes, numpy engine", res["apply_changes_s"], "< 1 s"),
            ("    of which engine catch-up (reload the changed customers)", res["catch_up_s"], ""),
            ("    of which lifecycle, interests, rule tags", res["derive_s"], ""),
            ("    of which segments (evaluate_ids, diff, write)", res["segments_s"], ""),
            ("    apply_changes, SQL engine (peer)", res["apply_sql_s"], ""),
            ("    its rule_sql restricted to the ids, alone", res["evaluate_sql_ids_s"], ""),
            ("    its refresh_rule_tags on the ids, alone", res["rule_tags_s"], ""),
            ("    its refresh_lifecycle on the ids, alone", res["lifecycle_s"], ""),
            ("    its refresh_interests on the ids, alone", res["interests_s"], ""),
        ]
        took = res["generated_s"]
        data = "reused" if took is None else f"generated in {took:.0f} s"
        print(
            f"\n{res['db']}: {res['customers']:,} customers, {res['activity_rows']:,} activity rows, "
            f"{res['members']:,} members (data {data}, not timed); snapshot arrays {res['snapshot']['mb']:,} MB, "
            f"process peak RSS {res['peak_rss_mb']:,} MB"
        )
        print(f"{'figure':58s} {'median':>10s} {'runs (s)':>28s} {'vs (a)':>8s}  target")
        for name, runs, target in rows:
            if not runs:
                continue
            med = statistics.median(runs)
            each = " ".join(f"{x:.3f}" for x in runs)
            print(f"{name:58s} {med * 1000:>8,.0f}ms {each:>28s} {pg / med:>7.1f}×  {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("SHEQUN_BENCH_PG", PG_DEFAULT), help="'' to skip PostgreSQL")
    ap.add_argument("--sqlite", default="", help="also run on this SQLite file")
    ap.add_argument("--sqlite-scale", type=float, default=0.2, help="fraction of the data size for SQLite")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--activity", type=int, default=10_000_000)
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--incremental", type=int, default=7, help="runs of (d) with the numpy engine")
    ap.add_argument("--incremental-sql", type=int, default=3, help="runs of (d) with the SQL engine")
    ap.add_argument("--skip-full", action="store_true", help="only (d): skip (a)-(c) and the cold build")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--generate-only", action="store_true")
    args = ap.parse_args()
    spec = Spec(args.customers, args.activity)
    targets = [("PostgreSQL", args.pg, spec)] if args.pg else []
    if args.sqlite:
        targets.append(("SQLite", f"sqlite:///{Path(args.sqlite).resolve()}", _scaled(spec, args.sqlite_scale)))
    results = []
    for label, url, s in targets:
        print(f"{label}: {s.label}", flush=True)
        ws, generated_s = prepare(url, s, args.regenerate)
        if args.generate_only:
            continue
        results.append({**measure(label, url, ws, s, args), "generated_s": generated_s})
    if results:
        report(results)
        OUT.mkdir(exist_ok=True)
        (OUT / "segments.json").write_text(json.dumps(results, indent=2, default=str))


def _scaled(spec: Spec, scale: float) -> Spec:
    return Spec(int(spec.customers * scale), int(spec.activity * scale), spec.seed)


if __name__ == "__main__":
    main()
