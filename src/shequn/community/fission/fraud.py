"""Anti-fraud: same device or phone as the inviter (or as another of their invitees), join bursts, review.

A suspicious referral is stored with status `fraud` and never counts toward a milestone until an
operator clears it. A burst (more than `burst_joins` joins on one inviter's links within
`burst_minutes`) flags the inviter: their rewards are held until the flag is reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community.fission.errors import FraudFlagNotFound, FraudFlagReviewed
from shequn.community.fission.models import FissionSettings, FraudFlag, Invite, InviteUse, Referral
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed

DEFAULT_BURST_JOINS = 10
DEFAULT_BURST_MINUTES = 10
KINDS = ("same_device", "same_phone", "burst")


@dataclass(frozen=True)
class Verdict:
    """Why a referral looks fraudulent."""

    kind: str
    details: dict[str, Any]


def get_settings(session: Session, *, workspace_id: int) -> FissionSettings:
    """The workspace's thresholds (defaults when never saved; not added to the session)."""
    row = session.get(FissionSettings, workspace_id)
    return row or FissionSettings(
        workspace_id=workspace_id, burst_joins=DEFAULT_BURST_JOINS, burst_minutes=DEFAULT_BURST_MINUTES
    )


def update_settings(session: Session, *, workspace_id: int, burst_joins: int, burst_minutes: int) -> FissionSettings:
    """Change the burst thresholds."""
    if not 1 <= burst_joins <= 10_000 or not 1 <= burst_minutes <= 24 * 60:
        raise ValidationFailed(details=[{"field": "burst_joins", "message": "1–10000 joins within 1–1440 minutes"}])
    row = session.get(FissionSettings, workspace_id)
    if row is None:
        row = FissionSettings(workspace_id=workspace_id)
        session.add(row)
    row.burst_joins, row.burst_minutes = burst_joins, burst_minutes
    session.flush()
    return row


def _inviter_devices(session: Session, workspace_id: int, community_id: int, inviter: int) -> set[str]:
    """Devices the inviter is known to use: member sessions, their invites' creator device, their own joins."""
    devices = set(
        session.scalars(
            select(Invite.creator_device_id).where(
                Invite.workspace_id == workspace_id, Invite.inviter_customer_id == inviter
            )
        )
    )
    devices |= set(
        session.scalars(
            select(InviteUse.device_id).where(InviteUse.workspace_id == workspace_id, InviteUse.customer_id == inviter)
        )
    )
    devices |= audience_service.customer_device_ids(session, workspace_id=workspace_id, customer_id=inviter)
    return {d for d in devices if d}


def check_referral(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    inviter_customer_id: int,
    device_id: str,
    phone_hash: str | None,
    invite_id: int | None,
) -> Verdict | None:
    """A verdict when the new invitee shares a device or phone with the inviter or a sibling invitee."""
    if device_id:
        if device_id in _inviter_devices(session, workspace_id, community_id, inviter_customer_id):
            return Verdict("same_device", {"device_id": device_id, "as": "inviter"})
        sibling = session.scalar(
            select(Referral.referee_customer_id).where(
                Referral.community_id == community_id,
                Referral.inviter_customer_id == inviter_customer_id,
                Referral.device_id == device_id,
            )
        )
        if sibling is not None:
            return Verdict("same_device", {"device_id": device_id, "as": "invitee", "customer_id": sibling})
    if phone_hash:
        inviter_phone = audience_service.customer_phone_hash(
            session, workspace_id=workspace_id, customer_id=inviter_customer_id
        )
        if inviter_phone == phone_hash:
            return Verdict("same_phone", {"as": "inviter"})
        sibling = session.scalar(
            select(Referral.referee_customer_id).where(
                Referral.community_id == community_id,
                Referral.inviter_customer_id == inviter_customer_id,
                Referral.phone_hash == phone_hash,
            )
        )
        if sibling is not None:
            return Verdict("same_phone", {"as": "invitee", "customer_id": sibling})
    return None


def flag_referral(session: Session, *, referral: Referral, verdict: Verdict) -> FraudFlag:
    """Open a review flag for a referral judged fraudulent."""
    flag = FraudFlag(
        workspace_id=referral.workspace_id,
        community_id=referral.community_id,
        kind=verdict.kind,
        inviter_customer_id=referral.inviter_customer_id,
        referral_id=referral.id,
        details={**verdict.details, "referee_customer_id": referral.referee_customer_id},
        status="open",
    )
    session.add(flag)
    session.flush()
    return flag


def check_burst(
    session: Session, *, workspace_id: int, community_id: int, inviter_customer_id: int
) -> FraudFlag | None:
    """Flag the inviter when their links admitted more than the threshold within the window."""
    settings = get_settings(session, workspace_id=workspace_id)
    since = utcnow() - timedelta(minutes=settings.burst_minutes)
    joins = session.scalar(
        select(func.count())
        .select_from(InviteUse)
        .where(
            InviteUse.workspace_id == workspace_id,
            InviteUse.inviter_customer_id == inviter_customer_id,
            InviteUse.created_at >= since,
        )
    )
    if (joins or 0) <= settings.burst_joins or is_held(
        session, workspace_id=workspace_id, inviter_customer_id=inviter_customer_id
    ):
        return None
    flag = FraudFlag(
        workspace_id=workspace_id,
        community_id=community_id,
        kind="burst",
        inviter_customer_id=inviter_customer_id,
        details={"joins": int(joins or 0), "minutes": settings.burst_minutes, "threshold": settings.burst_joins},
        status="open",
    )
    session.add(flag)
    session.flush()
    return flag


def is_held(session: Session, *, workspace_id: int, inviter_customer_id: int) -> bool:
    """Whether the inviter has an open burst flag (their rewards wait for review)."""
    return (
        session.scalar(
            select(FraudFlag.id)
            .where(
                FraudFlag.workspace_id == workspace_id,
                FraudFlag.inviter_customer_id == inviter_customer_id,
                FraudFlag.kind == "burst",
                FraudFlag.status == "open",
            )
            .limit(1)
        )
        is not None
    )


def list_flags(
    session: Session,
    *,
    workspace_id: int,
    status: str | None = "open",
    community_id: int | None = None,
    limit: int = 200,
) -> list[FraudFlag]:
    """Flags for review, newest first."""
    q = select(FraudFlag).where(FraudFlag.workspace_id == workspace_id)
    if status:
        q = q.where(FraudFlag.status == status)
    if community_id is not None:
        q = q.where(FraudFlag.community_id == community_id)
    return list(session.scalars(q.order_by(FraudFlag.id.desc()).limit(limit)))


def count_flags(session: Session, *, workspace_id: int, community_id: int | None = None) -> dict[str, int]:
    """Flags by status."""
    q = select(FraudFlag.status, func.count()).where(FraudFlag.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(FraudFlag.community_id == community_id)
    return {s: int(n) for s, n in session.execute(q.group_by(FraudFlag.status))}


def get_flag(session: Session, *, workspace_id: int, flag_id: int) -> FraudFlag:
    """One flag of the workspace."""
    flag = session.scalar(select(FraudFlag).where(FraudFlag.workspace_id == workspace_id, FraudFlag.id == flag_id))
    if flag is None:
        raise FraudFlagNotFound()
    return flag


def review_flag(
    session: Session, *, workspace_id: int, flag_id: int, decision: str, operator_id: int | None
) -> FraudFlag:
    """Clear (a false alarm: the referral counts again) or confirm (stays excluded) an open flag."""
    if decision not in ("clear", "confirm"):
        raise ValidationFailed(details=[{"field": "decision", "message": "clear or confirm"}])
    flag = get_flag(session, workspace_id=workspace_id, flag_id=flag_id)
    if flag.status != "open":
        raise FraudFlagReviewed()
    flag.status = "cleared" if decision == "clear" else "confirmed"
    flag.reviewed_by, flag.reviewed_at = operator_id, utcnow()
    if flag.referral_id is not None and decision == "clear":
        referral = session.get(Referral, flag.referral_id)
        if referral is not None and referral.status == "fraud":
            referral.status = "left" if referral.left_at else "joined"
            referral.fraud_reason = ""
    session.flush()
    return flag


def open_flag_inviters(session: Session, *, workspace_id: int) -> list[int]:
    """Inviters with any open flag (the review queue's subjects)."""
    return list(
        session.scalars(
            select(FraudFlag.inviter_customer_id)
            .where(FraudFlag.workspace_id == workspace_id, or_(FraudFlag.status == "open"))
            .distinct()
        )
    )
