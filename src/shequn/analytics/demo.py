"""Demo tracked events for the demo brand: page views by category, shares, live streams, coupons, check-ins.

Deterministic for a seed and relative to the day it runs (so "the last 30 days" is never empty);
event ids are derived from the seed and customer, so running it again adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from random import Random

from shequn.analytics.schemas import EventIn

CATEGORIES = ("绿茶", "红茶", "乌龙茶", "普洱", "白茶", "花草茶", "茶具", "礼盒")
CATEGORY_WEIGHTS = (24, 17, 15, 12, 10, 10, 6, 6)
ENGAGED_SHARE = 0.45  # of customers who leave any tracked event
WINDOW_DAYS = 60


def demo_events(customer_ids: list[int], *, seed: int, now: datetime) -> Iterator[EventIn]:
    """Events of the engaged share of these customers over the last WINDOW_DAYS days."""
    for cid in customer_ids:
        rng = Random(seed * 1_000_003 + cid)
        if rng.random() >= ENGAGED_SHARE:
            continue
        fan = rng.random() < 0.15  # a few very active members do most of the sharing and checking in
        favourite = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        plan = [
            ("page_view", rng.randint(1, 8)),
            ("share", rng.randint(2, 6) if fan else rng.choice((0, 0, 0, 1))),
            ("live_watch", rng.choice((0, 0, 1, 2))),
            ("coupon_claim", rng.choice((0, 0, 0, 1))),
            ("community.checkin", rng.randint(3, 12) if fan else 0),
        ]
        n = 0
        for name, times in plan:
            for _ in range(times):
                n += 1
                at = now - timedelta(days=rng.uniform(0, WINDOW_DAYS))
                props = {"category": favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)}
                yield EventIn(
                    event_id=f"demo-{seed}-{cid}-{n}",
                    name=name,
                    customer_id=cid,
                    occurred_at=at,
                    props=props if name == "page_view" else {},
                )
