"""Segment discovery: k-means over RFM, interests and engagement, proposing named segments to save.

Features are standardised log-scaled recency, frequency, spend, engagement (tracked events in 90
days), influence and the share of spend in the workspace's top categories. k is chosen by silhouette
on a sample unless the operator fixes it. The model (scaler and centroids) is kept in the job result,
so saving a proposal re-assigns today's customers to the nearest centroid and snapshots them as a
static segment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from shequn.audience.rule_py import epoch_day
from shequn.audience.segments import create_static_segment
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed

DISCOVERY_JOB = "audience.discover_segments"
TOP_CATEGORIES = 6
FIT_SAMPLE = 50_000  # k-means is fitted on a sample; every customer is then assigned to its nearest centroid
SILHOUETTE_SAMPLE = 2_000
K_RANGE = range(3, 8)
BASE_FEATURES = ("recency", "frequency", "monetary", "engagement", "influence")
SEED = 20261124


@dataclass
class Features:
    """A matrix of customer features and what each row and column is."""

    ids: np.ndarray
    matrix: np.ndarray
    columns: list[str]
    categories: list[str]
    cities: list[str]
    raw_days: np.ndarray
    raw_orders: np.ndarray
    raw_spent: np.ndarray
    raw_events: np.ndarray


def load_features(
    session: Session, *, workspace_id: int, as_of: datetime, categories: list[str] | None = None
) -> Features:
    """Features of live customers who bought or engaged (others have nothing to cluster on)."""
    bulk = Bulk(session)
    today = epoch_day(as_of)
    events: dict[int, int] = {
        int(cid): int(n)
        for cid, n in bulk.execute(
            "SELECT customer_id, SUM(count) FROM customer_activity WHERE workspace_id = ? AND kind = 'event' "
            "AND day > ? GROUP BY customer_id",
            [workspace_id, today - 90],
        )
    }
    rows = bulk.execute(
        "SELECT id, last_order_at, orders_count, total_spent, influence, city FROM customers "
        "WHERE workspace_id = ? AND merged_into_id IS NULL AND orders_count > 0 ORDER BY id",
        [workspace_id],
    )
    buyers = {int(r[0]) for r in rows}
    extra = sorted(set(events) - buyers)
    if extra:
        rows += bulk.select_in(
            "SELECT id, last_order_at, orders_count, total_spent, influence, city FROM customers "
            "WHERE workspace_id = ? AND merged_into_id IS NULL AND id {in}",
            extra,
            [workspace_id],
        )
    n = len(rows)
    ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
    days = np.array(
        [(today - epoch_day(t)) if (t := bulk.parse_ts(r[1])) is not None else 3650 for r in rows], dtype=np.float64
    )
    # An order stamped later today in the shop's timezone is "ahead" of UTC today: never negative days.
    days = np.clip(days, 0, None)
    orders = np.array([int(r[2]) for r in rows], dtype=np.float64)
    spent = np.array([max(int(r[3]), 0) for r in rows], dtype=np.float64)
    influence = np.array([int(r[4]) for r in rows], dtype=np.float64)
    engaged = np.array([events.get(int(r[0]), 0) for r in rows], dtype=np.float64)
    if categories is None:
        categories = [
            str(r[0])
            for r in bulk.execute(
                "SELECT ref FROM customer_activity WHERE workspace_id = ? AND kind = 'category' "
                "GROUP BY ref ORDER BY SUM(amount) DESC LIMIT ?",
                [workspace_id, TOP_CATEGORIES],
            )
        ]
    shares = np.zeros((n, len(categories)))
    if categories and n:
        pos = {int(cid): i for i, cid in enumerate(ids)}
        col = {c: j for j, c in enumerate(categories)}
        for cid, ref, amount in bulk.execute(
            "SELECT customer_id, ref, SUM(amount) FROM customer_activity WHERE workspace_id = ? AND kind = 'category' "
            "GROUP BY customer_id, ref",
            [workspace_id],
        ):
            i, j = pos.get(int(cid)), col.get(str(ref))
            if i is not None and j is not None:
                shares[i, j] = float(amount or 0)
        totals = np.maximum(spent, 1.0)
        shares = np.clip(shares / totals[:, None], 0.0, 1.0)
    base = (
        np.column_stack(
            [np.log1p(days), np.log1p(orders), np.log1p(spent / 100.0), np.log1p(engaged), influence / 100.0]
        )
        if n
        else np.zeros((0, len(BASE_FEATURES)))
    )
    matrix = np.hstack([base, shares]) if n else np.zeros((0, len(BASE_FEATURES) + len(categories)))
    return Features(
        ids=ids,
        matrix=matrix,
        columns=[*BASE_FEATURES, *(f"share:{c}" for c in categories)],
        categories=categories,
        cities=[str(r[5] or "") for r in rows],
        raw_days=days,
        raw_orders=orders,
        raw_spent=spent,
        raw_events=engaged,
    )


def kmeans(x: np.ndarray, k: int, *, seed: int = SEED, iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: (centroids, labels)."""
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.array(centroids)[None, :, :]) ** 2).sum(axis=2), axis=1)
        total = d2.sum()
        centroids.append(x[rng.choice(len(x), p=d2 / total)] if total > 0 else x[rng.integers(len(x))])
    c = np.array(centroids, dtype=np.float64)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        labels = assign(x, c)
        moved = np.array([x[labels == j].mean(axis=0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(moved, c):
            break
        c = moved
    return c, assign(x, c)


def assign(x: np.ndarray, centroids: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Index of the nearest centroid for each row (in chunks, so 1M rows stay within memory)."""
    out = np.empty(len(x), dtype=np.int64)
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk]
        out[i : i + chunk] = ((part[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    return out


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (x is a small sample: this is O(n²))."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    scores = []
    for i in range(len(x)):
        same = labels == labels[i]
        if same.sum() <= 1:
            scores.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        others = [d[i, labels == j].mean() for j in set(labels.tolist()) if j != labels[i]]
        b = min(others) if others else 0.0
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


def _name(profile: dict[str, Any], overall: dict[str, float]) -> tuple[str, str]:
    """A short zh/en name from what sets the cluster apart from everyone."""
    zh: list[str] = []
    en: list[str] = []

    def add(z: str, e: str) -> None:
        zh.append(z)
        en.append(e)

    if profile["avg_spent"] >= 1.5 * overall["avg_spent"]:
        add("高价值", "High-value")
    elif profile["avg_spent"] <= 0.5 * overall["avg_spent"]:
        add("低客单", "Low-spend")
    if profile["median_recency_days"] <= 60:
        add("近期活跃", "recently active")
    elif profile["median_recency_days"] >= 180:
        add("沉睡", "dormant")
    if profile["avg_orders"] >= max(2.5, 1.5 * overall["avg_orders"]):
        add("高复购", "repeat buyers")
    if profile["avg_events"] >= max(3.0, 2 * overall["avg_events"]):
        add("高互动", "engaged")
    top = profile["top_categories"][:1]
    if top and top[0]["share"] >= 0.4:
        add(f"偏好{top[0]['category']}", f"{top[0]['category']} lovers")
    return ("·".join(zh) or "普通客户", ", ".join(en).capitalize() or "Regular customers")


def discover(
    session: Session, *, workspace_id: int, k: int | None = None, as_of: datetime | None = None
) -> dict[str, Any]:
    """Cluster the workspace's customers and describe each cluster; the result is JSON for the job record."""
    as_of = as_of or utcnow()
    f = load_features(session, workspace_id=workspace_id, as_of=as_of)
    n = len(f.ids)
    if n < 20:
        raise ValidationFailed(details=[{"field": "customers", "message": "needs 20 or more buyers or engaged people"}])
    mean, std = f.matrix.mean(axis=0), f.matrix.std(axis=0)
    std[std == 0] = 1.0
    z = (f.matrix - mean) / std
    rng = np.random.default_rng(SEED)
    fit = z[rng.choice(n, size=min(n, FIT_SAMPLE), replace=False)]
    scores: dict[int, float] = {}
    if k is None:
        probe = fit[rng.choice(len(fit), size=min(len(fit), SILHOUETTE_SAMPLE), replace=False)]
        best: tuple[float, int] = (-2.0, K_RANGE.start)
        for kk in K_RANGE:
            if kk >= len(probe):
                break
            c, _ = kmeans(fit, kk)
            scores[kk] = round(silhouette(probe, assign(probe, c)), 4)
            best = max(best, (scores[kk], kk))
        k = best[1]
    centroids, _ = kmeans(fit, min(k, n))
    labels = assign(z, centroids)
    overall = {
        "avg_spent": float(f.raw_spent.mean()),
        "avg_orders": float(f.raw_orders.mean()),
        "avg_events": float(f.raw_events.mean()),
    }
    clusters = []
    for j in range(len(centroids)):
        mask = labels == j
        size = int(mask.sum())
        if not size:
            continue
        share_cols = f.matrix[mask][:, len(BASE_FEATURES) :]
        shares = sorted(
            ((round(float(share_cols[:, i].mean()), 3), c) for i, c in enumerate(f.categories)), reverse=True
        )[:3]
        tops = [{"category": c, "share": v} for v, c in shares]
        cities = Counter(c for c, m in zip(f.cities, mask, strict=True) if m and c).most_common(5)
        profile: dict[str, Any] = {
            "cluster": j,
            "size": size,
            "share": round(size / n, 4),
            "avg_spent": int(f.raw_spent[mask].mean()),
            "avg_orders": round(float(f.raw_orders[mask].mean()), 2),
            "median_recency_days": int(np.median(f.raw_days[mask])),
            "avg_events": round(float(f.raw_events[mask].mean()), 2),
            "top_categories": tops,
            "top_cities": [{"city": c, "customers": m} for c, m in cities],
        }
        profile["name_zh"], profile["name_en"] = _name(profile, overall)
        clusters.append(profile)
    clusters.sort(key=lambda c: -c["avg_spent"])
    return {
        "customers": n,
        "k": len(centroids),
        "silhouette": scores,
        "as_of": as_of.isoformat(),
        "model": {
            "columns": f.columns,
            "categories": f.categories,
            "mean": mean.tolist(),
            "std": std.tolist(),
            "centroids": centroids.tolist(),
        },
        "clusters": clusters,
    }


def save_cluster(
    session: Session,
    *,
    workspace_id: int,
    result: dict[str, Any],
    cluster: int,
    name: str,
    created_by: int | None = None,
) -> Any:
    """Snapshot the customers nearest to a discovered cluster's centroid as a static segment."""
    model = result.get("model") or {}
    centroids = np.array(model.get("centroids") or [], dtype=np.float64)
    if not 0 <= cluster < len(centroids):
        raise ValidationFailed(details=[{"field": "cluster", "message": f"0 to {len(centroids) - 1}"}])
    f = load_features(session, workspace_id=workspace_id, as_of=utcnow(), categories=list(model["categories"]))
    z = (f.matrix - np.array(model["mean"])) / np.array(model["std"])
    members = f.ids[assign(z, centroids) == cluster].tolist() if len(f.ids) else []
    profile = next((c for c in result.get("clusters", []) if c["cluster"] == cluster), None)
    description = f"k-means cluster {cluster} of {len(centroids)}" + (f": {profile['name_en']}" if profile else "")
    return create_static_segment(
        session,
        workspace_id=workspace_id,
        name=name,
        customer_ids=[int(c) for c in members],
        description=description,
        created_by=created_by,
    )
