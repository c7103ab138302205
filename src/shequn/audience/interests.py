"""Interest tags inferred from what customers buy and engage with, weighted and decaying with time.

Each category seen in customer_activity (purchases: kind 'category'; content engagement, fed by
analytics: kind 'engage') gets one tag of kind 'interest'. A customer's score for a category is
Σ points × 0.5^(age_days / half_life) over their activity rows, where a day with a purchase in the
category is worth 3 points (however many items) and each engagement 1 point. Customers scoring at
least MIN_SCORE carry the tag with the score, rounded, as its weight (rules may test weight_gte).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import engine
from shequn.audience.activity import TAGS, get_settings, mark_changed
from shequn.audience.models import CustomerActivity, Tag
from shequn.audience.rule_py import epoch_day
from shequn.audience.tags import CT_COLUMNS, NAME_MAX, by_id_in_workspace, live_customer_batches, recount_tags
from shequn.core.bulk import Bulk
from shequn.core.clock import utcnow
from shequn.core.settings import get_settings as app_settings

INTEREST_JOB = "audience.refresh_interests"
PURCHASE_KIND, ENGAGE_KIND = "category", "engage"
PURCHASE_POINTS = 3.0
ENGAGE_POINTS = 1.0
# One fresh engagement is the weakest signal worth a tag; a single purchase (3 points) stays an
# interest for log2(3) ≈ 1.6 half-lives, a lone engagement only while it is fresh.
MIN_SCORE = 1.0
# Activity older than this many half-lives weighs under 1/65,000 of a fresh one: not worth reading.
HORIZON_HALF_LIVES = 16
NAME_PREFIX = "兴趣·"
BATCH = 5_000
WEIGHT_DIGITS = 3


@dataclass(frozen=True, slots=True)
class Engagement:
    """One activity row as interest scoring sees it."""

    kind: str  # category (a purchase day) or engage
    day: int
    count: int = 1


@dataclass
class InterestResult:
    """What an interest refresh did."""

    categories: int
    tagged: int
    changed: int

    def as_dict(self) -> dict[str, int]:
        """JSON-friendly form for job results."""
        return {"categories": self.categories, "tagged": self.tagged, "changed": self.changed}


def decay(age_days: float, half_life_days: float) -> float:
    """The weight left after age_days: 1 today, ½ at one half-life (future days count as today)."""
    return float(0.5 ** (max(age_days, 0.0) / half_life_days))


def points(kind: str, count: int) -> float:
    """Undecayed points of one activity row: a purchase day is worth 3 whatever the quantity, an engagement 1."""
    return PURCHASE_POINTS if kind == PURCHASE_KIND else ENGAGE_POINTS * count


def interest_score(rows: Iterable[Engagement], *, today: int, half_life_days: float) -> float:
    """A customer's decayed score for one category."""
    return sum(points(r.kind, r.count) * decay(today - r.day, half_life_days) for r in rows)


def interest_tag_name(category: str) -> str:
    """The tag name of a category's interest (cut to the name limit)."""
    return (NAME_PREFIX + category)[:NAME_MAX]


def _ensure_tags(session: Session, workspace_id: int, categories: set[str]) -> dict[str, Tag]:
    """The live interest tag of each category, created when missing; categories whose tag was deleted are
    left out (deleting an interest tag opts the workspace out of it)."""
    known = {
        t.interest_key: t
        for t in session.scalars(select(Tag).where(Tag.workspace_id == workspace_id, Tag.kind == "interest"))
    }
    taken = set(session.scalars(select(Tag.name).where(Tag.workspace_id == workspace_id)))
    out: dict[str, Tag] = {}
    for category in sorted(categories):
        tag = known.get(category)
        if tag is None:
            name = interest_tag_name(category)
            n = 2
            while name in taken:  # a manual tag (or a cut-off longer category) already has this name
                suffix = f"·{n}"
                name = interest_tag_name(category)[: NAME_MAX - len(suffix)] + suffix
                n += 1
            taken.add(name)
            tag = Tag(workspace_id=workspace_id, name=name, kind="interest", interest_key=category, customers_count=0)
            session.add(tag)
        if tag.deleted_at is None:
            out[category] = tag
    session.flush()
    return out


def _categories(session: Session, workspace_id: int, since: int, ids: Collection[int] | None) -> set[str]:
    """Categories bought or engaged with since a day (by these customers, when given)."""
    where = [
        CustomerActivity.kind.in_((PURCHASE_KIND, ENGAGE_KIND)),
        CustomerActivity.day >= since,
        CustomerActivity.ref != "",
    ]
    if ids is None:
        q = select(CustomerActivity.ref).where(CustomerActivity.workspace_id == workspace_id, *where)
        return set(session.scalars(q.distinct()))
    wanted = sorted(set(ids))
    out: set[str] = set()
    for i in range(0, len(wanted), BATCH):
        q = select(CustomerActivity.ref).where(
            by_id_in_workspace(CustomerActivity.workspace_id, workspace_id),
            CustomerActivity.customer_id.in_(wanted[i : i + BATCH]),
            *where,
        )
        out.update(session.scalars(q.distinct()))
    return out


def _scores(
    rows: Iterable[tuple[int, str, str, int, int]], tag_of: dict[str, int], today: int, half_life: int
) -> dict[tuple[int, int], float]:
    """(customer, interest tag) → rounded score, for the scores that reach MIN_SCORE (interest_score, summed
    row by row over (customer, kind, ref, day, count) rows: a batch has tens of thousands, so no objects)."""
    factor: dict[int, float] = {}
    scores: dict[tuple[int, int], float] = {}
    for cid, kind, ref, day, count in rows:
        tid = tag_of.get(ref)
        if tid is None:
            continue
        f = factor.get(day)
        if f is None:
            f = factor[day] = decay(today - day, half_life)
        key = (cid, tid)
        scores[key] = scores.get(key, 0.0) + points(kind, count) * f
    rounded = {key: round(score, WEIGHT_DIGITS) for key, score in scores.items()}
    return {key: score for key, score in rounded.items() if score >= MIN_SCORE}


def _write(
    bulk: Bulk, workspace_id: int, want: dict[tuple[int, int], float], have: dict[tuple[int, int], float], stamp: Any
) -> tuple[set[int], dict[int, int]]:
    """Make the customers' interest rows equal want (have: what they are now); returns the customers whose
    rows changed and the change in each tag's number of customers."""
    inserts = [(c, t, workspace_id, w, "interest", stamp) for (c, t), w in want.items() if (c, t) not in have]
    updates = [(w, c, t) for (c, t), w in want.items() if (c, t) in have and have[(c, t)] != w]
    deletes = [(c, t) for (c, t) in have if (c, t) not in want]
    bulk.insert("customer_tags", CT_COLUMNS, inserts)
    if bulk.pg:  # one statement each rather than a round trip per row
        if updates:
            bulk.execute(
                "UPDATE customer_tags SET weight = v.w "
                "FROM unnest(?::float8[], ?::bigint[], ?::bigint[]) AS v(w, c, t) "
                "WHERE customer_tags.customer_id = v.c AND customer_tags.tag_id = v.t",
                [list(col) for col in zip(*updates, strict=True)],
            )
        if deletes:
            bulk.execute(
                "DELETE FROM customer_tags USING unnest(?::bigint[], ?::bigint[]) AS v(c, t) "
                "WHERE customer_tags.customer_id = v.c AND customer_tags.tag_id = v.t",
                [list(col) for col in zip(*deletes, strict=True)],
            )
    else:
        bulk.executemany("UPDATE customer_tags SET weight = ? WHERE customer_id = ? AND tag_id = ?", updates)
        bulk.executemany("DELETE FROM customer_tags WHERE customer_id = ? AND tag_id = ?", deletes)
    # A new weight counts as a change too: rules may test weight_gte.
    changed = {r[0] for r in inserts} | {r[1] for r in updates} | {r[0] for r in deletes}
    delta: dict[int, int] = {}
    for r in inserts:
        delta[r[1]] = delta.get(r[1], 0) + 1
    for _, t in deletes:
        delta[t] = delta.get(t, 0) - 1
    return changed, delta


def refresh_interests(
    session: Session, *, workspace_id: int, ids: Collection[int] | None = None, as_of: datetime | None = None
) -> InterestResult:
    """Recompute interest tags of every live customer (or those among ids), writing only what changed."""
    half_life = get_settings(session, workspace_id=workspace_id).interest_half_life_days
    now = as_of or utcnow()
    today = epoch_day(now)
    since = today - HORIZON_HALF_LIVES * half_life
    if ids is not None and app_settings().segment_engine == "numpy":
        return _refresh_from_snapshot(session, workspace_id, ids, now, since, half_life)
    tags = _ensure_tags(session, workspace_id, _categories(session, workspace_id, since, ids))
    tag_of = {category: tag.id for category, tag in tags.items()}
    bulk = Bulk(session)
    stamp = bulk.ts(now)
    changed: set[int] = set()
    tagged = 0
    for batch in live_customer_batches(session, workspace_id=workspace_id, ids=ids, size=BATCH):
        rows = bulk.select_in(
            "SELECT customer_id, kind, ref, day, count FROM customer_activity "
            "WHERE workspace_id + 0 = ? AND kind IN (?, ?) AND day >= ? AND customer_id {in}",
            batch,
            [workspace_id, PURCHASE_KIND, ENGAGE_KIND, since],
        )
        want = _scores(rows, tag_of, today, half_life)
        have = {
            (int(cid), int(tid)): float(w)
            for cid, tid, w in bulk.select_in(
                "SELECT customer_id, tag_id, weight FROM customer_tags "
                "WHERE workspace_id + 0 = ? AND source = 'interest' AND customer_id {in}",
                batch,
                [workspace_id],
            )
        }
        changed |= _write(bulk, workspace_id, want, have, stamp)[0]
        tagged += len({c for c, _ in want})
    live = list(
        session.scalars(
            select(Tag).where(Tag.workspace_id == workspace_id, Tag.kind == "interest", Tag.deleted_at.is_(None))
        )
    )
    recount_tags(session, workspace_id=workspace_id, tags=live, now=now)
    mark_changed(session, workspace_id=workspace_id, customer_ids=changed, kinds=TAGS)
    return InterestResult(categories=len(live), tagged=tagged, changed=len(changed))


def _refresh_from_snapshot(
    session: Session, workspace_id: int, ids: Collection[int], now: datetime, since: int, half_life: int
) -> InterestResult:
    """refresh_interests for a few customers, reading their activity and interest tags from the warm segment
    snapshot, and counting each tag's customers by what changed rather than by a count over the workspace."""
    rows = engine.activity_of(
        session, workspace_id=workspace_id, ids=ids, kinds=(PURCHASE_KIND, ENGAGE_KIND), since=since
    )
    tags = _ensure_tags(session, workspace_id, {ref for _, _, ref, _, _ in rows if ref})
    want = _scores(rows, {category: tag.id for category, tag in tags.items()}, epoch_day(now), half_life)
    every = session.scalars(select(Tag).where(Tag.workspace_id == workspace_id, Tag.kind == "interest")).all()
    # Rows of interest tags are the rows with source 'interest' (only interest refreshes write either).
    have = {
        (c, t): w
        for c, t, w in engine.tags_of(session, workspace_id=workspace_id, ids=ids, tag_ids=[t.id for t in every])
    }
    bulk = Bulk(session)
    changed, delta = _write(bulk, workspace_id, want, have, bulk.ts(now))
    live = [t for t in every if t.deleted_at is None]
    for tag in live:
        tag.customers_count += delta.get(tag.id, 0)
        tag.refreshed_at = now
    session.flush()
    mark_changed(session, workspace_id=workspace_id, customer_ids=changed, kinds=TAGS)
    return InterestResult(categories=len(live), tagged=len({c for c, _ in want}), changed=len(changed))
