"""The demo brand's gatherings: a past meetup with attendance and feedback, an upcoming live salon,
and an upcoming tea-tasting meetup with a waitlist."""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community.gatherings import manage, registration
from shequn.community.gatherings.models import Gathering, GatheringCheckin, GatheringFeedback, GatheringRegistration
from shequn.community.gatherings.schemas import GatheringIn
from shequn.core.clock import utcnow
from shequn.core.fmt import zone
from shequn.identity import service as identity_service

PAST_TITLE = "西湖龙井品鉴会 · 杭州"
SALON_TITLE = "春茶上新 · 直播沙龙"
TASTING_TITLE = "白茶围炉品鉴 · 上海"
COMMENTS = (
    "老师讲得很细，第一次喝出了豆香。",
    "场地有点挤，但茶很好。",
    "希望下次多讲讲冲泡水温。",
    "认识了好几位茶友，很开心！",
    "时间有点短，意犹未尽。",
    "",
)


def _spec(title: str, days: int, hour: int, hours: int, tz: str, **extra: Any) -> GatheringIn:
    """A gathering `days` from today at `hour` o'clock in the workspace's zone (meetups at 14:00, salons at 20:00)."""
    local = (utcnow() + timedelta(days=days)).astimezone(zone(tz)).replace(hour=hour, minute=0, second=0, microsecond=0)
    start = local.astimezone(UTC)
    return GatheringIn(title=title, starts_at=start, ends_at=start + timedelta(hours=hours), **extra)


def ensure_demo_gatherings(session: Session, *, workspace_id: int, community_id: int | None = None) -> dict[str, int]:
    """Create the three demo gatherings that are missing (safe to run again); returns what was made."""
    have = set(session.scalars(select(Gathering.title).where(Gathering.workspace_id == workspace_id)))
    people = audience_service.all_live_customer_ids(session, workspace_id=workspace_id)
    rng = random.Random(workspace_id)
    tz = identity_service.workspace_timezone(session, workspace_id)
    made = {"gatherings": 0, "registrations": 0}
    if PAST_TITLE not in have:
        made["registrations"] += _past_meetup(session, workspace_id, community_id, people[:24], rng, tz)
        made["gatherings"] += 1
    if SALON_TITLE not in have:
        g = manage.create_gathering(
            session,
            workspace_id=workspace_id,
            data=_spec(
                SALON_TITLE,
                3,
                20,
                1,
                tz,
                mode="online",
                format="salon",
                description="产品经理和茶艺师一起开箱今年的明前龙井与碧螺春，直播间限时福利。",
                agenda="20:00 开箱\n20:20 冲泡演示\n20:40 问答与抽奖",
                join_url="https://live.example.com/shanchaji/spring",
                community_id=community_id,
            ),
        )
        manage.publish_gathering(session, workspace_id=workspace_id, gathering_id=g.id)
        made["registrations"] += _register(session, g, people[10:25])
        made["gatherings"] += 1
    if TASTING_TITLE not in have:
        g = manage.create_gathering(
            session,
            workspace_id=workspace_id,
            data=_spec(
                TASTING_TITLE,
                10,
                14,
                3,
                tz,
                format="meetup",
                description="围炉煮白茶：老白茶与新白茶对比品鉴，限 8 位，满员后可排队候补。",
                agenda="14:00 签到\n14:30 白茶工艺讲解\n15:30 对比品鉴\n16:30 自由交流",
                venue="山茶集·静安体验店",
                city="上海",
                address="静安区南京西路 1266 号 2 楼",
                capacity=8,
                waitlist_enabled=True,
                community_id=community_id,
            ),
        )
        manage.publish_gathering(session, workspace_id=workspace_id, gathering_id=g.id)
        made["registrations"] += _register(session, g, people[:12])
        made["gatherings"] += 1
    return made


def _register(session: Session, g: Gathering, customer_ids: list[int]) -> int:
    for cid in customer_ids:
        registration.register(session, workspace_id=g.workspace_id, gathering_id=g.id, customer_id=cid, source="demo")
    return len(customer_ids)


def _past_meetup(
    session: Session,
    workspace_id: int,
    community_id: int | None,
    customer_ids: list[int],
    rng: random.Random,
    tz: str,
) -> int:
    """A meetup held twelve days ago: rows written as they happened (registration was open back then)."""
    g = manage.create_gathering(
        session,
        workspace_id=workspace_id,
        data=_spec(
            PAST_TITLE,
            -12,
            14,
            3,
            tz,
            format="meetup",
            description="明前龙井品鉴与手工炒茶体验。",
            agenda="14:00 签到\n14:30 炒茶体验\n15:30 品鉴\n16:30 合影",
            venue="山茶集·西湖茶室",
            city="杭州",
            address="西湖区龙井路 88 号",
            capacity=30,
            community_id=community_id,
        ),
    )
    g.status, g.published_at = "finished", g.starts_at - timedelta(days=14)
    for i, cid in enumerate(customer_ids):
        customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=cid)
        queued = g.starts_at - timedelta(days=10 - i // 4, hours=rng.randint(0, 9), minutes=rng.randint(0, 59))
        cancelled = i % 11 == 5
        reg = GatheringRegistration(
            workspace_id=workspace_id,
            gathering_id=g.id,
            customer_id=cid,
            status="cancelled" if cancelled else "confirmed",
            code=registration.new_code(),
            source="demo",
            name=customer.name,
            phone_masked=customer.phone_masked,
            queued_at=queued,
            confirmed_at=queued,
            cancelled_at=g.starts_at - timedelta(hours=6) if cancelled else None,
            cancelled_by="member" if cancelled else "",
            late_cancel=cancelled,
            created_at=queued,
            updated_at=queued,
        )
        session.add(reg)
        session.flush()
        if cancelled:
            continue
        g.seats_taken += 1
        if rng.random() < 0.8:  # about one in five confirmed people did not come
            came = g.starts_at - timedelta(minutes=rng.randint(-20, 30))
            reg.checked_in_at = came
            session.add(
                GatheringCheckin(
                    workspace_id=workspace_id,
                    gathering_id=g.id,
                    registration_id=reg.id,
                    customer_id=cid,
                    method=rng.choice(("code", "qr")),
                    created_at=came,
                )
            )
            if rng.random() < 0.75:
                session.add(
                    GatheringFeedback(
                        workspace_id=workspace_id,
                        gathering_id=g.id,
                        registration_id=reg.id,
                        customer_id=cid,
                        rating=rng.choices((5, 4, 3, 2), weights=(6, 3, 1, 0.3))[0],
                        comment=rng.choice(COMMENTS),
                        created_at=g.ends_at + timedelta(hours=rng.randint(1, 48)),
                    )
                )
    session.flush()
    return len(customer_ids)
