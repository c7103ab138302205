"""Audience services: the customer 360 (profile, identities, purchase facts, social, timeline)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from shequn.audience import rfm
from shequn.audience.activity import (
    CUSTOMERS_CHANGED,
    PURCHASE_KINDS,
    ActivityRow,
    add_activity,
    add_activity_from,
    epoch_day_sql,
    mark_changed,
    replace_activity,
    replace_activity_from,
)
from shequn.audience.activity import get_settings as get_audience_settings
from shequn.audience.demo import all_live_customer_ids, ensure_demo_audience
from shequn.audience.discovery import DISCOVERY_JOB, save_cluster
from shequn.audience.errors import CustomerNotFound
from shequn.audience.identities import (
    influence_score,
    match_key,
    merge_customers,
    register_merge_hook,
    resolve_customers,
)
from shequn.audience.interests import INTEREST_JOB, refresh_interests
from shequn.audience.lifecycle import (
    LIFECYCLE_JOB,
    STAGE_NAMES,
    lifecycle_counts,
    refresh_lifecycle,
    request_tag_refresh,
    settings_values,
    update_audience_settings,
)
from shequn.audience.lookup import LOOKUP_KINDS, find_customers_by_identity, live_customer_ids
from shequn.audience.members import (
    MEMBER_SESSION_DAYS,
    MemberIdentity,
    MemberTicketInvalid,
    customer_device_ids,
    customer_phone_hash,
    end_member_session,
    get_member_session,
    get_member_sessions,
    issue_member_ticket,
    redeem_member_ticket,
    sign_in_newcomer,
)
from shequn.audience.models import Customer, CustomerIdentity, CustomerMerge
from shequn.audience.profiles import SegmentProfile, segment_profile
from shequn.audience.rule_py import epoch_day
from shequn.audience.schemas import PurchaseFacts, TimelineEntry
from shequn.audience.segment_members import (
    customer_segments,
    iter_member_rows,
    list_history,
    list_members,
    list_sizes,
    membership_table,
)
from shequn.audience.segments import (
    SEGMENT_CHANGES_JOB,
    SEGMENT_REFRESH_JOB,
    RefreshResult,
    apply_changes,
    check_segment_rule,
    create_segment,
    delete_segment,
    get_segment,
    list_segments,
    preview,
    refresh_all,
    refresh_segment,
    update_segment,
)
from shequn.audience.tags import (
    RULE_TAGS_JOB,
    BulkTagResult,
    TagNotFound,
    create_tag,
    delete_tag,
    get_tag,
    list_customer_tags,
    list_tags,
    refresh_rule_tags,
    tag_by_rule,
    tag_by_upload,
    tag_customers,
    untag_customers,
    update_tag,
)
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.jobs import JobRun, enqueue_job
from shequn.core.security import normalize_phone, phone_hash

__all__ = [
    "CUSTOMERS_CHANGED",
    "DISCOVERY_JOB",
    "PURCHASE_KINDS",
    "SEGMENT_CHANGES_JOB",
    "SEGMENT_REFRESH_JOB",
    "ActivityRow",
    "RefreshResult",
    "SegmentProfile",
    "add_activity",
    "add_activity_from",
    "all_live_customer_ids",
    "apply_changes",
    "check_segment_rule",
    "create_segment",
    "customer_segments",
    "delete_segment",
    "ensure_demo_audience",
    "epoch_day",
    "epoch_day_sql",
    "get_audience_settings",
    "get_segment",
    "influence_score",
    "iter_member_rows",
    "list_history",
    "list_members",
    "list_segments",
    "list_sizes",
    "live_customer_ids",
    "mark_changed",
    "match_key",
    "membership_table",
    "merge_customers",
    "preview",
    "refresh_all",
    "refresh_segment",
    "register_merge_hook",
    "replace_activity",
    "replace_activity_from",
    "resolve_customers",
    "save_cluster",
    "segment_profile",
    "update_segment",
]
# Members signed in on the H5 pages (audience.members).
__all__ += [
    "MEMBER_SESSION_DAYS",
    "MemberIdentity",
    "MemberTicketInvalid",
    "customer_device_ids",
    "customer_phone_hash",
    "end_member_session",
    "get_member_session",
    "get_member_sessions",
    "issue_member_ticket",
    "redeem_member_ticket",
    "sign_in_newcomer",
]
# Tags, interests, lifecycle and audience settings (audience.tags, .interests, .lifecycle).
__all__ += [
    "INTEREST_JOB",
    "LIFECYCLE_JOB",
    "LOOKUP_KINDS",
    "RULE_TAGS_JOB",
    "STAGE_NAMES",
    "BulkTagResult",
    "TagNotFound",
    "create_tag",
    "delete_tag",
    "find_customers_by_identity",
    "get_tag",
    "lifecycle_counts",
    "list_customer_tags",
    "list_tags",
    "live_customer_ids",
    "refresh_interests",
    "refresh_lifecycle",
    "refresh_rule_tags",
    "request_tag_refresh",
    "settings_values",
    "tag_by_rule",
    "tag_by_upload",
    "tag_customers",
    "untag_customers",
    "update_audience_settings",
    "update_tag",
]

TimelineSource = Callable[[Session, int, int, int], list[TimelineEntry]]
_timeline_sources: dict[str, TimelineSource] = {}

SORTS: dict[str, Any] = {
    "recent": Customer.last_order_at.desc(),
    "spent": Customer.total_spent.desc(),
    "orders": Customer.orders_count.desc(),
    "influence": Customer.influence.desc(),
    "newest": Customer.id.desc(),
}


RFM_JOB = rfm.RFM_JOB


def refresh_rfm(session: Session, *, workspace_id: int, window_days: int | None = None) -> int:
    """Recompute RFM scores and groups (window: the workspace's setting unless given); returns buyers scored."""
    return rfm.refresh(session, workspace_id=workspace_id, window_days=window_days)


def request_rfm_refresh(session: Session, *, workspace_id: int, created_by: int | None = None) -> JobRun:
    """Queue an RFM refresh after this transaction commits (imports call this when they finish)."""
    return enqueue_job(session, workspace_id=workspace_id, kind=RFM_JOB, params={}, created_by=created_by)


def rfm_group_counts(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Customers per RFM group."""
    return rfm.group_counts(session, workspace_id=workspace_id)


def register_timeline_source(name: str, source: TimelineSource) -> None:
    """Let a higher domain contribute entries to customer timelines."""
    _timeline_sources[name] = source


TOP_CATEGORIES = 3


def top_categories_of(category_spend: dict[str, int], limit: int = TOP_CATEGORIES) -> list[dict[str, Any]]:
    """The biggest categories with their spend and share of all category spend."""
    total = sum(category_spend.values()) or 1
    ranked = sorted(category_spend.items(), key=lambda x: (-x[1], x[0]))[:limit]
    return [{"category": c, "spent": a, "share": round(a / total, 3)} for c, a in ranked]


def _write_facts(bulk: Bulk, workspace_id: int, facts: Sequence[PurchaseFacts]) -> None:
    now = bulk.ts(utcnow())
    bulk.executemany(
        "UPDATE customers SET first_order_at = ?, last_order_at = ?, orders_count = ?, total_spent = ?, "
        "avg_order_value = ?, top_categories = ?j, category_spend = ?j, updated_at = ? "
        "WHERE id = ? AND workspace_id = ?",
        [
            (
                bulk.ts(f.first_order_at),
                bulk.ts(f.last_order_at),
                f.orders_count,
                f.total_spent,
                f.total_spent // f.orders_count if f.orders_count else 0,
                bulk.js(top_categories_of(f.category_spend)),
                bulk.js(f.category_spend),
                now,
                f.customer_id,
                workspace_id,
            )
            for f in facts
        ],
    )


def update_purchase_facts(session: Session, *, workspace_id: int, facts: Sequence[PurchaseFacts]) -> None:
    """Replace customers' purchase facts with ones recomputed from all their orders."""
    if facts:
        _write_facts(Bulk(session), workspace_id, facts)


def add_purchase_facts(session: Session, *, workspace_id: int, deltas: Sequence[PurchaseFacts]) -> None:
    """Add the facts of new orders to customers' stored facts (no re-read of their older orders)."""
    if not deltas:
        return
    bulk = Bulk(session)
    current = {
        cid: (first, last, n, spent, cats)
        for cid, first, last, n, spent, cats in bulk.select_in(
            "SELECT id, first_order_at, last_order_at, orders_count, total_spent, category_spend FROM customers "
            "WHERE workspace_id = ? AND id {in}",
            [d.customer_id for d in deltas],
            [workspace_id],
        )
    }
    merged = []
    for d in deltas:
        if d.customer_id not in current:
            continue
        first, last, n, spent, cats = current[d.customer_id]
        first, last = bulk.parse_ts(first), bulk.parse_ts(last)
        spend = dict(cats if isinstance(cats, dict) else orjson.loads(cats or "{}"))
        for cat, amount in d.category_spend.items():
            spend[cat] = spend.get(cat, 0) + amount
        firsts = [t for t in (first, d.first_order_at) if t is not None]
        lasts = [t for t in (last, d.last_order_at) if t is not None]
        merged.append(
            PurchaseFacts(
                customer_id=d.customer_id,
                first_order_at=min(firsts) if firsts else None,
                last_order_at=max(lasts) if lasts else None,
                orders_count=n + d.orders_count,
                total_spent=max(spent + d.total_spent, 0),
                category_spend=spend,
            )
        )
    _write_facts(bulk, workspace_id, merged)


@dataclass(frozen=True)
class CustomerFilter:
    """Filters of the customer list."""

    q: str = ""
    city: str = ""
    platform: str = ""
    min_spent: int | None = None
    min_orders: int | None = None
    rfm_group: str = ""
    sort: str = "recent"


def _search_condition(session: Session, workspace_id: int, q: str) -> ColumnElement[bool]:
    """What a search box query can mean: an exact platform id always; a phone, an id or a name by its shape.

    The exact matches are looked up one indexed query at a time (an OR across columns would make
    SQLite scan every customer); only a name search scans, and a phone, an email or a bare number is
    never taken for a name.
    """
    ids = set(
        session.scalars(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.workspace_id == workspace_id,
                CustomerIdentity.value == (q.lower() if "@" in q else q),
                CustomerIdentity.kind != "phone_hash",
            )
        )
    )
    phone = normalize_phone(q)
    if phone:
        hashed = phone_hash(phone)
        ids.update(
            session.scalars(
                select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.phone_hash == hashed)
            )
        )
        ids.update(
            session.scalars(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.workspace_id == workspace_id,
                    CustomerIdentity.match_key == match_key("*", "phone_hash", hashed),
                )
            )
        )
    if q.isdigit() and len(q) <= 18:
        ids.add(int(q))
    exact = Customer.id.in_(sorted(ids))
    if "@" in q or phone or q.isdigit():
        return exact
    return or_(exact, Customer.name.like(f"%{q}%"))


def _filtered(session: Session, workspace_id: int, flt: CustomerFilter) -> Select[Any]:
    stmt = select(Customer).where(Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None))
    q = flt.q.strip()
    if q:
        stmt = stmt.where(_search_condition(session, workspace_id, q))
    if flt.city:
        stmt = stmt.where(Customer.city == flt.city)
    if flt.platform:
        stmt = stmt.where(
            Customer.id.in_(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.workspace_id == workspace_id, CustomerIdentity.source == flt.platform
                )
            )
        )
    if flt.min_spent is not None:
        stmt = stmt.where(Customer.total_spent >= flt.min_spent)
    if flt.min_orders is not None:
        stmt = stmt.where(Customer.orders_count >= flt.min_orders)
    if flt.rfm_group:
        stmt = stmt.where(Customer.rfm_group == flt.rfm_group)
    return stmt


def list_customers(
    session: Session, *, workspace_id: int, flt: CustomerFilter, limit: int = 50, offset: int = 0
) -> tuple[list[Customer], int]:
    """One page of the workspace's customers and the total matching."""
    stmt = _filtered(session, workspace_id, flt)
    total = session.scalar(stmt.with_only_columns(func.count(Customer.id))) or 0
    order = SORTS.get(flt.sort, SORTS["recent"])
    rows = session.scalars(stmt.order_by(order, Customer.id.desc()).limit(limit).offset(offset))
    return [r for r in rows], total


def get_customer(session: Session, *, workspace_id: int, customer_id: int) -> Customer:
    """A customer of this workspace (following merges to the surviving record)."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise CustomerNotFound(id=customer_id)
    if customer.merged_into_id is not None:
        return get_customer(session, workspace_id=workspace_id, customer_id=customer.merged_into_id)
    return customer


def list_identities(session: Session, *, workspace_id: int, customer_id: int) -> list[CustomerIdentity]:
    """The customer's platform identities."""
    return list(
        session.scalars(
            select(CustomerIdentity)
            .where(CustomerIdentity.workspace_id == workspace_id, CustomerIdentity.customer_id == customer_id)
            .order_by(CustomerIdentity.id)
        )
    )


def list_merges(session: Session, *, workspace_id: int, customer_id: int) -> list[CustomerMerge]:
    """Merges into this customer."""
    return list(
        session.scalars(
            select(CustomerMerge).where(
                CustomerMerge.workspace_id == workspace_id, CustomerMerge.winner_id == customer_id
            )
        )
    )


def customer_timeline(session: Session, *, workspace_id: int, customer_id: int, limit: int = 50) -> list[TimelineEntry]:
    """Everything that happened to a customer, newest first, from every registered domain."""
    entries: list[TimelineEntry] = []
    for merge in list_merges(session, workspace_id=workspace_id, customer_id=customer_id):
        entries.append(
            TimelineEntry(
                at=merge.created_at,
                kind="merge",
                title=merge.match_key.split(":", 1)[0],
                details={"loser_id": merge.loser_id},
            )
        )
    for ident in list_identities(session, workspace_id=workspace_id, customer_id=customer_id):
        entries.append(TimelineEntry(at=ident.created_at, kind="identity", title=f"{ident.source}/{ident.kind}"))
    for source in _timeline_sources.values():
        entries.extend(source(session, workspace_id, customer_id, limit))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def customer_counts(session: Session, *, workspace_id: int) -> tuple[int, int, int]:
    """Live customers, those who bought at least once, and those who bought more than once (one scan)."""
    total, buyers, repeat = session.execute(
        select(
            func.count(Customer.id),
            func.coalesce(func.sum(case((Customer.orders_count >= 1, 1), else_=0)), 0),
            func.coalesce(func.sum(case((Customer.orders_count >= 2, 1), else_=0)), 0),
        ).where(Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None))
    ).one()
    return int(total), int(buyers), int(repeat)


def top_cities(session: Session, *, workspace_id: int, limit: int = 10) -> list[tuple[str, int]]:
    """Cities with the most customers."""
    rows = session.execute(
        select(Customer.city, func.count())
        .where(Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None), Customer.city != "")
        .group_by(Customer.city)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return [(c, n) for c, n in rows]


def list_cities(session: Session, *, workspace_id: int) -> list[str]:
    """Distinct customer cities (filter choices)."""
    return [c for c, _ in top_cities(session, workspace_id=workspace_id, limit=200)]
