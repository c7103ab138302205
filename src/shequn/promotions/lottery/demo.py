"""The lottery layer of the demo brand: a running wheel in the demo campaign (with a week of draws) and a
finished, revealed one whose record anyone can verify."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.loyalty import service as loyalty_service
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.lottery import draws, manage, prizes
from shequn.promotions.lottery.models import Lottery
from shequn.promotions.lottery.schemas import LotteryIn, PrizeIn

RUNNING = "春茶幸运大转盘"
FINISHED = "新品试饮抽奖（已开奖）"
DEMO_PEOPLE = 60
SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄")
CITIES = ("杭州市西湖区", "上海市静安区", "北京市朝阳区", "成都市武侯区", "广州市天河区")


def _prizes(coupon_template_id: int | None) -> list[PrizeIn]:
    table = [
        PrizeIn(name="紫砂茶具套装", kind="physical", weight=2, stock=5, cost_fen=39_900),
        PrizeIn(name="100 积分", kind="points", weight=20, points=100),
        PrizeIn(name="明前龙井 50g", kind="physical", weight=8, stock=30, cost_fen=6_800),
        PrizeIn(name="谢谢参与", kind="thanks", weight=50),
    ]
    if coupon_template_id is not None:
        table.insert(
            1, PrizeIn(name="满 199 减 30 券", kind="coupon", weight=20, coupon_template_id=coupon_template_id)
        )
    return table


def _create(
    session: Session, workspace_id: int, campaign_id: int | None, name: str, starts: datetime, ends: datetime
) -> Lottery:
    choices = coupons_service.list_templates_for_choice(session, workspace_id=workspace_id)
    lottery = manage.create_lottery(
        session,
        workspace_id=workspace_id,
        data=LotteryIn(
            name=name,
            description="每天免费抽 1 次，另可用 50 积分再抽（每天最多 3 次）。结果由公开承诺的种子决定，可自行验证。",
            campaign_id=campaign_id,
            starts_at=starts,
            ends_at=ends,
            draws_per_day=1,
            points_per_draw=50,
            bought_per_day=3,
            prizes=_prizes(choices[0][0] if choices else None),
        ),
    )
    manage.publish_lottery(session, workspace_id=workspace_id, lottery_id=lottery.id, now=starts)
    return lottery


def _simulate(session: Session, lottery: Lottery, people: list[int], days: int, rng: random.Random) -> int:
    """Some demo customers draw once a day (a few buy extra draws with points) over the given days."""
    made = 0
    for back in range(days, -1, -1):
        moment = min(utcnow(), lottery.ends_at - timedelta(minutes=1)) - timedelta(days=back, hours=rng.randint(0, 3))
        if moment < lottery.starts_at:
            continue
        for cid in rng.sample(people, k=max(1, len(people) // 2)):
            extra = rng.random() < 0.15
            for paid in [False, True] if extra else [False]:
                no = draws.draws_done(session, lottery_id=lottery.id, customer_id=cid) + 1
                try:
                    with session.begin_nested():
                        draws.draw_lottery(
                            session,
                            workspace_id=lottery.workspace_id,
                            lottery_id=lottery.id,
                            customer_id=cid,
                            draw_no=no,
                            pay_with_points=paid,
                            now=moment,
                        )
                    made += 1
                except ShequnError:
                    continue  # no points left, no draws left: a real member would see the same refusal
    return made


def _fulfil(session: Session, lottery: Lottery, rng: random.Random) -> None:
    """Most winners give an address; the older ones are shipped, some already delivered."""
    queue = prizes.fulfilment_queue(session, workspace_id=lottery.workspace_id, lottery_id=lottery.id)
    for i, (draw, _name) in enumerate(queue):
        if rng.random() < 0.25:
            continue  # some winners have not given an address yet
        prizes.set_address(
            session,
            workspace_id=lottery.workspace_id,
            draw_id=draw.id,
            customer_id=draw.customer_id,
            name=rng.choice(SURNAMES) + rng.choice(("先生", "女士")),
            phone=f"138{rng.randint(0, 99_999_999):08d}",
            address=f"{rng.choice(CITIES)}茶香路 {rng.randint(1, 300)} 号",
        )
        if i < len(queue) // 2:
            prizes.mark_fulfilment(
                session,
                workspace_id=lottery.workspace_id,
                draw_id=draw.id,
                status="shipped",
                tracking_no=f"SF{rng.randint(10**11, 10**12 - 1)}",
            )
            if i < len(queue) // 4:
                prizes.mark_fulfilment(session, workspace_id=lottery.workspace_id, draw_id=draw.id, status="delivered")


def demo_step(session: Session, *, workspace_id: int, campaign_id: int | None) -> dict[str, int]:
    """Create the demo lotteries once: one running with a week of draws, one finished and revealed."""
    exists = session.scalar(select(Lottery.id).where(Lottery.workspace_id == workspace_id, Lottery.name == RUNNING))
    if exists is not None:
        return {"lotteries": 0, "draws": 0}
    people_rows, _ = audience_service.list_customers(
        session, workspace_id=workspace_id, flt=audience_service.CustomerFilter(), limit=DEMO_PEOPLE
    )
    people = [c.id for c in people_rows]
    if not people:
        return {"lotteries": 0, "draws": 0}
    for cid in people:
        loyalty_service.award_points(
            session, workspace_id=workspace_id, customer_id=cid, points=200, reason="demo", ref="lottery"
        )
    rng = random.Random(f"demo-lottery-{workspace_id}")
    now = utcnow()
    running = _create(session, workspace_id, campaign_id, RUNNING, now - timedelta(days=6), now + timedelta(days=8))
    made = _simulate(session, running, people, 6, rng)
    _fulfil(session, running, rng)
    finished = _create(session, workspace_id, campaign_id, FINISHED, now - timedelta(days=20), now - timedelta(days=13))
    made += _simulate(session, finished, people[:20], 6, rng)
    _fulfil(session, finished, rng)
    manage.reveal_lottery(session, workspace_id=workspace_id, lottery_id=finished.id)
    return {"lotteries": 2, "draws": made}
