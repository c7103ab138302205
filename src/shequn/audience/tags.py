"""Tags: manual labels, rule tags kept current by the rule language, and bulk tagging by rule or uploaded
id list (the identifiers in an upload are resolved by audience.lookup).

customer_tags holds one row per tagged customer; a tag's customers_count is recounted after every
write so the tag list never scans customer_tags. Every write logs the customers it changed
(activity.mark_changed) so segments that test tags re-evaluate them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.audience import rule_sql
from shequn.audience.activity import TAGS, mark_changed
from shequn.audience.lookup import (
    CONTROL_CHARS,
    live_customer_ids,
    parse_id_list,
    resolve_identifiers,
    unusable_reason,
)
from shequn.audience.models import Customer, CustomerTag, Segment, Tag
from shequn.audience.rules import RuleRefs, check_rule
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.errors import Conflict, NotFound, ValidationFailed
from shequn.core.types import UTCDateTime

RULE_TAGS_JOB = "audience.refresh_rule_tags"
KINDS = ("manual", "rule", "interest")
USER_KINDS = ("manual", "rule")  # interest tags are made by the interest refresh, never by hand
NAME_MAX = 64
MAX_REPORTED = 1000  # unmatched upload rows listed in the reply, like an import's error report
INCREMENTAL_CHUNK = 2_000  # ids per restricted rule query: each leaf repeats the list, SQLite binds ≤ 32,766
_COLOR = re.compile(r"(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6})?")
CT = cast(Table, CustomerTag.__table__)
CT_COLUMNS = ("customer_id", "tag_id", "workspace_id", "weight", "source", "created_at")


class TagNotFound(NotFound):
    """No such live tag in this workspace."""

    code = "tag_not_found"


@dataclass(frozen=True)
class UnmatchedRow:
    """An uploaded row no customer was found for."""

    row: int
    value: str
    reason: str  # not_found | too_long | invalid


@dataclass
class BulkTagResult:
    """What a bulk tagging did: rows (or rule members) matched, customers newly tagged, rows not matched."""

    matched: int = 0
    tagged: int = 0
    unmatched: list[UnmatchedRow] = field(default_factory=list)
    unmatched_total: int = 0


# --- reading ------------------------------------------------------------------------------------


def get_tag(session: Session, *, workspace_id: int, tag_id: int) -> Tag:
    """A live tag of the workspace, or TagNotFound."""
    tag = session.scalar(
        select(Tag).where(Tag.workspace_id == workspace_id, Tag.id == tag_id, Tag.deleted_at.is_(None))
    )
    if tag is None:
        raise TagNotFound()
    return tag


def list_tags(
    session: Session, *, workspace_id: int, kind: str | None = None, q: str = "", limit: int = 500, offset: int = 0
) -> tuple[list[Tag], int]:
    """A page of the workspace's live tags (by kind, then name) and the total."""
    where: list[ColumnElement[bool]] = [Tag.workspace_id == workspace_id, Tag.deleted_at.is_(None)]
    if kind:
        where.append(Tag.kind == kind)
    if q:
        where.append(Tag.name.contains(q, autoescape=True))
    total = session.scalar(select(func.count()).select_from(Tag).where(*where)) or 0
    rows = session.scalars(select(Tag).where(*where).order_by(Tag.kind, Tag.name, Tag.id).limit(limit).offset(offset))
    return list(rows), int(total)


def list_customer_tags(session: Session, *, workspace_id: int, customer_id: int) -> list[tuple[Tag, CustomerTag]]:
    """A customer's live tags with weight and source, heaviest first."""
    rows = session.execute(
        select(Tag, CustomerTag)
        .join(CustomerTag, CustomerTag.tag_id == Tag.id)
        .where(
            CustomerTag.workspace_id == workspace_id,
            CustomerTag.customer_id == customer_id,
            Tag.workspace_id == workspace_id,
            Tag.deleted_at.is_(None),
        )
        .order_by(Tag.kind, CustomerTag.weight.desc(), Tag.name)
    )
    return [(t, ct) for t, ct in rows]


# --- validation ---------------------------------------------------------------------------------


def check_tag_name(session: Session, *, workspace_id: int, name: Any, exclude: int | None = None) -> str:
    """A tag name stripped and checked: 1–64 characters, no control characters, not used by a live tag."""
    if not isinstance(name, str):
        raise ValidationFailed(details=[{"field": "name", "code": "bad_value", "message": "name must be text"}])
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ValidationFailed(
            details=[{"field": "name", "code": "bad_length", "message": f"name must be 1 to {NAME_MAX} characters"}]
        )
    if CONTROL_CHARS.search(name):
        raise ValidationFailed(
            details=[{"field": "name", "code": "bad_value", "message": "name may not contain control characters"}]
        )
    # Deleted tags count too: they were renamed on delete, so only a name like "x ~12" can meet one.
    clash = session.scalar(
        select(Tag.id).where(Tag.workspace_id == workspace_id, Tag.name == name, Tag.id != (exclude or 0))
    )
    if clash is not None:
        raise _name_taken(name)
    return name


def _name_taken(name: str) -> Conflict:
    return Conflict("tag_name_taken", details=[{"field": "name", "message": "a tag with this name exists"}], name=name)


def check_tag_details(*, color: str | None = None, description: str | None = None) -> None:
    """Colour is empty or #rgb/#rrggbb; a description has at most 255 characters."""
    errors = []
    if color is not None and not _COLOR.fullmatch(color):
        errors.append({"field": "color", "code": "bad_value", "message": "color is empty, #rgb or #rrggbb"})
    if description is not None and (len(description) > 255 or "\x00" in description):
        errors.append({"field": "description", "code": "bad_length", "message": "at most 255 characters"})
    if errors:
        raise ValidationFailed(details=errors)


def _tag_refs(rule: Any) -> set[int]:
    try:
        return set(check_rule(rule).tag_ids)
    except ValidationFailed:
        return set()


def _reaches(session: Session, workspace_id: int, start: Collection[int], target: int) -> bool:
    """Whether target is reachable from the start tags through rule tags' references to other tags."""
    seen: set[int] = set()
    todo = list(start)
    while todo:
        tid = todo.pop()
        if tid == target:
            return True
        if tid in seen:
            continue
        seen.add(tid)
        rule = session.scalar(
            select(Tag.rule).where(Tag.workspace_id == workspace_id, Tag.id == tid, Tag.kind == "rule")
        )
        if rule is not None:
            todo.extend(_tag_refs(rule))
    return False


def check_tag_rule(
    session: Session, *, workspace_id: int, rule: Any, tag_id: int | None = None, path: str = "rule"
) -> RuleRefs:
    """Validate a rule for a rule tag or a bulk tagging: shape, live tags and segments, no self-reference."""
    refs = check_rule(rule, path)
    errors: list[dict[str, str]] = []
    if refs.tag_ids:
        state = {
            tid: deleted
            for tid, deleted in session.execute(
                select(Tag.id, Tag.deleted_at).where(Tag.workspace_id == workspace_id, Tag.id.in_(refs.tag_ids))
            )
        }
        for tid, where in refs.tag_ids.items():
            if tid not in state:
                errors.append({"field": where, "code": "unknown_tag", "message": f"no tag {tid} in this workspace"})
            elif state[tid] is not None:
                errors.append({"field": where, "code": "deleted_tag", "message": f"tag {tid} was deleted"})
            elif tid == tag_id:
                errors.append({"field": where, "code": "self_reference", "message": "a tag cannot refer to itself"})
            elif tag_id is not None and _reaches(session, workspace_id, [tid], tag_id):
                errors.append({"field": where, "code": "tag_cycle", "message": f"tag {tid} refers back to this one"})
    if refs.segment_ids:
        live = set(
            session.scalars(
                select(Segment.id).where(
                    Segment.workspace_id == workspace_id,
                    Segment.id.in_(refs.segment_ids),
                    Segment.deleted_at.is_(None),
                )
            )
        )
        for sid, where in refs.segment_ids.items():
            if sid not in live:
                errors.append({"field": where, "code": "unknown_segment", "message": f"no segment {sid}"})
    if errors:
        raise ValidationFailed(details=errors)
    return refs


# --- create, update, delete ---------------------------------------------------------------------


def create_tag(
    session: Session,
    *,
    workspace_id: int,
    name: str,
    kind: str = "manual",
    color: str = "",
    description: str = "",
    rule: Any = None,
    created_by: int | None = None,
    as_of: datetime | None = None,
) -> Tag:
    """Create a manual tag, or a rule tag whose members are computed now."""
    if kind not in USER_KINDS:
        raise ValidationFailed(details=[{"field": "kind", "code": "bad_value", "message": "kind is manual or rule"}])
    name = check_tag_name(session, workspace_id=workspace_id, name=name)
    check_tag_details(color=color, description=description)
    if kind == "rule":
        if rule is None:
            raise ValidationFailed(
                details=[{"field": "rule", "code": "required", "message": "a rule tag needs a rule"}]
            )
        check_tag_rule(session, workspace_id=workspace_id, rule=rule)
    elif rule is not None:
        raise ValidationFailed(
            details=[{"field": "rule", "code": "not_allowed", "message": "only rule tags have a rule"}]
        )
    tag = Tag(
        workspace_id=workspace_id,
        name=name,
        kind=kind,
        color=color,
        description=description,
        rule=rule if kind == "rule" else None,
        interest_key="",
        customers_count=0,
        created_by=created_by,
    )
    session.add(tag)
    try:
        session.flush()
    except IntegrityError as exc:
        # Two requests created the name at once; the caller's boundary rolls back, the client gets a 409.
        raise _name_taken(name) from exc
    if kind == "rule":
        _sync_rule_tag(session, tag, as_of or utcnow(), None)
    return tag


def update_tag(
    session: Session,
    *,
    workspace_id: int,
    tag_id: int,
    name: str | None = None,
    color: str | None = None,
    description: str | None = None,
    rule: Any = None,
    as_of: datetime | None = None,
) -> Tag:
    """Rename, recolour or describe a tag; a new rule re-evaluates a rule tag now."""
    tag = get_tag(session, workspace_id=workspace_id, tag_id=tag_id)
    check_tag_details(color=color, description=description)
    if name is not None:
        tag.name = check_tag_name(session, workspace_id=workspace_id, name=name, exclude=tag.id)
    if color is not None:
        tag.color = color
    if description is not None:
        tag.description = description
    if rule is not None:
        if tag.kind != "rule":
            raise ValidationFailed(
                details=[{"field": "rule", "code": "not_allowed", "message": "only rule tags have a rule"}]
            )
        check_tag_rule(session, workspace_id=workspace_id, rule=rule, tag_id=tag.id)
        tag.rule = rule
    try:
        session.flush()
    except IntegrityError as exc:
        raise _name_taken((name or "").strip()) from exc
    if rule is not None:
        _sync_rule_tag(session, tag, as_of or utcnow(), None)
    return tag


def _users_of(session: Session, workspace_id: int, tag_id: int) -> list[str]:
    """Names of live rule tags and segments whose rules test this tag."""
    users = [
        t.name
        for t in session.scalars(
            select(Tag).where(Tag.workspace_id == workspace_id, Tag.kind == "rule", Tag.deleted_at.is_(None))
        )
        if t.id != tag_id and tag_id in _tag_refs(t.rule)
    ]
    users += [
        s.name
        for s in session.scalars(
            select(Segment).where(Segment.workspace_id == workspace_id, Segment.deleted_at.is_(None))
        )
        if tag_id in _tag_refs(s.rule)
    ]
    return users


def delete_tag(session: Session, *, workspace_id: int, tag_id: int) -> int:
    """Soft-delete a tag no rule refers to and untag its customers; returns how many were untagged."""
    tag = get_tag(session, workspace_id=workspace_id, tag_id=tag_id)
    users = _users_of(session, workspace_id, tag.id)
    if users:
        raise Conflict(
            "tag_in_use",
            details=[{"field": "tag_id", "message": f"used by {', '.join(users)}"}],
            names=", ".join(users),
        )
    removed = session.scalars(
        delete(CT).where(CT.c.workspace_id == workspace_id, CT.c.tag_id == tag.id).returning(CT.c.customer_id)
    ).all()
    tag.deleted_at = utcnow()
    # The (workspace, name) unique key covers deleted tags too: free the name for a new tag.
    suffix = f" ~{tag.id}"
    tag.name = tag.name[: NAME_MAX - len(suffix)] + suffix
    tag.customers_count = 0
    session.flush()
    mark_changed(session, workspace_id=workspace_id, customer_ids=set(removed), kinds=TAGS)
    return len(removed)


# --- tagging ------------------------------------------------------------------------------------


def _manual_tag(session: Session, workspace_id: int, tag_id: int) -> Tag:
    tag = get_tag(session, workspace_id=workspace_id, tag_id=tag_id)
    if tag.kind != "manual":
        # Rule and interest tags are recomputed from data; a hand-made change would be undone silently.
        raise Conflict("tag_not_manual", details=[{"field": "tag_id", "message": f"{tag.kind} tags are computed"}])
    return tag


def by_id_in_workspace(column: Any, workspace_id: int) -> ColumnElement[bool]:
    """The workspace scope for queries that look rows up by a list of customer ids.

    "workspace_id + 0" still scopes the query, but keeps SQLite's planner off the (workspace_id, …)
    indexes, which would read the whole workspace once per batch of ids; the id index is used instead.
    Raw SQL spells it "workspace_id + 0 = ?". PostgreSQL plans either form well.
    """
    return (column + 0) == workspace_id


def live_customer_batches(
    session: Session, *, workspace_id: int, ids: Collection[int] | None = None, size: int = 5_000
) -> Iterator[list[int]]:
    """Ids of the workspace's live customers (all, or those among ids) in ascending batches of at most size."""
    if ids is not None:
        wanted = sorted(set(ids))
        for i in range(0, len(wanted), size):
            chunk = wanted[i : i + size]
            found = session.scalars(
                select(Customer.id).where(
                    by_id_in_workspace(Customer.workspace_id, workspace_id),
                    Customer.merged_into_id.is_(None),
                    Customer.id.in_(chunk),
                )
            ).all()
            if found:
                yield sorted(found)
        return
    after = 0
    while True:
        batch = list(
            session.scalars(
                select(Customer.id)
                .where(Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None), Customer.id > after)
                .order_by(Customer.id)
                .limit(size)
            )
        )
        if not batch:
            return
        yield batch
        after = batch[-1]


def recount_tags(session: Session, *, workspace_id: int, tags: Sequence[Tag], now: datetime | None = None) -> None:
    """Store each tag's number of tagged customers (one grouped count over the (workspace, tag) index)."""
    if not tags:
        return
    session.flush()
    counts: dict[int, int] = {
        tid: n
        for tid, n in session.execute(
            select(CT.c.tag_id, func.count())
            .where(CT.c.workspace_id == workspace_id, CT.c.tag_id.in_([t.id for t in tags]))
            .group_by(CT.c.tag_id)
        )
    }
    for tag in tags:
        tag.customers_count = int(counts.get(tag.id, 0))
        if now is not None:
            tag.refreshed_at = now
    session.flush()


def _attach(session: Session, workspace_id: int, tag_id: int, customer_ids: Collection[int], source: str) -> list[int]:
    """Tag these customers (ids already checked); returns those not tagged before."""
    bulk = Bulk(session)
    ids = sorted(set(customer_ids))
    have = {
        r[0]
        for r in bulk.select_in(
            "SELECT customer_id FROM customer_tags WHERE tag_id = ? AND customer_id {in}", ids, [tag_id]
        )
    }
    new = [cid for cid in ids if cid not in have]
    now = bulk.ts(utcnow())
    bulk.insert("customer_tags", CT_COLUMNS, [(cid, tag_id, workspace_id, 1.0, source, now) for cid in new])
    return new


def tag_customers(
    session: Session, *, workspace_id: int, tag_id: int, customer_ids: Collection[int]
) -> tuple[list[int], list[int]]:
    """Put a manual tag on customers by id; returns (newly tagged, ids not found in this workspace)."""
    tag = _manual_tag(session, workspace_id, tag_id)
    found = live_customer_ids(session, workspace_id=workspace_id, ids=customer_ids)
    new = _attach(session, workspace_id, tag.id, set(found.values()), "manual")
    recount_tags(session, workspace_id=workspace_id, tags=[tag])
    mark_changed(session, workspace_id=workspace_id, customer_ids=new, kinds=TAGS)
    return new, sorted(set(customer_ids) - set(found))


def untag_customers(session: Session, *, workspace_id: int, tag_id: int, customer_ids: Collection[int]) -> list[int]:
    """Take a manual tag off customers by id; returns those who had it."""
    tag = _manual_tag(session, workspace_id, tag_id)
    found = live_customer_ids(session, workspace_id=workspace_id, ids=customer_ids)
    removed = [
        r[0]
        for r in Bulk(session).select_in(
            "DELETE FROM customer_tags WHERE workspace_id + 0 = ? AND tag_id = ? AND customer_id {in} "
            "RETURNING customer_id",
            sorted(set(found.values())),
            [workspace_id, tag.id],
        )
    ]
    recount_tags(session, workspace_id=workspace_id, tags=[tag])
    mark_changed(session, workspace_id=workspace_id, customer_ids=removed, kinds=TAGS)
    return removed


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _add_members(
    session: Session, tag: Tag, members: Select[Any], source: str, ids: Sequence[int] | None = None
) -> list[int]:
    """INSERT … SELECT the members not yet tagged (set-based: no ids travel through Python but the result)."""
    sub = members.subquery()
    tagged = select(CT.c.customer_id).where(CT.c.tag_id == tag.id)
    if ids is not None:
        tagged = tagged.where(CT.c.customer_id.in_(ids))
    rows = select(
        sub.c.id,
        literal(tag.id),
        literal(tag.workspace_id),
        literal(1.0),
        literal(source),
        literal(utcnow(), UTCDateTime()),
    ).where(sub.c.id.not_in(tagged))
    stmt = insert(CT).from_select(list(CT_COLUMNS), rows).returning(CT.c.customer_id)
    return list(session.scalars(stmt))


def _drop_non_members(session: Session, tag: Tag, members: Select[Any], ids: Sequence[int] | None = None) -> list[int]:
    """DELETE the tagged customers the rule no longer matches (among ids, when given)."""
    where = [CT.c.workspace_id == tag.workspace_id, CT.c.tag_id == tag.id, CT.c.customer_id.not_in(members)]
    if ids is not None:
        where.append(CT.c.customer_id.in_(ids))
    return list(session.scalars(delete(CT).where(*where).returning(CT.c.customer_id)))


def tag_by_rule(
    session: Session, *, workspace_id: int, tag_id: int, rule: Any, as_of: datetime | None = None
) -> BulkTagResult:
    """Put a manual tag on every customer a rule matches now (a one-off; the tag does not follow the rule)."""
    tag = _manual_tag(session, workspace_id, tag_id)
    check_tag_rule(session, workspace_id=workspace_id, rule=rule)
    members = rule_sql.members_query(
        rule, workspace_id=workspace_id, as_of=as_of or utcnow(), dialect=_dialect(session)
    )
    matched = session.scalar(select(func.count()).select_from(members.subquery())) or 0
    new = _add_members(session, tag, members, "manual")
    recount_tags(session, workspace_id=workspace_id, tags=[tag])
    mark_changed(session, workspace_id=workspace_id, customer_ids=new, kinds=TAGS)
    return BulkTagResult(matched=int(matched), tagged=len(new))


def tag_by_upload(session: Session, *, workspace_id: int, tag_id: int, data: bytes) -> BulkTagResult:
    """Put a manual tag on the customers an uploaded id list names; unmatched rows are reported, not fatal."""
    tag = _manual_tag(session, workspace_id, tag_id)
    rows = parse_id_list(data)
    if not rows:
        raise ValidationFailed(details=[{"field": "file", "code": "empty_file", "message": "the file lists no ids"}])
    found = resolve_identifiers(session, workspace_id=workspace_id, values={v for _, v in rows})
    result = BulkTagResult()
    customers: set[int] = set()
    for number, value in rows:
        if value in found:
            result.matched += 1
            customers |= found[value]
            continue
        result.unmatched_total += 1
        if len(result.unmatched) < MAX_REPORTED:
            reason = unusable_reason(value) or "not_found"
            result.unmatched.append(UnmatchedRow(number, CONTROL_CHARS.sub("?", value[:255]), reason))
    new = _attach(session, workspace_id, tag.id, customers, "manual")
    result.tagged = len(new)
    recount_tags(session, workspace_id=workspace_id, tags=[tag])
    mark_changed(session, workspace_id=workspace_id, customer_ids=new, kinds=TAGS)
    return result


# --- rule tags ----------------------------------------------------------------------------------


def _sync_rule_tag(session: Session, tag: Tag, as_of: datetime, ids: Sequence[int] | None) -> set[int]:
    """Make the tag's customer_tags equal to its rule's members (among ids, when given); returns who changed."""
    assert tag.rule is not None
    dialect = _dialect(session)
    changed: set[int] = set()
    chunks = [None] if ids is None else [ids[i : i + INCREMENTAL_CHUNK] for i in range(0, len(ids), INCREMENTAL_CHUNK)]
    for chunk in chunks:
        members = rule_sql.members_query(
            tag.rule, workspace_id=tag.workspace_id, as_of=as_of, dialect=dialect, ids=chunk
        )
        changed.update(_drop_non_members(session, tag, members, chunk))
        changed.update(_add_members(session, tag, members, "rule", chunk))
    recount_tags(session, workspace_id=tag.workspace_id, tags=[tag], now=as_of)
    mark_changed(session, workspace_id=tag.workspace_id, customer_ids=changed, kinds=TAGS)
    return changed


def rule_tags_in_order(session: Session, *, workspace_id: int) -> list[Tag]:
    """Live rule tags, each after the tags its rule refers to (so one pass sees fresh inputs)."""
    tags = {
        t.id: t
        for t in session.scalars(
            select(Tag).where(Tag.workspace_id == workspace_id, Tag.kind == "rule", Tag.deleted_at.is_(None))
        )
    }
    out: list[Tag] = []
    done: set[int] = set()

    def visit(tid: int, stack: frozenset[int]) -> None:
        if tid in done or tid not in tags or tid in stack:
            return
        for dep in sorted(_tag_refs(tags[tid].rule)):
            visit(dep, stack | {tid})
        done.add(tid)
        out.append(tags[tid])

    for tid in sorted(tags):
        visit(tid, frozenset())
    return out


def refresh_rule_tags(
    session: Session, *, workspace_id: int, ids: Collection[int] | None = None, as_of: datetime | None = None
) -> int:
    """Re-evaluate every rule tag (over all customers, or only ids); returns how many customers changed."""
    now = as_of or utcnow()
    only = sorted(ids) if ids is not None else None
    changed: set[int] = set()
    for tag in rule_tags_in_order(session, workspace_id=workspace_id):
        changed |= _sync_rule_tag(session, tag, now, only)
    return len(changed)
