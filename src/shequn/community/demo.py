"""Demo communities: four realistic groups with members, history over the last months, activity and a
few enforcements, drawn from the demo brand's customers (deterministic for a workspace)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community import enforcement, membership
from shequn.community import service as community_service
from shequn.community.models import Community, CommunityMember
from shequn.core.clock import utcnow

# Fission's demo builds its referral tree from the first customers: community members start after them.
SKIP_CUSTOMERS = 20
RULES = (
    "1. 友善交流，尊重每一位茶友；\n"
    "2. 禁止发布广告、二维码、微信号和外部链接，违者先提醒、再禁言、三次移出；\n"
    "3. 新成员入群 3 天内不能发链接和图片；\n"
    "4. 讨论请围绕茶、茶器与生活，谢绝政治与谣言；\n"
    "5. 有问题请 @群管理员。"
)
COMMUNITIES: list[dict[str, Any]] = [
    {
        "name": "茶友品鉴群",
        "platform": "wecom_group",
        "visibility": "public",
        "nature": "consumer",
        "mode": "self",
        "theme": "每周新茶品鉴与冲泡交流",
        "description": "山茶集的老客户群：每周三晚上新茶试饮分享，群内专属福利。",
        "capacity": 500,
        "members": 160,
        "external_id": "wrOgQhDgAAdemo01",
    },
    {
        "name": "新品体验官",
        "platform": "wechat_group",
        "visibility": "private",
        "nature": "consumer",
        "mode": "self",
        "theme": "新品试用与反馈",
        "description": "邀请制：每月寄送新品小样，体验官写下真实评价。",
        "capacity": 60,
        "members": 45,
        "pending": 6,
    },
    {
        "name": "微博超话 #山茶集#",
        "platform": "weibo_topic",
        "visibility": "public",
        "nature": "interest",
        "mode": "platform",
        "theme": "#山茶集# 晒单与茶生活",
        "description": "品牌超话：晒单、茶席、旅行喝茶的照片都欢迎。",
        "capacity": None,
        "members": 220,
    },
    {
        "name": "茶器茶人交流圈",
        "platform": "qq_group",
        "visibility": "semi_public",
        "nature": "industry",
        "mode": "partner",
        "partner_name": "青瓷茶器",
        "theme": "茶器与茶行业交流",
        "description": "与青瓷茶器联合运营，面向茶艺师与茶馆主理人。",
        "capacity": 200,
        "members": 35,
    },
]
SPAM = ["加微信 tea_deal888 领内部价", "低价代购正品，电话 139 1234 5678", "扫码进群领红包"]
KINDS = (("post", 6), ("answer", 2), ("review", 1), ("checkin", 3))


def _populate(
    session: Session, community: Community, spec: dict[str, Any], people: list[int], rng: random.Random, scale: float
) -> int:
    """Members joining over the last 120 days, some leaving, some active; returns members created."""
    ws, cid = community.workspace_id, community.id
    now = utcnow()
    chosen = rng.sample(people, min(max(3, int(spec["members"] * scale)), len(people)))
    activity: list[community_service.ActivityIn] = []
    source = "sync" if community.platform in ("wecom_group", "qq_group") else "h5"
    for i, customer_id in enumerate(chosen):
        joined = now - timedelta(days=rng.uniform(1, 120), minutes=rng.randint(0, 600))
        member = membership.join_community(
            session,
            workspace_id=ws,
            community_id=cid,
            customer_id=customer_id,
            source="invite" if community.visibility != "public" else source,
            approved=True,
            nickname=f"茶友{customer_id % 10000:04d}",
            at=joined,
        )
        if i < 2:
            membership.change_role(session, member=member, role="admin" if i == 0 else "moderator")
            continue
        if rng.random() < 0.12:  # churn: a few leave some days later
            left = joined + (now - joined) * rng.uniform(0.2, 0.9)
            membership.leave_community(session, workspace_id=ws, community_id=cid, customer_id=customer_id, at=left)
            continue
        if rng.random() < 0.55:  # the active core posts, answers, reviews and checks in
            for kind, weight in KINDS:
                for _ in range(rng.randint(0, weight)):
                    at = now - timedelta(days=rng.uniform(0, min(29, (now - joined).days)))
                    activity.append(community_service.ActivityIn(cid, customer_id, kind, at))
    community_service.record_activities(session, workspace_id=ws, items=activity)
    pending = max(1, int(spec["pending"] * scale)) if spec.get("pending") else 0
    taken = set(chosen)
    for customer_id in [p for p in people if p not in taken][:pending]:
        membership.join_community(session, workspace_id=ws, community_id=cid, customer_id=customer_id, source="h5")
    return len(chosen)


def _enforce(session: Session, community: Community, rng: random.Random) -> int:
    """A few spam attempts through the real gate, so the enforcement log and appeal queue have content."""
    ws = community.workspace_id
    members = list(
        session.scalars(
            select(CommunityMember).where(
                CommunityMember.community_id == community.id,
                CommunityMember.status == "active",
                CommunityMember.role == "member",
            )
        )
    )
    if len(members) < 3:
        return 0
    made = 0
    spammer, other = rng.sample(members, 2)
    for text in SPAM[:2]:
        verdict = enforcement.evaluate_post(
            session, workspace_id=ws, community_id=community.id, customer_id=spammer.customer_id, text=text
        )
        made += 0 if verdict.allowed else 1
    verdict = enforcement.evaluate_post(
        session, workspace_id=ws, community_id=community.id, customer_id=other.customer_id, text=SPAM[2]
    )
    if verdict.enforcement is not None:
        made += 1
        enforcement.appeal_enforcement(
            session,
            workspace_id=ws,
            customer_id=other.customer_id,
            enforcement_id=verdict.enforcement.id,
            text="我是想分享活动二维码给大家，不是广告，麻烦管理员看一下。",
        )
    return made


def ensure_demo_communities(session: Session, *, workspace_id: int, scale: float = 1.0) -> dict[str, int]:
    """Create the demo communities that are missing (safe to run again); returns what was made."""
    have = set(session.scalars(select(Community.name).where(Community.workspace_id == workspace_id)))
    people = audience_service.all_live_customer_ids(session, workspace_id=workspace_id)[SKIP_CUSTOMERS:]
    made = {"communities": 0, "members": 0, "enforcements": 0}
    if not people:
        return made
    rng = random.Random(workspace_id * 7919)
    for spec in COMMUNITIES:
        if spec["name"] in have:
            continue
        values = {k: v for k, v in spec.items() if k not in ("members", "pending")}
        community = community_service.create_community(session, workspace_id=workspace_id, rules_text=RULES, **values)
        if community.name == "茶友品鉴群":
            community_service.update_policy(
                session,
                workspace_id=workspace_id,
                community_id=community.id,
                kind="banned_words",
                enabled=True,
                config={"words": ["假货", "代购", "刷单"]},
            )
        made["communities"] += 1
        made["members"] += _populate(session, community, spec, people, rng, scale)
        if community.name == "茶友品鉴群":
            made["enforcements"] += _enforce(session, community, rng)
    session.flush()
    return made
