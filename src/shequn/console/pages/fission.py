"""Console: the fission report with the referral tree, invite links (QR download), reward rules, fraud review."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from shequn.community import service as community_service
from shequn.community.fission import service as fission_service
from shequn.console.charts import bar_chart, hbars
from shequn.console.web import Console, ConsoleRoute, console, console_post, render
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError, ValidationFailed
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

NOTICES = {
    "created": "fission.done.created",
    "disabled": "fission.done.disabled",
    "rule": "fission.done.rule",
    "reviewed": "fission.done.reviewed",
    "settings": "fission.done.settings",
    "qualify": "fission.done.qualify",
}


def _community_id(request: Request, communities: list[Any]) -> int | None:
    """The community chosen in ?community= (only one of this workspace's)."""
    raw = request.query_params.get("community", "")
    ids = {c.id for c in communities}
    return int(raw) if raw.isdigit() and int(raw) in ids else None


def _base(ctx: Console, request: Request, page: str, **extra: Any) -> dict[str, Any]:
    communities = community_service.list_communities(ctx.db, workspace_id=ctx.workspace.id)
    done = request.query_params.get("done", "")
    return {
        "tab": page,
        "communities": communities,
        "community_id": _community_id(request, communities),
        "names": {c.id: c.name for c in communities},
        "notice": ctx.t(NOTICES[done]) if done in NOTICES else "",
        **extra,
    }


def _back(path: str, done: str, community_id: int | None = None) -> RedirectResponse:
    query = f"?done={done}" + (f"&community={community_id}" if community_id else "")
    return RedirectResponse(path + query, status_code=303)


@router.get("/fission")
def report_page(request: Request, ctx: Console = Depends(console)) -> Response:
    """Report: reach, joins, K-factor, depth, top inviters, daily joins, and the referral tree."""
    ctx.require(Perm.READ)
    data = _base(ctx, request, "report")
    cid = data["community_id"]
    rep = fission_service.build_report(ctx.db, workspace_id=ctx.workspace.id, community_id=cid)
    chart = bar_chart(
        [(d[5:], n) for d, n in rep.daily_joins], value_label=str, title=ctx.t("fission.chart.daily"), height=200
    )
    depth = hbars([(ctx.t("fission.depth_n", n=d), n) for d, n in rep.depth_distribution.items()], str)
    tree = fission_service.build_tree(ctx.db, workspace_id=ctx.workspace.id, community_id=cid) if cid else []
    return render(request, "fission.html", ctx, rep=rep, chart=chart, depth=depth, tree=tree, **data)


def _local_end_of(day: str, tz: str) -> datetime | None:
    """The end of a YYYY-MM-DD day in the workspace timezone, in UTC (None when blank)."""
    if not day.strip():
        return None
    try:
        d = datetime.strptime(day.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise ValidationFailed(details=[{"field": "expires_on", "message": "YYYY-MM-DD"}]) from None
    return datetime.combine(d, time(23, 59, 59), tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


@router.get("/fission/invites")
def invites_page(request: Request, ctx: Console = Depends(console)) -> Response:
    """Invite links with their limits, uses and QR codes."""
    ctx.require(Perm.READ)
    return _invites(request, ctx)


def _invites(request: Request, ctx: Console, error: str = "") -> Response:
    data = _base(ctx, request, "invites")
    rows = fission_service.list_invites(ctx.db, workspace_id=ctx.workspace.id, community_id=data["community_id"])
    now = utcnow()
    invites = [
        {
            "invite": i,
            "status": i.effective_status(now),
            "url": fission_service.invite_url(ctx.workspace.slug, i.code, str(request.base_url)),
        }
        for i in rows
    ]
    status = 422 if error else 200
    default_day = (now + timedelta(days=30)).astimezone(ZoneInfo(ctx.workspace.timezone)).strftime("%Y-%m-%d")
    return render(
        request,
        "fission_invites.html",
        ctx,
        status=status,
        invites=invites,
        error=error,
        default_day=default_day,
        **data,
    )


@router.post("/fission/invites")
def create_invite(
    request: Request,
    community_id: int = Form(...),
    label: str = Form(""),
    max_uses: str = Form(""),
    expires_on: str = Form(""),
    pre_approved: str = Form(""),
    ctx: Console = Depends(console_post),
) -> Response:
    """Create an operator invite link."""
    ctx.require(Perm.WRITE)
    try:
        uses = int(max_uses) if max_uses.strip() else None
        invite = fission_service.create_invite(
            ctx.db,
            workspace_id=ctx.workspace.id,
            community_id=community_id,
            label=label.strip()[:100],
            max_uses=uses,
            expires_at=_local_end_of(expires_on, ctx.workspace.timezone),
            pre_approved=bool(pre_approved),
            created_by=ctx.operator_id,
        )
    except (ShequnError, ValueError) as exc:
        ctx.db.rollback()
        message = exc.message(ctx.locale) if isinstance(exc, ShequnError) else ctx.t("fission.err.max_uses")
        if isinstance(exc, ValidationFailed) and exc.details:
            message = "; ".join(f"{ctx.t('fission.field.' + d['field'])}: {d['message']}" for d in exc.details)
        return _invites(request, ctx, error=message)
    identity_service.record_audit(ctx.db, ctx.actor, "invite.create", "invite", invite.id, {"code": invite.code})
    ctx.db.commit()
    return _back("/fission/invites", "created", community_id)


@router.post("/fission/invites/{invite_id}/disable")
def disable_invite(invite_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Disable an invite link."""
    ctx.require(Perm.WRITE)
    invite = fission_service.disable_invite(ctx.db, workspace_id=ctx.workspace.id, invite_id=invite_id)
    identity_service.record_audit(ctx.db, ctx.actor, "invite.disable", "invite", invite.id, {})
    ctx.db.commit()
    return _back("/fission/invites", "disabled", invite.community_id)


@router.get("/fission/invites/{invite_id}/qr.svg")
def invite_qr(invite_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """Download an invite's QR code (SVG)."""
    ctx.require(Perm.READ)
    invite = fission_service.get_invite(ctx.db, workspace_id=ctx.workspace.id, invite_id=invite_id)
    url = fission_service.invite_url(ctx.workspace.slug, invite.code, str(request.base_url))
    return Response(
        fission_service.qr_svg(url),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="invite-{invite.code}.svg"'},
    )


@router.get("/fission/rewards")
def rewards_page(request: Request, ctx: Console = Depends(console)) -> Response:
    """Reward rules and the rewards inviters reached."""
    ctx.require(Perm.READ)
    return _rewards(request, ctx)


def _rewards(request: Request, ctx: Console, error: str = "") -> Response:
    data = _base(ctx, request, "rewards")
    ws = ctx.workspace.id
    cid = data["community_id"]
    return render(
        request,
        "fission_rewards.html",
        ctx,
        status=422 if error else 200,
        error=error,
        milestones=fission_service.list_milestones(ctx.db, workspace_id=ws, community_id=cid),
        rewards=fission_service.list_rewards(ctx.db, workspace_id=ws, community_id=cid),
        kinds=fission_service.REWARD_KINDS,
        **data,
    )


@router.post("/fission/rewards/rules")
def create_rule(
    request: Request,
    name: str = Form(""),
    community_id: str = Form(""),
    invitees_required: int = Form(3),
    stay_days: int = Form(7),
    reward_kind: str = Form("coupon"),
    reward_value: str = Form(""),
    ctx: Console = Depends(console_post),
) -> Response:
    """Create a reward rule."""
    ctx.require(Perm.WRITE)
    try:
        fission_service.create_milestone(
            ctx.db,
            workspace_id=ctx.workspace.id,
            name=name,
            community_id=int(community_id) if community_id.isdigit() else None,
            invitees_required=invitees_required,
            stay_days=stay_days,
            reward_kind=reward_kind,
            reward_value=reward_value,
        )
    except ShequnError as exc:
        ctx.db.rollback()
        details = exc.details if isinstance(exc.details, list) else []
        message = "; ".join(f"{ctx.t('fission.field.' + d['field'])}: {d['message']}" for d in details)
        return _rewards(request, ctx, error=message or exc.message(ctx.locale))
    ctx.db.commit()
    return _back("/fission/rewards", "rule")


@router.post("/fission/rewards/rules/{milestone_id}/active")
def toggle_rule(milestone_id: DbId, active: str = Form(""), ctx: Console = Depends(console_post)) -> Response:
    """Pause or resume a rule."""
    ctx.require(Perm.WRITE)
    fission_service.set_milestone_active(
        ctx.db, workspace_id=ctx.workspace.id, milestone_id=milestone_id, active=active == "1"
    )
    ctx.db.commit()
    return _back("/fission/rewards", "rule")


@router.post("/fission/rewards/qualify")
def qualify_now(ctx: Console = Depends(console_post)) -> Response:
    """Check stays and grant reached milestones now."""
    ctx.require(Perm.WRITE)
    fission_service.qualify_workspace(ctx.db, workspace_id=ctx.workspace.id)
    ctx.db.commit()
    return _back("/fission/rewards", "qualify")


@router.get("/fission/fraud")
def fraud_page(request: Request, ctx: Console = Depends(console)) -> Response:
    """The fraud review queue and the burst thresholds."""
    ctx.require(Perm.READ)
    data = _base(ctx, request, "fraud")
    shown = request.query_params.get("status", "open")
    shown = shown if shown in ("open", "cleared", "confirmed", "all") else "open"
    flags = fission_service.list_flags(
        ctx.db,
        workspace_id=ctx.workspace.id,
        status=None if shown == "all" else shown,
        community_id=data["community_id"],
    )
    settings = fission_service.get_settings(ctx.db, workspace_id=ctx.workspace.id)
    return render(request, "fission_fraud.html", ctx, flags=flags, shown=shown, settings=settings, **data)


@router.post("/fission/fraud/{flag_id}/review")
def review_flag(flag_id: DbId, decision: str = Form(...), ctx: Console = Depends(console_post)) -> Response:
    """Clear or confirm a flag."""
    ctx.require(Perm.WRITE)
    flag = fission_service.review_flag(
        ctx.db, workspace_id=ctx.workspace.id, flag_id=flag_id, decision=decision, operator_id=ctx.operator_id
    )
    identity_service.record_audit(
        ctx.db, ctx.actor, f"fraud_flag.{decision}", "fraud_flag", flag.id, {"kind": flag.kind}
    )
    ctx.db.commit()
    return _back("/fission/fraud", "reviewed")


@router.post("/fission/fraud/settings")
def save_settings(
    burst_joins: int = Form(...), burst_minutes: int = Form(...), ctx: Console = Depends(console_post)
) -> Response:
    """Change the burst thresholds."""
    ctx.require(Perm.WRITE)
    fission_service.update_settings(
        ctx.db, workspace_id=ctx.workspace.id, burst_joins=burst_joins, burst_minutes=burst_minutes
    )
    ctx.db.commit()
    return _back("/fission/fraud", "settings")
