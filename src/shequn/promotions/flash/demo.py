"""The demo brand's flash sale: one live sale on a real product with a few claims and a payment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.commerce import service as commerce_service
from shequn.core.clock import utcnow
from shequn.promotions.flash import service
from shequn.promotions.flash.models import FlashSale
from shequn.promotions.flash.schemas import SaleIn


def demo_step(session: Session, *, workspace_id: int, campaign_id: int | None = None) -> dict[str, int]:
    """Create (once) a live flash sale in the demo campaign and let a few demo customers claim it."""
    existing = session.scalar(
        select(FlashSale.id).where(FlashSale.workspace_id == workspace_id, FlashSale.campaign_id == campaign_id)
    )
    if existing is not None:
        return {"flash_sales": 0, "flash_claims": 0}
    products, _total = commerce_service.list_products(session, workspace_id=workspace_id, limit=1)
    now = utcnow()
    data = SaleIn(
        title=products[0].title if products else "限时秒杀",
        product_id=products[0].id if products else None,
        campaign_id=campaign_id,
        flash_price=max(100, (products[0].price if products else 19900) // 2),
        stock=50,
        per_customer_limit=2,
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(days=2),
        reservation_ttl_min=30,
    )
    sale = service.create_sale(session, workspace_id=workspace_id, data=data)
    service.publish_sale(session, workspace_id=workspace_id, sale_id=sale.id)
    session.commit()
    claims = 0
    customers, _n = audience_service.list_customers(
        session, workspace_id=workspace_id, flt=audience_service.CustomerFilter(), limit=8
    )
    # Each claim is a unit of work of its own (as a member's request is), so the demo commits like a boundary.
    for customer_id in [c.id for c in customers]:
        result = service.claim(session, workspace_id=workspace_id, sale_id=sale.id, customer_id=customer_id)
        session.commit()
        if result.outcome == "ok" and result.reservation is not None:
            claims += 1
            if claims % 2 == 1:
                service.pay_reservation(
                    session, workspace_id=workspace_id, ref=result.reservation.ref, order_ref=f"demo:{claims}"
                )
                session.commit()
    return {"flash_sales": 1, "flash_claims": claims}
