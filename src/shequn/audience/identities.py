"""Identity matching and batch customer resolution with merges (protocols.md merge rules).

Merge rules: two records are the same person when they share an identity. Platform-scoped kinds
(customer_id, openid, buyer_nick, handle, anonymous_id) match only within their source; unionid,
verified phone hash and verified email match across sources. A nickname never matches across
platforms, and an unverified phone (e.g. a Taobao receiver, who may be a gift recipient) is kept
as contact data but never used to merge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from shequn.audience.activity import move_activity
from shequn.audience.schemas import CustomerIn
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.db import reserve_ids
from shequn.core.security import mask_email, mask_phone, normalize_phone, phone_hash

GLOBAL_KINDS = frozenset({"unionid", "phone_hash", "email"})
SCOPED_KINDS = frozenset({"customer_id", "openid", "buyer_nick", "handle", "anonymous_id"})
KINDS = GLOBAL_KINDS | SCOPED_KINDS
CUSTOMER_COLUMNS = (
    "id",
    "workspace_id",
    "name",
    "gender",
    "province",
    "city",
    "phone_hash",
    "phone_masked",
    "email_masked",
    "orders_count",
    "total_spent",
    "avg_order_value",
    "top_categories",
    "category_spend",
    "platforms",
    "followers_total",
    "influence",
    "created_at",
    "updated_at",
)
IDENTITY_COLUMNS = (
    "workspace_id",
    "customer_id",
    "source",
    "kind",
    "value",
    "match_key",
    "verified",
    "followers",
    "created_at",
)

MergeHook = Callable[[Session, int, list[tuple[int, int]]], None]  # (loser, winner) pairs
_merge_hooks: list[MergeHook] = []


def register_merge_hook(hook: MergeHook) -> None:
    """Let a higher domain move its rows when customers merge (called inside the transaction)."""
    if hook not in _merge_hooks:
        _merge_hooks.append(hook)


def match_key(source: str, kind: str, value: str) -> str:
    """The string two identities must share to be the same person."""
    if kind in GLOBAL_KINDS:
        return f"{kind}:{value}"
    return f"{kind}:{source}:{value}"


@dataclass
class _Prepared:
    """A person's identities as (match_key, source, kind, value, verified, followers) plus contact data."""

    keys: dict[str, tuple[str, str, str, bool, int | None]] = field(default_factory=dict)
    person: CustomerIn | None = None
    phone_hash: str | None = None
    phone_masked: str = ""
    email_masked: str = ""


def _prepare(person: CustomerIn | None, phones: dict[str, tuple[str, str] | None]) -> _Prepared | None:
    if person is None:
        return None
    prep = _Prepared(person=person)
    keys = prep.keys
    for ident in person.identities:
        kind = ident.kind
        value = (ident.value or "").strip()
        if not value or kind not in KINDS:
            continue
        if kind == "email" or kind == "phone_hash":
            if not ident.verified:
                continue
            if kind == "email":
                value = value.lower()
        # match_key(), inlined: this runs for every identity of every imported order.
        key = f"{kind}:{value}" if kind in GLOBAL_KINDS else f"{kind}:{ident.source}:{value}"
        keys[key] = (ident.source, kind, value[:255], ident.verified, ident.followers)
    if person.phone:
        # Repeat buyers bring the same phone many times per batch: normalize, hash and mask it once.
        known = phones.get(person.phone, _UNSEEN)
        if known is _UNSEEN:
            normalized = normalize_phone(person.phone)
            known = phones[person.phone] = (phone_hash(normalized), mask_phone(normalized)) if normalized else None
        if known is not None:
            prep.phone_hash, prep.phone_masked = known
            if person.phone_verified:
                keys[f"phone_hash:{known[0]}"] = ("phone", "phone_hash", known[0], True, None)
    if person.email and "@" in person.email:
        email = person.email.strip().lower()
        prep.email_masked = mask_email(email)
        keys.setdefault(f"email:{email}", ("email", "email", email[:255], True, None))
    return prep if keys else None


_UNSEEN: Any = object()


def _lookup(bulk: Bulk, workspace_id: int, keys: Sequence[str]) -> dict[str, int]:
    rows = bulk.select_in(
        "SELECT match_key, customer_id FROM customer_identities WHERE workspace_id = ? AND match_key {in}",
        keys,
        [workspace_id],
    )
    return {k: int(c) for k, c in rows}


def _find(parent: dict[str, str], key: str) -> str:
    root = key
    while parent[root] != root:
        root = parent[root]
    while parent[key] != root:  # path compression keeps big batches linear
        parent[key], key = root, parent[key]
    return root


@dataclass
class Resolution:
    """Customer id per person (None without a usable identity), customers touched, customers created."""

    ids: list[int | None]
    touched: set[int]
    created: set[int]


def resolve_customers(session: Session, *, workspace_id: int, people: Sequence[CustomerIn | None]) -> Resolution:
    """Find or create the customer of each person, merging customers that turn out to be one."""
    phones: dict[str, tuple[str, str] | None] = {}
    prepared = [_prepare(p, phones) for p in people]
    parent: dict[str, str] = {}
    # Each person's first key: after the union pass, _find of it names the person's group.
    firsts: list[str | None] = []
    for prep in prepared:
        if prep is None:
            firsts.append(None)
            continue
        person_keys = iter(prep.keys)
        first = next(person_keys)
        firsts.append(first)
        top = parent.setdefault(first, first)
        if top != first:
            top = _find(parent, first)
        for k in person_keys:
            top_k = parent.setdefault(k, k)
            if top_k != k:
                top_k = _find(parent, k)
            if top_k != top:
                parent[top_k] = top
    if not parent:
        return Resolution([None] * len(people), set(), set())

    bulk = Bulk(session)
    existing = _lookup(bulk, workspace_id, list(parent))
    groups: dict[str, list[str]] = {}
    for k in parent:
        groups.setdefault(_find(parent, k), []).append(k)
    roots: list[str | None] = [None if f is None else _find(parent, f) for f in firsts]

    root_customer: dict[str, int] = {}
    new_roots: list[str] = []
    touched: set[int] = set()
    # Customers linked by this batch form components (one group can link A and B while another group
    # still points at B): every group resolves to its component's oldest customer.
    survivor: dict[int, int] = {}
    link_key: dict[int, str] = {}

    def final(cid: int) -> int:
        while survivor.get(cid, cid) != cid:
            cid = survivor[cid]
        return cid

    if existing:
        for keys in groups.values():
            owners = sorted({existing[k] for k in keys if k in existing})
            for other in owners[1:]:
                a, b = final(owners[0]), final(other)
                if a != b:
                    winner, loser = min(a, b), max(a, b)
                    survivor[loser] = winner
                    link_key[loser] = next(k for k in keys if k in existing and existing[k] == other)
    merges = [Merge(final(loser), loser, link_key[loser]) for loser in survivor]
    for root, keys in groups.items():
        owned = [existing[k] for k in keys if k in existing] if existing else None
        if not owned:
            new_roots.append(root)
            continue
        winner = final(min(owned))
        root_customer[root] = winner
        touched.add(winner)

    merge_customers(session, workspace_id=workspace_id, merges=merges)

    # Contact data for each group comes from its first person that has it.
    contact: dict[str, _Prepared] = {}
    for prep, group in zip(prepared, roots, strict=True):
        if prep is not None and group is not None and group not in contact:
            contact[group] = prep

    now = bulk.ts(utcnow())
    created: set[int] = set()
    if new_roots:
        _insert_customers(session, bulk, workspace_id, new_roots, groups, prepared, contact, root_customer, now)
        created = {root_customer[r] for r in new_roots}
        touched |= created

    fresh = set(new_roots)
    _fill_contact_gaps(
        bulk, workspace_id, [(root_customer[root], prep) for root, prep in contact.items() if root not in fresh]
    )

    new_identities = []
    followers_updates = []
    seen: set[str] = set()
    social_changed: set[int] = set()
    result: list[int | None] = []
    for prep, group in zip(prepared, roots, strict=True):
        if prep is None or group is None:
            result.append(None)
            continue
        cid = root_customer[group]
        result.append(cid)
        for key, (source, kind, value, verified, followers) in prep.keys.items():
            if key in existing:
                if followers is not None:
                    followers_updates.append((followers, workspace_id, key))
                    social_changed.add(cid)
                continue
            if key in seen:
                continue
            seen.add(key)
            if cid not in created:
                social_changed.add(cid)
            new_identities.append((workspace_id, cid, source[:32], kind, value, key[:320], verified, followers, now))
    bulk.insert("customer_identities", IDENTITY_COLUMNS, new_identities)
    bulk.executemany(
        "UPDATE customer_identities SET followers = ? WHERE workspace_id = ? AND match_key = ?", followers_updates
    )
    refresh_social(session, workspace_id=workspace_id, customer_ids=social_changed)
    return Resolution(result, touched, created)


def _insert_customers(
    session: Session,
    bulk: Bulk,
    workspace_id: int,
    new_roots: list[str],
    groups: dict[str, list[str]],
    prepared: list[_Prepared | None],
    contact: dict[str, _Prepared],
    root_customer: dict[str, int],
    now: Any,
) -> None:
    """Insert a customer per new group, with its social reach (so only existing ones need refresh_social)."""
    key_info: dict[str, tuple[str, int | None]] = {}
    for prep in prepared:
        if prep is not None:
            for key, (source, _kind, _value, _verified, followers) in prep.keys.items():
                if followers is not None or key not in key_info:
                    key_info[key] = (source, followers)
    ids = reserve_ids(session, "customers", len(new_roots))
    rows = []
    for root, cid in zip(new_roots, ids, strict=True):
        root_customer[root] = cid
        prep = contact[root]
        person = prep.person
        assert person is not None
        infos = [key_info[k] for k in groups[root]]
        platforms = sorted({src for src, _ in infos if src != "phone" and src != "email"})
        followers_total = sum(f or 0 for _, f in infos)
        rows.append(
            (
                cid,
                workspace_id,
                person.name[:120],
                "",
                person.province[:32],
                person.city[:32],
                prep.phone_hash,
                prep.phone_masked,
                prep.email_masked,
                0,
                0,
                0,
                "[]",
                "{}",
                bulk.js(platforms),
                followers_total,
                influence_score(followers_total),
                now,
                now,
            )
        )
    bulk.insert("customers", CUSTOMER_COLUMNS, rows)


def _fill_contact_gaps(bulk: Bulk, workspace_id: int, pairs: list[tuple[int, _Prepared]]) -> None:
    """Existing customers keep their data; only empty name/city/province/phone/email fields are filled.

    One read decides which rows really change, so a returning buyer costs a look-up, not four updates.
    """
    if not pairs:
        return
    current = {
        r[0]: r[1:]
        for r in bulk.select_in(
            "SELECT id, name, city, province, phone_hash, email_masked FROM customers "
            "WHERE workspace_id = ? AND id {in}",
            sorted({cid for cid, _ in pairs}),
            [workspace_id],
        )
    }
    updates: dict[int, list[object]] = {}
    masks: dict[int, str] = {}
    for cid, prep in pairs:
        person = prep.person
        if cid not in current or person is None:
            continue
        base = updates.get(cid) or list(current[cid])
        new = [
            base[0] or person.name[:120],
            base[1] or person.city[:32],
            base[2] or person.province[:32],
            base[3] or prep.phone_hash,
            base[4] or prep.email_masked,
        ]
        if new != list(current[cid]):
            updates[cid] = new
            if not current[cid][3] and new[3] and cid not in masks:
                masks[cid] = prep.phone_masked
    bulk.executemany(
        "UPDATE customers SET name = ?, city = ?, province = ?, phone_hash = ?, email_masked = ?, "
        "phone_masked = COALESCE(?, phone_masked) WHERE id = ?",
        [(*v, masks.get(cid), cid) for cid, v in updates.items()],
    )


@dataclass(frozen=True)
class Merge:
    """Fold loser into winner because they share match_key."""

    winner_id: int
    loser_id: int
    match_key: str


CONTACT_COLUMNS = ("name", "city", "province", "phone_hash", "phone_masked", "email_masked")


def merge_customers(session: Session, *, workspace_id: int, merges: Sequence[Merge]) -> None:
    """Fold losers into winners: identities move, other domains move their rows through merge hooks.

    A batch's merges run as a few executemany statements, so an import that links thousands of
    customers costs the same handful of statements as one that links two.
    """
    merges = [m for m in merges if m.winner_id != m.loser_id]
    if not merges:
        return
    bulk = Bulk(session)
    now = bulk.ts(utcnow())
    pairs = [(m.winner_id, workspace_id, m.loser_id) for m in merges]
    bulk.executemany("UPDATE customer_identities SET customer_id = ? WHERE workspace_id = ? AND customer_id = ?", pairs)
    bulk.executemany(
        "UPDATE customers SET merged_into_id = ?, updated_at = ? WHERE workspace_id = ? AND id = ?",
        [(m.winner_id, now, workspace_id, m.loser_id) for m in merges],
    )
    # Earlier merges into a loser now point at the final winner, so lookups never chain.
    bulk.executemany("UPDATE customers SET merged_into_id = ? WHERE workspace_id = ? AND merged_into_id = ?", pairs)
    _fill_winner_contacts(bulk, workspace_id, merges)
    bulk.insert(
        "customer_merges",
        ("workspace_id", "winner_id", "loser_id", "match_key", "created_at"),
        [(workspace_id, m.winner_id, m.loser_id, m.match_key[:320], now) for m in merges],
    )
    folds = [(m.loser_id, m.winner_id) for m in merges]
    # Activity and tags move first; commerce's hook then recomputes the winner's purchase activity.
    move_activity(session, workspace_id=workspace_id, pairs=folds)
    for hook in _merge_hooks:
        hook(session, workspace_id, folds)
    refresh_social(session, workspace_id=workspace_id, customer_ids={m.winner_id for m in merges})
    session.expire_all()  # ORM copies of these customers are stale after the raw updates


def _fill_winner_contacts(bulk: Bulk, workspace_id: int, merges: Sequence[Merge]) -> None:
    """A winner keeps its contact data and takes a loser's where its own is empty."""
    ids = sorted({m.winner_id for m in merges} | {m.loser_id for m in merges})
    cols = ", ".join(CONTACT_COLUMNS)
    rows = {
        r[0]: list(r[1:])
        for r in bulk.select_in(
            f"SELECT id, {cols} FROM customers WHERE workspace_id = ? AND id {{in}}", ids, [workspace_id]
        )
    }
    changed: dict[int, list[object]] = {}
    for m in merges:
        winner, loser = rows.get(m.winner_id), rows.get(m.loser_id)
        if winner is None or loser is None:
            continue
        for i, value in enumerate(loser):
            if not winner[i] and value:
                winner[i] = value
                changed[m.winner_id] = winner
    sets = ", ".join(f"{c} = ?" for c in CONTACT_COLUMNS)
    bulk.executemany(f"UPDATE customers SET {sets} WHERE id = ?", [(*v, cid) for cid, v in changed.items()])


def refresh_social(session: Session, *, workspace_id: int, customer_ids: set[int]) -> None:
    """Recompute platforms, follower totals and influence (0–100, log-scaled reach) from identities."""
    if not customer_ids:
        return
    bulk = Bulk(session)
    ids = sorted(customer_ids)
    acc: dict[int, tuple[set[str], int]] = {i: (set(), 0) for i in ids}
    rows = bulk.select_in(
        "SELECT customer_id, source, followers FROM customer_identities WHERE workspace_id = ? AND customer_id {in}",
        ids,
        [workspace_id],
    )
    for cid, source, followers in rows:
        platforms, total = acc[cid]
        if source not in ("phone", "email"):
            platforms.add(source)
        acc[cid] = (platforms, total + (followers or 0))
    bulk.executemany(
        "UPDATE customers SET platforms = ?j, followers_total = ?, influence = ? WHERE id = ?",
        [(bulk.js(sorted(p)), f, influence_score(f), cid) for cid, (p, f) in acc.items()],
    )


def influence_score(followers: int) -> int:
    """0–100: 20 points per order of magnitude of reach (100k followers → 100)."""
    return min(100, round(20 * math.log10(1 + max(followers, 0))))
