"""Background jobs of this capability: the demo UGC step of the community demo job."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shequn.community import tasks as community_tasks
from shequn.community.ugc.demo import ensure_demo_ugc


def _demo_step(session: Session, workspace_id: int) -> dict[str, Any]:
    return ensure_demo_ugc(session, workspace_id=workspace_id)


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
    community_tasks.register_demo_step("ugc", _demo_step)
