"""The generated world of the segment benchmark: one workspace with a million customers, their tags and
ten million activity rows, deterministic from a seed, written to PostgreSQL (COPY, indexes rebuilt
after) or SQLite. Used by bench_segments.py."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from benchdb import ensure_pg_database
from shequn.audience import engine, interests, lifecycle, rfm
from shequn.audience.models import Tag
from shequn.audience.rule_py import epoch_day
from shequn.audience.rules import LIFECYCLE_STAGES
from shequn.core import db as core_db
from shequn.core.migrate import upgrade
from shequn.core.settings import get_settings
from shequn.identity import service as identity_service
from shequn.identity.models import Workspace

OUT = Path(__file__).parent / "out"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/shequn_bench"
AS_OF = datetime(2026, 11, 1, 12, tzinfo=UTC)
TODAY = epoch_day(AS_OF)
DAYS = 365
SLUG = "bench-segments"

CITIES = [
    ("上海", "上海"), ("北京", "北京"), ("广东", "深圳"), ("广东", "广州"), ("浙江", "杭州"), ("四川", "成都"),
    ("江苏", "南京"), ("江苏", "苏州"), ("湖北", "武汉"), ("陕西", "西安"), ("重庆", "重庆"), ("天津", "天津"),
    ("湖南", "长沙"), ("河南", "郑州"), ("山东", "青岛"), ("山东", "济南"), ("福建", "厦门"), ("福建", "福州"),
    ("云南", "昆明"), ("辽宁", "大连"), ("辽宁", "沈阳"), ("浙江", "宁波"), ("安徽", "合肥"), ("江西", "南昌"),
    ("广西", "南宁"), ("贵州", "贵阳"), ("山西", "太原"), ("河北", "石家庄"), ("黑龙江", "哈尔滨"), ("吉林", "长春"),
    ("海南", "海口"), ("甘肃", "兰州"), ("内蒙古", "呼和浩特"), ("新疆", "乌鲁木齐"), ("宁夏", "银川"),
    ("青海", "西宁"), ("西藏", "拉萨"), ("广东", "东莞"), ("广东", "佛山"), ("江苏", "无锡"),
]  # fmt: skip
PLATFORMS = ["tmall", "youzan", "weibo", "douyin", "wechat", "xiaohongshu"]
EVENTS = [
    ("page_view", 0.42),
    ("like", 0.2),
    ("share", 0.12),
    ("comment", 0.08),
    ("add_to_cart", 0.12),
    ("favorite", 0.06),
]
CATEGORIES = [
    ("绿茶", 0.3),
    ("红茶", 0.2),
    ("乌龙茶", 0.15),
    ("普洱", 0.12),
    ("白茶", 0.08),
    ("花茶", 0.07),
    ("茶具", 0.08),
]
PRODUCTS_PER_CATEGORY = 60
TAGS = [("VIP", 0.10), ("茶友会", 0.04), ("新品试饮", 0.22)]
GROUPS = rfm.GROUPS  # (R high, F high, M high) → group code, as the RFM job assigns them


@dataclass(frozen=True)
class Spec:
    """What to generate."""

    customers: int
    activity: int
    seed: int = 20261101

    @property
    def label(self) -> str:
        """Workspace name that says what the data is (reused when it matches)."""
        return f"segments bench: {self.customers} customers, {self.activity} activity rows, seed {self.seed}"


# --- generation ---------------------------------------------------------------------------------


def _quintile(values: np.ndarray) -> np.ndarray:
    """Cumulative-distribution quintiles 1–5 (ties alike), as audience.rfm scores them."""
    ordered = np.sort(values)
    le = np.searchsorted(ordered, values, side="right")
    return np.clip(np.ceil(5 * le / len(values)), 1, 5).astype(np.int32)


def make_customers(spec: Spec, rng: np.random.Generator) -> dict[str, Any]:
    """Customer columns as arrays: about 55% buyers with RFM and lifecycle, skewed cities and reach."""
    n = spec.customers
    us = 1_000_000
    now_us = int(AS_OF.timestamp()) * us
    city_w = 1.0 / np.arange(1, len(CITIES) + 1) ** 0.9
    city = rng.choice(len(CITIES), n, p=city_w / city_w.sum())
    gender = rng.choice(np.array(["f", "m", ""]), n, p=[0.55, 0.35, 0.10])
    buyer = rng.random(n) < 0.55
    orders = np.where(buyer, np.minimum(rng.geometric(0.45, n), 60), 0).astype(np.int32)
    aov = np.where(buyer, rng.lognormal(np.log(12_000), 0.7, n), 0).astype(np.int64)
    spent = orders.astype(np.int64) * aov
    last_age = np.minimum(rng.exponential(120, n), 700)
    last_us = now_us - (last_age * 86400 * us).astype(np.int64)
    first_us = last_us - (rng.uniform(0, 500, n) * (orders > 1) * 86400 * us).astype(np.int64)
    created_us = np.minimum(first_us, now_us - (rng.uniform(0, 1100, n) * 86400 * us).astype(np.int64))
    # RFM over buyers of the last 365 days, as audience.rfm would have scored them.
    scored = buyer & (last_age < 365)
    r = np.zeros(n, np.int32)
    f = np.zeros(n, np.int32)
    m = np.zeros(n, np.int32)
    r[scored] = _quintile(-last_age[scored])
    f[scored] = _quintile(orders[scored].astype(np.float64))
    m[scored] = _quintile(spent[scored].astype(np.float64))
    means = [float(x[scored].mean()) for x in (r, f, m)]
    group = np.array([None] * n, dtype=object)
    for (hr, hf, hm), name in GROUPS.items():
        sel = scored & ((r >= means[0]) == hr) & ((f >= means[1]) == hf) & ((m >= means[2]) == hm)
        group[sel] = name
    stage = np.array([None] * n, dtype=object)
    first_age = (now_us - first_us) / (86400 * us)
    stage[buyer] = LIFECYCLE_STAGES[3]
    stage[buyer & (last_age < 180)] = LIFECYCLE_STAGES[2]
    stage[buyer & (last_age < 90)] = LIFECYCLE_STAGES[1]
    stage[buyer & (last_age < 90) & (orders > 2) & (rng.random(n) < 0.1)] = LIFECYCLE_STAGES[4]
    stage[buyer & (first_age < 30)] = LIFECYCLE_STAGES[0]
    social = rng.random((n, len(PLATFORMS))) < np.array([0.45, 0.2, 0.15, 0.12, 0.25, 0.08])
    followers = np.where(social[:, 2:].any(axis=1), rng.lognormal(4, 2, n), 0).astype(np.int32)
    return {
        "city": city,
        "gender": gender,
        "orders": orders,
        "spent": spent,
        "aov": aov,
        "first_us": np.where(buyer, first_us, -1),
        "last_us": np.where(buyer, last_us, -1),
        "created_us": created_us,
        "r": r,
        "f": f,
        "m": m,
        "scored": scored,
        "group": group,
        "stage": stage,
        "social": social,
        "followers": followers,
        "influence": np.minimum(100, (np.log10(followers + 1) * 18)).astype(np.int32),
        "buyer": buyer,
    }


def activity_keys() -> list[tuple[str, str]]:
    """Every (kind, ref) the generator uses, indexed by code."""
    keys = [("event", name) for name, _ in EVENTS] + [("order", "")]
    keys += [("category", name) for name, _ in CATEGORIES]
    keys += [("product", str(1000 + i)) for i in range(len(CATEGORIES) * PRODUCTS_PER_CATEGORY)]
    return keys


def make_activity(spec: Spec, rng: np.random.Generator, cust: dict[str, Any]) -> dict[str, np.ndarray]:
    """Activity rows (customer index, key code, day, count, amount), unique per customer/key/day, by day."""
    n = spec.customers
    keys = activity_keys()
    n_events = int(spec.activity * 0.72)
    n_purchases = (spec.activity - n_events) // 3 + 1
    extra = 1.04  # duplicates (customer, key, day) are dropped below
    # Engagement is heavy-tailed: a few customers produce most events.
    w = rng.lognormal(0, 1.3, n)
    idx = rng.choice(n, int(n_events * extra), p=w / w.sum()).astype(np.int32)
    ev_w = np.array([p for _, p in EVENTS])
    ev_code = rng.choice(len(EVENTS), len(idx), p=ev_w / ev_w.sum()).astype(np.int16)
    ev_day = (TODAY - np.floor(np.minimum(rng.exponential(140, len(idx)), DAYS - 1))).astype(np.int32)
    ev_count = rng.geometric(0.6, len(idx)).astype(np.int32)
    # Purchases by buyers, weighted by how often they order: an order row, its category and product.
    bw = cust["orders"].astype(np.float64)
    pidx = rng.choice(n, int(n_purchases * extra), p=bw / bw.sum()).astype(np.int32)
    pday = (TODAY - rng.integers(0, DAYS, len(pidx))).astype(np.int32)
    cat_w = np.array([p for _, p in CATEGORIES])
    pcat = rng.choice(len(CATEGORIES), len(pidx), p=cat_w / cat_w.sum())
    pprod = pcat * PRODUCTS_PER_CATEGORY + rng.integers(0, PRODUCTS_PER_CATEGORY, len(pidx))
    qty = rng.geometric(0.7, len(pidx)).astype(np.int32)
    amount = (rng.lognormal(np.log(8_000), 0.8, len(pidx)).astype(np.int64) // 100) * 100 * qty
    order_code = len(EVENTS)
    cat_code = order_code + 1 + pcat
    prod_code = order_code + 1 + len(CATEGORIES) + pprod
    c = np.concatenate([idx, pidx, pidx, pidx])
    k = np.concatenate([ev_code, np.full(len(pidx), order_code), cat_code, prod_code]).astype(np.int16)
    d = np.concatenate([ev_day, pday, pday, pday])
    cnt = np.concatenate([ev_count, np.ones(len(pidx), np.int32), qty, qty])
    amt = np.concatenate([np.zeros(len(idx), np.int64), amount, amount, amount])
    combined = (c.astype(np.int64) * len(keys) + k) * 4096 + (d - (TODAY - DAYS))
    _, first = np.unique(combined, return_index=True)
    keep = np.sort(rng.permutation(first)[: spec.activity])
    order = keep[np.argsort(d[keep], kind="stable")]  # rows arrive in time order, as they would
    return {"cust": c[order], "key": k[order], "day": d[order], "count": cnt[order], "amount": amt[order]}


def make_tags(spec: Spec, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, customer indexes, weights) per tag."""
    out = []
    for name, share in TAGS:
        members = np.flatnonzero(rng.random(spec.customers) < share)
        out.append((name, members, np.round(rng.uniform(0.5, 5, len(members)), 3)))
    return out


# --- writing ------------------------------------------------------------------------------------


def _ts(us: int) -> datetime | None:
    return None if us < 0 else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def customer_rows(ws: int, first_id: int, cust: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows in CUSTOMER_WRITE order."""
    for i in range(len(cust["city"])):
        province, city = CITIES[cust["city"][i]]
        platforms = json.dumps([p for p, on in zip(PLATFORMS, cust["social"][i], strict=True) if on])
        scored = bool(cust["scored"][i])
        created = _ts(cust["created_us"][i])
        yield (
            first_id + i,
            ws,
            f"客户{i}",
            str(cust["gender"][i]),
            province,
            city,
            "",
            "",
            int(cust["orders"][i]),
            int(cust["spent"][i]),
            int(cust["aov"][i]),
            "[]",
            "{}",
            platforms,
            int(cust["followers"][i]),
            int(cust["influence"][i]),
            int(cust["r"][i]) if scored else None,
            int(cust["f"][i]) if scored else None,
            int(cust["m"][i]) if scored else None,
            cust["group"][i],
            cust["stage"][i],
            _ts(cust["first_us"][i]),
            _ts(cust["last_us"][i]),
            created,
            created,
        )


CUSTOMER_WRITE = (
    "id", "workspace_id", "name", "gender", "province", "city", "phone_masked", "email_masked", "orders_count",
    "total_spent", "avg_order_value", "top_categories", "category_spend", "platforms", "followers_total",
    "influence", "r_score", "f_score", "m_score", "rfm_group", "lifecycle", "first_order_at", "last_order_at",
    "created_at", "updated_at",
)  # fmt: skip


def _pg_binary(columns: Sequence[tuple[np.ndarray, str]]) -> bytes:
    """A PostgreSQL binary COPY stream of fixed-width, non-null columns (numpy dtype strings like '>i8')."""
    n = len(columns[0][0])
    fields: list[tuple[str, str]] = [("nf", ">i2")]
    for i, (_, dt) in enumerate(columns):
        fields += [(f"l{i}", ">i4"), (f"v{i}", dt)]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["nf"] = len(columns)
    for i, (values, dt) in enumerate(columns):
        rec[f"l{i}"] = np.dtype(dt).itemsize
        rec[f"v{i}"] = values
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    return header + rec.tobytes() + b"\xff\xff"


def _index_ddl(conn: Any, table: str) -> tuple[list[str], list[str]]:
    """(drop, create) statements for a table's secondary indexes and unique constraints."""
    drop, create = [], []
    for name, ddl in conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'u'"
        ),
        {"t": table},
    ):
        drop.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        create.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
    for name, ddl in conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = :t AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ),
        {"t": table},
    ):
        drop.append(f'DROP INDEX "{name}"')
        create.append(ddl)
    return drop, create


def write_postgres(url: str, spec: Spec, ws: int, cust: dict[str, Any], act: dict[str, np.ndarray], tags: Any) -> None:
    """COPY customers and tags, and activity through a binary staging table (indexes rebuilt after)."""
    eng = _engine(url)
    keys = activity_keys()
    with eng.begin() as conn:
        raw: Any = conn.connection.dbapi_connection
        cur = raw.cursor()
        cur.execute("SET session_replication_role = replica")  # generated rows are consistent: skip FK triggers
        cur.execute("SET maintenance_work_mem = '1GB'")
        first_id = int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM customers")).scalar_one()) + 1
        t0 = time.perf_counter()
        with cur.copy(f"COPY customers ({', '.join(CUSTOMER_WRITE)}) FROM STDIN") as copy:
            for row in customer_rows(ws, first_id, cust):
                copy.write_row(row)
        conn.execute(text("SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT MAX(id) FROM customers))"))
        print(f"  customers copied in {time.perf_counter() - t0:.1f}s", flush=True)
        for name, members, weights in tags:
            tag_id = conn.execute(
                text(
                    "INSERT INTO tags (workspace_id, name, kind, color, description, interest_key, customers_count, "
                    "created_at) VALUES (:ws, :name, 'manual', '', '', '', :n, now()) RETURNING id"
                ),
                {"ws": ws, "name": name, "n": len(members)},
            ).scalar_one()
            with cur.copy(
                "COPY customer_tags (customer_id, tag_id, workspace_id, weight, source, created_at) FROM STDIN"
            ) as copy:
                for i, w in zip(members.tolist(), weights.tolist(), strict=True):
                    copy.write_row((first_id + i, tag_id, ws, w, "manual", AS_OF))
        t0 = time.perf_counter()
        drop, create = _index_ddl(conn, "customer_activity")
        for ddl in drop:
            cur.execute(ddl)
        cur.execute("CREATE TEMP TABLE stage (seq int8, cust int8, code int4, day int4, cnt int4, amt int8)")
        cur.execute("CREATE TEMP TABLE stage_keys (code int4 PRIMARY KEY, kind text, ref text)")
        with cur.copy("COPY stage_keys FROM STDIN") as copy:
            for code, (kind, ref) in enumerate(keys):
                copy.write_row((code, kind, ref))
        n = len(act["cust"])
        step = 2_000_000
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            blob = _pg_binary(
                [
                    (np.arange(lo, hi, dtype=np.int64), ">i8"),
                    (act["cust"][lo:hi].astype(np.int64) + first_id, ">i8"),
                    (act["key"][lo:hi], ">i4"),
                    (act["day"][lo:hi], ">i4"),
                    (act["count"][lo:hi], ">i4"),
                    (act["amount"][lo:hi], ">i8"),
                ]
            )
            with cur.copy("COPY stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(blob)
        print(f"  activity staged in {time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        cur.execute(
            "INSERT INTO customer_activity (workspace_id, customer_id, kind, ref, day, count, amount) "
            "SELECT %s, s.cust, k.kind, k.ref, s.day, s.cnt, s.amt FROM stage s JOIN stage_keys k USING (code) "
            "ORDER BY s.seq",
            (ws,),
        )
        print(f"  activity inserted in {time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        for ddl in create:
            cur.execute(ddl)
        cur.execute("DROP TABLE stage")
        print(f"  activity indexes rebuilt in {time.perf_counter() - t0:.1f}s", flush=True)
        cur.execute("SET session_replication_role = DEFAULT")
        conn.execute(text("UPDATE workspaces SET name = :label WHERE id = :ws"), {"label": spec.label, "ws": ws})
    _vacuum_analyze(url)
    eng.dispose()


def _vacuum_analyze(url: str) -> None:
    """VACUUM ANALYZE as autovacuum would have by now (visibility map for index-only scans, fresh statistics)."""
    eng = _engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        for table in ("customers", "customer_tags", "customer_activity", "tags"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    eng.dispose()


def write_sqlite(url: str, spec: Spec, ws: int, cust: dict[str, Any], act: dict[str, np.ndarray], tags: Any) -> None:
    """executemany in chunks, as core.bulk does on SQLite."""
    eng = _engine(url)
    keys = activity_keys()
    with Session(eng) as session:
        raw: Any = session.connection().connection.dbapi_connection
        first_id = int(session.execute(text("SELECT COALESCE(MAX(id), 0) FROM customers")).scalar_one()) + 1

        def sq(row: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(
                v.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if isinstance(v, datetime) else v
                for v in row
            )

        marks = ", ".join("?" * len(CUSTOMER_WRITE))
        raw.executemany(
            f"INSERT INTO customers ({', '.join(CUSTOMER_WRITE)}) VALUES ({marks})",
            (sq(r) for r in customer_rows(ws, first_id, cust)),
        )
        now = AS_OF.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        for name, members, weights in tags:
            cur = raw.execute(
                "INSERT INTO tags (workspace_id, name, kind, color, description, interest_key, customers_count, "
                "created_at) VALUES (?, ?, 'manual', '', '', '', ?, ?) RETURNING id",
                (ws, name, len(members), now),
            )
            tag_id = cur.fetchone()[0]
            raw.executemany(
                "INSERT INTO customer_tags (customer_id, tag_id, workspace_id, weight, source, created_at) "
                "VALUES (?, ?, ?, ?, 'manual', ?)",
                ((first_id + i, tag_id, ws, w, now) for i, w in zip(members.tolist(), weights.tolist(), strict=True)),
            )
        rows = zip(
            (act["cust"] + first_id).tolist(),
            act["key"].tolist(),
            act["day"].tolist(),
            act["count"].tolist(),
            act["amount"].tolist(),
            strict=True,
        )
        raw.executemany(
            "INSERT INTO customer_activity (workspace_id, customer_id, kind, ref, day, count, amount) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((ws, c, *keys[k], d, n, a) for c, k, d, n, a in rows),
        )
        raw.execute("UPDATE workspaces SET name = ? WHERE id = ?", (spec.label, ws))
        session.commit()
        raw.execute("ANALYZE")
    eng.dispose()


def _engine(url: str) -> Engine:
    return core_db.make_engine(url)


def _point_at(url: str) -> None:
    os.environ["SHEQUN_DATABASE_URL"] = url
    get_settings.cache_clear()
    core_db.reset_engine()
    engine.clear_cache()


def prepare(url: str, spec: Spec, regenerate: bool) -> tuple[int, float | None]:
    """The workspace id holding spec's data, generating it if missing; and generation seconds (None: reused)."""
    if url.startswith("postgresql"):
        ensure_pg_database(url)
    _point_at(url)
    eng = _engine(url)
    if regenerate:
        with eng.begin() as conn:
            if url.startswith("postgresql"):
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        if url.startswith("sqlite"):
            eng.dispose()
            path = Path(url.split("///", 1)[1])
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            eng = _engine(url)
    upgrade(eng)
    with Session(eng) as s:
        found = s.scalar(select(Workspace).where(Workspace.slug == SLUG))
        if found is not None and found.name == spec.label:
            settle(found.id)
            return found.id, None
    eng.dispose()
    if found is not None:
        return prepare(url, spec, True)
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    cust = make_customers(spec, rng)
    act = make_activity(spec, rng, cust)
    tags = make_tags(spec, rng)
    print(f"  generated arrays in {time.perf_counter() - started:.1f}s", flush=True)
    with core_db.session_scope() as s:
        _, ws_row = identity_service.bootstrap_owner(
            s,
            email="bench@example.com",
            password="bench-password",
            name="bench",
            workspace_slug=SLUG,
            workspace_name="generating",
        )
        ws = ws_row.id
    (write_postgres if url.startswith("postgresql") else write_sqlite)(url, spec, ws, cust, act, tags)
    settle(ws)
    return ws, time.perf_counter() - started


def settle(ws: int) -> None:
    """Derive lifecycle stages and interest tags from the generated activity, as the nightly job leaves
    them: the incremental job then finds what it would in production, not first-touch corrections."""
    with core_db.session_scope() as s:
        if s.scalar(select(Tag.id).where(Tag.workspace_id == ws, Tag.kind == "interest").limit(1)) is not None:
            return
        t0 = time.perf_counter()
        moved = lifecycle.refresh_lifecycle(s, workspace_id=ws, as_of=AS_OF)
        tagged = interests.refresh_interests(s, workspace_id=ws, as_of=AS_OF).tagged
        took = time.perf_counter() - t0
        print(f"  settled: {moved:,} lifecycle stages, {tagged:,} customers with interests in {took:.0f}s")
