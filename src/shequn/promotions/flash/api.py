"""Operator API of promotions.flash: sales, their lifecycle, reservations, payment from integrations."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session

from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.flash import service
from shequn.promotions.flash.models import FlashReservation, FlashSale
from shequn.promotions.flash.schemas import OversellCheck, PayIn, ReservationOut, SaleIn, SaleOut, SalePatch

router = APIRouter(prefix="/api/v1/flash-sales", tags=["promotions"])
Ref = Path(min_length=8, max_length=32, pattern="^[0-9a-f]+$")


def sale_out(sale: FlashSale) -> SaleOut:
    """A sale with its phase and live stock."""
    out = SaleOut.model_validate(sale)
    out.phase = service.phase_of(sale)
    out.left = service.stock_left(sale)
    return out


def reservation_out(row: FlashReservation) -> ReservationOut:
    """A reservation's public shape."""
    return ReservationOut(
        ref=row.ref, sale_id=row.sale_id, qty=row.qty, amount=row.amount, state=row.state, expires_at=row.expires_at
    )


@router.get("", response_model=Paginated[SaleOut])
def list_sales(
    campaign_id: int | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[SaleOut]:
    """The workspace's flash sales."""
    rows, total = service.list_sales(
        db, workspace_id=actor.workspace_id, campaign_id=campaign_id, limit=page.limit, offset=page.offset
    )
    return Paginated.of([sale_out(s) for s in rows], total, page.limit, page.offset)


@router.post("", response_model=SaleOut, status_code=201)
def create_sale(body: SaleIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> SaleOut:
    """Create a draft flash sale (publish it to load its stock)."""
    sale = service.create_sale(db, workspace_id=actor.workspace_id, data=body, created_by=actor.operator_id)
    identity_service.record_audit(db, actor, "flash_sale.create", "flash_sale", sale.id, {"title": sale.title})
    db.commit()
    return sale_out(sale)


@router.get("/{sale_id}", response_model=SaleOut)
def get_sale(sale_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> SaleOut:
    """One flash sale."""
    return sale_out(service.get_sale(db, workspace_id=actor.workspace_id, sale_id=sale_id))


@router.patch("/{sale_id}", response_model=SaleOut)
def update_sale(
    sale_id: DbId, body: SalePatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SaleOut:
    """Edit a sale (price, stock, limit and start only while a draft)."""
    sale = service.update_sale(db, workspace_id=actor.workspace_id, sale_id=sale_id, data=body)
    identity_service.record_audit(db, actor, "flash_sale.update", "flash_sale", sale.id, body.model_dump(mode="json"))
    db.commit()
    return sale_out(sale)


@router.post("/{sale_id}/publish", response_model=SaleOut)
def publish_sale(sale_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> SaleOut:
    """Publish a draft: claims open at its start time."""
    sale = service.publish_sale(db, workspace_id=actor.workspace_id, sale_id=sale_id)
    identity_service.record_audit(db, actor, "flash_sale.publish", "flash_sale", sale.id, {})
    db.commit()
    return sale_out(sale)


@router.post("/{sale_id}/cancel", response_model=SaleOut)
def cancel_sale(sale_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> SaleOut:
    """Stop a sale; reservations already made can still be paid until they expire."""
    sale = service.cancel_sale(db, workspace_id=actor.workspace_id, sale_id=sale_id)
    identity_service.record_audit(db, actor, "flash_sale.cancel", "flash_sale", sale.id, {})
    db.commit()
    return sale_out(sale)


@router.get("/{sale_id}/reservations", response_model=list[ReservationOut])
def list_reservations(
    sale_id: DbId,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[ReservationOut]:
    """The sale's reservations, newest first (due ones are expired on read)."""
    service.get_sale(db, workspace_id=actor.workspace_id, sale_id=sale_id)
    service.expire_due(db, sale_id=sale_id)
    db.commit()
    rows = service.list_reservations(
        db, workspace_id=actor.workspace_id, sale_id=sale_id, limit=page.limit, offset=page.offset
    )
    return [reservation_out(r) for r in rows]


@router.get("/{sale_id}/check", response_model=OversellCheck)
def oversell_check(
    sale_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> OversellCheck:
    """sold == paid + reserved and never above stock (Redis: after the stream is written)."""
    sale = service.get_sale(db, workspace_id=actor.workspace_id, sale_id=sale_id)
    if service.redis_url():
        service.drain(max_batches=50)
        db.refresh(sale)
    return service.oversell_check(db, sale)


@router.post("/reservations/{ref}/pay", response_model=ReservationOut)
def pay_reservation(
    body: PayIn,
    ref: str = Ref,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> ReservationOut:
    """Confirm payment of a reservation (integrations); an expired one is refused with flash_reservation_expired."""
    row = service.pay_reservation(db, workspace_id=actor.workspace_id, ref=ref, order_ref=body.order_ref)
    db.commit()
    return reservation_out(row)


@router.post("/reservations/{ref}/cancel", response_model=ReservationOut)
def cancel_reservation(
    ref: str = Ref, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> ReservationOut:
    """Release an unpaid reservation: its stock returns to the sale."""
    row = service.cancel_reservation(db, workspace_id=actor.workspace_id, ref=ref)
    db.commit()
    return reservation_out(row)
