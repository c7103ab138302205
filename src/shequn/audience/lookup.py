"""Identifier lookups: which live customers an uploaded value or a tracked event's identity names (a shequn
customer id, a phone, an email or a platform id), following merges; and the id-list upload parser."""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable

from sqlalchemy.orm import Session

from shequn.audience.identities import KINDS as KINDS_OF_IDENTITIES
from shequn.audience.identities import match_key
from shequn.core.bulk import Bulk
from shequn.core.errors import ValidationFailed
from shequn.core.security import normalize_phone, phone_hash

MAX_UPLOAD_ROWS = 1_000_000
MAX_ID_DIGITS = 18  # a longer number cannot be a customer id (BIGINT) and is tried as a phone or platform id
MERGE_HOPS = 8  # merge chains are re-pointed on merge, so more than one hop is already rare
# Identity kinds a caller may look people up by: 'phone' is a raw number (hashed here); a phone hash
# itself is keyed by our secret, so no client could ever send one.
LOOKUP_KINDS = frozenset((KINDS_OF_IDENTITIES - {"phone_hash"}) | {"phone"})
# First cells a spreadsheet export puts on its header row; skipped, not reported as unmatched.
HEADER_WORDS = frozenset(
    {"id", "customer_id", "customer", "phone", "mobile", "email", "value", "identifier", "openid", "unionid"}
    | {"客户id", "客户", "手机", "手机号", "电话", "邮箱", "标识"}
)
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def live_customer_ids(session: Session, *, workspace_id: int, ids: Iterable[int]) -> dict[int, int]:
    """Requested id → the live customer it is now (following merges), for ids of this workspace."""
    bulk = Bulk(session)
    out: dict[int, int] = {}
    pending = {i: i for i in ids if 0 < i < 2**63}
    for _ in range(MERGE_HOPS):
        if not pending:
            break
        info = {
            int(cid): merged
            for cid, merged in bulk.select_in(
                "SELECT id, merged_into_id FROM customers WHERE workspace_id + 0 = ? AND id {in}",
                sorted(set(pending.values())),
                [workspace_id],
            )
        }
        following: dict[int, int] = {}
        for asked, current in pending.items():
            if current not in info:
                continue
            if info[current] is None:
                out[asked] = current
            else:
                following[asked] = int(info[current])
        pending = following
    return out


def _first_cell(line: str) -> str:
    try:
        cells = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        cells = [line]
    value = (cells[0] if cells else "").strip().strip("\ufeff").strip()
    # Spreadsheets keep long numbers as text by prefixing an apostrophe.
    return value[1:].strip() if value.startswith("'") else value


def parse_id_list(data: bytes) -> list[tuple[int, str]]:
    """(row number, identifier) of each non-empty line of a text/CSV upload (first column; header skipped)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")  # Excel on Chinese Windows saves CSV as GBK
    rows: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = _first_cell(line)
        if not value:
            continue
        if not rows and value.lower() in HEADER_WORDS:
            continue
        rows.append((number, value))
        if len(rows) > MAX_UPLOAD_ROWS:
            raise ValidationFailed(
                details=[{"field": "file", "code": "too_many_rows", "message": f"at most {MAX_UPLOAD_ROWS} rows"}]
            )
    return rows


def _by_match_keys(bulk: Bulk, workspace_id: int, keys: dict[str, str]) -> dict[str, set[int]]:
    """Value → customers whose identity has the value's match key (several values may share a key)."""
    owners: dict[str, list[str]] = {}
    for value, key in keys.items():
        owners.setdefault(key, []).append(value)
    out: dict[str, set[int]] = {}
    for key, cid in bulk.select_in(
        "SELECT match_key, customer_id FROM customer_identities WHERE workspace_id = ? AND match_key {in}",
        sorted(owners),
        [workspace_id],
    ):
        for value in owners[key]:
            out.setdefault(value, set()).add(int(cid))
    return out


def unusable_reason(value: str) -> str | None:
    """Why an uploaded value cannot name anyone (too long, control characters), or None."""
    if len(value) > 255:
        return "too_long"
    if CONTROL_CHARS.search(value):
        return "invalid"
    return None


def resolve_identifiers(session: Session, *, workspace_id: int, values: Collection[str]) -> dict[str, set[int]]:
    """Value → live customers it names: a shequn customer id, else a phone, an email, or a platform id value.

    Each kind is one indexed set lookup over all values; a value matched as an earlier kind is not tried
    as a later one. A phone or platform id shared by several customers names each of them.
    """
    bulk = Bulk(session)
    found: dict[str, set[int]] = {}
    todo = sorted({v for v in values if unusable_reason(v) is None})

    ids = {v: int(v) for v in todo if v.isdigit() and len(v) <= MAX_ID_DIGITS and int(v) > 0}
    live = live_customer_ids(session, workspace_id=workspace_id, ids=ids.values())
    for v, cid in ids.items():
        if cid in live:
            found[v] = {live[cid]}
    todo = [v for v in todo if v not in found]

    emails = {v: match_key("*", "email", v.lower()) for v in todo if "@" in v}
    found.update(_by_match_keys(bulk, workspace_id, emails))
    todo = [v for v in todo if v not in found]

    hashes: dict[str, str] = {}
    for v in todo:
        phone = normalize_phone(v) if "@" not in v else None
        if phone:
            hashes[v] = phone_hash(phone)
    if hashes:
        by_hash: dict[str, set[int]] = {}
        for h, cid in bulk.select_in(
            "SELECT phone_hash, id FROM customers WHERE workspace_id = ? AND phone_hash {in}",
            sorted(set(hashes.values())),
            [workspace_id],
        ):
            by_hash.setdefault(h, set()).add(int(cid))
        for v, h in hashes.items():
            if h in by_hash:
                found.setdefault(v, set()).update(by_hash[h])
        verified = _by_match_keys(bulk, workspace_id, {v: match_key("*", "phone_hash", h) for v, h in hashes.items()})
        for v, cids in verified.items():
            found.setdefault(v, set()).update(cids)
    todo = [v for v in todo if v not in found]

    if todo:
        for value, cid in bulk.select_in(
            "SELECT value, customer_id FROM customer_identities WHERE workspace_id = ? AND kind <> 'phone_hash' "
            "AND value {in}",
            todo,
            [workspace_id],
        ):
            found.setdefault(value, set()).add(int(cid))
    return _follow_merges(session, workspace_id, found)


def _follow_merges(session: Session, workspace_id: int, found: dict[str, set[int]]) -> dict[str, set[int]]:
    live = live_customer_ids(session, workspace_id=workspace_id, ids={c for cids in found.values() for c in cids})
    out = {v: {live[c] for c in cids if c in live} for v, cids in found.items()}
    return {v: cids for v, cids in out.items() if cids}


def find_customers_by_identity(
    session: Session, *, workspace_id: int, identities: Collection[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    """(source, kind, value) → the live customer with that identity (kind 'phone' takes a raw phone number)."""
    keys: dict[tuple[str, str, str], str] = {}
    if not identities:
        return {}
    for source, kind, value in identities:
        if kind == "phone":
            phone = normalize_phone(value)
            if phone:
                keys[(source, kind, value)] = match_key("*", "phone_hash", phone_hash(phone))
        else:
            keys[(source, kind, value)] = match_key(source, kind, value.lower() if kind == "email" else value)
    bulk = Bulk(session)
    by_key = dict(
        bulk.select_in(
            "SELECT match_key, customer_id FROM customer_identities WHERE workspace_id = ? AND match_key {in}",
            sorted(set(keys.values())),
            [workspace_id],
        )
    )
    raw = {ident: int(by_key[k]) for ident, k in keys.items() if k in by_key}
    live = live_customer_ids(session, workspace_id=workspace_id, ids=raw.values())
    return {ident: live[cid] for ident, cid in raw.items() if cid in live}
