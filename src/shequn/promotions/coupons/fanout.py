"""Fan-out: issue a template to every member of a segment, with a delivery message each, set-based.

Chunks of segment members (by customer id) become grants with one INSERT … SELECT and their messages
with another (on PostgreSQL both in one statement through data-modifying CTEs). Stock and budget are
reserved per chunk by conditional UPDATEs before the insert and the unused part is given back, so a
fan-out stops cleanly (and says why) when either runs out. Rerunning adds nothing for members who
already hold a coupon of the template: unique (template, "fanout", customer id) and NOT EXISTS.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, exists, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.db import new_session
from shequn.core.jobs import JobRun, enqueue_job
from shequn.core.outbox import enqueue_select, padded_id
from shequn.core.types import UTCDateTime
from shequn.promotions.campaigns.budget import BudgetExhausted, charge_budget
from shequn.promotions.coupons.claims import FANOUT_SOURCE, check_claimable, validity_of
from shequn.promotions.coupons.models import CouponGrant, CouponTemplate
from shequn.promotions.coupons.redeem import release_budget
from shequn.promotions.coupons.templates import face_value, get_template

FANOUT_JOB = "coupons.fanout"
CHUNK = 250_000
# Chunks written at once on PostgreSQL when nothing can run out (no stock, budget or campaign cap): each in
# its own transaction, so the template row is locked only for the counter UPDATE just before each commit.
PG_WORKERS = 2
RESERVE_ATTEMPTS = 20
MESSAGE_KIND = "coupon.granted"

# Audience's membership table, from its service, for the set-based INSERT … SELECT (list_members returns ORM
# rows a batch at a time, the row-by-row path this module exists to avoid). Read-only.
SEGMENT_MEMBERS = audience_service.membership_table()

Checkpoint = Callable[[int, int, str], None]


@dataclass
class FanoutReport:
    """What a fan-out did: members seen, coupons issued and messages queued, and why it stopped early."""

    template_id: int
    segment_id: int
    members: int = 0
    issued: int = 0
    already_held: int = 0
    messages: int = 0
    stopped: str = ""  # "" | stock | budget

    def as_dict(self) -> dict[str, Any]:
        """The report as the job result stores it."""
        return asdict(self)


def start_fanout(
    session: Session,
    *,
    workspace_id: int,
    template_id: int,
    segment_id: int,
    message: str = "",
    created_by: int | None = None,
) -> JobRun:
    """Check the template and segment, then queue the fan-out job (runs after commit)."""
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    check_claimable(tpl, utcnow())
    audience_service.get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    return enqueue_job(
        session,
        workspace_id=workspace_id,
        kind=FANOUT_JOB,
        params={"workspace_id": workspace_id, "template_id": tpl.id, "segment_id": segment_id, "message": message},
        created_by=created_by,
    )


def _members(workspace_id: int, segment_id: int) -> Any:
    m = SEGMENT_MEMBERS.c
    return and_(m.segment_id == segment_id, m.workspace_id == workspace_id)


def _chunk_upper(session: Session, workspace_id: int, segment_id: int, after: int, size: int) -> int | None:
    """The customer id closing the next chunk of members after `after` (None when none are left)."""
    m = SEGMENT_MEMBERS.c
    base = select(m.customer_id).where(_members(workspace_id, segment_id), m.customer_id > after)
    upper = session.scalar(base.order_by(m.customer_id).offset(size - 1).limit(1))
    if upper is None:
        upper = session.scalar(
            select(func.max(m.customer_id)).where(_members(workspace_id, segment_id), m.customer_id > after)
        )
    return int(upper) if upper is not None else None


def _candidates(tpl: CouponTemplate, segment_id: int, lo: int, hi: int) -> Any:
    """Members in (lo, hi] who hold no coupon of the template yet."""
    m = SEGMENT_MEMBERS.c
    held = exists().where(
        CouponGrant.workspace_id == tpl.workspace_id,
        CouponGrant.customer_id == m.customer_id,
        CouponGrant.template_id == tpl.id,
    )
    return (
        select(m.customer_id)
        .where(_members(tpl.workspace_id, segment_id), m.customer_id > lo, m.customer_id <= hi, ~held)
        .order_by(m.customer_id)
    )


def _reserve(session: Session, tpl: CouponTemplate, want: int, face: int, report: FanoutReport) -> int:
    """Reserve stock and budget for up to `want` coupons; returns how many fit (and notes what ran out)."""
    for _ in range(RESERVE_ATTEMPTS):
        session.refresh(tpl, ["issued_count", "committed_fen", "total_stock", "budget_fen"])
        k = want
        if tpl.total_stock is not None and tpl.issued_count + k > tpl.total_stock:
            k, report.stopped = max(0, tpl.total_stock - tpl.issued_count), "stock"
        if face > 0 and tpl.budget_fen is not None and tpl.committed_fen + k * face > tpl.budget_fen:
            k, report.stopped = max(0, (tpl.budget_fen - tpl.committed_fen) // face), "budget"
        if k <= 0:
            return 0
        moved = session.execute(
            update(CouponTemplate)
            .where(
                CouponTemplate.id == tpl.id,
                (CouponTemplate.total_stock.is_(None))
                | (CouponTemplate.issued_count + k <= CouponTemplate.total_stock),
                (CouponTemplate.budget_fen.is_(None))
                | (CouponTemplate.committed_fen + k * face <= CouponTemplate.budget_fen),
            )
            .values(issued_count=CouponTemplate.issued_count + k, committed_fen=CouponTemplate.committed_fen + k * face)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            return k - _charge_campaign(session, tpl, k, face, report)
        # A concurrent claim moved the counters between the read and the UPDATE: read them again.
    raise RuntimeError("coupon counters kept moving; the fan-out job retries (reruns add nothing twice)")


def _charge_campaign(session: Session, tpl: CouponTemplate, k: int, face: int, report: FanoutReport) -> int:
    """Charge the campaign for k coupons in halving chunks; returns how many could not be covered."""
    if tpl.campaign_id is None or face <= 0:
        return 0
    covered, chunk = 0, k
    while chunk >= 1 and covered < k:
        chunk = min(chunk, k - covered)
        try:
            charge_budget(session, workspace_id=tpl.workspace_id, campaign_id=tpl.campaign_id, amount_fen=chunk * face)
            covered += chunk
        except BudgetExhausted:
            chunk //= 2
    if covered < k:
        report.stopped = "budget"
        _give_back(session, tpl, k - covered, face, campaign=False)
    return k - covered


def _give_back(session: Session, tpl: CouponTemplate, n: int, face: int, *, campaign: bool = True) -> None:
    """Return reserved stock and budget that no grant used."""
    if n <= 0:
        return
    session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == tpl.id)
        .values(issued_count=CouponTemplate.issued_count - n)
        .execution_options(synchronize_session=False)
    )
    if campaign:
        release_budget(session, tpl, n * face)
    else:
        session.execute(
            update(CouponTemplate)
            .where(CouponTemplate.id == tpl.id)
            .values(committed_fen=CouponTemplate.committed_fen - n * face)
            .execution_options(synchronize_session=False)
        )


def _grant_columns(tpl: CouponTemplate, now: datetime, face: int) -> list[tuple[str, Any]]:
    valid_from, valid_until = validity_of(tpl, now)
    ts = UTCDateTime()
    return [
        ("workspace_id", literal(tpl.workspace_id)),
        ("template_id", literal(tpl.id)),
        ("source", literal(FANOUT_SOURCE)),
        ("state", literal("issued")),
        ("face_fen", literal(face)),
        ("valid_from", literal(valid_from, ts)),
        ("valid_until", literal(valid_until, ts)),
        ("order_amount_fen", literal(0)),
        ("discount_fen", literal(0)),
        ("created_at", literal(now, ts)),
    ]


def _insert_generic(session: Session, tpl: CouponTemplate, cand: Any, k: int, now: datetime, face: int) -> int:
    """Grants for the first k candidates; returns how many were inserted."""
    sub = cand.limit(k).subquery()
    cols = _grant_columns(tpl, now, face)
    source = select(*[v for _, v in cols], sub.c.customer_id, padded_id(session, sub.c.customer_id)).where(
        sub.c.customer_id.is_not(None)
    )
    names = [n for n, _ in cols] + ["customer_id", "source_ref"]
    ins = (
        postgresql.insert(CouponGrant)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(CouponGrant)
    )
    stmt = ins.from_select(names, source).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    result = session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _messages_generic(session: Session, tpl: CouponTemplate, lo: int, hi: int, payload: dict[str, Any]) -> int:
    ids = select(CouponGrant.customer_id).where(
        CouponGrant.template_id == tpl.id,
        CouponGrant.source == FANOUT_SOURCE,
        CouponGrant.customer_id > lo,
        CouponGrant.customer_id <= hi,
    )
    return enqueue_select(
        session,
        workspace_id=tpl.workspace_id,
        customer_ids=ids,
        kind=MESSAGE_KIND,
        payload=payload,
        dedupe_prefix=f"coupon:{tpl.id}:fanout:",
    )


PG_FANOUT = text(
    """
    WITH cand AS (
        SELECT sm.customer_id FROM segment_members sm
        WHERE sm.segment_id = :seg AND sm.workspace_id = :ws AND sm.customer_id > :lo AND sm.customer_id <= :hi
          AND NOT EXISTS (SELECT 1 FROM promo_coupon_grants g
                          WHERE g.workspace_id = :ws AND g.customer_id = sm.customer_id AND g.template_id = :tid)
        ORDER BY sm.customer_id LIMIT :k
    ), g AS (
        INSERT INTO promo_coupon_grants (workspace_id, template_id, customer_id, source, source_ref, state, face_fen,
                                         valid_from, valid_until, order_amount_fen, discount_fen, created_at)
        SELECT :ws, :tid, customer_id, :src, lpad(customer_id::text, 12, '0'), 'issued', :face, :vf, :vu, 0, 0, :now
        FROM cand
        ON CONFLICT DO NOTHING
        RETURNING customer_id
    ), m AS (
        INSERT INTO outbox_messages (workspace_id, customer_id, channel, kind, payload, status, dedupe_key, attempts,
                                     error, created_at)
        SELECT :ws, customer_id, 'h5', :kind, CAST(:payload AS jsonb), 'queued',
               :prefix || lpad(customer_id::text, 12, '0'), 0, '', :now
        FROM g
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM g), (SELECT count(*) FROM m)
    """
)


def _insert_pg(
    session: Session,
    tpl: CouponTemplate,
    segment_id: int,
    lo: int,
    hi: int,
    k: int,
    now: datetime,
    face: int,
    payload: str,
) -> tuple[int, int]:
    """PostgreSQL fast path: candidates, grants and messages in one statement (one pass, no re-read)."""
    valid_from, valid_until = validity_of(tpl, now)
    row = session.execute(
        PG_FANOUT,
        {
            "seg": segment_id,
            "ws": tpl.workspace_id,
            "lo": lo,
            "hi": hi,
            "tid": tpl.id,
            "k": k,
            "src": FANOUT_SOURCE,
            "face": face,
            "vf": valid_from,
            "vu": valid_until,
            "now": now,
            "kind": MESSAGE_KIND,
            "payload": payload,
            "prefix": f"coupon:{tpl.id}:fanout:",
        },
    ).one()
    return int(row[0]), int(row[1])


def run_fanout(
    session: Session,
    *,
    workspace_id: int,
    template_id: int,
    segment_id: int,
    message: str = "",
    checkpoint: Checkpoint | None = None,
    chunk: int = CHUNK,
    fast_path: bool = True,
    workers: int = PG_WORKERS,
) -> FanoutReport:
    """Issue the template to the segment's members chunk by chunk; checkpoint commits each chunk."""
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    seg = audience_service.get_segment(session, workspace_id=workspace_id, segment_id=segment_id)
    report = FanoutReport(template_id=tpl.id, segment_id=seg.id)
    now = utcnow()
    face = face_value(tpl)
    payload = {"template_id": tpl.id, "name": tpl.name, "source": FANOUT_SOURCE, "message": message}
    pg = fast_path and session.get_bind().dialect.name == "postgresql"
    total = int(seg.members_count or 0)
    if pg and workers > 1 and _nothing_runs_out(tpl, face):
        return _run_parallel(
            session, tpl, seg.id, report, total, chunk, workers, now, orjson.dumps(payload).decode(), checkpoint
        )
    after = 0
    while not report.stopped:
        hi = _chunk_upper(session, workspace_id, seg.id, after, chunk)
        if hi is None:
            break
        cand = _candidates(tpl, seg.id, after, hi)
        seen = (
            session.scalar(
                select(func.count())
                .select_from(SEGMENT_MEMBERS)
                .where(
                    _members(workspace_id, seg.id),
                    SEGMENT_MEMBERS.c.customer_id > after,
                    SEGMENT_MEMBERS.c.customer_id <= hi,
                )
            )
            or 0
        )
        want = session.scalar(select(func.count()).select_from(cand.subquery())) or 0
        report.members += seen
        report.already_held += seen - want
        k = _reserve(session, tpl, want, face, report) if want else 0
        if k:
            if pg:
                inserted, queued = _insert_pg(
                    session, tpl, seg.id, after, hi, k, now, face, orjson.dumps(payload).decode()
                )
            else:
                inserted = _insert_generic(session, tpl, cand, k, now, face)
                queued = _messages_generic(session, tpl, after, hi, payload)
            _give_back(session, tpl, k - inserted, face)  # lost a race with a claim for the same customer
            report.issued += inserted
            report.messages += queued
        after = hi
        if checkpoint is not None:
            checkpoint(report.members, max(total, report.members), f"issued {report.issued}")
    return report


def _nothing_runs_out(tpl: CouponTemplate, face: int) -> bool:
    """No stock, budget or campaign charge to reserve: chunks are independent and may run side by side."""
    return tpl.total_stock is None and (face == 0 or (tpl.budget_fen is None and tpl.campaign_id is None))


def _bounds(session: Session, workspace_id: int, segment_id: int, chunk: int) -> list[tuple[int, int]]:
    """(lo, hi] customer-id ranges of about `chunk` members each, in one pass over the membership."""
    m = SEGMENT_MEMBERS.c
    numbered = (
        select(m.customer_id.label("cid"), func.row_number().over(order_by=m.customer_id).label("rn"))
        .where(_members(workspace_id, segment_id))
        .subquery()
    )
    marks = [
        int(c)
        for c in session.scalars(select(numbered.c.cid).where(numbered.c.rn % chunk == 0).order_by(numbered.c.cid))
    ]
    last = session.scalar(select(func.max(m.customer_id)).where(_members(workspace_id, segment_id)))
    if last is None:
        return []
    uppers = marks if marks and marks[-1] == last else [*marks, int(last)]
    return list(zip([0, *uppers[:-1]], uppers, strict=True))


def _pg_chunk(
    tpl_id: int, segment_id: int, lo: int, hi: int, now: datetime, face: int, payload: str
) -> tuple[int, int, int]:
    """One chunk in its own session and transaction: (members seen, grants inserted, messages queued)."""
    with new_session() as s:
        tpl = s.get(CouponTemplate, tpl_id)
        assert tpl is not None
        m = SEGMENT_MEMBERS.c
        seen = (
            s.scalar(
                select(func.count())
                .select_from(SEGMENT_MEMBERS)
                .where(_members(tpl.workspace_id, segment_id), m.customer_id > lo, m.customer_id <= hi)
            )
            or 0
        )
        inserted, queued = _insert_pg(s, tpl, segment_id, lo, hi, max(seen, 1), now, face, payload)
        s.execute(
            update(CouponTemplate)
            .where(CouponTemplate.id == tpl.id)
            .values(
                issued_count=CouponTemplate.issued_count + inserted,
                committed_fen=CouponTemplate.committed_fen + inserted * face,
            )
            .execution_options(synchronize_session=False)
        )
        s.commit()
        return int(seen), inserted, queued


def _run_parallel(
    session: Session,
    tpl: CouponTemplate,
    segment_id: int,
    report: FanoutReport,
    total: int,
    chunk: int,
    workers: int,
    now: datetime,
    payload: str,
    checkpoint: Checkpoint | None,
) -> FanoutReport:
    """PostgreSQL, nothing to run out of: chunks written by `workers` connections side by side."""
    bounds = _bounds(session, tpl.workspace_id, segment_id, chunk)
    face = face_value(tpl)
    # The caller's session only read (no row locks), so the workers' counter UPDATEs never wait on it.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_pg_chunk, tpl.id, segment_id, lo, hi, now, face, payload) for lo, hi in bounds]
        for done in as_completed(futures):
            seen, inserted, queued = done.result()
            report.members += seen
            report.issued += inserted
            report.already_held += seen - inserted
            report.messages += queued
            if checkpoint is not None:
                checkpoint(report.members, max(total, report.members), f"issued {report.issued}")
    return report
