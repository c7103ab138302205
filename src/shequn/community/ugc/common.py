"""What every UGC flow shares: settings, moderation state, hashtags, masked names, the policy gate."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.community.ugc.errors import BadModeration
from shequn.community.ugc.models import UgcSettings
from shequn.core.clock import utcnow

STATUSES = ("pending", "approved", "rejected", "hidden")
ACTIONS = {"approve": "approved", "reject": "rejected", "hide": "hidden"}
# A small fixed set so counts stay meaningful and the UI can show each one.
REACTIONS: dict[str, str] = {"like": "👍", "love": "❤️", "haha": "😄", "wow": "😮", "thanks": "🙏"}
MAX_TAGS = 10
MAX_TAG_CHARS = 30

# Weibo style "#话题#" first (inner spaces allowed, not at either end, so "#a #b" is two plain tags),
# then "#tag" up to whitespace or punctuation.
_WEIBO_TAG = re.compile(rf"#([^#\s](?:[^#\r\n]{{0,{MAX_TAG_CHARS - 2}}}[^#\s])?)#")
_PLAIN_TAG = re.compile(rf"#([\w\u4e00-\u9fff][\w\u4e00-\u9fff\-]{{0,{MAX_TAG_CHARS - 1}}})")


def parse_hashtags(text: str) -> list[str]:
    """Topics named in a text (`#话题#` and `#tag `), normalised, first occurrence order, at most MAX_TAGS."""
    found = _WEIBO_TAG.findall(text or "")
    rest = _WEIBO_TAG.sub(" ", text or "")
    found.extend(m.group(1) for m in _PLAIN_TAG.finditer(rest))
    out: list[str] = []
    for raw in found:
        name = normalize_topic(raw)
        if name and name not in out:
            out.append(name)
    return out[:MAX_TAGS]


def normalize_topic(raw: str) -> str:
    """One spelling per topic: trimmed, inner whitespace collapsed, ASCII lower-cased."""
    name = " ".join((raw or "").split())[:MAX_TAG_CHARS]
    return "".join(ch.lower() if ch.isascii() else ch for ch in name)


def mask_name(name: str) -> str:
    """张三丰 → 张**, Alice → A**: enough for a reader to tell reviewers apart, not to identify them."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[0] + "**"


# --- settings -------------------------------------------------------------------------------------


def get_settings(session: Session, *, workspace_id: int) -> UgcSettings:
    """The workspace's UGC settings (defaults until changed; not written until changed)."""
    row = session.get(UgcSettings, workspace_id)
    if row is None:
        row = UgcSettings(
            workspace_id=workspace_id,
            review_moderation="post",
            post_moderation="post",
            community_moderation={},
            widget_origins=[],
        )
    return row


def update_settings(session: Session, *, workspace_id: int, changes: dict[str, Any]) -> UgcSettings:
    """Change UGC settings (only the keys given)."""
    row = session.get(UgcSettings, workspace_id)
    if row is None:
        row = get_settings(session, workspace_id=workspace_id)
        session.add(row)
    for key in ("post_moderation", "review_moderation"):
        if changes.get(key) is not None:
            if changes[key] not in ("pre", "post"):
                raise BadModeration(details=[{"field": key, "message": "pre or post"}])
            setattr(row, key, changes[key])
    if changes.get("community_moderation") is not None:
        row.community_moderation = {str(k): v for k, v in changes["community_moderation"].items()}
    if changes.get("widget_origins") is not None:
        row.widget_origins = [o.strip().rstrip("/") for o in changes["widget_origins"] if o.strip()]
    row.updated_at = utcnow()
    session.flush()
    return row


def initial_status(session: Session, *, workspace_id: int, community_id: int | None, review: bool = False) -> str:
    """Where a member's new item starts: approved (post-moderation) or pending (pre-moderation)."""
    settings = get_settings(session, workspace_id=workspace_id)
    if review:
        mode = settings.review_moderation
    else:
        mode = (settings.community_moderation or {}).get(str(community_id), settings.post_moderation)
    return "pending" if mode == "pre" else "approved"


def apply_decision(item: Any, *, status: str, operator_id: int | None, reason: str, now: datetime) -> bool:
    """Set an item's moderation state; False when it already had that status (nothing to count)."""
    if status not in STATUSES:
        raise BadModeration(details=[{"field": "status", "message": status}])
    if item.status == status and (item.moderation_reason or "") == reason:
        return False
    item.status, item.moderation_reason, item.moderated_by, item.moderated_at = status, reason[:255], operator_id, now
    return True


# --- members: gate, names, activity -------------------------------------------------------------


def author_name(session: Session, *, workspace_id: int, customer_id: int, community_id: int | None) -> str:
    """How a member signs their content: their group nickname, else their masked name."""
    if community_id is not None:
        membership = community_service.get_membership(
            session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id
        )
        if membership is not None and membership.nickname:
            return membership.nickname[:120]
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    return mask_name(customer.name)


def gate(
    session: Session, *, workspace_id: int, community_id: int, customer_id: int, text: str, has_media: bool
) -> None:
    """The community's policy gate (membership, mute, probation, banned words, frequency, spam).

    A refusal raises community_service.PolicyViolation after the enforcement row is flushed; the route
    commits that row before answering (see `commit_refusal` in the API modules).
    """
    community_service.check_can_post(
        session,
        workspace_id=workspace_id,
        community_id=community_id,
        customer_id=customer_id,
        text=text,
        has_media=has_media,
    )


def record(session: Session, *, workspace_id: int, community_id: int | None, customer_id: int, kind: str) -> None:
    """Count an accepted contribution: member activity in the community and a `community.<kind>` event."""
    if community_id is not None:
        community_service.record_activity(
            session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id, kind=kind
        )
        return
    # A review written outside any community still feeds segment rules on `community.review`.
    day = audience_service.epoch_day(utcnow())
    audience_service.add_activity(
        session,
        workspace_id=workspace_id,
        rows=[audience_service.ActivityRow(customer_id, "event", f"community.{kind}", day, 1, 0)],
    )


def settings_of(session: Session, *, workspace_id: int) -> dict[str, Any]:
    """The settings as plain values (for pages and the API)."""
    row = get_settings(session, workspace_id=workspace_id)
    return {
        "post_moderation": row.post_moderation,
        "review_moderation": row.review_moderation,
        "community_moderation": dict(row.community_moderation or {}),
        "widget_origins": list(row.widget_origins or []),
    }


def existing_settings(session: Session, *, workspace_id: int) -> UgcSettings | None:
    """The stored settings row, if any."""
    return session.scalar(select(UgcSettings).where(UgcSettings.workspace_id == workspace_id))


def feed_access(session: Session, *, workspace_id: int, community_id: int, customer_id: int | None) -> str:
    """What a reader may see of a community's posts: "all", or "featured" (semi-public, outsiders).

    Raises MembersOnly when they may see nothing (a private community, read by a non-member).
    """
    from shequn.community.ugc.errors import MembersOnly

    community = community_service.get_community(session, workspace_id=workspace_id, community_id=community_id)
    if community_service.can_read(session, community, customer_id):
        return "all"
    if community_service.can_read_featured(community):
        return "featured"
    raise MembersOnly()
