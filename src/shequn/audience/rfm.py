"""RFM: recency, frequency and monetary scores (1–5 within the workspace) and the classic groups.

Scores are cumulative-distribution quintiles, so equal values always get equal scores (many buyers
have exactly one order; NTILE would split them arbitrarily). A score is "high" when it is at or above
the workspace's mean score (so a workspace of identical buyers is not all "low"), which gives the
eight classic groups of the Chinese RFM model.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience.activity import bump_epoch, get_settings
from shequn.audience.models import Customer
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow

RFM_JOB = "audience.refresh_rfm"

# (R high, F high, M high) → group code; names in both locales for the console and exports.
GROUPS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (True, False, True): "important_develop",
    (False, True, True): "important_keep",
    (False, False, True): "important_retain",
    (True, True, False): "general_value",
    (True, False, False): "general_develop",
    (False, True, False): "general_keep",
    (False, False, False): "general_retain",
}
GROUP_NAMES: dict[str, tuple[str, str]] = {
    "important_value": ("重要价值客户", "Champions (important value)"),
    "important_develop": ("重要发展客户", "Promising big spenders (important develop)"),
    "important_keep": ("重要保持客户", "Loyal, slipping away (important keep)"),
    "important_retain": ("重要挽留客户", "Big spenders to win back (important retain)"),
    "general_value": ("一般价值客户", "Frequent small spenders (general value)"),
    "general_develop": ("一般发展客户", "New small spenders (general develop)"),
    "general_keep": ("一般保持客户", "Regulars going quiet (general keep)"),
    "general_retain": ("一般挽留客户", "Lapsed small spenders (general retain)"),
}


@dataclass(frozen=True)
class RfmRow:
    """The inputs of one customer's RFM."""

    customer_id: int
    last_order_at: datetime
    orders: int
    spent: int


def quintile(rank_le: int, total: int) -> int:
    """Score 1–5 from how many values are ≤ this one (cumulative distribution), ties scoring alike."""
    return max(1, min(5, math.ceil(5 * rank_le / total)))


def score(rows: list[RfmRow], as_of: datetime) -> dict[int, tuple[int, int, int, str]]:
    """customer id → (R, F, M, group) for buyers; recency scores 5 for the most recent."""
    if not rows:
        return {}
    n = len(rows)

    def cume(values: list[float]) -> list[int]:
        ordered = sorted(values)
        return [bisect_right(ordered, v) for v in values]

    # Recency: fewer days since the last order is better, so rank on the negated age.
    ages = [-(as_of - r.last_order_at).total_seconds() for r in rows]
    r_le, f_le, m_le = cume(ages), cume([float(r.orders) for r in rows]), cume([float(r.spent) for r in rows])
    scores = [(quintile(a, n), quintile(b, n), quintile(c, n)) for a, b, c in zip(r_le, f_le, m_le, strict=True)]
    means = [sum(s[i] for s in scores) / n for i in range(3)]
    return {
        r.customer_id: (*s, GROUPS[(s[0] >= means[0], s[1] >= means[1], s[2] >= means[2])])
        for r, s in zip(rows, scores, strict=True)
    }


def refresh(
    session: Session, *, workspace_id: int, window_days: int | None = None, as_of: datetime | None = None
) -> int:
    """Recompute RFM for buyers active in the window (default: the workspace's setting); others are cleared."""
    as_of = as_of or utcnow()
    if window_days is None:
        window_days = get_settings(session, workspace_id=workspace_id).rfm_window_days
    since = as_of - timedelta(days=window_days)
    rows = [
        RfmRow(cid, last, n, spent)
        for cid, last, n, spent in session.execute(
            select(Customer.id, Customer.last_order_at, Customer.orders_count, Customer.total_spent).where(
                Customer.workspace_id == workspace_id,
                Customer.merged_into_id.is_(None),
                Customer.orders_count > 0,
                Customer.last_order_at >= since,
            )
        )
        if last is not None
    ]
    scored = score(rows, as_of)
    bulk = Bulk(session)
    bulk.execute(
        "UPDATE customers SET r_score = NULL, f_score = NULL, m_score = NULL, rfm_group = NULL "
        "WHERE workspace_id = ? AND rfm_group IS NOT NULL",
        [workspace_id],
    )
    bulk.executemany(
        "UPDATE customers SET r_score = ?, f_score = ?, m_score = ?, rfm_group = ? WHERE id = ?",
        [(*v, cid) for cid, v in scored.items()],
    )
    # Quintiles are relative, so anyone's score may have moved: segments on RFM rebuild in full.
    bump_epoch(session, workspace_id=workspace_id)
    return len(scored)


def group_counts(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Customers per RFM group (all eight, zeros included)."""
    counts = dict.fromkeys(GROUP_NAMES, 0)
    for group, n in session.execute(
        select(Customer.rfm_group, func.count())
        .where(Customer.workspace_id == workspace_id, Customer.rfm_group.is_not(None))
        .group_by(Customer.rfm_group)
    ):
        if group is not None:
            counts[group] = int(n)
    return counts
