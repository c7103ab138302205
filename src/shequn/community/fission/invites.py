"""Invites: codes, limits and expiry, QR codes, personal links, and joining a community by invite."""

from __future__ import annotations

import io
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

import segno
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.errors import NotAMember
from shequn.community.fission import tree
from shequn.community.fission._sql import insert_ignore, lock_community
from shequn.community.fission.errors import (
    InviteDisabled,
    InviteExpired,
    InviteNotFound,
    InviteSelf,
    InviteUsedUp,
)
from shequn.community.fission.models import Invite, InviteUse, Referral
from shequn.community.models import CommunityMember
from shequn.core.clock import utcnow
from shequn.core.errors import ValidationFailed
from shequn.core.settings import get_settings

BASE62 = string.digits + string.ascii_letters
CODE_LENGTH = 7  # 62^7 ≈ 3.5e12: guessing a live code is hopeless, and it fits a 32-char mini-program scene
CODE_ATTEMPTS = 8
MEMBER_STATES = ("active", "muted", "pending")  # a membership that needs no invite


@dataclass
class JoinResult:
    """What a join by invite did: the membership, whether it already existed, the referral if any."""

    member: CommunityMember
    invite: Invite
    already_member: bool
    referral: Referral | None


def new_code() -> str:
    """A random base62 code (protocols.md short-link rules: 6–8 characters)."""
    return "".join(secrets.choice(BASE62) for _ in range(CODE_LENGTH))


def invite_path(workspace_slug: str, code: str) -> str:
    """The member H5 path of an invite."""
    return f"/m/{workspace_slug}/i/{code}"


def invite_url(workspace_slug: str, code: str, base_url: str = "") -> str:
    """The absolute invite URL (the configured public URL, else the request's base)."""
    base = (get_settings().public_url or base_url).rstrip("/")
    return base + invite_path(workspace_slug, code)


def mini_program_scene(invite: Invite) -> str:
    """The WeChat mini-program QR `scene` (≤ 32 chars): just the code, resolved server-side."""
    return f"i={invite.code}"


def qr_svg(url: str, *, scale: int = 6, inline: bool = False) -> bytes:
    """An SVG QR code for url, drawn locally (no network); inline ones scale to their box (viewBox only)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=scale, border=2, xmldecl=False, light="#fff", omitsize=inline
    )
    return out.getvalue()


def _check_limits(max_uses: int | None, expires_at: datetime | None) -> None:
    errors = []
    if max_uses is not None and max_uses < 1:
        errors.append({"field": "max_uses", "message": "must be at least 1"})
    if expires_at is not None and expires_at <= utcnow():
        errors.append({"field": "expires_at", "message": "must be in the future"})
    if errors:
        raise ValidationFailed(details=errors)


def create_invite(
    session: Session,
    *,
    workspace_id: int,
    community_id: int,
    label: str = "",
    inviter_customer_id: int | None = None,
    max_uses: int | None = None,
    expires_at: datetime | None = None,
    pre_approved: bool = False,
    created_by: int | None = None,
    creator_device_id: str = "",
) -> Invite:
    """Create an invite link into a community (checked to exist in the workspace)."""
    community_service.get_community(session, workspace_id=workspace_id, community_id=community_id)
    _check_limits(max_uses, expires_at)
    for _ in range(CODE_ATTEMPTS):
        invite = Invite(
            workspace_id=workspace_id,
            community_id=community_id,
            code=new_code(),
            label=label,
            inviter_customer_id=inviter_customer_id,
            max_uses=max_uses,
            uses=0,
            opens=0,
            expires_at=expires_at,
            pre_approved=pre_approved,
            status="active",
            created_by=created_by,
            creator_device_id=creator_device_id[:64],
        )
        try:
            with session.begin_nested():
                session.add(invite)
                session.flush()
            return invite
        except IntegrityError:  # a code collision: draw again
            continue
    raise RuntimeError("could not draw a free invite code")


def personal_invite(
    session: Session, *, workspace_id: int, community_id: int, customer_id: int, device_id: str = ""
) -> Invite:
    """The member's own invite link into a community, created on first ask (one per member and community)."""
    membership = community_service.get_membership(
        session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id
    )
    if membership is None or membership.status not in ("active", "muted"):
        raise NotAMember()
    key = f"{community_id}:{customer_id}"
    found = session.scalar(select(Invite).where(Invite.workspace_id == workspace_id, Invite.personal_key == key))
    if found is not None:
        return found
    new_id = insert_ignore(
        session,
        Invite,
        {
            "workspace_id": workspace_id,
            "community_id": community_id,
            "code": new_code(),
            "label": "",
            "inviter_customer_id": customer_id,
            "personal_key": key,
            "uses": 0,
            "opens": 0,
            "pre_approved": False,
            "status": "active",
            "creator_device_id": device_id[:64],
        },
        ["workspace_id", "personal_key"],
    )
    invite = session.scalar(select(Invite).where(Invite.workspace_id == workspace_id, Invite.personal_key == key))
    assert invite is not None, new_id
    return invite


def get_invite(session: Session, *, workspace_id: int, invite_id: int) -> Invite:
    """One invite of the workspace."""
    invite = session.scalar(select(Invite).where(Invite.workspace_id == workspace_id, Invite.id == invite_id))
    if invite is None:
        raise InviteNotFound()
    return invite


def find_invite(session: Session, *, code: str, workspace_id: int | None = None) -> Invite:
    """An invite by its code (optionally only in one workspace): InviteNotFound otherwise."""
    if not code or len(code) > 8 or not all(c in BASE62 for c in code):
        raise InviteNotFound()
    invite = session.scalar(select(Invite).where(Invite.code == code))
    if invite is None or (workspace_id is not None and invite.workspace_id != workspace_id):
        raise InviteNotFound()
    return invite


def list_invites(
    session: Session,
    *,
    workspace_id: int,
    community_id: int | None = None,
    personal: bool | None = None,
    limit: int = 200,
) -> list[Invite]:
    """Invites of the workspace, newest first."""
    q = select(Invite).where(Invite.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(Invite.community_id == community_id)
    if personal is not None:
        q = q.where(Invite.personal_key.is_not(None) if personal else Invite.personal_key.is_(None))
    return list(session.scalars(q.order_by(Invite.id.desc()).limit(limit)))


def count_invites(session: Session, *, workspace_id: int, community_id: int | None = None) -> int:
    """How many invite links exist."""
    q = select(func.count()).select_from(Invite).where(Invite.workspace_id == workspace_id)
    if community_id is not None:
        q = q.where(Invite.community_id == community_id)
    return int(session.scalar(q) or 0)


def disable_invite(session: Session, *, workspace_id: int, invite_id: int) -> Invite:
    """Stop an invite from admitting anyone (idempotent)."""
    invite = get_invite(session, workspace_id=workspace_id, invite_id=invite_id)
    if invite.status != "disabled":
        invite.status, invite.disabled_at = "disabled", utcnow()
        session.flush()
    return invite


def record_open(session: Session, *, invite: Invite) -> None:
    """Count a human opening the invite page (the K-factor's reach)."""
    session.execute(update(Invite).where(Invite.id == invite.id).values(opens=Invite.opens + 1))


def check_usable(invite: Invite, now: datetime | None = None) -> None:
    """Raise the reason an invite cannot admit anyone now (disabled, expired, used up)."""
    state = invite.effective_status(now or utcnow())
    if state == "disabled":
        raise InviteDisabled()
    if state == "expired":
        raise InviteExpired()
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        raise InviteUsedUp()


def join_by_invite(
    session: Session, *, workspace_id: int, code: str, customer_id: int, device_id: str = "", nickname: str = ""
) -> JoinResult:
    """Join the invite's community: one use per customer however often it is retried, then the referral.

    A customer who is already in (active, muted or pending) gets their membership back and uses nothing.
    """
    invite = find_invite(session, code=code, workspace_id=workspace_id)
    if invite.inviter_customer_id == customer_id:
        raise InviteSelf()
    existing = community_service.get_membership(
        session, workspace_id=workspace_id, community_id=invite.community_id, customer_id=customer_id
    )
    if existing is not None and existing.status in MEMBER_STATES:
        return JoinResult(existing, invite, True, tree.get_referral(session, invite.community_id, customer_id))
    check_usable(invite)
    lock_community(session, invite.community_id)
    used = insert_ignore(
        session,
        InviteUse,
        {
            "workspace_id": workspace_id,
            "invite_id": invite.id,
            "customer_id": customer_id,
            "inviter_customer_id": invite.inviter_customer_id,
            "device_id": device_id[:64],
            "member_status": "active",
        },
        ["invite_id", "customer_id"],
    )
    if used is not None:
        # The conditional UPDATE is the limit: concurrent joins can never push uses past max_uses.
        taken = session.execute(
            update(Invite)
            .where(Invite.id == invite.id, (Invite.max_uses.is_(None)) | (Invite.uses < Invite.max_uses))
            .values(uses=Invite.uses + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise InviteUsedUp()
        session.refresh(invite)
    member = community_service.join_community(
        session,
        workspace_id=workspace_id,
        community_id=invite.community_id,
        customer_id=customer_id,
        source="invite",
        invite_id=invite.id,
        inviter_customer_id=invite.inviter_customer_id,
        approved=invite.pre_approved,
        nickname=nickname,
    )
    if used is not None and member.status != "active":
        session.execute(update(InviteUse).where(InviteUse.id == used).values(member_status=member.status))
    referral = None
    if member.status == "active" and invite.inviter_customer_id is not None:
        referral = tree.record_referral(
            session,
            workspace_id=workspace_id,
            community_id=invite.community_id,
            referee_customer_id=customer_id,
            inviter_customer_id=invite.inviter_customer_id,
            invite_id=invite.id,
            device_id=device_id,
        )
    return JoinResult(member, invite, False, referral)


def mark_use_active(session: Session, *, invite_id: int, customer_id: int) -> None:
    """A pending join through this invite was approved: it now counts as a join via invite."""
    session.execute(
        update(InviteUse)
        .where(
            InviteUse.invite_id == invite_id,
            InviteUse.customer_id == customer_id,
            InviteUse.member_status != "active",
        )
        .values(member_status="active")
    )


def use_device(session: Session, *, invite_id: int, customer_id: int) -> str:
    """The device a customer used on an invite (for referrals recorded later, on approval)."""
    return (
        session.scalar(
            select(InviteUse.device_id).where(InviteUse.invite_id == invite_id, InviteUse.customer_id == customer_id)
        )
        or ""
    )


def recent_device_joiner(session: Session, *, invite_id: int, device_id: str, within_s: int = 600) -> int | None:
    """The customer who joined through this invite from this device in the last minutes, if any."""
    if not device_id:
        return None
    since = utcnow().timestamp() - within_s
    row = session.execute(
        select(InviteUse.customer_id, InviteUse.created_at)
        .where(InviteUse.invite_id == invite_id, InviteUse.device_id == device_id)
        .order_by(InviteUse.id.desc())
        .limit(1)
    ).first()
    if row is None or row[1].timestamp() < since:
        return None
    return int(row[0])
