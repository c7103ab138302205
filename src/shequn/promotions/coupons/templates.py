"""Coupon templates: define, check, change status, list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.coupons.errors import CouponInvalid, CouponTemplateNotFound
from shequn.promotions.coupons.models import CouponTemplate
from shequn.promotions.coupons.schemas import TemplateIn, TemplatePatch

# Fields a patch may set to NULL explicitly (unlimited stock, no phone limit, no budget, no cap, no campaign).
NULLABLE = {"max_discount_fen", "valid_days", "total_stock", "per_phone_limit", "budget_fen", "campaign_id"}
STATUS_MOVES = {
    "draft": {"active", "ended"},
    "active": {"paused", "ended"},
    "paused": {"active", "ended"},
    "ended": set(),
}


def face_value(tpl: CouponTemplate) -> int:
    """The most one coupon can take off an order: what an open coupon commits against the budget."""
    if tpl.kind in ("fixed", "threshold"):
        return tpl.amount_fen
    return tpl.max_discount_fen or 0


def normalize_code(code: str) -> str:
    """Codes match case-insensitively and ignore surrounding blanks."""
    return code.strip().upper()


def _check(tpl: CouponTemplate) -> None:
    """Cross-field rules; each error names its field."""
    if tpl.ends_at <= tpl.starts_at:
        raise CouponInvalid(field="ends_at")
    if tpl.kind in ("fixed", "threshold") and tpl.amount_fen <= 0:
        raise CouponInvalid(field="amount_fen")
    if tpl.kind == "threshold" and tpl.min_order_fen <= tpl.amount_fen:
        raise CouponInvalid(field="min_order_fen")
    if tpl.kind == "percent" and not 1 <= tpl.percent_off <= 99:
        raise CouponInvalid(field="percent_off")
    if tpl.validity == "relative" and not tpl.valid_days:
        raise CouponInvalid(field="valid_days")
    if tpl.scope == "products" and not tpl.scope_skus:
        raise CouponInvalid(field="scope_skus")
    if tpl.scope == "categories" and not tpl.scope_categories:
        raise CouponInvalid(field="scope_categories")
    if tpl.code_mode == "public" and not tpl.public_code:
        raise CouponInvalid(field="public_code")
    if tpl.budget_fen is not None and face_value(tpl) <= 0:
        raise CouponInvalid(field="max_discount_fen")  # a budget needs a bounded coupon value
    if tpl.total_stock is not None and tpl.total_stock < tpl.issued_count:
        raise CouponInvalid(field="total_stock")
    if tpl.budget_fen is not None and tpl.budget_fen < tpl.committed_fen:
        raise CouponInvalid(field="budget_fen")


def _apply(session: Session, tpl: CouponTemplate, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(tpl, key, value)
    if tpl.code_mode == "public" and tpl.public_code:
        tpl.public_code = normalize_code(tpl.public_code)
    else:
        tpl.public_code = None
    tpl.scope_skus = [s.strip() for s in tpl.scope_skus or [] if s.strip()]
    tpl.scope_categories = [c.strip() for c in tpl.scope_categories or [] if c.strip()]
    _check(tpl)
    if not campaigns_service.campaign_belongs(session, workspace_id=tpl.workspace_id, campaign_id=tpl.campaign_id):
        raise CouponInvalid(field="campaign_id")
    if tpl.public_code:
        clash = session.scalar(
            select(CouponTemplate.id).where(
                CouponTemplate.workspace_id == tpl.workspace_id,
                CouponTemplate.public_code == tpl.public_code,
                CouponTemplate.id != (tpl.id or 0),
            )
        )
        if clash is not None:
            raise CouponInvalid(field="public_code")


def create_template(
    session: Session, *, workspace_id: int, data: TemplateIn, created_by: int | None = None
) -> CouponTemplate:
    """Create a draft template."""
    tpl = CouponTemplate(
        workspace_id=workspace_id,
        created_by=created_by,
        status="draft",
        issued_count=0,
        redeemed_count=0,
        committed_fen=0,
        discount_fen=0,
        description="",
        amount_fen=0,
        percent_off=0,
        min_order_fen=0,
        scope="all",
        validity="fixed",
        per_customer_limit=1,
        stackable=False,
        code_mode="none",
        scope_skus=[],
        scope_categories=[],
    )
    _apply(session, tpl, data.model_dump(exclude_none=True))
    session.add(tpl)
    session.flush()
    return tpl


def update_template(session: Session, *, workspace_id: int, template_id: int, data: TemplatePatch) -> CouponTemplate:
    """Change a template; kind and code mode are fixed once coupons exist."""
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    values = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None or k in NULLABLE}
    if tpl.issued_count > 0:
        for frozen in ("kind", "code_mode"):
            if frozen in values and values[frozen] != getattr(tpl, frozen):
                raise CouponInvalid(field=frozen)
    _apply(session, tpl, values)
    tpl.updated_at = utcnow()
    session.flush()
    return tpl


def set_status(session: Session, *, workspace_id: int, template_id: int, status: str) -> CouponTemplate:
    """Activate, pause, resume or end a template (ended is final)."""
    tpl = get_template(session, workspace_id=workspace_id, template_id=template_id)
    if status != tpl.status:
        if status not in STATUS_MOVES.get(tpl.status, set()):
            raise CouponInvalid(field="status")
        tpl.status = status
        tpl.updated_at = utcnow()
        session.flush()
    return tpl


def get_template(session: Session, *, workspace_id: int, template_id: int) -> CouponTemplate:
    """A template of this workspace."""
    tpl = session.get(CouponTemplate, template_id)
    if tpl is None or tpl.workspace_id != workspace_id:
        raise CouponTemplateNotFound(id=template_id)
    return tpl


def refresh_template(session: Session, tpl: CouponTemplate) -> CouponTemplate:
    """Re-read counters moved by other transactions' conditional UPDATEs."""
    session.refresh(tpl)
    return tpl


def list_templates(
    session: Session,
    *,
    workspace_id: int,
    status: str | None = None,
    campaign_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[CouponTemplate], int]:
    """A page of templates (newest first) and the total."""
    q = select(CouponTemplate).where(CouponTemplate.workspace_id == workspace_id)
    if status:
        q = q.where(CouponTemplate.status == status)
    if campaign_id is not None:
        q = q.where(CouponTemplate.campaign_id == campaign_id)
    total = session.scalar(q.with_only_columns(func.count(CouponTemplate.id))) or 0
    rows = session.scalars(q.order_by(CouponTemplate.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def list_templates_for_choice(session: Session, *, workspace_id: int) -> list[tuple[int, str]]:
    """(id, name) of templates a prize or a form may point at (not ended), newest first."""
    rows = session.execute(
        select(CouponTemplate.id, CouponTemplate.name)
        .where(CouponTemplate.workspace_id == workspace_id, CouponTemplate.status != "ended")
        .order_by(CouponTemplate.id.desc())
        .limit(500)
    )
    return [(int(i), str(n)) for i, n in rows]


def list_open_templates(session: Session, *, workspace_id: int) -> list[CouponTemplate]:
    """Active templates members can claim on the H5 page now (public claim: no unique codes)."""
    now = utcnow()
    return list(
        session.scalars(
            select(CouponTemplate)
            .where(
                CouponTemplate.workspace_id == workspace_id,
                CouponTemplate.status == "active",
                CouponTemplate.code_mode == "none",
                CouponTemplate.starts_at <= now,
                CouponTemplate.ends_at > now,
            )
            .order_by(CouponTemplate.ends_at, CouponTemplate.id)
            .limit(100)
        )
    )
