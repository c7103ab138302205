"""The referral tree: who brought whom into a community, with depth and ancestor path, never a cycle.

Invariants (kept under the per-community lock, see _sql.lock_community):
- one referrer per (community, referee) — the first valid join wins (also a unique constraint);
- never oneself (also a check constraint) and never an ancestor of the inviter (the inviter's path);
- a customer who already brought someone in never gets a referrer afterwards, so a node's path is
  fixed before it has children and every stored path is exact — the ancestor check is then complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community.fission import fraud, rewards
from shequn.community.fission._sql import insert_ignore, lock_community
from shequn.community.fission.models import Referral
from shequn.community.models import CommunityMember
from shequn.core.clock import utcnow

TREE_LIMIT = 5_000  # nodes drawn in one tree view


@dataclass
class TreeNode:
    """A customer in the tree with the people they brought in."""

    customer_id: int
    name: str
    status: str = "root"
    depth: int = 0
    referral_id: int | None = None
    children: list[TreeNode] = field(default_factory=list)

    @property
    def size(self) -> int:
        """This node's descendants."""
        return sum(1 + c.size for c in self.children)


def get_referral(session: Session, community_id: int, referee_customer_id: int) -> Referral | None:
    """The referral that brought a customer into a community, if any."""
    return session.scalar(
        select(Referral).where(
            Referral.community_id == community_id, Referral.referee_customer_id == referee_customer_id
        )
    )


def _has_referees(session: Session, community_id: int, customer_id: int) -> bool:
    return (
        session.scalar(
            select(Referral.id)
            .where(Referral.community_id == community_id, Referral.inviter_customer_id == customer_id)
            .limit(1)
        )
        is not None
    )


def would_cycle(parent: Referral | None, referee_customer_id: int) -> bool:
    """Whether making the referee a child of the parent's referee would close a loop."""
    return parent is not None and f"/{referee_customer_id}/" in parent.path


def record_referral(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    referee_customer_id: int,
    inviter_customer_id: int,
    invite_id: int | None,
    device_id: str = "",
    now: datetime | None = None,
) -> Referral | None:
    """Record who brought the referee in; None when no edge may be drawn (self, cycle, already referred)."""
    if referee_customer_id == inviter_customer_id:
        return None
    lock_community(session, community_id)
    existing = get_referral(session, community_id, referee_customer_id)
    if existing is not None:
        return existing
    parent = get_referral(session, community_id, inviter_customer_id)
    if would_cycle(parent, referee_customer_id) or _has_referees(session, community_id, referee_customer_id):
        return None
    phone_hash = audience_service.customer_phone_hash(
        session, workspace_id=workspace_id, customer_id=referee_customer_id
    )
    path = (parent.path if parent else "/") + f"{inviter_customer_id}/"
    verdict = fraud.check_referral(
        session,
        workspace_id=workspace_id,
        community_id=community_id,
        inviter_customer_id=inviter_customer_id,
        device_id=device_id,
        phone_hash=phone_hash,
        invite_id=invite_id,
    )
    new_id = insert_ignore(
        session,
        Referral,
        {
            "workspace_id": workspace_id,
            "community_id": community_id,
            "referee_customer_id": referee_customer_id,
            "inviter_customer_id": inviter_customer_id,
            "invite_id": invite_id,
            "depth": (parent.depth + 1) if parent else 1,
            "root_customer_id": parent.root_customer_id if parent else inviter_customer_id,
            "path": path,
            "status": "fraud" if verdict else "joined",
            "fraud_reason": verdict.kind if verdict else "",
            "device_id": device_id[:64],
            "phone_hash": phone_hash,
            "created_at": now or utcnow(),
        },
        ["community_id", "referee_customer_id"],
    )
    referral = get_referral(session, community_id, referee_customer_id)
    if new_id is None or referral is None:
        return referral
    if verdict:
        fraud.flag_referral(session, referral=referral, verdict=verdict)
    fraud.check_burst(
        session, workspace_id=workspace_id, community_id=community_id, inviter_customer_id=inviter_customer_id
    )
    rewards.check_inviter(session, workspace_id=workspace_id, inviter_customer_id=inviter_customer_id)
    return referral


def mark_left(session: Session, *, workspace_id: int, community_id: int, customer_id: int) -> Referral | None:
    """Note that a referee left: their stay ends now (rewards already granted are not revoked)."""
    referral = get_referral(session, community_id, customer_id)
    if referral is None or referral.workspace_id != workspace_id or referral.left_at is not None:
        return referral
    referral.left_at = utcnow()
    if referral.status in ("joined",):
        referral.status = "left"
    session.flush()
    return referral


def list_referrals(
    session: Session,
    *,
    workspace_id: int,
    community_id: int | None = None,
    inviter_customer_id: int | None = None,
    status: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Referral]:
    """Referrals of the workspace, newest first."""
    q = select(Referral).where(Referral.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(Referral.community_id == community_id)
    if inviter_customer_id is not None:
        q = q.where(Referral.inviter_customer_id == inviter_customer_id)
    if status:
        q = q.where(Referral.status == status)
    return list(session.scalars(q.order_by(Referral.id.desc()).limit(limit).offset(offset)))


def depth_distribution(session: Session, *, workspace_id: int, community_id: int | None = None) -> dict[int, int]:
    """How many referees sit at each depth."""
    q = select(Referral.depth, func.count()).where(Referral.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(Referral.community_id == community_id)
    return {int(d): int(n) for d, n in session.execute(q.group_by(Referral.depth).order_by(Referral.depth))}


def member_names(session: Session, *, community_id: int, customer_ids: set[int]) -> dict[int, str]:
    """Display names of customers in a community: their nickname there (no per-customer lookups)."""
    if not customer_ids:
        return {}
    names: dict[int, str] = {}
    ids = sorted(customer_ids)
    for start in range(0, len(ids), 900):  # SQLite binds at most 32,766 parameters
        rows = session.execute(
            select(CommunityMember.customer_id, CommunityMember.nickname).where(
                CommunityMember.community_id == community_id, CommunityMember.customer_id.in_(ids[start : start + 900])
            )
        )
        names.update({int(cid): nick for cid, nick in rows if nick})
    return names


def build_tree(session: Session, *, workspace_id: int, community_id: int, limit: int = TREE_LIMIT) -> list[TreeNode]:
    """The community's referral forest: roots are inviters nobody brought in, biggest trees first."""
    rows = list(
        session.scalars(
            select(Referral)
            .where(Referral.workspace_id == workspace_id, Referral.community_id == community_id)
            .order_by(Referral.depth, Referral.id)
            .limit(limit)
        )
    )
    ids = {r.referee_customer_id for r in rows} | {r.inviter_customer_id for r in rows}
    names = member_names(session, community_id=community_id, customer_ids=ids)
    nodes: dict[int, TreeNode] = {}
    roots: list[TreeNode] = []

    def node(cid: int) -> TreeNode:
        if cid not in nodes:
            nodes[cid] = TreeNode(cid, names.get(cid, f"#{cid}"))
            roots.append(nodes[cid])
        return nodes[cid]

    for r in rows:  # parents come first: rows are ordered by depth
        parent = node(r.inviter_customer_id)
        child = TreeNode(r.referee_customer_id, names.get(r.referee_customer_id, f"#{r.referee_customer_id}"))
        child.status, child.depth, child.referral_id = r.status, r.depth, r.id
        nodes[r.referee_customer_id] = child
        parent.children.append(child)
    return sorted(roots, key=lambda n: -n.size)
