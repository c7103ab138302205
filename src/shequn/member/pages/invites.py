"""Member H5 and member API: open an invite, join by invite, my own invite link with its QR code."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.community.fission import service as fission_service
from shequn.community.fission.errors import InviteNameRequired
from shequn.community.fission.schemas import InvitePublicOut, JoinIn, JoinOut
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.i18n import translate
from shequn.core.web import DbId, get_db
from shequn.member import web as mweb

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/m", tags=["member"])

# Link-preview fetchers of chat apps must not count as people opening the invite (protocols.md).
CRAWLER_MARKS = ("bot", "spider", "crawler", "preview", "feishu", "lark", "dingtalk", "qq-url", "facebookexternalhit")


def _is_crawler(request: Request) -> bool:
    agent = request.headers.get("user-agent", "").lower()
    return request.method == "HEAD" or not agent or any(mark in agent for mark in CRAWLER_MARKS)


def _public(db: Session, invite: fission_service.Invite) -> InvitePublicOut:
    community = community_service.get_community(db, workspace_id=invite.workspace_id, community_id=invite.community_id)
    inviter = ""
    if invite.inviter_customer_id is not None:
        names = fission_service.member_names(
            db, community_id=invite.community_id, customer_ids={invite.inviter_customer_id}
        )
        inviter = names.get(invite.inviter_customer_id, "")
    return InvitePublicOut(
        code=invite.code,
        status=invite.effective_status(utcnow()),
        community_id=community.id,
        community_name=community.name,
        theme=community.theme,
        visibility=community.visibility,
        members_count=community.members_count,
        inviter_name=inviter,
        pre_approved=invite.pre_approved,
    )


# --- member API ---------------------------------------------------------------------------------


@api.get("/invites/{code}", response_model=InvitePublicOut)
def invite_info(code: str, db: Session = Depends(get_db)) -> InvitePublicOut:
    """What an invite leads to (no sign-in needed)."""
    return _public(db, fission_service.find_invite(db, code=code))


def _newcomer(
    db: Session, request: Request, response: Response, invite: fission_service.Invite, body: JoinIn
) -> mweb.Member:
    """Sign in the person joining: a retry from the same device right after a join is the same person."""
    fission_service.check_usable(invite)  # no customer is created for an invite that cannot admit anyone
    again = fission_service.recent_device_joiner(db, invite_id=invite.id, device_id=mweb.device_id(request))
    if again is not None:
        ticket, _ = audience_service.issue_member_ticket(db, workspace_id=invite.workspace_id, customer_id=again)
        token = audience_service.redeem_member_ticket(
            db, workspace_id=invite.workspace_id, ticket=ticket, device_id=mweb.device_id(request)
        )
        mweb.start_session(response, token)
        ident = audience_service.get_member_session(db, token=token)
        assert ident is not None
        return mweb.Member(
            invite.workspace_id, "", again, ident.name, ident.phone_masked, mweb.device_id(request), "zh-CN"
        )
    if not body.name.strip():
        raise InviteNameRequired(details=[{"field": "name", "code": "required", "message": "name is required"}])
    return mweb.sign_in_new_member(
        db, request, response, workspace_id=invite.workspace_id, name=body.name, phone=body.phone or None
    )


@api.post("/invites/{code}/join", response_model=JoinOut)
def join(
    code: str,
    body: JoinIn,
    request: Request,
    response: Response,
    member: mweb.Member | None = Depends(mweb.optional_member),
    db: Session = Depends(get_db),
) -> JoinOut:
    """Join the invite's community (idempotent: a retried or repeated join uses the invite once)."""
    invite = fission_service.find_invite(db, code=code)
    if member is None or member.workspace_id != invite.workspace_id:
        member = _newcomer(db, request, response, invite, body)
    result = fission_service.join_by_invite(
        db,
        workspace_id=invite.workspace_id,
        code=code,
        customer_id=member.customer_id,
        device_id=mweb.device_id(request) or member.device_id,
        nickname=body.name.strip() or member.name,
    )
    db.commit()
    ws = mweb.workspace_by_id(db, invite.workspace_id)
    return JoinOut(
        community_id=invite.community_id,
        status=result.member.status,
        already_member=result.already_member,
        referral_id=result.referral.id if result.referral else None,
        next=f"/m/{ws.slug}/i/{invite.code}/done",
    )


@api.post("/communities/{community_id}/my-invite")
def my_invite(
    community_id: DbId, request: Request, member: mweb.Member = Depends(mweb.member), db: Session = Depends(get_db)
) -> dict[str, object]:
    """The member's own invite link into a community they belong to (created on first ask)."""
    invite = fission_service.personal_invite(
        db,
        workspace_id=member.workspace_id,
        community_id=community_id,
        customer_id=member.customer_id,
        device_id=mweb.device_id(request),
    )
    db.commit()
    url = fission_service.invite_url(member.workspace_slug, invite.code, mweb.public_base(request))
    return {"code": invite.code, "url": url, "uses": invite.uses, "scene": fission_service.mini_program_scene(invite)}


# --- H5 pages -----------------------------------------------------------------------------------


def _error_page(
    request: Request, workspace: mweb.WorkspaceRef, member: mweb.Member | None, exc: ShequnError
) -> HTMLResponse:
    return mweb.render(
        request,
        "m_message.html",
        workspace=workspace,
        member=member,
        status=exc.status_code,
        title_key="fission.m.cannot_join",
        message=exc.message(workspace.locale or "zh-CN"),
    )


@router.get("/m/{ws_slug}/i/{code}", response_class=HTMLResponse)
def invite_page(ws_slug: str, code: str, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """The invite: the community, its rules, who invites, and the join form (or one tap when signed in)."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    try:
        invite = fission_service.find_invite(db, code=code, workspace_id=workspace.id)
        community = community_service.get_community(db, workspace_id=workspace.id, community_id=invite.community_id)
        membership = (
            community_service.get_membership(
                db, workspace_id=workspace.id, community_id=community.id, customer_id=member.customer_id
            )
            if member
            else None
        )
        if membership is None or membership.status not in ("active", "muted", "pending"):
            fission_service.check_usable(invite)
    except ShequnError as exc:
        return _error_page(request, workspace, member, exc)
    if not _is_crawler(request):
        fission_service.record_open(db, invite=invite)
        db.commit()
    return mweb.render(
        request,
        "invite.html",
        workspace=workspace,
        member=member,
        info=_public(db, invite),
        community=community,
        membership=membership,
    )


@router.get("/m/{ws_slug}/i/{code}/done", response_class=HTMLResponse)
def invite_done(ws_slug: str, code: str, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """After joining: joined, or waiting for approval."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    try:
        invite = fission_service.find_invite(db, code=code, workspace_id=workspace.id)
        community = community_service.get_community(db, workspace_id=workspace.id, community_id=invite.community_id)
    except ShequnError as exc:
        return _error_page(request, workspace, member, exc)
    membership = (
        community_service.get_membership(
            db, workspace_id=workspace.id, community_id=community.id, customer_id=member.customer_id
        )
        if member
        else None
    )
    return mweb.render(
        request, "invite_done.html", workspace=workspace, member=member, community=community, membership=membership
    )


@router.get("/m/{ws_slug}/invite/{community_id}", response_class=HTMLResponse)
def my_invite_page(ws_slug: str, community_id: DbId, request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    """My invite link and QR code for a community I belong to (created on first visit; one per member)."""
    workspace = mweb.workspace_by_slug(db, ws_slug)
    member = mweb.member_in(request, db, workspace)
    if member is None:
        return mweb.render(
            request,
            "m_message.html",
            workspace=workspace,
            member=None,
            status=401,
            title_key="fission.m.sign_in_first",
            message=translate("fission.m.sign_in_hint", workspace.locale or "zh-CN"),
        )
    try:
        community = community_service.get_community(db, workspace_id=workspace.id, community_id=community_id)
        invite = fission_service.personal_invite(
            db,
            workspace_id=workspace.id,
            community_id=community_id,
            customer_id=member.customer_id,
            device_id=mweb.device_id(request),
        )
    except ShequnError as exc:
        db.rollback()
        return _error_page(request, workspace, member, exc)
    db.commit()
    url = fission_service.invite_url(workspace.slug, invite.code, mweb.public_base(request))
    # The SVG is drawn by segno from our own URL (no user text in it), so it is safe to inline.
    qr = Markup(fission_service.qr_svg(url, scale=5, inline=True).decode("utf-8"))
    referrals = fission_service.list_referrals(
        db, workspace_id=workspace.id, community_id=community_id, inviter_customer_id=member.customer_id, limit=100
    )
    return mweb.render(
        request,
        "invite_mine.html",
        workspace=workspace,
        member=member,
        community=community,
        invite=invite,
        url=url,
        qr=qr,
        invited=len([r for r in referrals if r.status != "fraud"]),
    )


# member/routes.py includes each page module's `router`; the member API rides along on it.
