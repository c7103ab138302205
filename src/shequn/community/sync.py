"""Membership sync from the real group: inbound webhook events and CSV exports of a group's member list.

The platform is the truth about who is in a real group, so synced joins are pre-approved (visibility does
not hold them back); capacity and removals still do, and such rows are reported instead of applied.
People resolve to customers through audience identities (unverified phones never merge anyone).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.community import membership
from shequn.community.errors import CommunityFull, MemberRemoved
from shequn.community.models import CommunityMember, CommunitySyncEvent
from shequn.core.clock import as_utc
from shequn.core.errors import ShequnError
from shequn.identity import service as identity_service

MAX_CSV_ROWS = 50_000
# Platform id fields → (identity source, kind). WeCom's external_userid is the corp's own customer id.
ID_FIELDS: dict[str, tuple[str, str]] = {
    "unionid": ("wechat", "unionid"),
    "openid": ("wechat", "openid"),
    "external_userid": ("wecom", "customer_id"),
    "wechat_id": ("wechat", "handle"),
    "qq": ("qq", "customer_id"),
    "weibo_uid": ("weibo", "customer_id"),
}
# CSV headers as group tools export them (Chinese and English) → our field names.
HEADERS: dict[str, str] = {
    "群昵称": "nickname",
    "昵称": "nickname",
    "nickname": "nickname",
    "微信号": "wechat_id",
    "wechat_id": "wechat_id",
    "unionid": "unionid",
    "openid": "openid",
    "external_userid": "external_userid",
    "外部联系人id": "external_userid",
    "qq号": "qq",
    "qq": "qq",
    "微博uid": "weibo_uid",
    "weibo_uid": "weibo_uid",
    "手机号": "phone",
    "手机": "phone",
    "phone": "phone",
    "入群时间": "joined_at",
    "joined_at": "joined_at",
}
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")


@dataclass
class SyncPerson:
    """Who an event or a CSV row is about: platform ids, nickname, phone (raw, hashed on the way in)."""

    ids: dict[str, str] = field(default_factory=dict)
    nickname: str = ""
    phone: str | None = None

    def customer_in(self) -> CustomerIn | None:
        """The audience input for this person, or None without any usable identity."""
        identities = [
            IdentityIn(*ID_FIELDS[k], value=v.strip(), verified=True) for k, v in self.ids.items() if v.strip()
        ]
        if not identities and not self.phone:
            return None
        return CustomerIn(identities=identities, name=self.nickname[:120], phone=self.phone or None)


@dataclass
class SyncEvent:
    """One inbound event: member_joined or member_left, with the platform's event id."""

    event_id: str
    kind: str
    person: SyncPerson
    at: datetime | None = None


@dataclass
class SyncReport:
    """What a sync did: counts and the rows/events it could not apply, with why."""

    joined: int = 0
    left: int = 0
    unchanged: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _mark_event(session: Session, workspace_id: int, community_id: int, event: SyncEvent) -> bool:
    """Record the event id; False when it was applied before (the webhook's retry)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new_id = session.scalar(
        insert(CommunitySyncEvent)
        .values(workspace_id=workspace_id, community_id=community_id, event_id=event.event_id, kind=event.kind)
        .on_conflict_do_nothing(index_elements=["community_id", "event_id"])
        .returning(CommunitySyncEvent.id)
    )
    return new_id is not None


def _join(
    session: Session,
    report: SyncReport,
    ref: dict[str, Any],
    workspace_id: int,
    community_id: int,
    customer_id: int,
    *,
    source: str,
    nickname: str,
    at: datetime | None,
) -> None:
    before = membership.get_membership(
        session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id
    )
    was_seated = before is not None and before.status in membership.SEATED
    try:
        member = membership.join_community(
            session,
            workspace_id=workspace_id,
            community_id=community_id,
            customer_id=customer_id,
            source=source,
            approved=True,
            nickname=nickname,
            at=at,
        )
    except (CommunityFull, MemberRemoved) as exc:
        report.errors.append({**ref, "code": exc.code})
        return
    if nickname and member.nickname != nickname[:64]:
        member.nickname = nickname[:64]
    if was_seated:
        report.unchanged += 1
    else:
        report.joined += 1


def apply_events(session: Session, *, workspace_id: int, community_id: int, events: list[SyncEvent]) -> SyncReport:
    """Apply webhook events in order; an event id seen before is skipped (safe retries)."""
    membership.get_community(session, workspace_id=workspace_id, community_id=community_id)
    report = SyncReport()
    people = [e.person.customer_in() for e in events]
    resolved = audience_service.resolve_customers(session, workspace_id=workspace_id, people=people).ids
    for event, customer_id in zip(events, resolved, strict=True):
        ref = {"event_id": event.event_id}
        if customer_id is None:
            report.errors.append({**ref, "code": "no_identity"})
            continue
        if not _mark_event(session, workspace_id, community_id, event):
            report.duplicates += 1
            continue
        if event.kind == "member_joined":
            _join(
                session,
                report,
                ref,
                workspace_id,
                community_id,
                customer_id,
                source="sync",
                nickname=event.person.nickname,
                at=event.at,
            )
        else:
            member = membership.leave_community(
                session,
                workspace_id=workspace_id,
                community_id=community_id,
                customer_id=customer_id,
                cause="sync",
                at=event.at,
            )
            report.left += 1 if member is not None else 0
    session.flush()
    return report


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GBK/GB18030 as Chinese group tools export."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _parse_time(raw: str, tz: ZoneInfo) -> datetime:
    raw = raw.strip()
    for fmt in DATE_FORMATS:
        try:
            return as_utc(datetime.strptime(raw, fmt), tz)
        except ValueError:
            continue
    return as_utc(datetime.fromisoformat(raw), tz)  # ValueError when unreadable


def parse_csv(data: bytes, tz: ZoneInfo) -> tuple[list[tuple[int, SyncPerson, datetime | None]], list[dict[str, Any]]]:
    """Rows of a member-list CSV as (line, person, joined_at), and the bad rows with their line and why."""
    reader = csv.reader(io.StringIO(_decode(data)))
    header = next(reader, None)
    if header is None:
        return [], [{"line": 1, "code": "empty_file"}]
    columns = [HEADERS.get(h.strip().lower(), HEADERS.get(h.strip(), "")) for h in header]
    if not any(c and c not in ("nickname", "joined_at") for c in columns):
        return [], [{"line": 1, "code": "no_id_column", "header": header[:20]}]
    rows: list[tuple[int, SyncPerson, datetime | None]] = []
    errors: list[dict[str, Any]] = []
    for line, values in enumerate(reader, start=2):
        if len(rows) + len(errors) >= MAX_CSV_ROWS:
            errors.append({"line": line, "code": "too_many_rows"})
            break
        if not any(v.strip() for v in values):
            continue
        person, joined_at = SyncPerson(), None
        try:
            for col, value in zip(columns, values, strict=False):
                value = value.strip()
                if not col or not value:
                    continue
                if "\x00" in value:
                    raise ValueError("bad_text")
                if col == "nickname":
                    person.nickname = value[:64]
                elif col == "phone":
                    person.phone = value
                elif col == "joined_at":
                    joined_at = _parse_time(value, tz)
                else:
                    person.ids[col] = value[:128]
        except ValueError as exc:
            code = "bad_text" if str(exc) == "bad_text" else "bad_joined_at"
            errors.append({"line": line, "code": code})
            continue
        if person.customer_in() is None:
            errors.append({"line": line, "code": "no_identity"})
            continue
        rows.append((line, person, joined_at))
    return rows, errors


def import_csv(
    session: Session, *, workspace_id: int, community_id: int, data: bytes, full_list: bool = True
) -> SyncReport:
    """Apply a group's member-list CSV: good rows join (or stay), bad rows are reported with their line;
    with full_list, seated members missing from the file are marked left (cause csv)."""
    membership.get_community(session, workspace_id=workspace_id, community_id=community_id)
    tz = ZoneInfo(identity_service.workspace_timezone(session, workspace_id))
    rows, errors = parse_csv(data, tz)
    report = SyncReport(errors=errors)
    try:
        resolved = audience_service.resolve_customers(
            session, workspace_id=workspace_id, people=[p.customer_in() for _, p, _ in rows]
        ).ids
    except ShequnError as exc:  # e.g. text a database refuses: report the file, keep nothing
        report.errors.append({"line": 0, "code": exc.code})
        return report
    present: set[int] = set()
    for (line, person, joined_at), customer_id in zip(rows, resolved, strict=True):
        if customer_id is None:
            report.errors.append({"line": line, "code": "no_identity"})
            continue
        present.add(customer_id)
        _join(
            session,
            report,
            {"line": line},
            workspace_id,
            community_id,
            customer_id,
            source="csv",
            nickname=person.nickname,
            at=joined_at,
        )
    if full_list and rows:
        seated = session.scalars(
            select(CommunityMember.customer_id).where(
                CommunityMember.workspace_id == workspace_id,
                CommunityMember.community_id == community_id,
                CommunityMember.status.in_(membership.SEATED),
            )
        ).all()
        for customer_id in seated:
            if customer_id not in present:
                membership.leave_community(
                    session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id, cause="csv"
                )
                report.left += 1
    session.flush()
    return report
