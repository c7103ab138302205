"""Lotteries under concurrency (threads with their own sessions, SQLite and PostgreSQL): stock never passes,
the log's order replays the stock, a daily limit holds for one member hammering from many threads, and racing
retries of one paid draw spend the points once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.core.db import new_session
from shequn.core.errors import ShequnError
from shequn.loyalty import service as loyalty_service
from shequn.promotions.lottery import service
from shequn.promotions.lottery.models import LotteryDraw
from shequn.promotions.lottery.schemas import PrizeIn
from tests.conftest import Tenant
from tests.integration.test_lottery import make_lottery
from tests.integration.test_loyalty import customers

THREADS = 12
TABLE = [
    PrizeIn(name="限量茶具", kind="physical", weight=1, stock=3),
    PrizeIn(name="谢谢参与", kind="thanks", weight=0),
]


def race(calls: list[Callable[[Session], Any]]) -> list[Any]:
    """Run each call in its own thread and session, released together; results or the exceptions raised."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[Session], Any]) -> Any:
        session = new_session()
        try:
            barrier.wait()
            out = call(session)
            session.commit()
            return out
        except Exception as exc:
            session.rollback()
            return exc
        finally:
            session.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _log(db: Session, lid: int) -> list[LotteryDraw]:
    db.expire_all()
    return list(db.scalars(select(LotteryDraw).where(LotteryDraw.lottery_id == lid).order_by(LotteryDraw.id)))


def test_stock_never_passes_and_the_log_replays(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, prizes=TABLE)
    people = customers(db, ws, THREADS)

    def first_draw(cid: int) -> Callable[[Session], Any]:
        return lambda s: service.draw_lottery(s, workspace_id=ws, lottery_id=lid, customer_id=cid, draw_no=1)

    results = race([first_draw(c) for c in people])
    assert not [r for r in results if isinstance(r, Exception)]
    log = _log(db, lid)
    assert len(log) == THREADS
    assert sum(d.prize_kind == "physical" for d in log) == 3
    assert sum(d.fallback == "stock" for d in log) == THREADS - 3
    assert next(p for p in service.list_prizes(db, lottery_id=lid) if p.kind == "physical").won == 3
    # The log's id order is the order stock was taken: the three winners are the first three entries.
    assert [d.prize_kind for d in log[:3]] == ["physical"] * 3
    lottery = service.get_lottery(db, workspace_id=ws, lottery_id=lid)
    prizes = [
        {"id": p.id, "weight": p.weight, "stock": p.stock, "kind": p.kind}
        for p in service.list_prizes(db, lottery_id=lid)
    ]
    draws = [
        {
            "player": d.player,
            "draw_no": d.draw_no,
            "client_nonce": d.client_nonce,
            "number": d.number,
            "chosen_prize_id": d.chosen_prize_id,
            "prize_id": d.prize_id,
            "fallback": d.fallback,
        }
        for d in log
    ]
    seed = service.secret_seed(lottery).hex()  # still sealed: the lottery is not revealed
    assert service.verify_log(seed, lottery.commitment or "", lid, prizes, draws) == []


def test_daily_limit_holds_for_one_member_on_many_threads(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, draws_per_day=3)
    (cid,) = customers(db, ws, 1)

    def hammer(session: Session) -> int:
        made = 0
        for _ in range(6):
            lottery = service.get_lottery(session, workspace_id=ws, lottery_id=lid)
            no = service.day_left(session, lottery, customer_id=cid).next_draw_no
            try:
                service.draw_lottery(session, workspace_id=ws, lottery_id=lid, customer_id=cid, draw_no=no)
                session.commit()
                made += 1
            except ShequnError:
                session.rollback()
        return made

    race([hammer] * 8)
    log = _log(db, lid)
    assert sorted(d.draw_no for d in log) == [1, 2, 3]
    lottery = service.get_lottery(db, workspace_id=ws, lottery_id=lid)
    assert service.day_left(db, lottery, customer_id=cid).free_left == 0


def test_racing_retries_of_one_paid_draw_spend_once(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, prizes=TABLE, draws_per_day=0, points_per_draw=40)
    (cid,) = customers(db, ws, 1)
    loyalty_service.award_points(db, workspace_id=ws, customer_id=cid, points=100, reason="adjust", ref="t")
    db.commit()
    results = race(
        [
            lambda s: (
                service.draw_lottery(
                    s, workspace_id=ws, lottery_id=lid, customer_id=cid, draw_no=1, pay_with_points=True
                ).draw.id
            )
        ]
        * 8
    )
    ids = {r for r in results if not isinstance(r, Exception)}
    assert len(ids) == 1, results
    assert len(_log(db, lid)) == 1
    assert loyalty_service.get_balance(db, workspace_id=ws, customer_id=cid) == 60
