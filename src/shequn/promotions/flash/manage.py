"""Flash-sale lifecycle: create, edit, publish (stock goes to Redis), cancel; phase and live stock."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequn.commerce import service as commerce_service
from shequn.core.clock import utcnow
from shequn.core.db import on_commit
from shequn.core.errors import NotFound, ValidationFailed
from shequn.promotions.flash import redis_store
from shequn.promotions.flash.claims import redis_url
from shequn.promotions.flash.errors import FlashBadTransition, FlashNotEditable, FlashSaleNotFound
from shequn.promotions.flash.models import FlashCustomerCount, FlashSale
from shequn.promotions.flash.schemas import SaleIn, SalePatch

log = logging.getLogger(__name__)
FROZEN_WHEN_PUBLISHED = ("flash_price", "stock", "per_customer_limit", "starts_at")


def phase_of(sale: FlashSale, now: datetime | None = None) -> str:
    """What operators and members see: draft, scheduled, live, ended or cancelled."""
    now = now or utcnow()
    if sale.status in ("draft", "cancelled"):
        return sale.status
    if now < sale.starts_at:
        return "scheduled"
    return "live" if now < sale.ends_at else "ended"


def get_sale(session: Session, *, workspace_id: int, sale_id: int) -> FlashSale:
    """A sale of this workspace, or FlashSaleNotFound."""
    sale = session.get(FlashSale, sale_id)
    if sale is None or sale.workspace_id != workspace_id:
        raise FlashSaleNotFound()
    return sale


def list_sales(
    session: Session, *, workspace_id: int, campaign_id: int | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[FlashSale], int]:
    """The workspace's sales, newest start first, and the total."""
    stmt = select(FlashSale).where(FlashSale.workspace_id == workspace_id)
    if campaign_id is not None:
        stmt = stmt.where(FlashSale.campaign_id == campaign_id)
    total = session.scalar(stmt.with_only_columns(func.count(FlashSale.id))) or 0
    rows = session.scalars(stmt.order_by(FlashSale.starts_at.desc(), FlashSale.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def _check_campaign(session: Session, workspace_id: int, campaign_id: int | None) -> None:
    if campaign_id is None:
        return
    from shequn.promotions.campaigns import service as campaigns_service

    if not campaigns_service.campaign_belongs(session, workspace_id=workspace_id, campaign_id=campaign_id):
        raise ValidationFailed(details=[{"field": "campaign_id", "message": "no such campaign in this workspace"}])


def create_sale(session: Session, *, workspace_id: int, data: SaleIn, created_by: int | None = None) -> FlashSale:
    """A draft sale; product fields default from the commerce product."""
    title, sku, original = data.title, data.sku, data.original_price
    if data.product_id is not None:
        try:
            product = commerce_service.get_product(session, workspace_id=workspace_id, product_id=data.product_id)
        except NotFound:
            raise ValidationFailed(details=[{"field": "product_id", "message": "no such product"}]) from None
        title, sku = title or product.title, sku or product.sku
        original = product.price if original is None else original
    if not title:
        raise ValidationFailed(details=[{"field": "title", "message": "title or product_id is required"}])
    _check_campaign(session, workspace_id, data.campaign_id)
    now = utcnow()
    sale = FlashSale(
        workspace_id=workspace_id,
        campaign_id=data.campaign_id,
        product_id=data.product_id,
        sku=sku,
        title=title,
        flash_price=data.flash_price,
        original_price=original or 0,
        stock=data.stock,
        sold=0,
        paid_units=0,
        per_customer_limit=data.per_customer_limit,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        status="draft",
        reservation_ttl_min=data.reservation_ttl_min,
        preregistration=data.preregistration,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(sale)
    session.flush()
    return sale


def update_sale(session: Session, *, workspace_id: int, sale_id: int, data: SalePatch) -> FlashSale:
    """Edit a sale: anything while a draft; after publishing, not what claims are counted against."""
    sale = get_sale(session, workspace_id=workspace_id, sale_id=sale_id)
    changes = data.model_dump(exclude_unset=True)
    if sale.status == "cancelled":
        raise FlashBadTransition(status=sale.status)
    if sale.status == "published" and any(k in changes for k in FROZEN_WHEN_PUBLISHED):
        raise FlashNotEditable()
    if "campaign_id" in changes:
        _check_campaign(session, workspace_id, changes["campaign_id"])
    for key, value in changes.items():
        if value is not None or key == "campaign_id":
            setattr(sale, key, value)
    if sale.ends_at <= sale.starts_at:
        raise ValidationFailed(details=[{"field": "ends_at", "message": "ends_at must be after starts_at"}])
    sale.updated_at = utcnow()
    session.flush()
    if sale.status == "published":
        _refresh_redis_on_commit(session, sale)
    return sale


def publish_sale(session: Session, *, workspace_id: int, sale_id: int) -> FlashSale:
    """Open a draft for claims at its start time; its stock is loaded into Redis after commit."""
    sale = get_sale(session, workspace_id=workspace_id, sale_id=sale_id)
    if sale.status != "draft":
        raise FlashBadTransition(status=sale.status)
    if sale.ends_at <= utcnow():
        raise ValidationFailed(details=[{"field": "ends_at", "message": "the sale would already be over"}])
    sale.status = "published"
    sale.updated_at = utcnow()
    session.flush()
    _refresh_redis_on_commit(session, sale)
    return sale


def cancel_sale(session: Session, *, workspace_id: int, sale_id: int) -> FlashSale:
    """Stop a sale: no more claims; live reservations can still be paid until they expire."""
    sale = get_sale(session, workspace_id=workspace_id, sale_id=sale_id)
    if sale.status == "cancelled":
        return sale
    sale.status = "cancelled"
    sale.updated_at = utcnow()
    session.flush()
    _refresh_redis_on_commit(session, sale)
    return sale


def _refresh_redis_on_commit(session: Session, sale: FlashSale) -> None:
    if not redis_url():
        return
    sale_id, workspace_id = sale.id, sale.workspace_id

    def push() -> None:
        from shequn.core.db import new_session

        with new_session() as own:
            load_into_redis(own, workspace_id=workspace_id, sale_id=sale_id)

    on_commit(session, push)


def load_into_redis(session: Session, *, workspace_id: int, sale_id: int) -> bool:
    """Put a published or cancelled sale's terms in Redis (stock and holdings only if absent); False if none."""
    sale = session.get(FlashSale, sale_id)
    if sale is None or sale.workspace_id != workspace_id or sale.status == "draft":
        return False
    rows = session.execute(
        select(FlashCustomerCount.customer_id, FlashCustomerCount.qty).where(
            FlashCustomerCount.sale_id == sale_id, FlashCustomerCount.qty > 0
        )
    )
    holdings = {int(cid): int(qty) for cid, qty in rows}
    redis_store.load_sale(
        redis_store.client(redis_url()),
        sale_id=sale.id,
        workspace_id=sale.workspace_id,
        starts_at=sale.starts_at,
        ends_at=sale.ends_at,
        limit=sale.per_customer_limit,
        ttl_min=sale.reservation_ttl_min,
        price=sale.flash_price,
        status=sale.status,
        left=sale.stock - sale.sold,
        holdings=holdings,
    )
    return True


def stock_left(sale: FlashSale) -> int:
    """Units still claimable: Redis's count when configured (the database catches up from the stream)."""
    if redis_url() and sale.status != "draft":
        left = redis_store.stock_left(redis_store.client(redis_url()), sale.id)
        if left is not None:
            return left
    return max(0, sale.stock - sale.sold)
