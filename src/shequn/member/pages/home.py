"""Member H5: sign-in by link, sign-out, my communities; the integration API that issues sign-in links."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.core.errors import ShequnError
from shequn.core.web import get_db
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.member import web as mweb

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["members"])


def _communities(db: Session, member: mweb.Member) -> list[dict[str, Any]]:
    rows = community_service.list_communities_of(db, workspace_id=member.workspace_id, customer_id=member.customer_id)
    return [
        {"id": c.id, "name": c.name, "platform": c.platform, "theme": c.theme, "role": m.role, "status": m.status}
        for c, m in rows
        if m.status in ("active", "muted", "pending")
    ]


def _enforcements(db: Session, member: mweb.Member) -> list[dict[str, Any]]:
    rows = community_service.list_enforcements(
        db, workspace_id=member.workspace_id, customer_id=member.customer_id, limit=20
    )
    return [
        {
            "id": e.id,
            "community_id": e.community_id,
            "action": e.action,
            "reason": e.reason,
            "status": e.status,
            "appeal_status": e.appeal_status,
            "created_at": e.created_at.isoformat(),
        }
        for e in rows
    ]


@router.get("/m/{ws_slug}/", response_class=HTMLResponse)
def home(ws_slug: str, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """My communities (or, for a visitor, how to join)."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    communities = _communities(db, member) if member else []
    notices = [e for e in _enforcements(db, member) if e["action"] != "refuse"] if member else []
    return mweb.render(
        request, "m_home.html", workspace=workspace, member=member, communities=communities, notices=notices
    )


@router.get("/m/{ws_slug}/auth")
def sign_in_by_link(
    ws_slug: str, request: Request, ticket: str = "", next: str = "", db: Session = Depends(get_db)
) -> Response:
    """Redeem a one-time sign-in link and go on to the page it names."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    try:
        token = audience_service.redeem_member_ticket(
            db, workspace_id=workspace.id, ticket=ticket, device_id=mweb.device_id(request)
        )
    except ShequnError as exc:
        db.rollback()
        return mweb.render(
            request,
            "m_message.html",
            workspace=workspace,
            member=None,
            status=exc.status_code,
            title_key="m.signin_failed",
            message=exc.message(workspace.locale),
        )
    db.commit()
    response = RedirectResponse(mweb.safe_member_next(workspace, next), status_code=303)
    mweb.start_session(response, token)
    return response


@router.post("/m/{ws_slug}/logout")
def sign_out(ws_slug: str, request: Request, db: Session = Depends(get_db)) -> Response:
    """End the member session."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    token = request.cookies.get(mweb.MEMBER_COOKIE, "")
    if token:
        audience_service.end_member_session(db, token=token)
        db.commit()
    response = RedirectResponse(f"/m/{workspace.slug}/", status_code=303)
    response.delete_cookie(mweb.MEMBER_COOKIE, path="/")
    return response


@api.get("/m/me")
def me(member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> dict[str, Any]:
    """The signed-in member and their communities."""
    return {
        "name": member.name,
        "phone": member.phone_masked,
        "workspace": member.workspace_slug,
        "communities": _communities(db, member),
    }


@api.get("/m/enforcements")
def my_enforcements(member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Moderation actions taken on the signed-in member (warnings, mutes, removals, refused posts)."""
    return _enforcements(db, member)


class AppealIn(BaseModel):
    """A member's appeal against a moderation action."""

    text: str = Field(min_length=1, max_length=1000)


@api.post("/m/enforcements/{enforcement_id}/appeal")
def appeal(
    enforcement_id: int,
    body: AppealIn,
    member: mweb.Member = Depends(mweb.member),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Appeal one of my moderation actions (once); it joins the operators' appeal queue."""
    row = community_service.appeal_enforcement(
        db,
        workspace_id=member.workspace_id,
        customer_id=member.customer_id,
        enforcement_id=enforcement_id,
        text=body.text,
    )
    db.commit()
    return {"id": row.id, "appeal_status": row.appeal_status}


class MemberLinkIn(BaseModel):
    """Ask for a member's one-time sign-in link."""

    customer_id: int
    next: str = Field(default="", max_length=500, description="a path under /m/{workspace}/ to open after sign-in")


class MemberLinkOut(BaseModel):
    """A one-time sign-in link, valid for 15 minutes."""

    url: str
    expires_at: str


@api.post("/member-links", response_model=MemberLinkOut)
def create_member_link(
    body: MemberLinkIn, request: Request, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MemberLinkOut:
    """A one-time link that signs a customer in on the H5 pages (for a personalised message or a mini-program)."""
    ticket, expires = audience_service.issue_member_ticket(
        db, workspace_id=actor.workspace_id, customer_id=body.customer_id
    )
    ws = mweb.workspace_by_id(db, actor.workspace_id)
    url = f"{mweb.public_base(request)}/m/{ws.slug}/auth?ticket={ticket}"
    nxt = mweb.safe_member_next(ws, body.next)
    if body.next and nxt == body.next:
        url += "&next=" + quote(nxt, safe="/")
    return MemberLinkOut(url=url, expires_at=expires.isoformat())
