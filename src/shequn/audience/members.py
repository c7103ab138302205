"""Members signed in on the H5 pages: sessions, one-time sign-in links, and newcomers who join from a link."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.audience.errors import CustomerNotFound
from shequn.audience.identities import resolve_customers
from shequn.audience.models import Customer, MemberSession
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError, ValidationFailed
from shequn.core.security import hash_token, new_token, normalize_phone
from shequn.core.settings import get_settings

MEMBER_SESSION_DAYS = 30
TICKET_SECONDS = 15 * 60
# Touching last_seen on every request would write on every page view; once an hour is enough to expire idle ones.
TOUCH_EVERY = timedelta(hours=1)
NAME_MAX = 40


class MemberTicketInvalid(ShequnError):
    """A sign-in link that is forged, expired or already used."""

    code = "member_ticket_invalid"
    status_code = 401


@dataclass(frozen=True)
class MemberIdentity:
    """Who a member session belongs to (plain values, safe after the session closes)."""

    session_id: int
    workspace_id: int
    customer_id: int
    name: str
    phone_masked: str
    device_id: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt="shequn.member-ticket")


def _live_customer(session: Session, workspace_id: int, customer_id: int) -> Customer:
    """The customer, following merges to the surviving record."""
    for _ in range(8):  # merge chains are short; the bound only guards against a corrupt loop
        customer = session.get(Customer, customer_id)
        if customer is None or customer.workspace_id != workspace_id:
            raise CustomerNotFound()
        if customer.merged_into_id is None:
            return customer
        customer_id = customer.merged_into_id
    raise CustomerNotFound()


def issue_member_ticket(session: Session, *, workspace_id: int, customer_id: int) -> tuple[str, datetime]:
    """A one-time sign-in ticket for a member (for a personalised link in a message), and when it expires."""
    customer = _live_customer(session, workspace_id, customer_id)
    ticket = _serializer().dumps({"w": workspace_id, "c": customer.id, "n": secrets.token_hex(12)})
    return ticket, utcnow() + timedelta(seconds=TICKET_SECONDS)


def _open_session(
    session: Session, *, workspace_id: int, customer_id: int, device_id: str, nonce: str | None = None
) -> str:
    token = new_token("sqm")
    now = utcnow()
    session.add(
        MemberSession(
            workspace_id=workspace_id,
            customer_id=customer_id,
            token_hash=hash_token(token),
            ticket_nonce=nonce,
            device_id=device_id[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=MEMBER_SESSION_DAYS),
        )
    )
    session.flush()
    return token


def redeem_member_ticket(session: Session, *, workspace_id: int, ticket: str, device_id: str) -> str:
    """Exchange a sign-in ticket for a member session token; a ticket works once, in its own workspace."""
    try:
        data = _serializer().loads(ticket, max_age=TICKET_SECONDS)
    except (SignatureExpired, BadSignature):
        raise MemberTicketInvalid() from None
    if not isinstance(data, dict) or data.get("w") != workspace_id:
        raise MemberTicketInvalid()
    customer = _live_customer(session, workspace_id, int(data["c"]))
    try:
        with session.begin_nested():
            return _open_session(
                session, workspace_id=workspace_id, customer_id=customer.id, device_id=device_id, nonce=str(data["n"])
            )
    except IntegrityError:
        raise MemberTicketInvalid() from None


def sign_in_newcomer(
    session: Session, *, workspace_id: int, name: str, phone: str | None, device_id: str
) -> tuple[MemberIdentity, str]:
    """Create the customer for someone arriving without an account, and a session for them.

    The phone is kept hashed and masked for anti-fraud and later matching, but an unverified phone never
    merges into an existing customer: anyone can type anyone's number.
    """
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed(
            details=[{"field": "name", "code": "required", "message": "请填写昵称 / name is required"}]
        )
    if len(name) > NAME_MAX:
        raise ValidationFailed(
            details=[
                {
                    "field": "name",
                    "code": "too_long",
                    "message": f"最多 {NAME_MAX} 个字 / at most {NAME_MAX} characters",
                }
            ]
        )
    if phone and normalize_phone(phone) is None:
        raise ValidationFailed(
            details=[
                {"field": "phone", "code": "invalid_phone", "message": "手机号格式不对 / not a valid phone number"}
            ]
        )
    person = CustomerIn(
        identities=[IdentityIn(source="h5", kind="anonymous_id", value=uuid.uuid4().hex)],
        name=name,
        phone=phone or None,
        phone_verified=False,
    )
    customer_id = resolve_customers(session, workspace_id=workspace_id, people=[person]).ids[0]
    assert customer_id is not None  # a fresh anonymous id always yields a customer
    token = _open_session(session, workspace_id=workspace_id, customer_id=customer_id, device_id=device_id)
    member = get_member_session(session, token=token)
    assert member is not None
    return member, token


def get_member_session(session: Session, *, token: str) -> MemberIdentity | None:
    """The live member session of a token, or None (unknown, expired, revoked, or its customer deleted)."""
    return get_member_sessions(session, tokens=[token])[token]


def get_member_sessions(session: Session, *, tokens: Sequence[str]) -> dict[str, MemberIdentity | None]:
    """get_member_session for many tokens in two queries (plus one per merged customer)."""
    out: dict[str, MemberIdentity | None] = dict.fromkeys(tokens)
    by_hash = {hash_token(t): t for t in tokens if t}
    if not by_hash:
        return out
    now = utcnow()
    rows = session.scalars(select(MemberSession).where(MemberSession.token_hash.in_(list(by_hash)))).all()
    live = [r for r in rows if r.revoked_at is None and r.expires_at > now]
    ids = {r.customer_id for r in live}
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))} if ids else {}
    touch: list[int] = []
    for row in live:
        try:
            customer = customers.get(row.customer_id)
            if customer is None or customer.workspace_id != row.workspace_id or customer.merged_into_id is not None:
                customer = _live_customer(session, row.workspace_id, row.customer_id)
        except CustomerNotFound:
            continue
        if now - row.last_seen_at > TOUCH_EVERY:
            touch.append(row.id)
        out[by_hash[row.token_hash]] = MemberIdentity(
            session_id=row.id,
            workspace_id=row.workspace_id,
            customer_id=customer.id,
            name=customer.name,
            phone_masked=customer.phone_masked,
            device_id=row.device_id,
        )
    if touch:
        session.execute(update(MemberSession).where(MemberSession.id.in_(touch)).values(last_seen_at=now))
    return out


def end_member_session(session: Session, *, token: str) -> None:
    """Sign a member out (the token stops working at once)."""
    session.execute(
        update(MemberSession)
        .where(MemberSession.token_hash == hash_token(token), MemberSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def customer_phone_hash(session: Session, *, workspace_id: int, customer_id: int) -> str | None:
    """The customer's phone hash (for anti-fraud checks such as 'same phone as the inviter')."""
    return session.scalar(
        select(Customer.phone_hash).where(Customer.workspace_id == workspace_id, Customer.id == customer_id)
    )


def customer_device_ids(session: Session, *, workspace_id: int, customer_id: int) -> set[str]:
    """Every device id a customer has signed in from (anti-fraud: 'same device as the inviter')."""
    rows = session.scalars(
        select(MemberSession.device_id).where(
            MemberSession.workspace_id == workspace_id,
            MemberSession.customer_id == customer_id,
            MemberSession.device_id != "",
        )
    )
    return set(rows)
