"""Membership rules: joining (capacity, visibility, re-joins), leaving, approval, mutes, roles, history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shequn.community.errors import (
    BadTransition,
    CommunityArchived,
    CommunityFull,
    CommunityNotFound,
    InviteRequired,
    MemberNotFound,
    MemberRemoved,
)
from shequn.community.models import Community, CommunityMember, CommunityMemberChange, CommunityPolicy
from shequn.community.policies import POLICIES
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed
from shequn.core.signals import send_on_commit

PLATFORMS = ("wecom_group", "wechat_group", "qq_group", "weibo_topic", "forum")
VISIBILITIES = ("public", "semi_public", "private")
NATURES = ("consumer", "industry", "interest")
MODES = ("self", "partner", "platform")
ROLES = ("owner", "admin", "moderator", "member")
STAFF_ROLES = frozenset({"owner", "admin", "moderator"})
STATUSES = ("pending", "active", "muted", "removed", "left")
SEATED = frozenset({"active", "muted"})  # statuses that take a seat (count against capacity)
SOURCES = ("invite", "qr", "h5", "sync", "csv", "manual")
# Sources that bring an invitation (or an operator's or the platform's say-so) with them.
INVITED_SOURCES = frozenset({"invite", "qr", "sync", "csv", "manual"})

MEMBER_JOINED = "community.member_joined"
MEMBER_LEFT = "community.member_left"


def get_community(session: Session, *, workspace_id: int, community_id: int) -> Community:
    """The community, or CommunityNotFound (404) — also for another workspace's id."""
    community = session.scalar(
        select(Community).where(Community.workspace_id == workspace_id, Community.id == community_id)
    )
    if community is None:
        raise CommunityNotFound()
    return community


def get_membership(
    session: Session, *, workspace_id: int, community_id: int, customer_id: int
) -> CommunityMember | None:
    """The customer's membership row in the community (any status), or None."""
    return session.scalar(_member_query(workspace_id, community_id, customer_id))


def get_member(session: Session, *, workspace_id: int, community_id: int, member_id: int) -> CommunityMember:
    """A member row by id, or MemberNotFound."""
    member = session.scalar(
        select(CommunityMember).where(
            CommunityMember.workspace_id == workspace_id,
            CommunityMember.community_id == community_id,
            CommunityMember.id == member_id,
        )
    )
    if member is None:
        raise MemberNotFound()
    return member


def list_communities_of(
    session: Session, *, workspace_id: int, customer_id: int
) -> list[tuple[Community, CommunityMember]]:
    """The customer's communities with their membership (pending, active and muted; newest first)."""
    rows = session.execute(
        select(Community, CommunityMember)
        .join(CommunityMember, CommunityMember.community_id == Community.id)
        .where(
            CommunityMember.workspace_id == workspace_id,
            CommunityMember.customer_id == customer_id,
            CommunityMember.status.in_(("pending", "active", "muted")),
            Community.status == "active",
        )
        .order_by(CommunityMember.created_at.desc(), CommunityMember.id.desc())
    ).all()
    return [(c, m) for c, m in rows]


def can_read(session: Session, community: Community, customer_id: int | None) -> bool:
    """Whether a (possibly anonymous) customer may read the community's posts.

    public: anyone; semi-public: rules and featured posts for anyone, the rest for members (callers show
    featured content by checking `can_read_featured`); private: members only.
    """
    if community.visibility == "public":
        return True
    if customer_id is None:
        return False
    member = get_membership(
        session, workspace_id=community.workspace_id, community_id=community.id, customer_id=customer_id
    )
    return member is not None and member.status in SEATED


def can_read_featured(community: Community) -> bool:
    """Whether outsiders may see the rules text and featured posts (public and semi-public)."""
    return community.visibility in ("public", "semi_public")


def join_requires(community: Community, *, source: str, invite_id: int | None, approved: bool) -> str:
    """What a join needs: 'nothing' (becomes active), 'approval' (pending), or 'invite' (refused)."""
    if community.visibility == "public" or approved:
        return "nothing"
    has_invite = invite_id is not None or source in INVITED_SOURCES
    if community.visibility == "semi_public":
        return "nothing" if has_invite else "invite"
    return "approval"


def _member_query(workspace_id: int, community_id: int, customer_id: int) -> Select[CommunityMember]:
    return select(CommunityMember).where(
        CommunityMember.workspace_id == workspace_id,
        CommunityMember.community_id == community_id,
        CommunityMember.customer_id == customer_id,
    )


def _locked(session: Session, query: Select[CommunityMember]) -> Select[CommunityMember]:
    """FOR UPDATE on PostgreSQL; SQLite serialises writers already."""
    return query.with_for_update() if session.get_bind().dialect.name == "postgresql" else query


def _take_seat(session: Session, community: Community) -> None:
    """Take one seat atomically (the WHERE re-checks capacity under the row lock) or raise CommunityFull."""
    result = session.execute(
        update(Community)
        .where(
            Community.id == community.id,
            (Community.capacity.is_(None)) | (Community.members_count < Community.capacity),
        )
        .values(members_count=Community.members_count + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CommunityFull(details={"capacity": community.capacity})
    session.refresh(community, ["members_count"])


def _free_seat(session: Session, community: Community) -> None:
    session.execute(
        update(Community)
        .where(Community.id == community.id, Community.members_count > 0)
        .values(members_count=Community.members_count - 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(community, ["members_count"])


def _insert_member_row(
    session: Session, community: Community, customer_id: int, source: str
) -> tuple[CommunityMember, bool]:
    """Insert the (community, customer) row if missing — race-safe — and return it locked, and whether
    this call created it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    stmt = (
        insert(CommunityMember)
        .values(
            workspace_id=community.workspace_id,
            community_id=community.id,
            customer_id=customer_id,
            role="member",
            status="pending",
            join_source=source,
            nickname="",
            strikes=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["community_id", "customer_id"])
        .returning(CommunityMember.id)
    )
    created = session.scalar(stmt) is not None
    member = session.scalar(
        _locked(session, _member_query(community.workspace_id, community.id, customer_id)).execution_options(
            populate_existing=True
        )
    )
    assert member is not None
    return member, created


def log_change(
    session: Session,
    member: CommunityMember,
    action: str,
    *,
    from_status: str,
    source: str = "",
    actor_operator_id: int | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> CommunityMemberChange:
    """Append one history row for the member."""
    change = CommunityMemberChange(
        workspace_id=member.workspace_id,
        community_id=member.community_id,
        member_id=member.id,
        customer_id=member.customer_id,
        action=action,
        from_status=from_status,
        to_status=member.status,
        source=source,
        detail={k: v for k, v in detail.items() if v is not None},
        actor_operator_id=actor_operator_id,
        created_at=at or utcnow(),
    )
    session.add(change)
    return change


def _probation_days(session: Session, community: Community) -> int:
    policy = session.scalar(
        select(CommunityPolicy).where(CommunityPolicy.community_id == community.id, CommunityPolicy.kind == "probation")
    )
    if policy is None:
        return int(POLICIES["probation"].defaults["days"])
    if not policy.enabled:
        return 0
    return int(policy.config.get("days", POLICIES["probation"].defaults["days"]) or 0)


def _signal(session: Session, name: str, member: CommunityMember) -> None:
    send_on_commit(
        session,
        name,
        member.workspace_id,
        community_id=member.community_id,
        customer_id=member.customer_id,
        member_id=member.id,
        invite_id=member.invite_id,
        inviter_customer_id=member.inviter_customer_id,
    )


def activate(
    session: Session,
    community: Community,
    member: CommunityMember,
    action: str,
    *,
    source: str = "",
    actor_operator_id: int | None = None,
    at: datetime | None = None,
    seat_taken: bool = False,
    new: bool = False,
) -> None:
    """Seat a pending/left member: take a seat, start probation, log history, fire member_joined."""
    if member.status in SEATED:
        return
    if not seat_taken:
        _take_seat(session, community)
    now = at or utcnow()
    previous = "" if new else member.status
    member.status = "active"
    member.joined_at = now
    member.left_at = None
    member.muted_until = None
    days = _probation_days(session, community)
    member.probation_until = now + timedelta(days=days) if days else None
    member.updated_at = now
    session.flush()
    log_change(session, member, action, from_status=previous, source=source, actor_operator_id=actor_operator_id, at=at)
    _signal(session, MEMBER_JOINED, member)


def join_community(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    customer_id: int,
    source: str,
    invite_id: int | None = None,
    inviter_customer_id: int | None = None,
    approved: bool = False,
    nickname: str = "",
    at: datetime | None = None,
    actor_operator_id: int | None = None,
) -> CommunityMember:
    """Join (or ask to join) a community; idempotent for a seated member.

    public → active; semi-public → active with an invitation (source invite/qr/sync/csv/manual or an
    invite_id), else InviteRequired (403); private → pending until an operator approves, unless
    approved=True. A member who left comes back (same row); a removed one gets MemberRemoved (403). A full
    community raises CommunityFull (409). Fires community.member_joined when the member becomes active.
    """
    if source not in SOURCES:
        raise ValidationFailed(details=[{"field": "source", "message": "one of " + ", ".join(SOURCES)}])
    community = get_community(session, workspace_id=workspace_id, community_id=community_id)
    if community.status != "active":
        raise CommunityArchived()
    member = session.scalar(_member_query(workspace_id, community_id, customer_id))
    if member is not None and member.status in SEATED:
        return member  # idempotent: no second history row, no second signal
    if member is not None and member.status == "removed":
        raise MemberRemoved()
    needs = join_requires(community, source=source, invite_id=invite_id, approved=approved)
    if needs == "invite":
        raise InviteRequired()
    if member is not None and member.status == "pending" and needs == "approval":
        return member  # asking twice is still one request
    if needs == "approval" and community.capacity is not None and community.members_count >= community.capacity:
        raise CommunityFull(details={"capacity": community.capacity})
    seat_taken = created = False
    if member is None:
        if needs == "nothing":  # seat first, so a full community leaves no pending row behind
            _take_seat(session, community)
            seat_taken = True
        member, created = _insert_member_row(session, community, customer_id, source)
        if member.status in SEATED or member.status == "removed":  # a concurrent join won the race
            if seat_taken:
                _free_seat(session, community)
            if member.status == "removed":
                raise MemberRemoved()
            return member
    previous = "" if created else member.status
    member.join_source = source
    member.invite_id = invite_id
    member.inviter_customer_id = inviter_customer_id
    if nickname:
        member.nickname = nickname[:64]
    if needs == "approval":
        if previous != "pending":
            member.status = "pending"
            member.updated_at = utcnow()
            session.flush()
        log_change(session, member, "requested", from_status=previous, source=source, at=at, invite_id=invite_id)
        session.flush()
        return member
    action = "rejoined" if previous == "left" else "joined"
    activate(
        session,
        community,
        member,
        action,
        source=source,
        actor_operator_id=actor_operator_id,
        at=at,
        seat_taken=seat_taken,
        new=created,
    )
    return member


def leave_community(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    customer_id: int,
    cause: str = "left",
    actor_operator_id: int | None = None,
    at: datetime | None = None,
) -> CommunityMember | None:
    """The customer leaves (cause 'left', 'sync', 'csv' …) or is removed (cause 'removed'); idempotent.

    Fires community.member_left when a seated member goes.
    """
    get_community(session, workspace_id=workspace_id, community_id=community_id)
    member = session.scalar(_locked(session, _member_query(workspace_id, community_id, customer_id)))
    if member is None:
        return None
    target = "removed" if cause == "removed" else "left"
    if member.status == target or (member.status == "removed" and target == "left"):
        return member
    community = get_community(session, workspace_id=workspace_id, community_id=community_id)
    previous = member.status
    now = at or utcnow()
    member.status = target
    member.left_at = now
    member.updated_at = now
    if previous in SEATED:
        _free_seat(session, community)
    session.flush()
    action = "removed" if target == "removed" else ("withdrew" if previous == "pending" else "left")
    log_change(session, member, action, from_status=previous, source=cause, actor_operator_id=actor_operator_id, at=at)
    if previous in SEATED:
        _signal(session, MEMBER_LEFT, member)
    session.flush()
    return member


def approve_member(
    session: Session, *, workspace_id: int, community_id: int, member_id: int, actor_operator_id: int | None = None
) -> CommunityMember:
    """An operator approves a pending join request (capacity still applies)."""
    member = get_member(session, workspace_id=workspace_id, community_id=community_id, member_id=member_id)
    if member.status != "pending":
        raise BadTransition(details={"status": member.status})
    community = get_community(session, workspace_id=workspace_id, community_id=community_id)
    activate(session, community, member, "approved", source="manual", actor_operator_id=actor_operator_id)
    return member


def reject_member(
    session: Session, *, workspace_id: int, community_id: int, member_id: int, actor_operator_id: int | None = None
) -> CommunityMember:
    """An operator turns down a pending join request (the customer may ask again later)."""
    member = get_member(session, workspace_id=workspace_id, community_id=community_id, member_id=member_id)
    if member.status != "pending":
        raise BadTransition(details={"status": member.status})
    member.status = "left"
    member.left_at = utcnow()
    member.updated_at = member.left_at
    session.flush()
    log_change(session, member, "rejected", from_status="pending", actor_operator_id=actor_operator_id)
    session.flush()
    return member


def mute_member(
    session: Session,
    *,
    member: CommunityMember,
    minutes: int,
    actor_operator_id: int | None = None,
    reason: str = "",
) -> CommunityMember:
    """Mute a seated member for minutes (history row 'muted')."""
    if member.status not in SEATED:
        raise BadTransition(details={"status": member.status})
    previous = member.status
    member.status = "muted"
    member.muted_until = utcnow() + timedelta(minutes=max(1, minutes))
    member.updated_at = utcnow()
    session.flush()
    log_change(
        session,
        member,
        "muted",
        from_status=previous,
        actor_operator_id=actor_operator_id,
        minutes=minutes,
        reason=reason,
    )
    session.flush()
    return member


def unmute_member(
    session: Session, *, member: CommunityMember, actor_operator_id: int | None = None
) -> CommunityMember:
    """Lift a mute (operator, undo, or an expired mute noticed on the next post)."""
    if member.status != "muted":
        return member
    member.status = "active"
    member.muted_until = None
    member.updated_at = utcnow()
    session.flush()
    log_change(session, member, "unmuted", from_status="muted", actor_operator_id=actor_operator_id)
    session.flush()
    return member


def restore_member(
    session: Session, *, member: CommunityMember, actor_operator_id: int | None = None
) -> CommunityMember:
    """Bring a removed member back (undo of a removal): takes a seat again and fires member_joined."""
    if member.status != "removed":
        raise BadTransition(details={"status": member.status})
    community = get_community(session, workspace_id=member.workspace_id, community_id=member.community_id)
    activate(session, community, member, "restored", source="manual", actor_operator_id=actor_operator_id)
    return member


def change_role(
    session: Session, *, member: CommunityMember, role: str, actor_operator_id: int | None = None
) -> CommunityMember:
    """Make a member owner/admin/moderator/member."""
    if role not in ROLES:
        raise ValidationFailed(details=[{"field": "role", "message": "one of " + ", ".join(ROLES)}])
    if member.role == role:
        return member
    previous = member.role
    member.role = role
    member.updated_at = utcnow()
    session.flush()
    log_change(
        session,
        member,
        "role_changed",
        from_status=member.status,
        actor_operator_id=actor_operator_id,
        role_from=previous,
        role_to=role,
    )
    session.flush()
    return member


def lift_expired_mutes(session: Session, *, workspace_id: int, now: datetime | None = None) -> int:
    """Unmute every member of the workspace whose mute has run out (history 'unmuted'); returns how many."""
    now = now or utcnow()
    expired = session.scalars(
        select(CommunityMember).where(
            CommunityMember.workspace_id == workspace_id,
            CommunityMember.status == "muted",
            CommunityMember.muted_until <= now,
        )
    ).all()
    for member in expired:
        unmute_member(session, member=member)
    return len(expired)


def workspaces_with_expired_mutes(session: Session, *, now: datetime | None = None) -> list[int]:
    """Workspaces that have a member whose mute has run out (the periodic job's work list)."""
    return list(
        session.scalars(
            select(CommunityMember.workspace_id)
            .where(CommunityMember.status == "muted", CommunityMember.muted_until <= (now or utcnow()))
            .distinct()
        )
    )
