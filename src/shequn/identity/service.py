"""Identity rules: workspaces, operators, roles, sessions, API tokens, audit."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import NotFound, PermissionDenied, ValidationFailed
from shequn.core.security import hash_password, hash_token, new_token, verify_password
from shequn.core.settings import get_settings
from shequn.core.signals import send_on_commit
from shequn.identity.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    LastOwner,
    SlugTaken,
    TooManyAttempts,
    WeakPassword,
)
from shequn.identity.models import ApiToken, AuditLog, ConsoleSession, Membership, Operator, Workspace
from shequn.identity.roles import Perm, Role, can_grant, has_perm

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Actor:
    """Who is acting, in which workspace, with which role."""

    workspace_id: int
    role: str
    operator_id: int | None = None
    token_id: int | None = None
    locale: str = "zh-CN"
    ip: str = ""

    def can(self, perm: Perm) -> bool:
        """Whether this actor's role grants perm."""
        return has_perm(self.role, perm)


def check_perm(actor: Actor, perm: Perm) -> None:
    """Raise PermissionDenied unless actor may perm."""
    if not actor.can(perm):
        raise PermissionDenied(perm=perm.value, role=actor.role)


# --- workspaces and operators -------------------------------------------------------------------


def create_workspace(
    session: Session,
    *,
    slug: str,
    name: str,
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
    locale: str = "zh-CN",
) -> Workspace:
    """Create a brand workspace."""
    if not _SLUG.match(slug):
        raise ValidationFailed(details=[{"field": "slug", "message": "a-z, 0-9 and -, 2–63 chars"}])
    if session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None:
        raise SlugTaken(slug=slug)
    ws = Workspace(slug=slug, name=name, timezone=timezone, currency=currency, locale=locale)
    session.add(ws)
    session.flush()
    return ws


def get_workspace(session: Session, workspace_id: int) -> Workspace | None:
    """A workspace by id."""
    return session.get(Workspace, workspace_id)


def list_workspace_ids(session: Session) -> list[int]:
    """Every workspace's id (periodic jobs fan out per workspace)."""
    return list(session.scalars(select(Workspace.id).order_by(Workspace.id)))


def workspace_timezone(session: Session, workspace_id: int) -> str:
    """The workspace's IANA timezone (Asia/Shanghai when unknown)."""
    ws = session.get(Workspace, workspace_id)
    return ws.timezone if ws is not None else "Asia/Shanghai"


def get_workspace_by_slug(session: Session, slug: str) -> Workspace | None:
    """A workspace by slug."""
    return session.scalar(select(Workspace).where(Workspace.slug == slug))


def create_operator(session: Session, *, email: str, name: str, password: str, locale: str = "zh-CN") -> Operator:
    """Create an operator with an argon2-hashed password."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ValidationFailed(details=[{"field": "email", "message": "invalid email"}])
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(min=MIN_PASSWORD)
    if session.scalar(select(Operator.id).where(Operator.email == email)) is not None:
        raise EmailTaken(email=email)
    op = Operator(email=email, name=name or email, password_hash=hash_password(password), locale=locale)
    session.add(op)
    session.flush()
    return op


def get_operator_by_email(session: Session, email: str) -> Operator | None:
    """An operator by email (case-insensitive)."""
    return session.scalar(select(Operator).where(Operator.email == email.strip().lower()))


def add_member(session: Session, *, workspace_id: int, operator_id: int, role: str) -> Membership:
    """Give an operator a role in a workspace (or change it)."""
    Role(role)  # raises ValueError on unknown roles; callers validate input first
    member = session.scalar(
        select(Membership).where(Membership.workspace_id == workspace_id, Membership.operator_id == operator_id)
    )
    if member is None:
        member = Membership(workspace_id=workspace_id, operator_id=operator_id, role=role)
        session.add(member)
    else:
        member.role = role
    session.flush()
    return member


def invite_operator(session: Session, actor: Actor, *, email: str, name: str, password: str, role: str) -> Operator:
    """Add an operator to the actor's workspace with a role no higher than the actor's own."""
    check_perm(actor, Perm.MANAGE_OPERATORS)
    if role not in {r.value for r in Role}:
        raise ValidationFailed(details=[{"field": "role", "message": f"unknown role {role}"}])
    if not can_grant(actor.role, role):
        raise PermissionDenied(perm="grant_" + role, role=actor.role)
    op = get_operator_by_email(session, email) or create_operator(session, email=email, name=name, password=password)
    add_member(session, workspace_id=actor.workspace_id, operator_id=op.id, role=role)
    record_audit(session, actor, "operator.invited", "operator", op.id, {"email": op.email, "role": role})
    return op


LOCALES = ("zh-CN", "en")
TIMEZONE_CHANGED = "identity.workspace_timezone_changed"


def update_workspace(
    session: Session,
    actor: Actor,
    *,
    name: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
    locale: str | None = None,
) -> Workspace:
    """Change the brand's name, timezone, currency or default locale (owners only)."""
    check_perm(actor, Perm.MANAGE_WORKSPACE)
    ws = session.get(Workspace, actor.workspace_id)
    if ws is None:
        raise NotFound(what="workspace")
    errors = []
    if name is not None and not name.strip():
        errors.append({"field": "name", "message": "required"})
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append({"field": "timezone", "message": f"unknown timezone {timezone!r}"})
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        errors.append({"field": "currency", "message": "a 3-letter ISO code such as CNY"})
    if locale is not None and locale not in LOCALES:
        errors.append({"field": "locale", "message": "zh-CN or en"})
    if errors:
        raise ValidationFailed(details=errors)
    before = {"name": ws.name, "timezone": ws.timezone, "currency": ws.currency, "locale": ws.locale}
    if name is not None:
        ws.name = name.strip()[:120]
    if timezone is not None:
        ws.timezone = timezone
    if currency is not None:
        ws.currency = currency
    if locale is not None:
        ws.locale = locale
    after = {"name": ws.name, "timezone": ws.timezone, "currency": ws.currency, "locale": ws.locale}
    changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changed:
        record_audit(session, actor, "workspace.updated", "workspace", ws.id, changed)
    if "timezone" in changed:
        # Day-based figures (dashboard rollups) are cut at local midnight and must be rebuilt.
        send_on_commit(session, TIMEZONE_CHANGED, ws.id, timezone=ws.timezone)
    session.flush()
    return ws


def _owner_count(session: Session, workspace_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.workspace_id == workspace_id, Membership.role == Role.OWNER.value)
        )
        or 0
    )


def _managed_member(session: Session, actor: Actor, operator_id: int) -> Membership:
    """The membership an actor may change: not their own, and an owner's only by an owner."""
    check_perm(actor, Perm.MANAGE_OPERATORS)
    member = session.scalar(
        select(Membership).where(Membership.workspace_id == actor.workspace_id, Membership.operator_id == operator_id)
    )
    if member is None:
        raise NotFound(what="operator")
    if operator_id == actor.operator_id:
        raise PermissionDenied(perm="change_own_role", role=actor.role)
    if member.role == Role.OWNER.value and actor.role != Role.OWNER.value:
        raise PermissionDenied(perm="change_owner", role=actor.role)
    return member


def set_member_role(session: Session, actor: Actor, *, operator_id: int, role: str) -> Membership:
    """Change an operator's role here, never above the actor's own and never leaving no owner."""
    if role not in {r.value for r in Role}:
        raise ValidationFailed(details=[{"field": "role", "message": f"unknown role {role}"}])
    member = _managed_member(session, actor, operator_id)
    if not can_grant(actor.role, role):
        raise PermissionDenied(perm="grant_" + role, role=actor.role)
    if member.role == Role.OWNER.value and role != Role.OWNER.value and _owner_count(session, actor.workspace_id) <= 1:
        raise LastOwner()
    old, member.role = member.role, role
    record_audit(session, actor, "operator.role_changed", "operator", operator_id, {"from": old, "to": role})
    session.flush()
    return member


def remove_member(session: Session, actor: Actor, *, operator_id: int) -> None:
    """Take an operator out of this workspace (their other workspaces are untouched)."""
    member = _managed_member(session, actor, operator_id)
    if member.role == Role.OWNER.value and _owner_count(session, actor.workspace_id) <= 1:
        raise LastOwner()
    session.delete(member)
    session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.operator_id == operator_id, ConsoleSession.workspace_id == actor.workspace_id
        )
    )
    record_audit(session, actor, "operator.removed", "operator", operator_id, {"role": member.role})
    session.flush()


def list_members(session: Session, *, workspace_id: int) -> list[tuple[Operator, str]]:
    """Operators of a workspace with their roles."""
    rows = session.execute(
        select(Operator, Membership.role)
        .join(Membership, Membership.operator_id == Operator.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Operator.id)
    )
    return [(op, role) for op, role in rows]


def list_workspaces_for(session: Session, operator_id: int) -> list[tuple[Workspace, str]]:
    """The workspaces an operator belongs to, with their role in each."""
    rows = session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.operator_id == operator_id)
        .order_by(Workspace.name)
    )
    return [(ws, role) for ws, role in rows]


def get_role(session: Session, *, workspace_id: int, operator_id: int) -> str | None:
    """The operator's role in the workspace, or None if not a member."""
    return session.scalar(
        select(Membership.role).where(Membership.workspace_id == workspace_id, Membership.operator_id == operator_id)
    )


def bootstrap_owner(
    session: Session, *, email: str, password: str, name: str, workspace_slug: str, workspace_name: str
) -> tuple[Operator, Workspace]:
    """Create (or reuse) the first workspace and make the operator its owner (CLI `create-owner`)."""
    ws = get_workspace_by_slug(session, workspace_slug) or create_workspace(
        session, slug=workspace_slug, name=workspace_name
    )
    op = get_operator_by_email(session, email)
    if op is None:
        op = create_operator(session, email=email, name=name, password=password)
    add_member(session, workspace_id=ws.id, operator_id=op.id, role=Role.OWNER.value)
    record_audit(
        session,
        Actor(workspace_id=ws.id, role="owner", operator_id=op.id),
        "owner.bootstrapped",
        "operator",
        op.id,
        {"email": op.email},
    )
    return op, ws


# --- console sessions ---------------------------------------------------------------------------


FREE_ATTEMPTS = 5
LOCK_MINUTES = 5


def login(session: Session, *, email: str, password: str, ip: str = "") -> tuple[str, ConsoleSession]:
    """Check credentials and open a console session; returns the cookie token and the session row.

    After FREE_ATTEMPTS wrong passwords in a row the account locks, for LOCK_MINUTES doubling with
    each further failure (capped at a day). A failure is flushed before raising: the caller commits
    it, so guessing cannot roll back its own count.
    """
    op = get_operator_by_email(session, email)
    now = utcnow()
    # Verify against a dummy hash when the email is unknown so timing does not reveal which emails exist.
    if op is None or not op.is_active:
        verify_password(_DUMMY_HASH, password)
        raise InvalidCredentials()
    if op.locked_until is not None and op.locked_until > now:
        raise TooManyAttempts(minutes=max(1, int((op.locked_until - now).total_seconds() // 60) + 1))
    if not verify_password(op.password_hash, password):
        op.failed_logins += 1
        if op.failed_logins >= FREE_ATTEMPTS:
            minutes = min(LOCK_MINUTES * 2 ** (op.failed_logins - FREE_ATTEMPTS), 24 * 60)
            op.locked_until = now + timedelta(minutes=minutes)
        session.flush()
        raise InvalidCredentials()
    op.failed_logins, op.locked_until = 0, None
    workspaces = list_workspaces_for(session, op.id)
    token = new_token("sqs")
    cs = ConsoleSession(
        operator_id=op.id,
        token_hash=hash_token(token),
        csrf_token=secrets.token_urlsafe(24),
        workspace_id=workspaces[0][0].id if workspaces else None,
        locale=op.locale,
        expires_at=now + timedelta(hours=get_settings().session_hours),
    )
    op.last_login_at = now
    session.add(cs)
    session.flush()
    if cs.workspace_id is not None:
        record_audit(
            session,
            Actor(workspace_id=cs.workspace_id, role="", operator_id=op.id, ip=ip),
            "operator.login",
            "operator",
            op.id,
        )
    return token, cs


_DUMMY_HASH = hash_password("not-a-real-password-just-for-timing")


def get_console_session(session: Session, token: str) -> ConsoleSession | None:
    """The live console session for a cookie token, or None if unknown or expired."""
    cs = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token)))
    if cs is None or cs.expires_at <= utcnow():
        return None
    return cs


def logout(session: Session, token: str) -> None:
    """End a console session."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token)))


def switch_workspace(session: Session, cs: ConsoleSession, workspace_id: int) -> None:
    """Point a console session at another workspace the operator belongs to."""
    if get_role(session, workspace_id=workspace_id, operator_id=cs.operator_id) is None:
        raise NotFound(what="workspace")
    cs.workspace_id = workspace_id
    session.flush()


def set_session_locale(session: Session, cs: ConsoleSession, locale: str) -> None:
    """Remember the console language for this session and the operator."""
    cs.locale = locale
    op = session.get(Operator, cs.operator_id)
    if op is not None:
        op.locale = locale
    session.flush()


# --- API tokens ---------------------------------------------------------------------------------


def create_api_token(session: Session, actor: Actor, *, name: str, role: str) -> tuple[str, ApiToken]:
    """Issue an API token; the plain token is returned once and only its hash is kept."""
    check_perm(actor, Perm.MANAGE_TOKENS)
    if role not in {r.value for r in Role} or role == Role.OWNER.value:
        raise ValidationFailed(details=[{"field": "role", "message": f"role {role} not allowed for a token"}])
    if not can_grant(actor.role, role):
        raise PermissionDenied(perm="grant_" + role, role=actor.role)
    if not name.strip():
        raise ValidationFailed(details=[{"field": "name", "message": "required"}])
    plain = new_token("sqt")
    tok = ApiToken(
        workspace_id=actor.workspace_id,
        name=name.strip()[:120],
        token_hash=hash_token(plain),
        prefix=plain[:8],
        role=role,
        created_by=actor.operator_id,
    )
    session.add(tok)
    session.flush()
    record_audit(session, actor, "api_token.created", "api_token", tok.id, {"name": tok.name, "role": role})
    return plain, tok


def authenticate_token(session: Session, plain: str, *, ip: str = "", locale: str = "zh-CN") -> Actor:
    """Resolve a bearer token to an actor, or raise InvalidToken."""
    if not plain or len(plain) > 200:
        raise InvalidToken()
    tok = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain)))
    if tok is None or tok.revoked_at is not None:
        raise InvalidToken()
    now = utcnow()
    # Write last_used_at at most once a minute: a hot token must not turn every read into a write.
    if tok.last_used_at is None or now - tok.last_used_at > timedelta(minutes=1):
        tok.last_used_at = now
    return Actor(workspace_id=tok.workspace_id, role=tok.role, token_id=tok.id, locale=locale, ip=ip)


def list_api_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    """The workspace's tokens (hashes never leave the service)."""
    check_perm(actor, Perm.MANAGE_TOKENS)
    return list(
        session.scalars(select(ApiToken).where(ApiToken.workspace_id == actor.workspace_id).order_by(ApiToken.id))
    )


def revoke_api_token(session: Session, actor: Actor, token_id: int) -> None:
    """Revoke a token of the actor's workspace."""
    check_perm(actor, Perm.MANAGE_TOKENS)
    tok = session.get(ApiToken, token_id)
    if tok is None or tok.workspace_id != actor.workspace_id:
        raise NotFound(what="api_token")
    tok.revoked_at = utcnow()
    record_audit(session, actor, "api_token.revoked", "api_token", tok.id, {"name": tok.name})


# --- audit --------------------------------------------------------------------------------------


def record_audit(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: object = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit entry in the caller's transaction (so it commits or rolls back with the change)."""
    session.add(
        AuditLog(
            workspace_id=actor.workspace_id,
            actor_operator_id=actor.operator_id,
            actor_token_id=actor.token_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            details=details or {},
            ip=actor.ip,
        )
    )


def list_audit(session: Session, actor: Actor, *, limit: int = 50, offset: int = 0) -> tuple[list[AuditLog], int]:
    """The workspace's audit entries, newest first, with the total count."""
    check_perm(actor, Perm.VIEW_AUDIT)
    base = select(AuditLog).where(AuditLog.workspace_id == actor.workspace_id)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(AuditLog.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def operator_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Display names for operator ids (audit views)."""
    if not ids:
        return {}
    return {i: n for i, n in session.execute(select(Operator.id, Operator.name).where(Operator.id.in_(ids)))}
