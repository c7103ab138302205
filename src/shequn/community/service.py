"""Community services: communities, members and history, activity; the facade other domains call.

Membership rules live in community.membership, the posting gate and enforcements in
community.enforcement, policy variants in community.policies, sync in community.sync; this module
re-exports what other packages use, so they import only `community.service`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.audience.errors import CustomerNotFound
from shequn.community.activity import ActivityIn, record_activities, record_activity
from shequn.community.enforcement import (
    Verdict,
    appeal_enforcement,
    check_can_post,
    decide_appeal,
    evaluate_post,
    get_enforcement,
    list_enforcements,
    operator_action,
    undo_enforcement,
)
from shequn.community.errors import (
    AppealNotAllowed,
    CommunityFull,
    CommunityNameTaken,
    CommunityNotFound,
    EnforcementNotFound,
    InviteRequired,
    MemberMuted,
    MemberRemoved,
    NotAMember,
    PolicyViolation,
)
from shequn.community.health import Health, community_health
from shequn.community.membership import (
    MEMBER_JOINED,
    MEMBER_LEFT,
    MODES,
    NATURES,
    PLATFORMS,
    ROLES,
    SEATED,
    SOURCES,
    STATUSES,
    VISIBILITIES,
    approve_member,
    can_read,
    can_read_featured,
    change_role,
    get_community,
    get_member,
    get_membership,
    join_community,
    join_requires,
    leave_community,
    lift_expired_mutes,
    list_communities_of,
    mute_member,
    reject_member,
    restore_member,
    unmute_member,
)
from shequn.community.models import (
    Community,
    CommunityMember,
    CommunityMemberChange,
    CommunityPolicy,
)
from shequn.community.policies import POLICIES, Finding, Policy, PostContext, effective_policies, register_policy
from shequn.community.sync import SyncEvent, SyncPerson, SyncReport, apply_events, import_csv
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed

__all__ = [
    "MEMBER_JOINED",
    "MEMBER_LEFT",
    "MODES",
    "NATURES",
    "PLATFORMS",
    "POLICIES",
    "ROLES",
    "SEATED",
    "SOURCES",
    "STATUSES",
    "VISIBILITIES",
    "ActivityIn",
    "AppealNotAllowed",
    "Community",
    "CommunityFull",
    "CommunityMember",
    "CommunityNotFound",
    "EnforcementNotFound",
    "Finding",
    "Health",
    "InviteRequired",
    "MemberMuted",
    "MemberRemoved",
    "NotAMember",
    "Policy",
    "PolicyViolation",
    "PostContext",
    "SyncEvent",
    "SyncPerson",
    "SyncReport",
    "ValidationFailed",
    "Verdict",
    "appeal_enforcement",
    "apply_events",
    "approve_member",
    "can_read",
    "can_read_featured",
    "change_role",
    "check_can_post",
    "community_health",
    "decide_appeal",
    "effective_policies",
    "evaluate_post",
    "get_community",
    "get_enforcement",
    "get_member",
    "get_membership",
    "import_csv",
    "join_community",
    "join_requires",
    "leave_community",
    "lift_expired_mutes",
    "list_communities_of",
    "list_enforcements",
    "mute_member",
    "operator_action",
    "record_activities",
    "record_activity",
    "register_policy",
    "reject_member",
    "restore_member",
    "undo_enforcement",
    "unmute_member",
]

# Signal: the demo communities and every community demo step are in (promotions adds its demo layer then).
DEMO_DONE = "community.demo_done"

EDITABLE = (
    "name",
    "platform",
    "visibility",
    "nature",
    "mode",
    "partner_name",
    "theme",
    "description",
    "rules_text",
    "capacity",
    "owner_operator_id",
    "external_id",
    "status",
)
CHOICES: dict[str, tuple[str, ...]] = {
    "platform": PLATFORMS,
    "visibility": VISIBILITIES,
    "nature": NATURES,
    "mode": MODES,
    "status": ("active", "archived"),
}


def _check_fields(values: dict[str, Any]) -> None:
    errors = []
    for key, allowed in CHOICES.items():
        if key in values and values[key] not in allowed:
            errors.append({"field": key, "message": "one of " + ", ".join(allowed)})
    if "name" in values and not str(values["name"] or "").strip():
        errors.append({"field": "name", "message": "required"})
    cap = values.get("capacity")
    if cap is not None and (not isinstance(cap, int) or cap < 1):
        errors.append({"field": "capacity", "message": "a positive number or empty"})
    if values.get("mode") == "partner" and not str(values.get("partner_name") or "").strip():
        errors.append({"field": "partner_name", "message": "name the partner brand of a co-operated community"})
    if errors:
        raise ValidationFailed(details=errors)


def _check_name(session: Session, workspace_id: int, name: str, exclude_id: int | None = None) -> None:
    q = select(Community.id).where(Community.workspace_id == workspace_id, Community.name == name)
    if exclude_id is not None:
        q = q.where(Community.id != exclude_id)
    if session.scalar(q) is not None:
        raise CommunityNameTaken(details=[{"field": "name", "message": "a community has this name"}])


def create_community(session: Session, *, workspace_id: int, **values: Any) -> Community:
    """Create a community (name and platform required; the rest defaults: public, consumer, self-run)."""
    values = {k: v for k, v in values.items() if k in EDITABLE}
    values.setdefault("platform", "wechat_group")
    values["name"] = str(values.get("name") or "").strip()[:100]
    _check_fields(values)
    _check_name(session, workspace_id, values["name"])
    community = Community(workspace_id=workspace_id, members_count=0, **values)
    session.add(community)
    session.flush()
    return community


def update_community(session: Session, *, workspace_id: int, community_id: int, **values: Any) -> Community:
    """Change settings (only the fields given); capacity may not drop below the seated members."""
    community = get_community(session, workspace_id=workspace_id, community_id=community_id)
    values = {k: v for k, v in values.items() if k in EDITABLE}
    if "name" in values:
        values["name"] = str(values["name"] or "").strip()[:100]
    merged = {**{k: getattr(community, k) for k in EDITABLE}, **values}
    _check_fields(merged)
    if "name" in values:
        _check_name(session, workspace_id, values["name"], exclude_id=community.id)
    cap = merged["capacity"]
    if cap is not None and cap < community.members_count:
        raise ValidationFailed(details=[{"field": "capacity", "message": "below the current number of members"}])
    for key, value in values.items():
        setattr(community, key, value)
    community.updated_at = utcnow()
    session.flush()
    return community


def list_communities(
    session: Session, *, workspace_id: int, q: str = "", platform: str | None = None, status: str | None = None
) -> list[Community]:
    """The workspace's communities, newest first, filtered by name/theme text, platform and status."""
    query = select(Community).where(Community.workspace_id == workspace_id)
    if q:
        like = f"%{q}%"
        query = query.where(or_(Community.name.ilike(like), Community.theme.ilike(like)))
    if platform:
        query = query.where(Community.platform == platform)
    if status:
        query = query.where(Community.status == status)
    return list(session.scalars(query.order_by(Community.id.desc())))


@dataclass
class MemberRow:
    """A member with the customer's display fields (name, masked phone)."""

    member: CommunityMember
    name: str
    phone_masked: str


def list_members(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    status: str | None = None,
    role: str | None = None,
    q: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[MemberRow]]:
    """Members of a community (total and one page), filtered by status, role and nickname/name text."""
    get_community(session, workspace_id=workspace_id, community_id=community_id)
    query = select(CommunityMember).where(
        CommunityMember.workspace_id == workspace_id, CommunityMember.community_id == community_id
    )
    if status:
        query = query.where(CommunityMember.status == status)
    if role:
        query = query.where(CommunityMember.role == role)
    if q:
        found, _ = audience_service.list_customers(
            session, workspace_id=workspace_id, flt=audience_service.CustomerFilter(q=q), limit=500
        )
        ids = [c.id for c in found]
        like = f"%{q}%"
        query = query.where(or_(CommunityMember.nickname.ilike(like), CommunityMember.customer_id.in_(ids)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    members = list(session.scalars(query.order_by(CommunityMember.id.desc()).limit(limit).offset(offset)))
    return int(total), [MemberRow(m, *_display(session, workspace_id, m.customer_id)) for m in members]


def _display(session: Session, workspace_id: int, customer_id: int) -> tuple[str, str]:
    """(name, masked phone) of a customer, empty when the customer is gone."""
    try:
        c = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    except CustomerNotFound:
        return "", ""
    return c.name, c.phone_masked


def list_member_history(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    member_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CommunityMemberChange]:
    """Membership changes of a community (or one member), newest first."""
    get_community(session, workspace_id=workspace_id, community_id=community_id)
    q = select(CommunityMemberChange).where(
        CommunityMemberChange.workspace_id == workspace_id, CommunityMemberChange.community_id == community_id
    )
    if member_id is not None:
        q = q.where(CommunityMemberChange.member_id == member_id)
    q = q.order_by(CommunityMemberChange.created_at.desc(), CommunityMemberChange.id.desc())
    return list(session.scalars(q.limit(limit).offset(offset)))


def count_joins(session: Session, *, workspace_id: int, community_id: int, since: datetime, until: datetime) -> int:
    """Distinct customers seated in the community (joined, rejoined or approved) within [since, until)."""
    return int(
        session.scalar(
            select(func.count(func.distinct(CommunityMemberChange.customer_id))).where(
                CommunityMemberChange.workspace_id == workspace_id,
                CommunityMemberChange.community_id == community_id,
                CommunityMemberChange.action.in_(("joined", "rejoined", "approved")),
                CommunityMemberChange.to_status == "active",
                CommunityMemberChange.created_at >= since,
                CommunityMemberChange.created_at < until,
            )
        )
        or 0
    )


def update_policy(
    session: Session, *, workspace_id: int, community_id: int, kind: str, enabled: bool, config: dict[str, Any]
) -> CommunityPolicy:
    """Switch a policy on/off and set its config (validated by the policy; missing keys take defaults)."""
    community = get_community(session, workspace_id=workspace_id, community_id=community_id)
    policy = POLICIES.get(kind)
    if policy is None:
        raise ValidationFailed(details=[{"field": "kind", "message": "one of " + ", ".join(POLICIES)}])
    clean = policy.check_config(config)
    row = session.scalar(
        select(CommunityPolicy).where(CommunityPolicy.community_id == community.id, CommunityPolicy.kind == kind)
    )
    if row is None:
        row = CommunityPolicy(workspace_id=workspace_id, community_id=community.id, kind=kind)
        session.add(row)
    row.enabled = enabled
    row.config = clean
    row.updated_at = utcnow()
    session.flush()
    return row


def member_row(session: Session, member: CommunityMember) -> MemberRow:
    """The member with the customer's display fields."""
    return MemberRow(member, *_display(session, member.workspace_id, member.customer_id))


def add_member(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    customer_id: int,
    nickname: str = "",
    role: str = "member",
    actor_operator_id: int | None = None,
) -> CommunityMember:
    """An operator adds a customer of the workspace (active at once; capacity and removals still apply)."""
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    member = join_community(
        session,
        workspace_id=workspace_id,
        community_id=community_id,
        customer_id=customer.id,
        source="manual",
        approved=True,
        nickname=nickname,
        actor_operator_id=actor_operator_id,
    )
    if role != member.role:
        change_role(session, member=member, role=role, actor_operator_id=actor_operator_id)
    return member


def member_action(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    member_id: int,
    action: str,
    actor_operator_id: int | None = None,
    minutes: int = 60,
    reason: str = "",
    role: str = "member",
) -> CommunityMember:
    """An operator's action on a member: approve, reject, mute, unmute, remove, restore or role."""
    ids = {"workspace_id": workspace_id, "community_id": community_id, "member_id": member_id}
    if action == "approve":
        return approve_member(session, **ids, actor_operator_id=actor_operator_id)
    if action == "reject":
        return reject_member(session, **ids, actor_operator_id=actor_operator_id)
    if action in ("mute", "remove"):
        operator_action(
            session, **ids, action=action, minutes=minutes, reason=reason, actor_operator_id=actor_operator_id
        )
        return get_member(session, **ids)
    member = get_member(session, **ids)
    if action == "unmute":
        return unmute_member(session, member=member, actor_operator_id=actor_operator_id)
    if action == "restore":
        return restore_member(session, member=member, actor_operator_id=actor_operator_id)
    if action == "role":
        return change_role(session, member=member, role=role, actor_operator_id=actor_operator_id)
    raise ValidationFailed(details=[{"field": "action", "message": "unknown action"}])
