"""Issuing coupons: member claims, code entry, prizes and operator grants.

Every limit is a database fact, so concurrent requests cannot pass it: stock and budget move by
conditional UPDATEs; the per-customer and per-phone limits are unique keys on numbered slots
("<customer>#<n>", "<phone hash>#<n>"); prizes are unique by (template, source, source_ref).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.core.clock import utcnow
from shequn.core.outbox import enqueue_message
from shequn.promotions.campaigns.budget import BudgetExhausted, charge_budget
from shequn.promotions.coupons.errors import (
    CouponBudgetExhausted,
    CouponCodeInvalid,
    CouponCodeTaken,
    CouponEnded,
    CouponLimitReached,
    CouponNotActive,
    CouponNotStarted,
    CouponSoldOut,
)
from shequn.promotions.coupons.models import CouponCode, CouponGrant, CouponTemplate
from shequn.promotions.coupons.templates import face_value, get_template, normalize_code

# Member claims (with or without a code) share one source, so their numbered slots share one unique key.
CLAIM_SOURCE = "claim"
FANOUT_SOURCE = "fanout"  # source_ref is the zero-padded customer id: one fan-out coupon per customer and template
SLOT_ATTEMPTS = 3


def validity_of(tpl: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    """When a coupon issued now may be used: the template's dates, or N days from now."""
    if tpl.validity == "relative" and tpl.valid_days:
        return now, now + timedelta(days=tpl.valid_days)
    return tpl.starts_at, tpl.ends_at


def check_claimable(tpl: CouponTemplate, now: datetime) -> None:
    """Active and inside the claim window, else a clear error."""
    if tpl.status != "active":
        raise CouponNotActive(id=tpl.id)
    if now < tpl.starts_at:
        raise CouponNotStarted(starts_at=tpl.starts_at.isoformat())
    if now >= tpl.ends_at:
        raise CouponEnded(ends_at=tpl.ends_at.isoformat())


def find_grant(session: Session, *, template_id: int, source: str, source_ref: str) -> CouponGrant | None:
    """The grant a (template, source, source_ref) already produced, if any."""
    return session.scalar(
        select(CouponGrant).where(
            CouponGrant.template_id == template_id, CouponGrant.source == source, CouponGrant.source_ref == source_ref
        )
    )


def _take_stock(session: Session, tpl: CouponTemplate, n: int = 1) -> None:
    result = session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == tpl.id,
            (CouponTemplate.total_stock.is_(None)) | (CouponTemplate.issued_count + n <= CouponTemplate.total_stock),
        )
        .values(issued_count=CouponTemplate.issued_count + n)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CouponSoldOut(id=tpl.id)


def commit_budget(session: Session, tpl: CouponTemplate, amount: int) -> None:
    """Commit amount against the template's budget and the campaign's, or raise CouponBudgetExhausted."""
    if amount <= 0:
        return
    if tpl.budget_fen is not None:
        result = session.execute(
            update(CouponTemplate)
            .where(
                CouponTemplate.id == tpl.id,
                CouponTemplate.committed_fen + amount <= CouponTemplate.budget_fen,
            )
            .values(committed_fen=CouponTemplate.committed_fen + amount)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise CouponBudgetExhausted(id=tpl.id)
    else:
        session.execute(
            update(CouponTemplate)
            .where(CouponTemplate.id == tpl.id)
            .values(committed_fen=CouponTemplate.committed_fen + amount)
            .execution_options(synchronize_session=False)
        )
    try:
        charge_budget(session, workspace_id=tpl.workspace_id, campaign_id=tpl.campaign_id, amount_fen=amount)
    except BudgetExhausted as exc:
        raise CouponBudgetExhausted(id=tpl.id) from exc


def _slot(session: Session, tpl: CouponTemplate, customer_id: int, phone_hash: str | None) -> tuple[str, str | None]:
    """The next free per-customer slot and per-phone slot, or CouponLimitReached."""
    held = (
        session.scalar(
            select(func.count()).where(
                CouponGrant.template_id == tpl.id,
                CouponGrant.customer_id == customer_id,
                CouponGrant.source == CLAIM_SOURCE,
            )
        )
        or 0
    )
    if held >= tpl.per_customer_limit:
        raise CouponLimitReached(limit=tpl.per_customer_limit)
    phone_slot = None
    if tpl.per_phone_limit and phone_hash:
        used = (
            session.scalar(
                select(func.count()).where(
                    CouponGrant.template_id == tpl.id, CouponGrant.phone_slot.startswith(phone_hash + "#")
                )
            )
            or 0
        )
        if used >= tpl.per_phone_limit:
            raise CouponLimitReached(limit=tpl.per_phone_limit)
        phone_slot = f"{phone_hash}#{used + 1}"
    return f"{customer_id}#{held + 1}", phone_slot


def _insert_grant(
    session: Session,
    tpl: CouponTemplate,
    *,
    customer_id: int,
    source: str,
    source_ref: str,
    phone_slot: str | None,
    code: str | None,
    now: datetime,
) -> CouponGrant:
    """Stock, budget and the row together in one savepoint: all or nothing."""
    face = face_value(tpl)
    valid_from, valid_until = validity_of(tpl, now)
    with session.begin_nested():
        grant = CouponGrant(
            workspace_id=tpl.workspace_id,
            template_id=tpl.id,
            customer_id=customer_id,
            source=source,
            source_ref=source_ref,
            phone_slot=phone_slot,
            code=code,
            state="issued",
            face_fen=face,
            valid_from=valid_from,
            valid_until=valid_until,
            order_amount_fen=0,
            discount_fen=0,
            created_at=now,
        )
        session.add(grant)
        session.flush()
        _take_stock(session, tpl)
        commit_budget(session, tpl, face)
    return grant


def _announce(session: Session, tpl: CouponTemplate, grant: CouponGrant) -> None:
    """The delivery message, in the same transaction as the grant."""
    enqueue_message(
        session,
        workspace_id=tpl.workspace_id,
        customer_id=grant.customer_id,
        kind="coupon.granted",
        payload={"template_id": tpl.id, "grant_id": grant.id, "name": tpl.name, "source": grant.source},
        dedupe_key=f"coupon:{tpl.id}:grant:{grant.id}",
    )


def grant_coupon(
    session: Session,
    *,
    workspace_id: int,
    template_id: int,
    customer_id: int,
    source: str,
    source_ref: str,
    now: datetime | None = None,
) -> CouponGrant:
    """Issue one coupon as a prize or operator grant; idempotent by (template, source, source_ref).

    Stock and budget still hold; the member claim window and per-customer limits do not (the prize decides).
    """
    if source in (CLAIM_SOURCE, FANOUT_SOURCE):
        raise ValueError(f"source {source!r} is reserved")  # their refs are numbered slots / customer ids
    now = now or utcnow()
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    existing = find_grant(session, template_id=tpl.id, source=source, source_ref=source_ref)
    if existing is not None:
        return existing
    if tpl.status not in ("active", "paused"):
        raise CouponNotActive(id=tpl.id)
    if tpl.validity == "fixed" and now >= tpl.ends_at:
        raise CouponEnded(ends_at=tpl.ends_at.isoformat())
    customer = audience_service.get_customer(session, workspace_id=workspace_id, customer_id=customer_id)
    try:
        grant = _insert_grant(
            session,
            tpl,
            customer_id=customer.id,
            source=source,
            source_ref=source_ref,
            phone_slot=None,
            code=None,
            now=now,
        )
    except IntegrityError:
        again = find_grant(session, template_id=tpl.id, source=source, source_ref=source_ref)
        if again is None:
            raise
        return again
    _announce(session, tpl, grant)
    return grant


def claim_coupon(
    session: Session, *, workspace_id: int, template_id: int, customer_id: int, now: datetime | None = None
) -> CouponGrant:
    """A member claims a coupon of an open template (no code needed)."""
    now = now or utcnow()
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    if tpl.code_mode != "none":
        raise CouponCodeInvalid()  # a code-gated template is claimed by entering its code
    return _claim(session, tpl, customer_id=customer_id, code=None, now=now)


def _claim(session: Session, tpl: CouponTemplate, *, customer_id: int, code: str | None, now: datetime) -> CouponGrant:
    check_claimable(tpl, now)
    customer = audience_service.get_customer(session, workspace_id=tpl.workspace_id, customer_id=customer_id)
    phone_hash = (
        audience_service.customer_phone_hash(session, workspace_id=tpl.workspace_id, customer_id=customer.id)
        if tpl.per_phone_limit
        else None
    )
    for attempt in range(SLOT_ATTEMPTS):
        slot, phone_slot = _slot(session, tpl, customer.id, phone_hash)
        try:
            grant = _insert_grant(
                session,
                tpl,
                customer_id=customer.id,
                source=CLAIM_SOURCE,
                source_ref=slot,
                phone_slot=phone_slot,
                code=code,
                now=now,
            )
        except IntegrityError:
            if attempt == SLOT_ATTEMPTS - 1:
                raise CouponLimitReached(limit=tpl.per_customer_limit) from None
            continue  # a concurrent claim took the same slot: count again
        _announce(session, tpl, grant)
        return grant
    raise CouponLimitReached(limit=tpl.per_customer_limit)


def claim_by_code(
    session: Session, *, workspace_id: int, code: str, customer_id: int, now: datetime | None = None
) -> CouponGrant:
    """A member enters a code: a template's public code or one unique code (case-insensitive)."""
    now = now or utcnow()
    norm = normalize_code(code)
    if not norm:
        raise CouponCodeInvalid()
    tpl = session.scalar(
        select(CouponTemplate).where(
            CouponTemplate.workspace_id == workspace_id,
            CouponTemplate.code_mode == "public",
            CouponTemplate.public_code == norm,
        )
    )
    if tpl is not None:
        return _claim(session, tpl, customer_id=customer_id, code=norm, now=now)
    row = session.scalar(select(CouponCode).where(CouponCode.workspace_id == workspace_id, CouponCode.code == norm))
    if row is None:
        raise CouponCodeInvalid()
    tpl = get_template(session, workspace_id=workspace_id, template_id=row.template_id)
    if row.grant_id is not None:
        mine = session.get(CouponGrant, row.grant_id)
        if mine is not None and mine.customer_id == customer_id:
            return mine  # the same member entering the same code again: same coupon
        raise CouponCodeTaken()
    with session.begin_nested():  # the grant stands only if this claim is the one that took the code
        grant = _claim(session, tpl, customer_id=customer_id, code=norm, now=now)
        taken = session.execute(
            update(CouponCode)
            .where(and_(CouponCode.id == row.id, CouponCode.grant_id.is_(None)))
            .values(grant_id=grant.id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise CouponCodeTaken()
    return grant


def list_customer_grants(
    session: Session, *, workspace_id: int, customer_id: int, limit: int = 100
) -> list[tuple[CouponGrant, CouponTemplate]]:
    """A member's coupons with their templates, open ones first (soonest to expire), then the rest."""
    rows = session.execute(
        select(CouponGrant, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == CouponGrant.template_id)
        .where(CouponGrant.workspace_id == workspace_id, CouponGrant.customer_id == customer_id)
        .order_by(CouponGrant.id.desc())
        .limit(limit)
    ).all()
    now = utcnow()
    out = [(g, t) for g, t in rows]
    out.sort(key=lambda gt: (shown_state(gt[0], now) != "issued", gt[0].valid_until))
    return out


def shown_state(grant: CouponGrant, now: datetime) -> str:
    """The state a member sees: an issued coupon past its validity is expired even before the nightly job."""
    if grant.state == "issued" and grant.valid_until <= now:
        return "expired"
    return grant.state


def list_grants(
    session: Session, *, workspace_id: int, template_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[CouponGrant], int]:
    """A page of a template's grants (newest first) and the total."""
    q = select(CouponGrant).where(CouponGrant.workspace_id == workspace_id, CouponGrant.template_id == template_id)
    total = session.scalar(q.with_only_columns(func.count(CouponGrant.id))) or 0
    return list(session.scalars(q.order_by(CouponGrant.id.desc()).limit(limit).offset(offset))), total
