"""The posting gate (check_can_post), the enforcement log, operator actions, undo and appeals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.community import membership
from shequn.community.errors import (
    AppealNotAllowed,
    CommunityArchived,
    EnforcementNotFound,
    MemberMuted,
    NotAMember,
    PolicyViolation,
)
from shequn.community.models import CommunityEnforcement, CommunityMember, CommunityPostMark
from shequn.community.policies import POLICIES, Finding, PostContext, effective_policies, normalized_hash
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed


@dataclass
class Verdict:
    """The gate's answer: allowed, or the enforcement it logged (action refuse/warn/mute/remove)."""

    allowed: bool
    enforcement: CommunityEnforcement | None = None

    def error(self) -> PolicyViolation:
        """The PolicyViolation to raise for a refused verdict (details name the policy)."""
        e = self.enforcement
        assert e is not None
        return PolicyViolation(
            details={
                "policy": e.policy,
                "reason": e.reason,
                "action": e.action,
                "enforcement_id": e.id,
                "evidence": e.evidence,
            }
        )


def log_enforcement(
    session: Session,
    member: CommunityMember,
    *,
    policy: str,
    action: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
    strike: bool = False,
    at: datetime | None = None,
) -> CommunityEnforcement:
    """Write one enforcement row (the audit trail every policy action leaves)."""
    row = CommunityEnforcement(
        workspace_id=member.workspace_id,
        community_id=member.community_id,
        member_id=member.id,
        customer_id=member.customer_id,
        policy=policy,
        action=action,
        reason=reason,
        evidence=evidence or {},
        strike=strike,
        created_at=at or utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def _ladder_step(config: dict[str, Any], strikes: int) -> str:
    if strikes >= config["remove_at"]:
        return "remove"
    if strikes >= config["mute_at"]:
        return "mute"
    return "warn"


def _act(session: Session, member: CommunityMember, finding: Finding, spam: dict[str, Any]) -> CommunityEnforcement:
    """Apply a finding: a plain refusal, or one strike up the ladder (warn, mute, remove)."""
    action = "refuse"
    if finding.strike:
        member.strikes += 1
        action = _ladder_step(spam, member.strikes)
    evidence = {**finding.evidence, "strikes": member.strikes} if finding.strike else finding.evidence
    row = log_enforcement(
        session,
        member,
        policy=finding.policy,
        action=action,
        reason=finding.reason,
        evidence=evidence,
        strike=finding.strike,
    )
    if action == "mute":
        membership.mute_member(session, member=member, minutes=spam["mute_minutes"], reason=finding.reason)
    elif action == "remove":
        membership.leave_community(
            session,
            workspace_id=member.workspace_id,
            community_id=member.community_id,
            customer_id=member.customer_id,
            cause="removed",
        )
    return row


def evaluate_post(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    customer_id: int,
    text: str,
    has_media: bool = False,
) -> Verdict:
    """Run the gate without raising for policy refusals (membership problems still raise); flushes."""
    community = membership.get_community(session, workspace_id=workspace_id, community_id=community_id)
    if community.status != "active":
        raise CommunityArchived()
    member = membership.get_membership(
        session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id
    )
    if member is None or member.status not in membership.SEATED:
        raise NotAMember(details={"status": member.status if member else None})
    now = utcnow()
    if member.status == "muted":
        if member.muted_until is not None and member.muted_until > now:
            raise MemberMuted(details={"muted_until": member.muted_until.isoformat()})
        membership.unmute_member(session, member=member)  # the mute ran out
    ctx = PostContext(session, community, member, text, has_media, now, normalized_hash(text))
    configs = {kind: (enabled, config) for kind, enabled, config in effective_policies(session, community)}
    if member.role not in membership.STAFF_ROLES:  # the group's own staff are not policed
        for kind, (enabled, config) in configs.items():
            finding = POLICIES[kind].evaluate(ctx, config) if enabled else None
            if finding is not None:
                return Verdict(False, _act(session, member, finding, configs["spam"][1]))
    session.add(
        CommunityPostMark(
            workspace_id=workspace_id,
            community_id=community_id,
            customer_id=customer_id,
            text_hash=ctx.text_hash,
            created_at=now,
        )
    )
    session.flush()
    return Verdict(True)


def check_can_post(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    customer_id: int,
    text: str,
    has_media: bool = False,
) -> None:
    """The policy gate UGC calls before accepting a post, answer or review; flushes, never commits.

    Raises NotAMember (403: no membership, pending, left, removed), MemberMuted (403) or CommunityArchived
    (409) without logging; raises PolicyViolation (422, details {policy, reason, action, enforcement_id,
    evidence}) after logging an enforcement row and applying the ladder step (mute/remove).

    Contract: the enforcement and the ladder step must survive the refusal, so the caller commits before
    the error leaves the request::

        try:
            community_service.check_can_post(db, ...)
        except community_service.PolicyViolation:
            db.commit()  # keep the enforcement log; nothing else of the refused post was written yet
            raise

    Call it before writing the content. An allowed post is remembered (frequency and repeat checks), so
    call it once per post.
    """
    verdict = evaluate_post(
        session,
        workspace_id=workspace_id,
        community_id=community_id,
        customer_id=customer_id,
        text=text,
        has_media=has_media,
    )
    if not verdict.allowed:
        raise verdict.error()


def get_enforcement(session: Session, *, workspace_id: int, enforcement_id: int) -> CommunityEnforcement:
    """One enforcement, or EnforcementNotFound."""
    row = session.scalar(
        select(CommunityEnforcement).where(
            CommunityEnforcement.workspace_id == workspace_id, CommunityEnforcement.id == enforcement_id
        )
    )
    if row is None:
        raise EnforcementNotFound()
    return row


def list_enforcements(
    session: Session,
    *,
    workspace_id: int,
    community_id: int | None = None,
    customer_id: int | None = None,
    appeal_status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CommunityEnforcement]:
    """Enforcements, newest first, filtered by community, customer or appeal status."""
    q = select(CommunityEnforcement).where(CommunityEnforcement.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(CommunityEnforcement.community_id == community_id)
    if customer_id is not None:
        q = q.where(CommunityEnforcement.customer_id == customer_id)
    if appeal_status is not None:
        q = q.where(CommunityEnforcement.appeal_status == appeal_status)
    q = q.order_by(CommunityEnforcement.created_at.desc(), CommunityEnforcement.id.desc())
    return list(session.scalars(q.limit(limit).offset(offset)))


def operator_action(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    member_id: int,
    action: str,
    minutes: int = 60,
    reason: str = "",
    actor_operator_id: int | None = None,
) -> CommunityEnforcement:
    """An operator warns, mutes or removes a member by hand: logged as an enforcement (appealable)."""
    if action not in ("warn", "mute", "remove"):
        raise ValidationFailed(details=[{"field": "action", "message": "warn, mute or remove"}])
    member = membership.get_member(session, workspace_id=workspace_id, community_id=community_id, member_id=member_id)
    if member.status not in membership.SEATED:
        raise NotAMember(details={"status": member.status})
    row = log_enforcement(
        session, member, policy="operator", action=action, reason="operator", evidence={"note": reason[:500]}
    )
    if action == "mute":
        membership.mute_member(
            session, member=member, minutes=minutes, actor_operator_id=actor_operator_id, reason=reason
        )
    elif action == "remove":
        membership.leave_community(
            session,
            workspace_id=workspace_id,
            community_id=community_id,
            customer_id=member.customer_id,
            cause="removed",
            actor_operator_id=actor_operator_id,
        )
    return row


def undo_enforcement(
    session: Session, *, workspace_id: int, enforcement_id: int, actor_operator_id: int | None = None
) -> CommunityEnforcement:
    """Undo an enforcement: take its strike back, lift its mute, restore its removal; idempotent."""
    row = get_enforcement(session, workspace_id=workspace_id, enforcement_id=enforcement_id)
    if row.status == "undone":
        return row
    member = session.get(CommunityMember, row.member_id) if row.member_id else None
    if member is not None:
        if row.strike and member.strikes > 0:
            member.strikes -= 1
        if row.action == "mute" and member.status == "muted":
            membership.unmute_member(session, member=member, actor_operator_id=actor_operator_id)
        elif row.action == "remove" and member.status == "removed":
            membership.restore_member(session, member=member, actor_operator_id=actor_operator_id)
    row.status = "undone"
    row.undone_by = actor_operator_id
    row.undone_at = utcnow()
    if row.appeal_status == "pending":
        row.appeal_status = "accepted"
        row.appeal_decided_by = actor_operator_id
        row.appeal_decided_at = row.undone_at
    session.flush()
    return row


def appeal_enforcement(
    session: Session, *, workspace_id: int, customer_id: int, enforcement_id: int, text: str
) -> CommunityEnforcement:
    """A member appeals one of their own enforcements (once); it joins the console's appeal queue."""
    row = get_enforcement(session, workspace_id=workspace_id, enforcement_id=enforcement_id)
    if row.customer_id != customer_id:
        raise EnforcementNotFound()  # someone else's: do not reveal it exists
    if row.appeal_status != "none" or row.status == "undone":
        raise AppealNotAllowed(details={"appeal_status": row.appeal_status, "status": row.status})
    text = text.strip()
    if not text or len(text) > 1000:
        raise ValidationFailed(details=[{"field": "text", "message": "1 to 1000 characters"}])
    row.appeal_status = "pending"
    row.appeal_text = text
    row.appealed_at = utcnow()
    session.flush()
    return row


def decide_appeal(
    session: Session, *, workspace_id: int, enforcement_id: int, accept: bool, actor_operator_id: int | None = None
) -> CommunityEnforcement:
    """An operator accepts (undoes the enforcement) or rejects a pending appeal."""
    row = get_enforcement(session, workspace_id=workspace_id, enforcement_id=enforcement_id)
    if row.appeal_status != "pending":
        raise AppealNotAllowed(details={"appeal_status": row.appeal_status})
    if accept:
        return undo_enforcement(
            session, workspace_id=workspace_id, enforcement_id=enforcement_id, actor_operator_id=actor_operator_id
        )
    row.appeal_status = "rejected"
    row.appeal_decided_by = actor_operator_id
    row.appeal_decided_at = utcnow()
    session.flush()
    return row
