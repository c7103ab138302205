"""Background jobs of promotions.guard: the sweep of expired counters and old flags, and the demo layer."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.db import session_scope
from shequn.core.jobs import register_periodic
from shequn.identity.service import Actor
from shequn.promotions.common import register_demo_step
from shequn.promotions.guard import limits, service
from shequn.promotions.guard.flags import purge_flags
from shequn.promotions.guard.models import GuardFlag
from shequn.promotions.guard.policy import ACTIONS

SWEEP_JOB = "guard.sweep"


def sweep() -> None:
    """Drop database counters whose window has passed and flags past the review horizon."""
    limits.sweep()
    with session_scope() as session:
        purge_flags(session)


def demo_step(session: Session, *, workspace_id: int, campaign_id: int | None = None) -> dict[str, int]:
    """The demo brand's anti-abuse layer: a day of refusals for the chart and a few blacklist entries."""
    rng = random.Random(workspace_id * 7919)
    now = utcnow().replace(second=0, microsecond=0)
    rules = [("rate_limited", "customer"), ("too_fast", "burst"), ("too_fast", "device_customers")]
    flags = 0
    for hour in range(24):
        for action in ACTIONS:
            if rng.random() < 0.55:
                continue
            reason, rule = ("guessing", "fail_customer") if action == "coupon.code" else rng.choice(rules)
            bucket = now - timedelta(hours=hour, minutes=rng.randrange(60))
            device = f"demo-{rng.getrandbits(64):016x}"
            session.add(
                GuardFlag(
                    workspace_id=workspace_id,
                    action=action,
                    reason=reason,
                    rule=rule,
                    subject=f"device:{device}" if rule != "customer" else f"customer:{rng.randrange(1, 500)}",
                    device_id=device,
                    count=rng.randint(1, 40),
                    bucket_at=bucket,
                    first_at=bucket,
                    last_at=bucket + timedelta(seconds=rng.randrange(60)),
                )
            )
            flags += 1
    actor = Actor(workspace_id=workspace_id, role="owner")
    service.add_block(session, actor, kind="phone_hash", value="13800000000", reason="号码池批量注册")
    service.add_block(
        session, actor, kind="ip", value="198.51.100.23", reason="机房 IP 刷单", until=now + timedelta(days=7)
    )
    service.add_block(session, actor, kind="device", value=f"demo-{rng.getrandbits(64):016x}", reason="模拟器")
    session.flush()
    return {"guard_flags": flags, "guard_blocks": 3}


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    register_periodic(SWEEP_JOB, sweep, hour="*", minute="*/15")
    register_demo_step("guard", demo_step)
