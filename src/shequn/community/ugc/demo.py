"""Demo UGC for the tea brand: posts with topics, questions with answers, reactions, and product reviews from
real shoppers' words (a small fixture shipped with the package; nothing is read from shared data at run time)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.commerce import service as commerce_service
from shequn.commerce.canonical import PAID_STATUSES
from shequn.community import service as community_service
from shequn.community.ugc import common, posts
from shequn.community.ugc.models import Comment, Post, Reaction, Review, Topic
from shequn.core.clock import utcnow

FIXTURE = Path(__file__).parent / "demo_reviews.json"
POSTS = [
    "今天试了新到的 #明前龙井#，85℃ 水温，第一泡豆香很足，第三泡还有回甘。",
    "晒一下周末的茶席 #茶席分享# 盖碗+公道杯，朋友说像在杭州茶馆。",
    "#冷泡茶# 夏天必备！红茶冷泡茶包放冰箱 6 小时，比奶茶健康多了。",
    "收到了 #茶友福利# 的试饮装，白牡丹的花香很明显，准备下单一饼。",
    "老白茶煮着喝真的香，加两颗红枣 #白茶# #养生",
    "第一次用紫砂壶泡普洱熟茶，洗茶两遍，汤色红浓 #普洱#",
]
QUESTIONS = [
    ("龙井用玻璃杯还是盖碗？", "新手求教，家里两种都有，哪种泡 #明前龙井# 更好？"),
    ("普洱生茶可以放冰箱吗？", "买了一饼生普，夏天怕受潮，放冰箱可以吗？ #普洱#"),
    ("小青柑怎么泡不苦？", "每次泡小青柑都有点苦，是不是水太烫了？"),
]
ANSWERS = [
    "盖碗出汤快，适合控制浓淡；玻璃杯好看，适合观赏芽叶。",
    "不建议放冰箱，容易串味受潮，常温避光密封就好。",
    "水温 90℃ 左右，前两泡快出汤，就不会苦了。",
    "我一般先醒茶 10 秒再喝，效果不错。",
]


def ensure_demo_ugc(session: Session, *, workspace_id: int, seed: int = 7) -> dict[str, int]:
    """Create the demo posts, Q&A and reviews once (a workspace that already has posts is left alone)."""
    if session.scalar(select(func.count(Post.id)).where(Post.workspace_id == workspace_id)):
        return {"posts": 0, "reviews": 0}
    rng = random.Random(seed + workspace_id)
    now = utcnow()
    made_posts = 0
    for community in community_service.list_communities(session, workspace_id=workspace_id, status="active"):
        _, rows = community_service.list_members(
            session, workspace_id=workspace_id, community_id=community.id, status="active", limit=40
        )
        people = [(r.member.customer_id, r.member.nickname or common.mask_name(r.name)) for r in rows]
        if len(people) < 3:
            continue
        for i, text in enumerate(POSTS + [q[1] for q in QUESTIONS]):
            cid, name = rng.choice(people)
            question = i >= len(POSTS)
            post = _add_post(
                session, workspace_id, community.id, cid, name, text, now - timedelta(hours=rng.randint(2, 900))
            )
            if question:
                post.kind, post.title = "question", QUESTIONS[i - len(POSTS)][0]
            made_posts += 1
            answers = []
            for text_a in rng.sample(ANSWERS, k=2):
                aid, aname = rng.choice(people)
                answers.append(_add_comment(session, post, aid, aname, text_a, post.created_at + timedelta(hours=1)))
            session.flush()
            if question:
                post.accepted_comment_id = answers[0].id
            if i == 0:
                post.featured, post.featured_at = True, now
            for rid, _ in rng.sample(people, k=min(len(people), rng.randint(1, 8))):
                session.add(
                    Reaction(workspace_id=workspace_id, item_type="post", item_id=post.id, customer_id=rid,
                             kind=rng.choice(list(common.REACTIONS)), created_at=now)
                )  # fmt: skip
        session.flush()
    topic_ids = list(session.scalars(select(Topic.id).where(Topic.workspace_id == workspace_id)))
    posts.refresh_topic_counts(session, workspace_id=workspace_id, topic_ids=topic_ids)
    post_ids = list(session.scalars(select(Post.id).where(Post.workspace_id == workspace_id)))
    posts.refresh_comment_counts(session, post_ids=post_ids)
    reviews = _reviews(session, workspace_id, rng)
    session.commit()
    return {"posts": made_posts, "reviews": reviews}


def _add_post(session: Session, ws: int, community_id: int, cid: int, name: str, text: str, at: Any) -> Post:
    post = Post(
        workspace_id=ws, community_id=community_id, kind="post", customer_id=cid, author_name=name[:120], title="",
        body=text, hashtags=common.parse_hashtags(text), media=[], featured=False, comments_count=0,
        status="approved", moderation_reason="", created_at=at, updated_at=at,
    )  # fmt: skip
    session.add(post)
    session.flush()
    posts.link_topics(session, post)
    return post


def _add_comment(session: Session, post: Post, cid: int, name: str, text: str, at: Any) -> Comment:
    comment = Comment(
        workspace_id=post.workspace_id, post_id=post.id, customer_id=cid, author_name=name[:120], body=text,
        status="approved", moderation_reason="", created_at=at,
    )  # fmt: skip
    session.add(comment)
    return comment


def _reviews(session: Session, workspace_id: int, rng: random.Random) -> int:
    """Reviews by buyers of the products they bought (verified), texts from the fixture."""
    texts: list[dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    orders, _ = commerce_service.list_orders(
        session, workspace_id=workspace_id, flt=commerce_service.OrderFilter(), limit=400
    )
    paid = [o for o in orders if o.status in PAID_STATUSES and o.customer_id]
    lines = commerce_service.list_line_items(session, workspace_id=workspace_id, order_ids=[o.id for o in paid])
    seen: set[tuple[int, int]] = set()
    made = 0
    for order in paid:
        for li in lines.get(order.id, []):
            key = (li.product_id or 0, order.customer_id or 0)
            if not li.product_id or key in seen or made >= len(texts) * 2:
                continue
            seen.add(key)
            pick = texts[made % len(texts)]
            at = order.placed_at + timedelta(days=rng.randint(3, 12))
            session.add(
                Review(
                    workspace_id=workspace_id, product_id=li.product_id, customer_id=order.customer_id,
                    author_name=_name(session, workspace_id, order.customer_id or 0), rating=int(pick["rating"]),
                    body=pick["text"], media=[], verified_purchase=True, helpful_count=0,
                    reply="感谢您的反馈，我们会继续改进！" if int(pick["rating"]) <= 2 else "", edits=0,
                    status="approved", moderation_reason="", created_at=at, updated_at=at,
                )
            )  # fmt: skip
            made += 1
    session.flush()
    return made


def _name(session: Session, workspace_id: int, customer_id: int) -> str:
    return common.author_name(session, workspace_id=workspace_id, customer_id=customer_id, community_id=None)
