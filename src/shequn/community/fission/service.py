"""Fission service: the one module pages, the API, jobs and other domains call.

Invites and joining live in `invites`, the referral tree in `tree`, milestone rewards in `rewards`,
anti-fraud in `fraud` and the report in `report`; this module re-exports their public functions and
holds the flows that span them (reviewing a flag, reacting to membership changes, qualifying stays).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from shequn.community.fission import fraud, invites, rewards, tree
from shequn.community.fission.demo import ensure_demo_fission
from shequn.community.fission.fraud import count_flags, get_flag, get_settings, list_flags, update_settings
from shequn.community.fission.invites import (
    JoinResult,
    check_usable,
    count_invites,
    create_invite,
    disable_invite,
    find_invite,
    get_invite,
    invite_path,
    invite_url,
    join_by_invite,
    list_invites,
    mini_program_scene,
    personal_invite,
    qr_svg,
    recent_device_joiner,
    record_open,
    use_device,
)
from shequn.community.fission.models import FraudFlag, Invite, Milestone, Referral, Reward
from shequn.community.fission.report import FissionReport, build_report
from shequn.community.fission.rewards import (
    REWARD_GRANTED,
    REWARD_KINDS,
    check_inviter,
    create_milestone,
    get_milestone,
    list_milestones,
    list_rewards,
    mark_fulfilled,
    set_milestone_active,
)
from shequn.community.fission.tree import TreeNode, build_tree, get_referral, list_referrals, member_names

QUALIFY_JOB = "fission.qualify"

__all__ = [
    "QUALIFY_JOB",
    "REWARD_GRANTED",
    "REWARD_KINDS",
    "FissionReport",
    "FraudFlag",
    "Invite",
    "JoinResult",
    "Milestone",
    "Referral",
    "Reward",
    "TreeNode",
    "build_report",
    "build_tree",
    "check_inviter",
    "check_usable",
    "count_flags",
    "count_invites",
    "create_invite",
    "create_milestone",
    "disable_invite",
    "ensure_demo_fission",
    "find_invite",
    "get_flag",
    "get_invite",
    "get_milestone",
    "get_referral",
    "get_settings",
    "invite_path",
    "invite_url",
    "join_by_invite",
    "list_flags",
    "list_invites",
    "list_milestones",
    "list_referrals",
    "list_rewards",
    "mark_fulfilled",
    "member_names",
    "mini_program_scene",
    "personal_invite",
    "qr_svg",
    "recent_device_joiner",
    "record_open",
    "review_flag",
    "set_milestone_active",
    "update_settings",
    "use_device",
]


def review_flag(
    session: Session, *, workspace_id: int, flag_id: int, decision: str, operator_id: int | None = None
) -> FraudFlag:
    """Clear or confirm a flag; clearing a burst releases held rewards, clearing a referral re-counts it."""
    flag = fraud.review_flag(
        session, workspace_id=workspace_id, flag_id=flag_id, decision=decision, operator_id=operator_id
    )
    inviter = flag.inviter_customer_id
    if flag.kind == "burst" and not fraud.is_held(session, workspace_id=workspace_id, inviter_customer_id=inviter):
        rewards.release_held(
            session, workspace_id=workspace_id, inviter_customer_id=inviter, confirmed=decision == "confirm"
        )
    if decision == "clear":
        rewards.check_inviter(session, workspace_id=workspace_id, inviter_customer_id=inviter)
    return flag


def on_member_joined(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    customer_id: int,
    invite_id: int | None,
    inviter_customer_id: int | None,
) -> Referral | None:
    """A member became active (e.g. an operator approved an invited join): record the referral once."""
    if invite_id is not None:
        invites.mark_use_active(session, invite_id=invite_id, customer_id=customer_id)
    if invite_id is None or inviter_customer_id is None:
        return None
    known = get_referral(session, community_id, customer_id)
    if known is not None:  # the join by invite already recorded it in its own transaction
        return known
    device = use_device(session, invite_id=invite_id, customer_id=customer_id)
    return tree.record_referral(
        session,
        workspace_id=workspace_id,
        community_id=community_id,
        referee_customer_id=customer_id,
        inviter_customer_id=inviter_customer_id,
        invite_id=invite_id,
        device_id=device,
    )


def on_member_left(session: Session, *, workspace_id: int, community_id: int, customer_id: int) -> Referral | None:
    """A referee left or was removed: their stay ends now."""
    return tree.mark_left(session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id)


def qualify_workspace(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Check every inviter with referrals waiting to qualify; grant what they reached."""
    inviters = rewards.inviters_to_check(session, workspace_id=workspace_id)
    granted = 0
    for inviter in inviters:
        granted += len(rewards.check_inviter(session, workspace_id=workspace_id, inviter_customer_id=inviter))
    return {"inviters": len(inviters), "granted": granted}


def workspaces_to_qualify(session: Session) -> list[int]:
    """Workspaces with an active reward rule."""
    return rewards.workspaces_to_check(session)
