"""The blacklist: customers, devices, phone hashes and IPs refused every member action (audited changes)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from shequn.core import security
from shequn.core.clock import utcnow
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.guard.errors import BlockNotFound, InvalidGuardInput
from shequn.promotions.guard.models import GuardBlock

BLOCK_KINDS = ("customer", "device", "phone_hash", "ip")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _block_filter(workspace_id: int, values: dict[str, str], now: datetime) -> list[ColumnElement[bool]]:
    pairs = [and_(GuardBlock.kind == kind, GuardBlock.value == value) for kind, value in values.items()]
    return [
        GuardBlock.workspace_id == workspace_id,
        or_(*pairs),
        or_(GuardBlock.until.is_(None), GuardBlock.until > now),
    ]


def block_values(
    customer_id: int | None, device_id: str | None, phone_hash: str | None, ip: str | None
) -> dict[str, str]:
    values = {"customer": str(customer_id) if customer_id is not None else "", "device": device_id or ""}
    values.update(phone_hash=phone_hash or "", ip=_normal_ip(ip))
    return {k: v for k, v in values.items() if v}


def _normal_ip(ip: str | None) -> str:
    try:
        return ipaddress.ip_address((ip or "").strip()).compressed
    except ValueError:
        return ""


def active_block(session: Session, workspace_id: int, values: dict[str, str]) -> GuardBlock | None:
    if not values:
        return None
    return session.scalars(select(GuardBlock).where(*_block_filter(workspace_id, values, utcnow())).limit(1)).first()


def is_blocked(
    session: Session,
    *,
    workspace_id: int,
    customer_id: int | None = None,
    device_id: str | None = None,
    phone_hash: str | None = None,
    ip: str | None = None,
) -> bool:
    """Whether any of the given identities is on the workspace's blacklist right now."""
    values = block_values(customer_id, device_id, phone_hash, ip)
    return active_block(session, workspace_id, values) is not None


def blocked_customers(session: Session, *, workspace_id: int, customer_ids: Sequence[int]) -> set[int]:
    """Which of these customers are on the workspace's blacklist right now (by customer entry)."""
    if not customer_ids:
        return set()
    now = utcnow()
    values = select(GuardBlock.value).where(
        GuardBlock.workspace_id == workspace_id,
        GuardBlock.kind == "customer",
        GuardBlock.value.in_([str(c) for c in customer_ids]),
        or_(GuardBlock.until.is_(None), GuardBlock.until > now),
    )
    return {int(v) for v in session.scalars(values)}


def list_blocks(
    session: Session, *, workspace_id: int, kind: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[GuardBlock], int]:
    """Blacklist entries of the workspace (expired ones included, newest first), with the total."""
    where = [GuardBlock.workspace_id == workspace_id]
    if kind:
        where.append(GuardBlock.kind == kind)
    total = session.scalar(select(func.count()).select_from(GuardBlock).where(*where)) or 0
    rows = session.scalars(
        select(GuardBlock)
        .where(*where)
        .order_by(GuardBlock.created_at.desc(), GuardBlock.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


def _block_value(kind: str, value: str) -> tuple[str, str]:
    """(stored value, display label): a phone number typed by an operator is stored as its keyed hash."""
    if kind not in BLOCK_KINDS:
        raise InvalidGuardInput(details=[{"field": "kind", "message": f"one of {', '.join(BLOCK_KINDS)}"}])
    if kind == "phone_hash" and not _HEX64.fullmatch(value):
        normalized = security.normalize_phone(value)
        if normalized is None:
            raise InvalidGuardInput(details=[{"field": "value", "message": "a phone number or its hash"}])
        return security.phone_hash(normalized), security.mask_phone(normalized)
    if kind == "ip":
        try:
            return ipaddress.ip_address(value).compressed, ""
        except ValueError:
            raise InvalidGuardInput(details=[{"field": "value", "message": "an IP address"}]) from None
    return value, ""


def display_value(block: GuardBlock) -> str:
    """How an entry is shown: phones masked, hashes and device ids shortened (never the full identifier)."""
    if block.label:
        return block.label
    return short_id(block.value) if block.kind in ("phone_hash", "device") else block.value


def short_id(value: str) -> str:
    """A long opaque id shortened for display."""
    return value if len(value) <= 10 else f"{value[:6]}…{value[-2:]}"


def display_subject(subject: str) -> str:
    """A flag's subject ("device:<id>", "phone:<hash>", …) with opaque ids shortened."""
    kind, _, value = subject.partition(":")
    return f"{kind}:{short_id(value)}" if kind in ("device", "phone") else subject


def add_block(
    session: Session, actor: Actor, *, kind: str, value: str, reason: str = "", until: datetime | None = None
) -> GuardBlock:
    """Put an identity on the blacklist (or update its reason and end); audited."""
    identity_service.check_perm(actor, Perm.WRITE)
    value, label = _block_value(kind, value.strip())
    if not value or len(value) > 128:
        raise InvalidGuardInput(details=[{"field": "value", "message": "1 to 128 characters"}])
    if kind == "customer" and not value.isdigit():
        raise InvalidGuardInput(details=[{"field": "value", "message": "a customer id"}])
    if until is not None and until.tzinfo is None:
        raise InvalidGuardInput(details=[{"field": "until", "message": "a time with a timezone"}])
    block = session.scalar(
        select(GuardBlock).where(
            GuardBlock.workspace_id == actor.workspace_id, GuardBlock.kind == kind, GuardBlock.value == value
        )
    )
    if block is None:
        block = GuardBlock(workspace_id=actor.workspace_id, kind=kind, value=value, created_by=actor.operator_id)
        session.add(block)
    block.label = label or block.label
    block.reason = reason.strip()[:255]
    block.until = until
    session.flush()
    identity_service.record_audit(
        session, actor, "guard.block_add", "guard_block", block.id, {"kind": kind, "reason": block.reason}
    )
    return block


def remove_block(session: Session, actor: Actor, *, block_id: int) -> None:
    """Take an entry off the blacklist; audited."""
    identity_service.check_perm(actor, Perm.WRITE)
    block = session.scalar(
        select(GuardBlock).where(GuardBlock.id == block_id, GuardBlock.workspace_id == actor.workspace_id)
    )
    if block is None:
        raise BlockNotFound()
    identity_service.record_audit(session, actor, "guard.block_remove", "guard_block", block.id, {"kind": block.kind})
    session.delete(block)
    session.flush()
