"""The challenge layer of the demo brand: a hashtag challenge on the demo community's busiest topic, with votes."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.ugc import service as ugc_service
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.promotions.challenges import entries, manage, voting
from shequn.promotions.challenges.models import Challenge
from shequn.promotions.challenges.schemas import ChallengeIn

DEMO_PREFIX = "晒单挑战"
VOTERS = 40


def _topic_and_community(session: Session, workspace_id: int) -> tuple[str, int] | None:
    """The UGC topic with the most members' posts inside one community, and that community (None without UGC)."""
    topics, _ = ugc_service.list_topics(session, workspace_id=workspace_id, limit=10)
    best: tuple[int, str, int] | None = None
    for topic in topics:
        posts, _ = ugc_service.list_posts(
            session,
            workspace_id=workspace_id,
            flt=ugc_service.PostFilter(topic=topic.name, status="approved"),
            limit=200,
        )
        per_community = Counter(p.community_id for p in posts if p.customer_id is not None)
        for community_id, n in per_community.items():
            if best is None or (n, topic.name, -community_id) > (best[0], best[1], -best[2]):
                best = (n, topic.name, community_id)
    return (best[1], best[2]) if best else None


def demo_step(session: Session, *, workspace_id: int, campaign_id: int | None) -> dict[str, int]:
    """Create the demo challenge once (needs the UGC demo's topics), sync its entries and cast some votes."""
    if session.scalar(
        select(Challenge.id).where(Challenge.workspace_id == workspace_id, Challenge.name.startswith(DEMO_PREFIX))
    ):
        return {"challenges": 0, "entries": 0, "votes": 0}
    found = _topic_and_community(session, workspace_id)
    if found is None:
        return {"challenges": 0, "entries": 0, "votes": 0}
    hashtag, community_id = found
    now = utcnow()
    challenge = manage.create_challenge(
        session,
        workspace_id=workspace_id,
        data=ChallengeIn(
            name=f"{DEMO_PREFIX} #{hashtag}#",
            description=f"在社群发帖带上 #{hashtag}# 即自动参赛，票数前三名各得一份新茶礼盒。",
            community_id=community_id,
            hashtag=hashtag,
            mode="vote",
            entry_starts_at=now - timedelta(days=60),
            entry_ends_at=now + timedelta(days=5),
            vote_starts_at=now - timedelta(days=2),
            vote_ends_at=now + timedelta(days=7),
            max_votes_per_member=3,
            winners_cap=3,
            prize_kind="physical",
            prize_name="明前龙井礼盒",
            prize_cost_fen=12800,
            campaign_id=campaign_id,
        ),
    )
    manage.publish_challenge(session, workspace_id=workspace_id, challenge_id=challenge.id)
    _, members = community_service.list_members(
        session, workspace_id=workspace_id, community_id=community_id, limit=VOTERS
    )
    people = [m.member.customer_id for m in members]
    found_entries = entries.sync_entries(session, challenge=challenge, now=now)
    rows, _ = entries.list_entries(session, challenge=challenge, limit=50)
    return {"challenges": 1, "entries": found_entries, "votes": _votes(session, challenge, rows, people, now)}


def _votes(session: Session, challenge: Challenge, rows: list[Any], people: list[int], now: datetime) -> int:
    """Members' votes spread over the last two days (own entries and guard refusals skipped)."""
    rng = random.Random(f"demo-challenge-{challenge.workspace_id}")
    votes = 0
    for person in people:
        for entry in rng.sample(rows, k=min(len(rows), rng.randint(1, 3))):
            try:
                with session.begin_nested():
                    voting.vote(
                        session,
                        workspace_id=challenge.workspace_id,
                        challenge_id=challenge.id,
                        entry_id=entry.id,
                        customer_id=person,
                        device_id=f"demo-{person}",
                        now=now - timedelta(hours=rng.randint(1, 40)),
                    )
                votes += 1
            except ShequnError:
                continue
    return votes
