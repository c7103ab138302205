"""Member H5 and member API: flash-sale page with countdown and live stock, claim, reservation.

With Redis configured, `POST /api/v1/m/flash/{sale_id}/claim` is answered by the ASGI fast path in
`promotions.flash.hotpath` before this router is reached; the route below is the same contract (it is what
OpenAPI documents) and serves the embedded SQL engine.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb
from shequn.promotions.flash import service as flash_service
from shequn.promotions.flash.errors import FlashSaleNotFound, refusal
from shequn.promotions.flash.hotpath import prime_session
from shequn.promotions.flash.schemas import ClaimIn, ClaimOut, ReservationOut, StockOut
from shequn.promotions.guard import service as guard_service

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m/flash", tags=["member"])


class JoinIn(BaseModel):
    """A newcomer joining from the flash-sale page."""

    workspace: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=40)


def _res_out(view: Any) -> ReservationOut:
    return ReservationOut(
        ref=view.ref,
        sale_id=view.sale_id,
        qty=view.qty,
        amount=view.amount,
        state=view.state,
        expires_at=view.expires_at,
    )


def _public_sale(db: Session, workspace_id: int, sale_id: int) -> Any:
    sale = flash_service.get_sale(db, workspace_id=workspace_id, sale_id=sale_id)
    if sale.status == "draft":
        raise FlashSaleNotFound()
    return sale


def _stock(sale: Any) -> StockOut:
    return StockOut(
        sale_id=sale.id,
        left=flash_service.stock_left(sale),
        stock=sale.stock,
        phase=flash_service.phase_of(sale),
        starts_at=sale.starts_at,
        ends_at=sale.ends_at,
        server_time=utcnow(),
    )


def _guard(db: Session, request: Request, member: mweb.Member) -> None:
    """The anti-abuse guard: blacklist, per-customer/device limits, bot-like bursts."""
    guard_service.check_member_action(
        db,
        workspace_id=member.workspace_id,
        action="flash.claim",
        customer_id=member.customer_id,
        device_id=member.device_id or None,
        ip=request.client.host if request.client else None,
    )


@api.get("/{sale_id}/stock", response_model=StockOut)
def live_stock(
    sale_id: DbId,
    response: Response,
    ws: str = Query(min_length=1, max_length=64, description="the brand's slug"),
    db: Session = Depends(get_db),
) -> StockOut:
    """Live stock and the server clock (cacheable for one second)."""
    workspace = mweb.workspace_by_slug(db, ws)
    out = _stock(_public_sale(db, workspace.id, sale_id))
    response.headers["Cache-Control"] = "public, max-age=1"
    return out


@api.post("/{sale_id}/claim", response_model=ClaimOut, status_code=201)
def claim(
    sale_id: DbId,
    request: Request,
    body: ClaimIn | None = None,
    idempotency_key: str | None = Header(default=None, max_length=64),
    member: mweb.Member = Depends(mweb.member),
    db: Session = Depends(get_db),
) -> Any:
    """Claim stock: 201 with the reservation; a replayed Idempotency-Key returns the same reservation (200).

    Refusals are errors: flash_sold_out, flash_limit_reached, flash_not_started, flash_ended (409); the
    anti-abuse guard's guard_blocked (403) and guard_rate_limited / guard_too_fast (429).
    """
    try:
        _guard(db, request, member)
    except ShequnError as exc:
        outcome = "blocked" if exc.status_code == 403 else "rate_limited"
        flash_service.note_refusal(db, workspace_id=member.workspace_id, sale_id=sale_id, outcome=outcome)
        db.commit()  # keeps the guard's flag and the count
        raise
    db.commit()
    result = flash_service.claim(
        db,
        workspace_id=member.workspace_id,
        sale_id=sale_id,
        customer_id=member.customer_id,
        qty=body.qty if body else 1,
        idem_key=idempotency_key or "",
    )
    db.commit()
    if result.outcome != "ok" or result.reservation is None:
        raise refusal(result.outcome)
    out = ClaimOut(outcome="ok", replay=result.replay, reservation=_res_out(result.reservation))
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if result.replay else 201)


@api.post("/{sale_id}/preregister")
def preregister(
    sale_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> dict[str, bool]:
    """Ask to be reminded before the sale starts (once per member; asking again is fine)."""
    created = flash_service.preregister(
        db, workspace_id=member.workspace_id, sale_id=sale_id, customer_id=member.customer_id
    )
    db.commit()
    return {"preregistered": True, "created": created}


@api.get("/reservations/{ref}", response_model=ReservationOut)
def my_reservation(ref: str, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> Any:
    """One of the member's reservations (expired on read when its pay-by time has passed)."""
    row = flash_service.get_reservation(
        db, workspace_id=member.workspace_id, ref=ref[:32], customer_id=member.customer_id
    )
    db.commit()
    return _res_out(flash_service.view_of(row))


@api.post("/reservations/{ref}/cancel", response_model=ReservationOut)
def cancel_mine(ref: str, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> Any:
    """Give a reservation back before paying (its stock returns to the sale)."""
    row = flash_service.cancel_reservation(
        db, workspace_id=member.workspace_id, ref=ref[:32], customer_id=member.customer_id
    )
    db.commit()
    return _res_out(flash_service.view_of(row))


@api.post("/join")
def join(body: JoinIn, request: Request, response: Response, db: Session = Depends(get_db)) -> dict[str, Any]:
    """Sign a newcomer in from the flash-sale page (nickname only)."""
    ws = mweb.workspace_by_slug(db, body.workspace)
    m = mweb.sign_in_new_member(db, request, response, workspace_id=ws.id, name=body.name)
    db.commit()
    return {"customer_id": m.customer_id, "name": m.name}


# --- H5 page ------------------------------------------------------------------------------------


@router.get("/m/{ws_slug}/flash/{sale_id}", response_class=HTMLResponse)
def sale_page(ws_slug: str, sale_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """The flash-sale page: countdown, live stock, claim button, my reservation, pre-registration."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    try:
        sale = _public_sale(db, ws.id, sale_id)
    except ShequnError as exc:
        return mweb.render(
            request,
            "m_message.html",
            workspace=ws,
            member=member,
            status=exc.status_code,
            title_key="flash.title",
            message=exc.message(ws.locale),
        )
    mine: list[Any] = []
    prereg = False
    if member is not None:
        # The page view warms the claim fast path's session cache, so the burst at the start needs no lookups.
        prime_session(
            request.headers.get("authorization", "")[7:].strip() or request.cookies.get(mweb.MEMBER_COOKIE, "")
        )
        flash_service.expire_due(db, sale_id=sale.id)
        db.commit()
        rows = flash_service.list_reservations(db, workspace_id=ws.id, sale_id=sale.id, customer_id=member.customer_id)
        mine = [_res_out(flash_service.view_of(r)) for r in rows]
        prereg = flash_service.is_preregistered(db, sale_id=sale.id, customer_id=member.customer_id)
    return mweb.render(
        request,
        "flash.html",
        workspace=ws,
        member=member,
        sale=sale,
        stock=_stock(sale),
        mine=mine,
        prereg=prereg,
    )
