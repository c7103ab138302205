"""Milestone rewards: N invitees who each stayed D days → one reward per (milestone, inviter), exactly once.

An invitee counts for a milestone when their referral is not fraud and they stayed at least D days:
still a member D days after joining, or left only after D days. Leaving after the reward was granted
does not revoke it (the reward paid for a stay that happened); leaving before D days means it never
counted. Stay qualification runs in a periodic job (and at join time for D = 0). The reward row is
inserted with ON CONFLICT DO NOTHING on (milestone_id, inviter_customer_id), so concurrent joins or
overlapping job runs grant it once; only the inserting transaction fires `fission.reward_granted`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.fission import fraud
from shequn.community.fission._sql import insert_ignore
from shequn.community.fission.errors import MilestoneNotFound
from shequn.community.fission.models import Invite, Milestone, Referral, Reward
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed
from shequn.core.signals import send_on_commit

REWARD_KINDS = ("points", "coupon", "badge")
DEFAULT_STAY_DAYS = 7
REWARD_GRANTED = "fission.reward_granted"
SEATED = ("active", "muted")


def create_milestone(
    session: Session,
    *,
    workspace_id: int,
    name: str,
    invitees_required: int,
    stay_days: int,
    reward_kind: str,
    reward_value: str,
    community_id: int | None = None,
    invite_id: int | None = None,
) -> Milestone:
    """A reward rule for a community (or all communities, or one invite campaign)."""
    errors = []
    if not name.strip():
        errors.append({"field": "name", "message": "required"})
    if not 1 <= invitees_required <= 10_000:
        errors.append({"field": "invitees_required", "message": "1–10000"})
    if not 0 <= stay_days <= 365:
        errors.append({"field": "stay_days", "message": "0–365"})
    if reward_kind not in REWARD_KINDS:
        errors.append({"field": "reward_kind", "message": "one of " + ", ".join(REWARD_KINDS)})
    elif reward_kind == "points" and not (reward_value.isdigit() and 0 < int(reward_value) <= 10**9):
        errors.append({"field": "reward_value", "message": "a positive number of points"})
    elif not reward_value.strip():
        errors.append({"field": "reward_value", "message": "required"})
    if errors:
        raise ValidationFailed(details=errors)
    if community_id is not None:
        community_service.get_community(session, workspace_id=workspace_id, community_id=community_id)
    if invite_id is not None:
        invite = session.scalar(select(Invite).where(Invite.workspace_id == workspace_id, Invite.id == invite_id))
        if invite is None:
            raise ValidationFailed(details=[{"field": "invite_id", "message": "no such invite"}])
        community_id = invite.community_id
    milestone = Milestone(
        workspace_id=workspace_id,
        community_id=community_id,
        invite_id=invite_id,
        name=name.strip()[:100],
        invitees_required=invitees_required,
        stay_days=stay_days,
        reward_kind=reward_kind,
        reward_value=reward_value.strip()[:64],
        active=True,
    )
    session.add(milestone)
    session.flush()
    return milestone


def get_milestone(session: Session, *, workspace_id: int, milestone_id: int) -> Milestone:
    """One reward rule of the workspace."""
    m = session.scalar(select(Milestone).where(Milestone.workspace_id == workspace_id, Milestone.id == milestone_id))
    if m is None:
        raise MilestoneNotFound()
    return m


def set_milestone_active(session: Session, *, workspace_id: int, milestone_id: int, active: bool) -> Milestone:
    """Pause or resume a reward rule (granted rewards stay)."""
    m = get_milestone(session, workspace_id=workspace_id, milestone_id=milestone_id)
    m.active = active
    session.flush()
    return m


def list_milestones(session: Session, *, workspace_id: int, community_id: int | None = None) -> list[Milestone]:
    """Reward rules, newest first."""
    q = select(Milestone).where(Milestone.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where((Milestone.community_id == community_id) | Milestone.community_id.is_(None))
    return list(session.scalars(q.order_by(Milestone.id.desc())))


def stayed(referral: Referral, days: int, now: datetime) -> bool:
    """Whether the invitee stayed at least `days` days (until now or until they left)."""
    end = referral.left_at or now
    return referral.status != "fraud" and end - referral.created_at >= timedelta(days=days)


def _counts(referral: Referral, milestone: Milestone) -> bool:
    if milestone.invite_id is not None:
        return referral.invite_id == milestone.invite_id
    return milestone.community_id is None or referral.community_id == milestone.community_id


def _refresh_left(session: Session, referrals: list[Referral]) -> None:
    """Close the stay of referees whose membership ended without a member_left signal reaching us."""
    for r in referrals:
        if r.left_at is not None or r.status == "fraud":
            continue
        member = community_service.get_membership(
            session, workspace_id=r.workspace_id, community_id=r.community_id, customer_id=r.referee_customer_id
        )
        if member is None or member.status not in SEATED:
            r.left_at = (member.left_at if member is not None else None) or utcnow()
            r.status = "left"


def check_inviter(
    session: Session, *, workspace_id: int, inviter_customer_id: int, now: datetime | None = None
) -> list[Reward]:
    """Grant every milestone the inviter has reached and not yet received; returns the new rewards."""
    now = now or utcnow()
    milestones = list(
        session.scalars(select(Milestone).where(Milestone.workspace_id == workspace_id, Milestone.active))
    )
    if not milestones:
        return []
    referrals = list(
        session.scalars(
            select(Referral).where(
                Referral.workspace_id == workspace_id,
                Referral.inviter_customer_id == inviter_customer_id,
                Referral.status != "fraud",
            )
        )
    )
    _refresh_left(session, referrals)
    held = fraud.is_held(session, workspace_id=workspace_id, inviter_customer_id=inviter_customer_id)
    granted = []
    for m in milestones:
        qualifying = [r.id for r in referrals if _counts(r, m) and stayed(r, m.stay_days, now)]
        if len(qualifying) < m.invitees_required:
            continue
        new_id = insert_ignore(
            session,
            Reward,
            {
                "workspace_id": workspace_id,
                "milestone_id": m.id,
                "inviter_customer_id": inviter_customer_id,
                "community_id": m.community_id,
                "reward_kind": m.reward_kind,
                "reward_value": m.reward_value,
                "status": "held" if held else "pending_fulfilment",
                "qualifying": sorted(qualifying)[: m.invitees_required],
                "created_at": now,
                "updated_at": now,
            },
            ["milestone_id", "inviter_customer_id"],
        )
        if new_id is None:
            continue  # already granted (by this run, an earlier one, or a concurrent transaction)
        reward = session.get(Reward, new_id)
        assert reward is not None
        if not held:
            _announce(session, reward)
        granted.append(reward)
    for r in referrals:
        if r.status == "joined" and stayed(r, max(m.stay_days for m in milestones), now):
            r.status, r.qualified_at = "stayed", now
    session.flush()
    return granted


def _announce(session: Session, reward: Reward) -> None:
    send_on_commit(
        session,
        REWARD_GRANTED,
        reward.workspace_id,
        reward_id=reward.id,
        milestone_id=reward.milestone_id,
        customer_id=reward.inviter_customer_id,
        community_id=reward.community_id,
        reward_kind=reward.reward_kind,
        reward_value=reward.reward_value,
    )


def release_held(session: Session, *, workspace_id: int, inviter_customer_id: int, confirmed: bool) -> int:
    """After a burst review: held rewards are granted (cleared) or cancelled (fraud confirmed)."""
    held = list(
        session.scalars(
            select(Reward).where(
                Reward.workspace_id == workspace_id,
                Reward.inviter_customer_id == inviter_customer_id,
                Reward.status == "held",
            )
        )
    )
    for reward in held:
        reward.status = "cancelled" if confirmed else "pending_fulfilment"
        reward.updated_at = utcnow()
        if not confirmed:
            _announce(session, reward)
    session.flush()
    return len(held)


def mark_fulfilled(session: Session, *, workspace_id: int, reward_id: int) -> bool:
    """Loyalty/promotions report a reward as delivered."""
    result = session.execute(
        update(Reward)
        .where(Reward.workspace_id == workspace_id, Reward.id == reward_id, Reward.status == "pending_fulfilment")
        .values(status="fulfilled", updated_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_rewards(
    session: Session, *, workspace_id: int, status: str | None = None, community_id: int | None = None, limit: int = 200
) -> list[Reward]:
    """Rewards, newest first."""
    q = select(Reward).where(Reward.workspace_id == workspace_id)
    if status:
        q = q.where(Reward.status == status)
    if community_id is not None:
        q = q.where(Reward.community_id == community_id)
    return list(session.scalars(q.order_by(Reward.id.desc()).limit(limit)))


def count_rewards(session: Session, *, workspace_id: int, community_id: int | None = None) -> dict[str, int]:
    """Rewards by status."""
    q = select(Reward.status, func.count()).where(Reward.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(Reward.community_id == community_id)
    return {s: int(n) for s, n in session.execute(q.group_by(Reward.status))}


def inviters_to_check(session: Session, *, workspace_id: int, limit: int = 10_000) -> list[int]:
    """Inviters with referrals still waiting to qualify (status joined)."""
    return list(
        session.scalars(
            select(Referral.inviter_customer_id)
            .where(Referral.workspace_id == workspace_id, Referral.status == "joined")
            .distinct()
            .limit(limit)
        )
    )


def workspaces_to_check(session: Session) -> list[int]:
    """Workspaces with an active milestone."""
    return list(session.scalars(select(Milestone.workspace_id).where(Milestone.active).distinct()))
