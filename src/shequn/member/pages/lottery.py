"""Member H5 and member API: the lottery wheel, draws, my prizes, verification."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from shequn.core.errors import ShequnError
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb
from shequn.promotions.guard import service as guard_service
from shequn.promotions.lottery import service as lottery_service
from shequn.promotions.lottery.errors import LotteryNotFound
from shequn.promotions.lottery.schemas import (
    AddressIn,
    DrawIn,
    DrawOut,
    MemberStateOut,
    VerificationOut,
    WonPrizeOut,
)

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m/lottery", tags=["member"])


def _visible(db: Session, workspace_id: int, lottery_id: int) -> lottery_service.Lottery:
    """A lottery members may see: published (any phase) or revealed; drafts do not exist for them."""
    lottery = lottery_service.get_lottery(db, workspace_id=workspace_id, lottery_id=lottery_id)
    if lottery.status == "draft":
        raise LotteryNotFound(id=lottery_id)
    return lottery


def _my_prizes(db: Session, member: mweb.Member, lottery_id: int) -> list[WonPrizeOut]:
    rows = lottery_service.list_my_draws(
        db, workspace_id=member.workspace_id, lottery_id=lottery_id, customer_id=member.customer_id
    )
    return [lottery_service.won_out(d, p) for d, p in rows]


# --- member API ---------------------------------------------------------------------------------


@api.get("/{lottery_id}", response_model=MemberStateOut)
def state(
    lottery_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> MemberStateOut:
    """The wheel's prizes, my draws left today, my next draw number and points."""
    lottery = _visible(db, member.workspace_id, lottery_id)
    return lottery_service.member_state(db, lottery, customer_id=member.customer_id, ws_slug=member.workspace_slug)


@api.post("/{lottery_id}/draw", response_model=DrawOut)
def draw(
    lottery_id: DbId,
    body: DrawIn,
    request: Request,
    member: mweb.Member = Depends(mweb.member),
    db: Session = Depends(get_db),
) -> DrawOut:
    """Draw (the server decides; the wheel only animates). The same draw_no again replays the same result."""
    lottery = _visible(db, member.workspace_id, lottery_id)
    guard_service.check_member_action(
        db,
        workspace_id=member.workspace_id,
        action="lottery.draw",
        customer_id=member.customer_id,
        device_id=member.device_id or None,
        ip=request.client.host if request.client else None,
    )
    result = lottery_service.draw_lottery(
        db,
        workspace_id=member.workspace_id,
        lottery_id=lottery.id,
        customer_id=member.customer_id,
        draw_no=body.draw_no,
        pay_with_points=body.pay_with_points,
        client_nonce=body.client_nonce,
    )
    db.commit()
    prize = next(p for p in lottery_service.list_prizes(db, lottery_id=lottery.id) if p.id == result.draw.prize_id)
    return DrawOut(
        result=lottery_service.won_out(result.draw, prize),
        replayed=result.replayed,
        state=lottery_service.member_state(db, lottery, customer_id=member.customer_id, ws_slug=member.workspace_slug),
    )


@api.get("/{lottery_id}/prizes", response_model=list[WonPrizeOut])
def my_prizes(
    lottery_id: DbId, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> list[WonPrizeOut]:
    """What I won in this lottery, with the fulfilment state of physical prizes."""
    lottery = _visible(db, member.workspace_id, lottery_id)
    return _my_prizes(db, member, lottery.id)


@api.post("/prizes/{draw_id}/address", response_model=WonPrizeOut)
def give_address(
    draw_id: DbId, body: AddressIn, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> WonPrizeOut:
    """Where my physical prize goes (can be corrected until it ships)."""
    d = lottery_service.set_address(
        db,
        workspace_id=member.workspace_id,
        draw_id=draw_id,
        customer_id=member.customer_id,
        name=body.name,
        phone=body.phone,
        address=body.address,
    )
    db.commit()
    prize = next(p for p in lottery_service.list_prizes(db, lottery_id=d.lottery_id) if p.id == d.prize_id)
    return lottery_service.won_out(d, prize)


@api.get("/verify/{ws_slug}/{lottery_id}", response_model=VerificationOut)
def verification(
    ws_slug: str,
    lottery_id: DbId,
    limit: int = Query(5000, ge=1, le=20000),
    offset: int = Query(0, ge=0, le=10**9),
    db: Session = Depends(get_db),
) -> VerificationOut:
    """Public, no sign-in: commitment, seed (after the end), prize table and every draw's inputs and outcome."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    return lottery_service.verification(db, workspace_id=ws.id, lottery_id=lottery_id, limit=limit, offset=offset)


# --- H5 pages -----------------------------------------------------------------------------------


def _message(request: Request, ws: mweb.WorkspaceRef, member: mweb.Member | None, exc: ShequnError) -> HTMLResponse:
    return mweb.render(
        request,
        "m_message.html",
        workspace=ws,
        member=member,
        status=exc.status_code,
        title_key="lottery.m.title",
        message=exc.message(ws.locale or "zh-CN"),
    )


@router.get("/m/{ws_slug}/lottery/{lottery_id}", response_class=HTMLResponse)
def wheel_page(ws_slug: str, lottery_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """The wheel: spin (the server's result), draws left today, buy a draw with points, my prizes."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    try:
        lottery = _visible(db, ws.id, lottery_id)
    except ShequnError as exc:
        return _message(request, ws, member, exc)
    if member is None:
        return _message(request, ws, None, mweb.MemberLoginRequired())
    state_out = lottery_service.member_state(db, lottery, customer_id=member.customer_id, ws_slug=ws.slug)
    return mweb.render(
        request,
        "lottery.html",
        workspace=ws,
        member=member,
        state=state_out,
        state_json=state_out.model_dump_json().replace("<", "\\u003c"),  # safe inside <script>
        prizes=_my_prizes(db, member, lottery.id),
    )


@router.get("/m/{ws_slug}/lottery/{lottery_id}/verify", response_class=HTMLResponse)
def verify_page(ws_slug: str, lottery_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """Public: the commitment, the revealed seed, the prize table and the draw log, with how to recompute."""
    ws = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, ws)
    try:
        record = lottery_service.verification(db, workspace_id=ws.id, lottery_id=lottery_id, limit=500)
    except ShequnError as exc:
        return _message(request, ws, member, exc)
    mine = (
        lottery_service.member_state(
            db, _visible(db, ws.id, lottery_id), customer_id=member.customer_id, ws_slug=ws.slug
        )
        if member
        else None
    )
    return mweb.render(
        request,
        "lottery_verify.html",
        workspace=ws,
        member=member,
        record=record,
        my_player=mine.player if mine else "",
    )
