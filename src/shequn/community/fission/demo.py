"""Demo data for fission: invite links, a referral tree four levels deep, reward rules, rewards, one fraud flag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.community.fission import invites, rewards
from shequn.community.fission.models import Invite, Referral
from shequn.community.models import Community, CommunityMember
from shequn.core.clock import utcnow

# (inviter index, invitee index) over the workspace's customers: a tree with depths 1–4 and a second root.
EDGES = [(0, 2), (0, 3), (0, 4), (2, 5), (2, 6), (5, 7), (7, 8), (1, 9)]
FRAUD_EDGE = (9, 10)  # joins on the inviter's own phone/device: flagged
NEEDED = 11


def ensure_demo_fission(session: Session, *, workspace_id: int) -> dict[str, Any]:
    """Create the demo's invites, tree, rules and rewards once (does nothing when invites exist)."""
    if session.scalar(select(Invite.id).where(Invite.workspace_id == workspace_id).limit(1)) is not None:
        return {}
    community = session.scalar(
        select(Community)
        .where(Community.workspace_id == workspace_id, Community.status == "active")
        # An invite-only (semi-public) group is where fission shows best; private ones would leave joins pending.
        .order_by(case((Community.visibility == "semi_public", 0), (Community.visibility == "public", 1), else_=2))
        .order_by(Community.id.desc())
        .limit(1)
    )
    if community is None:
        return {}
    cid = community.id
    seated = set(session.scalars(select(CommunityMember.customer_id).where(CommunityMember.community_id == cid)))
    # Roots are members already; everyone they bring in is new to the group (so each join draws an edge).
    everyone = audience_service.all_live_customer_ids(session, workspace_id=workspace_id)
    newcomers = [c for c in everyone if c not in seated]
    members = [c for c in everyone if c in seated]
    roots = (members + newcomers)[:2]
    customers = roots + [c for c in newcomers if c not in roots][: NEEDED - 2]
    if len(customers) < NEEDED:
        return {}
    now = utcnow()
    invites.create_invite(
        session,
        workspace_id=workspace_id,
        community_id=cid,
        label="官方海报二维码",
        max_uses=500,
        expires_at=now + timedelta(days=30),
        pre_approved=True,
    )
    rewards.create_milestone(
        session,
        workspace_id=workspace_id,
        community_id=cid,
        name="邀请3位好友并留存7天",
        invitees_required=3,
        stay_days=7,
        reward_kind="coupon",
        reward_value="FRIEND20",
    )
    rewards.create_milestone(
        session,
        workspace_id=workspace_id,
        community_id=cid,
        name="裂变达人徽章",
        invitees_required=5,
        stay_days=7,
        reward_kind="badge",
        reward_value="裂变达人",
    )
    for root in (customers[0], customers[1]):
        community_service.join_community(
            session, workspace_id=workspace_id, community_id=cid, customer_id=root, source="manual", approved=True
        )
    for inviter_i, invitee_i in [*EDGES, FRAUD_EDGE]:
        inviter = customers[inviter_i]
        link = invites.personal_invite(
            session, workspace_id=workspace_id, community_id=cid, customer_id=inviter, device_id=f"demo-{inviter}"
        )
        fraudulent = (inviter_i, invitee_i) == FRAUD_EDGE
        device = f"demo-{inviter}" if fraudulent else f"demo-{customers[invitee_i]}"
        invites.join_by_invite(
            session, workspace_id=workspace_id, code=link.code, customer_id=customers[invitee_i], device_id=device
        )
    # The tree grew over the last two weeks, so stays have qualified: backdate it, then grant.
    session.execute(
        update(Referral)
        .where(Referral.workspace_id == workspace_id, Referral.community_id == cid)
        .values(created_at=now - timedelta(days=12))
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    granted = rewards.check_inviter(session, workspace_id=workspace_id, inviter_customer_id=customers[0])
    return {"community_id": cid, "referrals": len(EDGES) + 1, "rewards": len(granted)}
