"""The fission report: reach, joins, K-factor, tree depth, top inviters, rewards and fraud flags.

K-factor (viral coefficient) over members' personal links:
    i = invitations per inviter = opens of personal links ÷ inviters
    c = conversion               = referral joins ÷ opens of personal links
    K = i × c                    = referral joins ÷ inviters
"Inviters" are members holding a personal link or having brought someone in; referral joins are
non-fraud referrals. When opens were not tracked (joins through the API or imported), c is
unknown and K falls back to referral joins ÷ inviters, which is what i × c equals anyway.
K ≥ 1 means each inviter brings in at least one new inviter-capable member: the group grows on
its own. `k_members` is the same joins divided by all members (growth per existing member).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shequn.community.fission import fraud, rewards, tree
from shequn.community.fission.models import Invite, InviteUse, Referral, Reward
from shequn.community.models import Community
from shequn.core.clock import utcnow

DAYS = 30


@dataclass
class InviterRow:
    """One inviter's results."""

    customer_id: int
    name: str
    referrals: int
    stayed: int
    fraud: int
    rewards: int


@dataclass
class FissionReport:
    """Figures for one community (or the whole workspace when community_id is None)."""

    community_id: int | None
    links: int = 0
    personal_links: int = 0
    opens: int = 0
    joins_via_invite: int = 0
    referral_joins: int = 0
    fraud_referrals: int = 0
    inviters: int = 0
    members: int = 0
    i: float = 0.0
    c: float | None = None
    k_factor: float = 0.0
    k_members: float = 0.0
    max_depth: int = 0
    depth_distribution: dict[int, int] = field(default_factory=dict)
    top_inviters: list[InviterRow] = field(default_factory=list)
    rewards: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    daily_joins: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        out = dict(self.__dict__)
        out["depth_distribution"] = {str(k): v for k, v in self.depth_distribution.items()}
        out["top_inviters"] = [r.__dict__ for r in self.top_inviters]
        out["daily_joins"] = [{"day": d, "joins": n} for d, n in self.daily_joins]
        return out


def _scoped(q: Any, column: Any, community_id: int | None) -> Any:
    return q if community_id is None else q.where(column == community_id)


def _inviters(session: Session, workspace_id: int, community_id: int | None) -> int:
    with_link = _scoped(
        select(Invite.inviter_customer_id).where(Invite.workspace_id == workspace_id, Invite.personal_key.is_not(None)),
        Invite.community_id,
        community_id,
    )
    with_referral = _scoped(
        select(Referral.inviter_customer_id).where(Referral.workspace_id == workspace_id),
        Referral.community_id,
        community_id,
    )
    return len(set(session.scalars(with_link)) | set(session.scalars(with_referral)))


def _daily(session: Session, workspace_id: int, community_id: int | None, tz_days: int = DAYS) -> list[tuple[str, int]]:
    since = utcnow() - timedelta(days=tz_days)
    q = (
        select(InviteUse.created_at)
        .join(Invite, Invite.id == InviteUse.invite_id)
        .where(InviteUse.workspace_id == workspace_id, InviteUse.created_at >= since)
    )
    counts: dict[date, int] = {}
    for (at,) in session.execute(_scoped(q, Invite.community_id, community_id)):
        counts[at.date()] = counts.get(at.date(), 0) + 1
    today = utcnow().date()
    return [
        ((today - timedelta(days=n)).isoformat(), counts.get(today - timedelta(days=n), 0))
        for n in range(tz_days - 1, -1, -1)
    ]


def top_inviters(session: Session, *, workspace_id: int, community_id: int | None, limit: int = 10) -> list[InviterRow]:
    """Inviters with the most valid referrals."""
    valid = func.sum(case((Referral.status != "fraud", 1), else_=0))
    q = _scoped(
        select(
            Referral.inviter_customer_id,
            valid,
            func.sum(case((Referral.status == "stayed", 1), else_=0)),
            func.sum(case((Referral.status == "fraud", 1), else_=0)),
        ).where(Referral.workspace_id == workspace_id),
        Referral.community_id,
        community_id,
    )
    rows = list(session.execute(q.group_by(Referral.inviter_customer_id).order_by(valid.desc()).limit(limit)))
    ids = {int(r[0]) for r in rows}
    reward_counts = (
        dict(
            session.execute(
                select(Reward.inviter_customer_id, func.count())
                .where(Reward.workspace_id == workspace_id, Reward.inviter_customer_id.in_(ids))
                .group_by(Reward.inviter_customer_id)
            ).all()
        )
        if ids
        else {}
    )
    names: dict[int, str] = {}
    communities = [community_id] if community_id is not None else _communities(session, workspace_id)
    for cid in communities:
        for k, v in tree.member_names(session, community_id=cid, customer_ids=ids - set(names)).items():
            names[k] = v
    return [
        InviterRow(
            int(cid),
            names.get(int(cid), f"#{cid}"),
            int(v or 0),
            int(s or 0),
            int(f or 0),
            int(reward_counts.get(cid, 0)),
        )
        for cid, v, s, f in rows
    ]


def _communities(session: Session, workspace_id: int) -> list[int]:
    return list(session.scalars(select(Community.id).where(Community.workspace_id == workspace_id)))


def build_report(session: Session, *, workspace_id: int, community_id: int | None = None) -> FissionReport:
    """Every figure of the fission report for one community or the whole workspace."""
    rep = FissionReport(community_id=community_id)
    links = _scoped(
        select(
            func.count(),
            func.sum(case((Invite.personal_key.is_not(None), 1), else_=0)),
            func.sum(case((Invite.personal_key.is_not(None), Invite.opens), else_=0)),
        ).where(Invite.workspace_id == workspace_id),
        Invite.community_id,
        community_id,
    )
    n, personal, opens = session.execute(links).one()
    rep.links, rep.personal_links, rep.opens = int(n or 0), int(personal or 0), int(opens or 0)
    uses = _scoped(
        select(func.count())
        .select_from(InviteUse)
        .join(Invite, Invite.id == InviteUse.invite_id)
        .where(InviteUse.workspace_id == workspace_id, InviteUse.member_status == "active"),
        Invite.community_id,
        community_id,
    )
    rep.joins_via_invite = int(session.scalar(uses) or 0)
    ref = _scoped(
        select(func.count(), func.sum(case((Referral.status == "fraud", 1), else_=0))).where(
            Referral.workspace_id == workspace_id
        ),
        Referral.community_id,
        community_id,
    )
    total, fraudulent = session.execute(ref).one()
    rep.fraud_referrals = int(fraudulent or 0)
    rep.referral_joins = int(total or 0) - rep.fraud_referrals
    rep.inviters = _inviters(session, workspace_id, community_id)
    members = _scoped(
        select(func.coalesce(func.sum(Community.members_count), 0)).where(Community.workspace_id == workspace_id),
        Community.id,
        community_id,
    )
    rep.members = int(session.scalar(members) or 0)
    if rep.inviters:
        rep.k_factor = round(rep.referral_joins / rep.inviters, 3)
        rep.i = round(rep.opens / rep.inviters, 3)
    if rep.opens:
        rep.c = round(rep.referral_joins / rep.opens, 3)
    if rep.members:
        rep.k_members = round(rep.referral_joins / rep.members, 3)
    rep.depth_distribution = tree.depth_distribution(session, workspace_id=workspace_id, community_id=community_id)
    rep.max_depth = max(rep.depth_distribution, default=0)
    rep.top_inviters = top_inviters(session, workspace_id=workspace_id, community_id=community_id)
    rep.rewards = rewards.count_rewards(session, workspace_id=workspace_id, community_id=community_id)
    rep.flags = fraud.count_flags(session, workspace_id=workspace_id, community_id=community_id)
    rep.daily_joins = _daily(session, workspace_id, community_id)
    return rep
