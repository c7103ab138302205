"""Invitations and referral fission API (operators): invites and QR codes, tree, rules, rewards, fraud, report."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from shequn.community import service as community_service
from shequn.community.fission import service
from shequn.community.fission.schemas import (
    FraudFlagOut,
    InviteIn,
    InviteOut,
    MilestoneIn,
    MilestoneOut,
    MilestonePatch,
    ReferralOut,
    ReviewIn,
    RewardOut,
    SettingsIn,
    SettingsOut,
    TreeNodeOut,
)
from shequn.core.clock import utcnow
from shequn.core.jobs import enqueue_job
from shequn.core.schemas import JobOut
from shequn.core.web import DbId, get_db
from shequn.identity import service as identity_service
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1", tags=["invitations"])
OptionalId = Query(None, ge=1, le=2**63 - 1)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def invite_out(db: Session, invite: service.Invite, base_url: str = "") -> InviteOut:
    """An invite with its URL, mini-program scene and effective status."""
    ws = identity_service.get_workspace(db, invite.workspace_id)
    out = InviteOut.model_validate(invite)
    out.status = invite.effective_status(utcnow())
    out.personal = invite.personal_key is not None
    out.url = service.invite_url(ws.slug if ws else "", invite.code, base_url)
    out.scene = service.mini_program_scene(invite)
    return out


def tree_out(node: service.TreeNode) -> TreeNodeOut:
    """A tree node and its subtree."""
    return TreeNodeOut(
        customer_id=node.customer_id,
        name=node.name,
        status=node.status,
        depth=node.depth,
        size=node.size,
        children=[tree_out(c) for c in node.children],
    )


@router.get("/communities/{community_id}/invites", response_model=list[InviteOut])
def list_invites(
    community_id: DbId,
    request: Request,
    personal: bool | None = None,
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[InviteOut]:
    """A community's invite links, newest first."""
    community_service.get_community(db, workspace_id=actor.workspace_id, community_id=community_id)
    rows = service.list_invites(db, workspace_id=actor.workspace_id, community_id=community_id, personal=personal)
    return [invite_out(db, i, _base(request)) for i in rows]


@router.post("/communities/{community_id}/invites", response_model=InviteOut, status_code=201)
def create_invite(
    community_id: DbId,
    body: InviteIn,
    request: Request,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> InviteOut:
    """Create an invite link (optionally on behalf of an inviter) with limits, expiry and pre-approval."""
    invite = service.create_invite(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        label=body.label,
        inviter_customer_id=body.inviter_customer_id,
        max_uses=body.max_uses,
        expires_at=body.expires_at,
        pre_approved=body.pre_approved,
        created_by=actor.operator_id,
    )
    identity_service.record_audit(db, actor, "invite.create", "invite", invite.id, {"code": invite.code})
    db.commit()
    return invite_out(db, invite, _base(request))


@router.get("/invites/{invite_id}", response_model=InviteOut)
def get_invite(
    invite_id: DbId, request: Request, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> InviteOut:
    """One invite link."""
    return invite_out(db, service.get_invite(db, workspace_id=actor.workspace_id, invite_id=invite_id), _base(request))


@router.post("/invites/{invite_id}/disable", response_model=InviteOut)
def disable_invite(
    invite_id: DbId, request: Request, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> InviteOut:
    """Stop an invite from admitting anyone (idempotent)."""
    invite = service.disable_invite(db, workspace_id=actor.workspace_id, invite_id=invite_id)
    identity_service.record_audit(db, actor, "invite.disable", "invite", invite.id, {})
    db.commit()
    return invite_out(db, invite, _base(request))


@router.get("/invites/{invite_id}/qr.svg", response_class=Response)
def invite_qr(
    invite_id: DbId, request: Request, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> Response:
    """The invite's QR code as SVG (download with ?download=1)."""
    out = invite_out(db, service.get_invite(db, workspace_id=actor.workspace_id, invite_id=invite_id), _base(request))
    headers = {"Cache-Control": "private, max-age=300"}
    if request.query_params.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="invite-{out.code}.svg"'
    return Response(service.qr_svg(out.url), media_type="image/svg+xml", headers=headers)


@router.get("/communities/{community_id}/referrals", response_model=list[ReferralOut])
def list_referrals(
    community_id: DbId,
    status: str | None = Query(None, pattern="^(joined|stayed|left|fraud)$"),
    inviter_customer_id: int | None = OptionalId,
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[ReferralOut]:
    """A community's referrals (who brought whom), newest first."""
    community_service.get_community(db, workspace_id=actor.workspace_id, community_id=community_id)
    rows = service.list_referrals(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        status=status,
        inviter_customer_id=inviter_customer_id,
        limit=limit,
        offset=offset,
    )
    return [ReferralOut.model_validate(r) for r in rows]


@router.get("/communities/{community_id}/referral-tree", response_model=list[TreeNodeOut])
def referral_tree(
    community_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[TreeNodeOut]:
    """The community's referral forest, biggest trees first."""
    community_service.get_community(db, workspace_id=actor.workspace_id, community_id=community_id)
    return [tree_out(n) for n in service.build_tree(db, workspace_id=actor.workspace_id, community_id=community_id)]


@router.get("/fission/milestones", response_model=list[MilestoneOut])
def list_milestones(
    community_id: int | None = OptionalId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[MilestoneOut]:
    """Reward rules."""
    rows = service.list_milestones(db, workspace_id=actor.workspace_id, community_id=community_id)
    return [MilestoneOut.model_validate(m) for m in rows]


@router.post("/fission/milestones", response_model=MilestoneOut, status_code=201)
def create_milestone(
    body: MilestoneIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MilestoneOut:
    """Create a reward rule."""
    m = service.create_milestone(db, workspace_id=actor.workspace_id, **body.model_dump())
    identity_service.record_audit(db, actor, "milestone.create", "milestone", m.id, {"name": m.name})
    db.commit()
    return MilestoneOut.model_validate(m)


@router.patch("/fission/milestones/{milestone_id}", response_model=MilestoneOut)
def patch_milestone(
    milestone_id: DbId, body: MilestonePatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MilestoneOut:
    """Pause or resume a reward rule."""
    m = service.set_milestone_active(db, workspace_id=actor.workspace_id, milestone_id=milestone_id, active=body.active)
    db.commit()
    return MilestoneOut.model_validate(m)


@router.get("/fission/rewards", response_model=list[RewardOut])
def list_rewards(
    status: str | None = Query(None, pattern="^(pending_fulfilment|held|fulfilled|cancelled)$"),
    community_id: int | None = OptionalId,
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[RewardOut]:
    """Rewards inviters reached."""
    rows = service.list_rewards(db, workspace_id=actor.workspace_id, status=status, community_id=community_id)
    return [RewardOut.model_validate(r) for r in rows]


@router.post("/fission/qualify", response_model=JobOut, status_code=202)
def qualify(actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> JobOut:
    """Check stays and grant reached milestones now (the hourly job does the same)."""
    job = enqueue_job(
        db,
        workspace_id=actor.workspace_id,
        kind=service.QUALIFY_JOB,
        params={"workspace_id": actor.workspace_id},
        created_by=actor.operator_id,
    )
    db.commit()
    return JobOut.model_validate(job)


@router.get("/fission/fraud-flags", response_model=list[FraudFlagOut])
def list_flags(
    status: str | None = Query("open", pattern="^(open|cleared|confirmed|all)$"),
    community_id: int | None = OptionalId,
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[FraudFlagOut]:
    """The fraud review queue (status=all for every flag)."""
    rows = service.list_flags(
        db, workspace_id=actor.workspace_id, status=None if status == "all" else status, community_id=community_id
    )
    return [FraudFlagOut.model_validate(f) for f in rows]


@router.post("/fission/fraud-flags/{flag_id}/review", response_model=FraudFlagOut)
def review_flag(
    flag_id: DbId, body: ReviewIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> FraudFlagOut:
    """Clear (counts again, held rewards released) or confirm (stays excluded, held rewards cancelled)."""
    flag = service.review_flag(
        db, workspace_id=actor.workspace_id, flag_id=flag_id, decision=body.decision, operator_id=actor.operator_id
    )
    identity_service.record_audit(db, actor, f"fraud_flag.{body.decision}", "fraud_flag", flag.id, {"kind": flag.kind})
    db.commit()
    return FraudFlagOut.model_validate(flag)


@router.get("/fission/settings", response_model=SettingsOut)
def get_settings(actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> SettingsOut:
    """Anti-fraud thresholds."""
    return SettingsOut.model_validate(service.get_settings(db, workspace_id=actor.workspace_id))


@router.put("/fission/settings", response_model=SettingsOut)
def put_settings(
    body: SettingsIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SettingsOut:
    """Change the burst thresholds."""
    row = service.update_settings(db, workspace_id=actor.workspace_id, **body.model_dump())
    db.commit()
    return SettingsOut.model_validate(row)


@router.get("/fission/report")
def report(
    community_id: int | None = OptionalId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> dict[str, object]:
    """Fission figures (K-factor = i × c, see docs/community-fission.md) for one community or all."""
    if community_id is not None:
        community_service.get_community(db, workspace_id=actor.workspace_id, community_id=community_id)
    return service.build_report(db, workspace_id=actor.workspace_id, community_id=community_id).as_dict()
