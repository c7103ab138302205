"""Claiming flash-sale stock: one service function, two engines (Redis script, or SQL on the database).

SQL engine, in one transaction (first statement a write, so SQLite takes its write lock before reading and
never fails on a stale snapshot; PostgreSQL queues on the row locks and re-checks the WHERE):
  1. the customer's counter: INSERT … ON CONFLICT DO UPDATE SET qty = qty + q WHERE qty + q <= limit
  2. the reservation row (unique (sale, customer, idempotency key): a replay cannot insert twice)
  3. the stock: UPDATE … SET sold = sold + q WHERE sold + q <= stock AND inside the window
Any step that matches nothing rolls the whole claim back, and the outcome is decided from a fresh read.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.db import new_session
from shequn.core.settings import get_settings
from shequn.core.sqlutil import dialect_insert, rowcount
from shequn.promotions.flash import redis_store
from shequn.promotions.flash.models import FlashOutcomeCount, FlashReservation, FlashSale

OUTCOMES = ("ok", "sold_out", "limit_reached", "not_started", "ended", "blocked", "rate_limited")
SNAPSHOT_TTL_S = 5.0
IDEM_MAX = 64


@dataclass(frozen=True)
class ReservationView:
    """A reservation as members and integrations see it (plain values)."""

    ref: str
    sale_id: int
    customer_id: int
    qty: int
    amount: int
    state: str
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601 UTC)."""
        return {
            "ref": self.ref,
            "sale_id": self.sale_id,
            "qty": self.qty,
            "amount": self.amount,
            "state": self.state,
            "expires_at": self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class ClaimResult:
    """The decided outcome of one claim; `reservation` is set for ok and replays."""

    outcome: str
    reservation: ReservationView | None = None
    replay: bool = False


@dataclass(frozen=True)
class SaleTerms:
    """What a claim needs from the sale that cannot change after publishing (price, TTL)."""

    workspace_id: int
    price: int
    ttl_min: int


_terms: dict[int, tuple[float, SaleTerms]] = {}
_ref_counter = itertools.count(1)
_ref_pid = 0
_ref_prefix = ""


def new_ref() -> str:
    """A reservation's public id: unique by a random per-process prefix and a counter.

    One read of the OS's randomness per process instead of one per claim (os.urandom showed up as the largest
    single cost of a claim under load). Refs need not be secret: every read of a reservation is scoped to
    its workspace and, for members, to its customer.
    """
    global _ref_pid, _ref_prefix
    pid = os.getpid()
    if pid != _ref_pid:  # a forked worker must not share its parent's prefix
        _ref_pid, _ref_prefix = pid, secrets.token_hex(6)
    return f"{_ref_prefix}{next(_ref_counter):012x}"


def redis_url() -> str:
    """The configured Redis, or "" for the embedded SQL engine."""
    return get_settings().redis_url


def claim(
    session: Session,
    *,
    workspace_id: int,
    sale_id: int,
    customer_id: int,
    qty: int = 1,
    idem_key: str = "",
    now: datetime | None = None,
) -> ClaimResult:
    """Claim qty units for a customer: Redis script when configured, else the SQL engine.

    The claim is its caller's whole unit of work: the caller commits an ok claim, a refused one is rolled
    back here.
    """
    idem_key = (idem_key or "")[:IDEM_MAX]
    now = now or utcnow()
    if redis_url():
        return claim_redis(
            session,
            workspace_id=workspace_id,
            sale_id=sale_id,
            customer_id=customer_id,
            qty=qty,
            idem=idem_key,
            now=now,
        )
    return claim_sql(
        session, workspace_id=workspace_id, sale_id=sale_id, customer_id=customer_id, qty=qty, idem=idem_key, now=now
    )


# --- Redis engine -------------------------------------------------------------------------------


def decode_script_result(result: list[Any], *, sale_id: int, ref: str) -> ClaimResult:
    """Turn the claim script's reply into a ClaimResult (shared by the sync service and the async hot path)."""
    outcome = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
    if outcome in ("ok", "replay"):
        ref_raw = result[1]
        found_ref = ref_raw.decode() if isinstance(ref_raw, bytes) else str(ref_raw)
        rec = redis_store.parse_record(result[2])
        view = ReservationView(found_ref, sale_id, rec.customer_id, rec.qty, rec.amount, rec.state, rec.expires_at)
        return ClaimResult("ok", view, replay=outcome == "replay")
    return ClaimResult(outcome)


def claim_redis(
    session: Session, *, workspace_id: int, sale_id: int, customer_id: int, qty: int, idem: str, now: datetime
) -> ClaimResult:
    """One EVALSHA decides; a sale Redis has not seen yet is loaded from the database once and retried."""
    from shequn.promotions.flash import manage

    r = redis_store.client(redis_url())
    ref = new_ref()
    args = redis_store.claim_args(
        sale_id=sale_id,
        workspace_id=workspace_id,
        customer_id=customer_id,
        qty=qty,
        idem_key=idem,
        ref=ref,
        now_ms=redis_store.ms(now),
    )
    result = decode_script_result(
        redis_store.run_script(r, redis_store.CLAIM_SHA, redis_store.CLAIM_LUA, args), sale_id=sale_id, ref=ref
    )
    if result.outcome == "not_found" and manage.load_into_redis(session, workspace_id=workspace_id, sale_id=sale_id):
        raw = redis_store.run_script(r, redis_store.CLAIM_SHA, redis_store.CLAIM_LUA, args)
        result = decode_script_result(raw, sale_id=sale_id, ref=ref)
    return result


# --- SQL engine ---------------------------------------------------------------------------------


def sale_terms(sale_id: int) -> SaleTerms | None:
    """Price and TTL of a sale; cached for a few seconds once published (they are frozen from then on)."""
    hit = _terms.get(sale_id)
    if hit is not None and time.monotonic() - hit[0] < SNAPSHOT_TTL_S:
        return hit[1]
    # Read on a session of its own: on SQLite a write after a read in the claim's transaction could fail at
    # once on a stale snapshot, so the claim's first statement must be its first write.
    with new_session() as own:
        row = own.execute(
            select(
                FlashSale.workspace_id, FlashSale.flash_price, FlashSale.reservation_ttl_min, FlashSale.status
            ).where(FlashSale.id == sale_id)
        ).first()
    if row is None:
        return None
    terms = SaleTerms(int(row[0]), int(row[1]), int(row[2]))
    if row[3] == "published":  # a draft's price may still change; a published sale's never does
        _terms[sale_id] = (time.monotonic(), terms)
    return terms


_COUNT_SQL = text(
    "INSERT INTO promo_flash_customer_counts (workspace_id, sale_id, customer_id, qty) "
    "SELECT :ws, :sid, :cid, :q WHERE :q <= "
    "(SELECT per_customer_limit FROM promo_flash_sales WHERE id = :sid AND workspace_id = :ws) "
    "ON CONFLICT (sale_id, customer_id) DO UPDATE SET qty = promo_flash_customer_counts.qty + excluded.qty "
    "WHERE promo_flash_customer_counts.qty + excluded.qty <= "
    "(SELECT per_customer_limit FROM promo_flash_sales WHERE id = :sid) RETURNING qty"
)


class _Refused(Exception):
    """A step of the SQL claim matched nothing; the stage says which."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


def claim_sql(
    session: Session, *, workspace_id: int, sale_id: int, customer_id: int, qty: int, idem: str, now: datetime
) -> ClaimResult:
    """The embedded engine: three conditional writes in one transaction (see the module docstring)."""
    terms = sale_terms(sale_id)
    if terms is None or terms.workspace_id != workspace_id:
        return ClaimResult("not_found")
    ref = new_ref()
    key = idem or ref
    params = {"ws": workspace_id, "sid": sale_id, "cid": customer_id, "q": qty}
    try:
        if session.execute(_COUNT_SQL, params).first() is None:
            raise _Refused("limit")
        try:
            with session.begin_nested():
                session.execute(
                    dialect_insert(session, FlashReservation).values(
                        workspace_id=workspace_id,
                        sale_id=sale_id,
                        customer_id=customer_id,
                        ref=ref,
                        idem_key=key,
                        qty=qty,
                        amount=terms.price * qty,
                        state="reserved",
                        expires_at=now + timedelta(minutes=terms.ttl_min),
                        created_at=now,
                        order_ref="",
                    )
                )
        except IntegrityError:
            raise _Refused("replay") from None
        moved = rowcount(
            session.execute(
                update(FlashSale)
                .where(
                    FlashSale.id == sale_id,
                    FlashSale.status == "published",
                    FlashSale.starts_at <= now,
                    FlashSale.ends_at > now,
                    FlashSale.sold + qty <= FlashSale.stock,
                )
                .values(sold=FlashSale.sold + qty)
            )
        )
        if moved != 1:
            raise _Refused("stock")
    except _Refused as refused:
        session.rollback()
        return _decide_refusal(session, refused.stage, workspace_id, sale_id, customer_id, idem, now)
    count_outcome(session, workspace_id=workspace_id, sale_id=sale_id, outcome="ok", now=now)
    view = ReservationView(
        ref, sale_id, customer_id, qty, terms.price * qty, "reserved", now + timedelta(minutes=terms.ttl_min)
    )
    return ClaimResult("ok", view)


def _decide_refusal(
    session: Session, stage: str, workspace_id: int, sale_id: int, customer_id: int, idem: str, now: datetime
) -> ClaimResult:
    """Why a rolled-back claim won nothing (replay, window, limit or stock), counted for the charts."""
    if idem:
        prev = session.scalar(
            select(FlashReservation).where(
                FlashReservation.sale_id == sale_id,
                FlashReservation.customer_id == customer_id,
                FlashReservation.idem_key == idem,
            )
        )
        if prev is not None:
            return ClaimResult("ok", view_of(prev), replay=True)
    sale = session.get(FlashSale, sale_id)
    if sale is None or sale.workspace_id != workspace_id or sale.status == "draft":
        return ClaimResult("not_found")
    if sale.status != "published" or now >= sale.ends_at:
        outcome = "ended"
    elif now < sale.starts_at:
        outcome = "not_started"
    elif stage == "limit":
        outcome = "limit_reached"
    else:
        outcome = "sold_out"
    count_outcome(session, workspace_id=workspace_id, sale_id=sale_id, outcome=outcome, now=now)
    return ClaimResult(outcome)


def view_of(row: FlashReservation) -> ReservationView:
    """The plain view of a reservation row."""
    return ReservationView(row.ref, row.sale_id, row.customer_id, row.qty, row.amount, row.state, row.expires_at)


def count_outcome(session: Session, *, workspace_id: int, sale_id: int, outcome: str, now: datetime) -> None:
    """Add one attempt to the all-time and per-minute counters of an outcome (SQL engine)."""
    minute = int(now.timestamp() // 60)
    table = FlashOutcomeCount.__table__
    for bucket in (0, minute):
        stmt = dialect_insert(session, FlashOutcomeCount).values(
            workspace_id=workspace_id, sale_id=sale_id, minute=bucket, outcome=outcome, n=1
        )
        session.execute(
            stmt.on_conflict_do_update(index_elements=["sale_id", "minute", "outcome"], set_={"n": table.c.n + 1})
        )


def set_outcome_counts(session: Session, *, workspace_id: int, sale_id: int, counts: dict[str, int]) -> None:
    """Store the Redis engine's attempt counters (absolute values) in the database for the console."""
    rows: list[dict[str, Any]] = []
    for field, n in counts.items():
        if field.startswith("m:"):
            _m, minute, outcome = field.split(":", 2)
            rows.append({"minute": int(minute), "outcome": outcome, "n": n})
        else:
            rows.append({"minute": 0, "outcome": field, "n": n})
    if not rows:
        return
    stmt = dialect_insert(session, FlashOutcomeCount).values(
        [{"workspace_id": workspace_id, "sale_id": sale_id, **row} for row in rows]
    )
    session.execute(
        stmt.on_conflict_do_update(index_elements=["sale_id", "minute", "outcome"], set_={"n": stmt.excluded.n})
    )


def clear_caches() -> None:
    """Forget cached sale terms (tests reuse ids after truncating)."""
    _terms.clear()


def note_refusal(
    session: Session, *, workspace_id: int, sale_id: int, outcome: str, now: datetime | None = None
) -> None:
    """Count a claim the guard refused before it reached the engine (blocked, rate_limited)."""
    terms = sale_terms(sale_id)
    if terms is None or terms.workspace_id != workspace_id:
        return
    now = now or utcnow()
    if redis_url():
        stats = redis_store.keys(sale_id)[4]
        minute = int(now.timestamp() // 60)
        r = redis_store.client(redis_url())
        r.hincrby(stats, outcome, 1)
        r.hincrby(stats, f"m:{minute}:{outcome}", 1)
        return
    count_outcome(session, workspace_id=workspace_id, sale_id=sale_id, outcome=outcome, now=now)
