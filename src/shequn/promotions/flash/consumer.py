"""The Redis engine's writer: reads won claims from the stream and makes them durable in the database.

XREADGROUP hands each entry to one consumer; it is XACKed only after the database commit, so a crash between
the two leaves it pending and it is written again on restart (own pending entries first, then entries other
consumers left idle for a minute, by XAUTOCLAIM). Writing is idempotent: the reservation's ref is unique and
the sale's `sold` and the customer's counter move only for rows that were really inserted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from shequn.core.db import new_session
from shequn.core.sqlutil import dialect_insert
from shequn.promotions.flash import redis_store
from shequn.promotions.flash.claims import redis_url
from shequn.promotions.flash.models import FlashCustomerCount, FlashReservation, FlashSale

log = logging.getLogger(__name__)
BATCH = 500
RECLAIM_IDLE_MS = 60_000
CONSUMER = f"{socket.gethostname()}-{os.getpid()}"


def ensure_group(r: Any) -> None:
    """Create the consumer group (and the stream) once."""
    from redis.exceptions import ResponseError

    try:
        r.xgroup_create(redis_store.STREAM, redis_store.GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def write_entries(session: Session, entries: list[tuple[Any, dict[Any, Any]]]) -> int:
    """Insert the entries' reservations (skipping refs already written) and move the counters; returns inserted."""
    rows: list[dict[str, Any]] = []
    for _id, fields in entries:
        f = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        rec = redis_store.parse_record(f["rec"])
        ref = f["ref"].decode() if isinstance(f["ref"], bytes) else str(f["ref"])
        rows.append(
            {
                "workspace_id": int(f["ws"]),
                "sale_id": int(f["sale"]),
                "customer_id": rec.customer_id,
                "ref": ref,
                "idem_key": (rec.idem_key or ref)[:64],
                "qty": rec.qty,
                "amount": rec.amount,
                "state": "reserved",
                "expires_at": rec.expires_at,
                "created_at": rec.created_at,
                "order_ref": "",
            }
        )
    if not rows:
        return 0
    stmt = dialect_insert(session, FlashReservation).values(rows).on_conflict_do_nothing()
    inserted = set(session.scalars(stmt.returning(FlashReservation.ref)))
    sold: dict[int, int] = defaultdict(int)
    held: dict[tuple[int, int, int], int] = defaultdict(int)
    for row in rows:
        if row["ref"] in inserted:
            sold[row["sale_id"]] += row["qty"]
            held[(row["workspace_id"], row["sale_id"], row["customer_id"])] += row["qty"]
    for sale_id, n in sorted(sold.items()):
        session.execute(update(FlashSale).where(FlashSale.id == sale_id).values(sold=FlashSale.sold + n))
    if held:
        table = FlashCustomerCount.__table__
        values = [
            {"workspace_id": w, "sale_id": s, "customer_id": c, "qty": q} for (w, s, c), q in sorted(held.items())
        ]
        up = dialect_insert(session, FlashCustomerCount).values(values)
        session.execute(
            up.on_conflict_do_update(
                index_elements=["sale_id", "customer_id"], set_={"qty": table.c.qty + up.excluded.qty}
            )
        )
    return len(inserted)


def _process(r: Any, entries: list[tuple[Any, dict[Any, Any]]]) -> int:
    if not entries:
        return 0
    with new_session() as session:
        n = write_entries(session, entries)
        session.commit()
    r.xack(redis_store.STREAM, redis_store.GROUP, *[eid for eid, _ in entries])
    return n


def recover(r: Any) -> int:
    """Write this consumer's own pending entries, then claim and write ones others left idle."""
    ensure_group(r)
    total = 0
    while True:
        got = r.xreadgroup(redis_store.GROUP, CONSUMER, {redis_store.STREAM: "0"}, count=BATCH)
        entries = [e for e in (got[0][1] if got else []) if e[1]]
        if not entries:
            break
        total += _process(r, entries)
    start = "0-0"
    while True:
        nxt, claimed, *_ = r.xautoclaim(
            redis_store.STREAM, redis_store.GROUP, CONSUMER, RECLAIM_IDLE_MS, start_id=start, count=BATCH
        )
        total += _process(r, [e for e in claimed if e[1]])
        start = nxt.decode() if isinstance(nxt, bytes) else str(nxt)
        if start == "0-0":
            break
    return total


def drain(*, block_ms: int | None = None, max_batches: int = 1000) -> int:
    """Write every new entry now (tests and jobs call this); returns reservations inserted."""
    r = redis_store.client(redis_url())
    total = recover(r)
    for _ in range(max_batches):
        got = r.xreadgroup(redis_store.GROUP, CONSUMER, {redis_store.STREAM: ">"}, count=BATCH, block=block_ms)
        entries = got[0][1] if got else []
        if not entries:
            break
        total += _process(r, entries)
    return total


def trim_stream() -> int:
    """Drop stream entries every consumer has acknowledged (older than the oldest pending one); returns count."""
    r = redis_store.client(redis_url())
    ensure_group(r)
    groups = [g for g in r.xinfo_groups(redis_store.STREAM) if _text(g["name"]) == redis_store.GROUP]
    if not groups:
        return 0
    floor = _text(groups[0]["last-delivered-id"])
    pending = r.xpending(redis_store.STREAM, redis_store.GROUP)
    if pending["pending"]:
        floor = _text(pending["min"])
    return int(r.xtrim(redis_store.STREAM, minid=floor, approximate=False))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Worker(threading.Thread):
    """The embedded consumer loop of a server process."""

    def __init__(self) -> None:
        super().__init__(name="flash-stream-writer", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        recovered = False
        while not self.stopping.is_set():
            try:
                r = redis_store.client(redis_url())
                if not recovered:
                    recover(r)
                    recovered = True
                got = r.xreadgroup(redis_store.GROUP, CONSUMER, {redis_store.STREAM: ">"}, count=BATCH, block=500)
                if got:
                    _process(r, got[0][1])
            except Exception:  # keep the loop alive: entries stay pending and are written on the next pass
                log.exception("flash stream writer failed; retrying")
                recovered = False
                self.stopping.wait(1.0)


_worker: _Worker | None = None


def start_worker() -> None:
    """Start the embedded stream writer (server processes with Redis configured)."""
    global _worker
    if _worker is None and redis_url():
        _worker = _Worker()
        _worker.start()


def stop_worker() -> None:
    """Stop the embedded stream writer."""
    global _worker
    if _worker is not None:
        _worker.stopping.set()
        _worker.join(timeout=5)
        _worker = None
