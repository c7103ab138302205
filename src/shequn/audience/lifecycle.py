"""Lifecycle stages from purchase dates (new, active, at_risk, lapsed, won_back), the audience settings
that set their thresholds, and the refresh that keeps customers.lifecycle current.

Days are whole UTC days since the epoch (customer_activity's day). "Within N days" means an age of
fewer than N days: today and the N-1 days before it, the same window a rule's `days: N` sums over.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import engine, rfm
from shequn.audience.activity import ATTRIBUTES, get_settings, mark_changed
from shequn.audience.interests import INTEREST_JOB
from shequn.audience.models import AudienceSettings, Customer
from shequn.audience.rule_py import epoch_day
from shequn.audience.rules import LIFECYCLE_STAGES
from shequn.audience.tags import RULE_TAGS_JOB, live_customer_batches
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed
from shequn.core.jobs import JobRun, enqueue_job
from shequn.core.settings import get_settings as app_settings

LIFECYCLE_JOB = "audience.refresh_lifecycle"
# Stage names in both locales, for the API and exports (the console has its own catalog).
STAGE_NAMES: dict[str, tuple[str, str]] = {
    "new": ("新客", "New"),
    "active": ("活跃", "Active"),
    "at_risk": ("流失风险", "At risk"),
    "lapsed": ("已流失", "Lapsed"),
    "won_back": ("已召回", "Won back"),
}
BATCH = 5_000  # customers read per round: bounded memory on a million-customer workspace
MAX_DAYS = 3650


@dataclass(frozen=True)
class Thresholds:
    """Stage boundaries in days: new ≤ active ≤ lapsed."""

    new_days: int = 30
    active_days: int = 90
    lapsed_days: int = 180


def thresholds_of(settings: AudienceSettings) -> Thresholds:
    """The workspace's lifecycle thresholds."""
    return Thresholds(settings.lifecycle_new_days, settings.lifecycle_active_days, settings.lifecycle_lapsed_days)


def lifecycle_stage(order_days: Collection[int], *, today: int, thresholds: Thresholds) -> str | None:
    """The stage of a customer who ordered on these days (None without orders)."""
    if not order_days:
        return None
    days = sorted(set(order_days))
    return stage_of(days[0], days[-1], days[-2] if len(days) > 1 else None, today=today, thresholds=thresholds)


def stage_of(first: int, last: int, before_last: int | None, *, today: int, thresholds: Thresholds) -> str:
    """The stage from the first and last order days and the latest order day before the last (if any)."""
    last_age = today - last
    if last_age < thresholds.active_days and before_last is not None and last - before_last >= thresholds.lapsed_days:
        return "won_back"
    if today - first < thresholds.new_days:
        return "new"
    if last_age < thresholds.active_days:
        return "active"
    if last_age < thresholds.lapsed_days:
        return "at_risk"
    return "lapsed"


def _order_days(bulk: Bulk, workspace_id: int, batch: Sequence[tuple[Any, ...]]) -> dict[int, set[int]]:
    """Order days of a batch of (id, lifecycle, orders, first order, last order) customers: their activity
    days plus the days of their first and last order (purchase facts also cover orders imported before
    activity was recorded)."""
    days: dict[int, set[int]] = {int(r[0]): set() for r in batch if r[2] > 0}
    for cid, day in bulk.select_in(
        "SELECT customer_id, day FROM customer_activity "
        "WHERE workspace_id + 0 = ? AND kind = 'order' AND count > 0 AND customer_id {in}",
        sorted(days),
        [workspace_id],
    ):
        days[int(cid)].add(int(day))
    for cid, _, n, first, last in batch:
        if n > 0:
            stamps = (bulk.parse_ts(first), bulk.parse_ts(last))
            days[int(cid)].update(epoch_day(t) for t in stamps if t is not None)
    return days


def refresh_lifecycle(
    session: Session, *, workspace_id: int, ids: Collection[int] | None = None, as_of: datetime | None = None
) -> int:
    """Recompute the stage of every live customer (or those among ids), writing only changes; returns how many."""
    limits = thresholds_of(get_settings(session, workspace_id=workspace_id))
    today = epoch_day(as_of or utcnow())
    bulk = Bulk(session)
    changed: list[int] = []
    if ids is not None and app_settings().segment_engine == "numpy":
        # A few customers: their order days come from the warm segment snapshot, not the database.
        updates = []
        for cid, current, first, last, before in engine.order_days(session, workspace_id=workspace_id, ids=ids):
            stage = None
            if first is not None and last is not None:
                stage = stage_of(first, last, before, today=today, thresholds=limits)
            if stage != current:
                updates.append((stage, cid))
        _set_stages(bulk, workspace_id, updates)
        changed = [cid for _, cid in updates]
    else:
        for batch in live_customer_batches(session, workspace_id=workspace_id, ids=ids, size=BATCH):
            rows = bulk.select_in(
                "SELECT id, lifecycle, orders_count, first_order_at, last_order_at FROM customers "
                "WHERE workspace_id + 0 = ? AND id {in}",
                batch,
                [workspace_id],
            )
            days = _order_days(bulk, workspace_id, rows)
            updates = []
            for cid, current, *_ in rows:
                stage = lifecycle_stage(days.get(cid, ()), today=today, thresholds=limits)
                if stage != current:
                    updates.append((stage, cid))
            _set_stages(bulk, workspace_id, updates)
            changed.extend(cid for _, cid in updates)
    # mark_changed turns a change this wide (more than 50k customers) into one epoch bump.
    mark_changed(session, workspace_id=workspace_id, customer_ids=changed, kinds=ATTRIBUTES)
    session.expire_all()  # ORM copies of customers are stale after the raw updates
    return len(changed)


def _set_stages(bulk: Bulk, workspace_id: int, updates: Sequence[tuple[str | None, int]]) -> None:
    """Write (stage, customer id) pairs: one statement on PostgreSQL, executemany on SQLite."""
    if not updates:
        return
    updates = sorted(updates, key=lambda u: u[1])  # in id order: the heap and index pages in one sweep
    if bulk.pg:
        bulk.execute(
            "UPDATE customers SET lifecycle = v.stage FROM unnest(?::text[], ?::bigint[]) AS v(stage, id) "
            "WHERE customers.id = v.id AND customers.workspace_id = ?",
            [[u[0] for u in updates], [u[1] for u in updates], workspace_id],
        )
        return
    bulk.executemany(
        "UPDATE customers SET lifecycle = ? WHERE id = ? AND workspace_id = ?",
        [(stage, cid, workspace_id) for stage, cid in updates],
    )


def lifecycle_counts(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Live customers per lifecycle stage (every stage, zeros included; customers without orders left out)."""
    counts = dict.fromkeys(LIFECYCLE_STAGES, 0)
    for stage, n in session.execute(
        select(Customer.lifecycle, func.count())
        .where(
            Customer.workspace_id == workspace_id,
            Customer.merged_into_id.is_(None),
            Customer.lifecycle.is_not(None),
        )
        .group_by(Customer.lifecycle)
    ):
        if stage in counts:
            counts[stage] = int(n)
    return counts


# --- settings -----------------------------------------------------------------------------------

SETTING_LIMITS = {
    "rfm_window_days": (7, MAX_DAYS),
    "interest_half_life_days": (1, MAX_DAYS),
    "lifecycle_new_days": (1, MAX_DAYS),
    "lifecycle_active_days": (1, MAX_DAYS),
    "lifecycle_lapsed_days": (1, MAX_DAYS),
}
# Which refresh a changed setting calls for.
SETTING_JOBS = {
    "rfm_window_days": rfm.RFM_JOB,
    "interest_half_life_days": INTEREST_JOB,
    "lifecycle_new_days": LIFECYCLE_JOB,
    "lifecycle_active_days": LIFECYCLE_JOB,
    "lifecycle_lapsed_days": LIFECYCLE_JOB,
}


def check_settings(values: dict[str, Any]) -> None:
    """Raise ValidationFailed naming each out-of-range field, and the thresholds out of order."""
    errors = []
    for name, value in values.items():
        lo, hi = SETTING_LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            errors.append({"field": name, "code": "out_of_range", "message": f"{name} must be from {lo} to {hi}"})
    if errors:
        raise ValidationFailed(details=errors)
    new, active, lapsed = values["lifecycle_new_days"], values["lifecycle_active_days"], values["lifecycle_lapsed_days"]
    if new > active:
        errors.append(
            {"field": "lifecycle_new_days", "code": "order", "message": "lifecycle_new_days must be ≤ active days"}
        )
    if active > lapsed:
        errors.append(
            {
                "field": "lifecycle_active_days",
                "code": "order",
                "message": "lifecycle_active_days must be ≤ lapsed days",
            }
        )
    if errors:
        raise ValidationFailed(details=errors)


def settings_values(settings: AudienceSettings) -> dict[str, int]:
    """The editable settings as a dict."""
    return {name: int(getattr(settings, name)) for name in SETTING_LIMITS}


def update_audience_settings(
    session: Session, *, workspace_id: int, changes: dict[str, Any], created_by: int | None = None
) -> AudienceSettings:
    """Change some settings (checked together with the rest) and queue the refreshes they affect."""
    unknown = [k for k in changes if k not in SETTING_LIMITS]
    if unknown:
        raise ValidationFailed(
            details=[{"field": k, "code": "unknown_key", "message": "unknown setting"} for k in unknown]
        )
    settings = get_settings(session, workspace_id=workspace_id)
    merged = {**settings_values(settings), **changes}
    check_settings(merged)
    jobs = {SETTING_JOBS[k] for k, v in changes.items() if getattr(settings, k) != v}
    for name, value in changes.items():
        setattr(settings, name, value)
    session.flush()
    for kind in sorted(jobs):
        enqueue_job(session, workspace_id=workspace_id, kind=kind, params={}, created_by=created_by)
    return settings


def request_tag_refresh(session: Session, *, workspace_id: int, created_by: int | None = None) -> list[JobRun]:
    """Queue the lifecycle, interest and rule-tag refreshes (in that order: rule tags may test the others)."""
    return [
        enqueue_job(session, workspace_id=workspace_id, kind=kind, params={}, created_by=created_by)
        for kind in (LIFECYCLE_JOB, INTEREST_JOB, RULE_TAGS_JOB)
    ]
