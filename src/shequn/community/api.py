"""Communities API: communities, members, history, sync, policies, enforcements, appeals and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from sqlalchemy.orm import Session

from shequn.community import health as community_health
from shequn.community import service, sync
from shequn.community.schemas import (
    AppealDecision,
    AppealIn,
    ChangeOut,
    CommunityIn,
    CommunityOut,
    CommunityPatch,
    ContributorOut,
    EnforcementOut,
    HealthOut,
    MemberAdd,
    MemberOut,
    MuteIn,
    PolicyIn,
    PolicyOut,
    ReasonIn,
    RoleIn,
    SyncIn,
    SyncOut,
)
from shequn.core.errors import TooLarge
from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1", tags=["communities"])
MAX_CSV_BYTES = 10 * 1024 * 1024


def _member_out(row: service.MemberRow) -> MemberOut:
    out = MemberOut.model_validate(row.member)
    out.name, out.phone_masked = row.name, row.phone_masked
    return out


def _one_member(db: Session, actor: Actor, community_id: int, member_id: int) -> MemberOut:
    m = service.get_member(db, workspace_id=actor.workspace_id, community_id=community_id, member_id=member_id)
    return _member_out(service.member_row(db, m))


@router.get("/communities", response_model=list[CommunityOut])
def list_communities(
    q: str = Query("", max_length=100),
    platform: str | None = Query(None, max_length=16),
    status: str | None = Query(None, max_length=12),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[CommunityOut]:
    """The workspace's communities, newest first."""
    rows = service.list_communities(db, workspace_id=actor.workspace_id, q=q, platform=platform, status=status)
    return [CommunityOut.model_validate(c) for c in rows]


@router.post("/communities", response_model=CommunityOut, status_code=201)
def create_community(
    body: CommunityIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CommunityOut:
    """Create a community."""
    c = service.create_community(db, workspace_id=actor.workspace_id, **body.model_dump())
    db.commit()
    return CommunityOut.model_validate(c)


@router.get("/communities/{community_id}", response_model=CommunityOut)
def get_community(
    community_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> CommunityOut:
    """One community."""
    return CommunityOut.model_validate(
        service.get_community(db, workspace_id=actor.workspace_id, community_id=community_id)
    )


@router.patch("/communities/{community_id}", response_model=CommunityOut)
def update_community(
    community_id: DbId, body: CommunityPatch, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> CommunityOut:
    """Change settings (only the fields sent; send capacity null to lift the limit)."""
    c = service.update_community(
        db, workspace_id=actor.workspace_id, community_id=community_id, **body.model_dump(exclude_unset=True)
    )
    db.commit()
    return CommunityOut.model_validate(c)


@router.get("/communities/{community_id}/members", response_model=Paginated[MemberOut])
def list_members(
    community_id: DbId,
    status: str | None = Query(None, max_length=12),
    role: str | None = Query(None, max_length=12),
    q: str = Query("", max_length=100),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[MemberOut]:
    """Members, newest first, filtered by status, role and name/nickname/phone/platform id."""
    total, rows = service.list_members(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        status=status,
        role=role,
        q=q,
        limit=page.limit,
        offset=page.offset,
    )
    return Paginated[MemberOut].of([_member_out(r) for r in rows], total, page.limit, page.offset)


@router.post("/communities/{community_id}/members", response_model=MemberOut, status_code=201)
def add_member(
    community_id: DbId, body: MemberAdd, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MemberOut:
    """Add a customer by hand (active at once, capacity applies); adding a seated member again is a no-op."""
    m = service.add_member(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        customer_id=body.customer_id,
        nickname=body.nickname,
        role=body.role,
        actor_operator_id=actor.operator_id,
    )
    db.commit()
    return _one_member(db, actor, community_id, m.id)


def _member_action(
    action: str, community_id: int, member_id: int, actor: Actor, db: Session, **kwargs: Any
) -> MemberOut:
    service.member_action(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        member_id=member_id,
        action=action,
        actor_operator_id=actor.operator_id,
        **kwargs,
    )
    db.commit()
    return _one_member(db, actor, community_id, member_id)


@router.post("/communities/{community_id}/members/{member_id}/approve", response_model=MemberOut)
def approve(
    community_id: DbId, member_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MemberOut:
    """Approve a pending join request."""
    return _member_action("approve", community_id, member_id, actor, db)


@router.post("/communities/{community_id}/members/{member_id}/reject", response_model=MemberOut)
def reject(
    community_id: DbId, member_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MemberOut:
    """Turn down a pending join request."""
    return _member_action("reject", community_id, member_id, actor, db)


@router.post("/communities/{community_id}/members/{member_id}/mute", response_model=MemberOut)
def mute(
    community_id: DbId,
    member_id: DbId,
    body: MuteIn,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> MemberOut:
    """Mute a member (logged as an appealable enforcement)."""
    return _member_action("mute", community_id, member_id, actor, db, minutes=body.minutes, reason=body.reason)


@router.post("/communities/{community_id}/members/{member_id}/unmute", response_model=MemberOut)
def unmute(
    community_id: DbId, member_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MemberOut:
    """Lift a mute."""
    return _member_action("unmute", community_id, member_id, actor, db)


@router.post("/communities/{community_id}/members/{member_id}/remove", response_model=MemberOut)
def remove(
    community_id: DbId,
    member_id: DbId,
    body: ReasonIn,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> MemberOut:
    """Remove a member (they cannot re-join until restored; logged as an appealable enforcement)."""
    return _member_action("remove", community_id, member_id, actor, db, reason=body.reason)


@router.post("/communities/{community_id}/members/{member_id}/restore", response_model=MemberOut)
def restore(
    community_id: DbId, member_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> MemberOut:
    """Bring a removed member back."""
    return _member_action("restore", community_id, member_id, actor, db)


@router.put("/communities/{community_id}/members/{member_id}/role", response_model=MemberOut)
def set_role(
    community_id: DbId,
    member_id: DbId,
    body: RoleIn,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> MemberOut:
    """Make a member owner, admin, moderator or plain member."""
    return _member_action("role", community_id, member_id, actor, db, role=body.role)


@router.get("/communities/{community_id}/history", response_model=list[ChangeOut])
def history(
    community_id: DbId,
    member_id: int | None = Query(None, ge=1, le=2**63 - 1),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[ChangeOut]:
    """Membership history of the community (or of one member), newest first."""
    rows = service.list_member_history(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        member_id=member_id,
        limit=page.limit,
        offset=page.offset,
    )
    return [ChangeOut.model_validate(r) for r in rows]


@router.post("/communities/{community_id}/sync", response_model=SyncOut)
def sync_events(
    community_id: DbId, body: SyncIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> SyncOut:
    """Inbound membership events from the real group; an event id already applied is skipped."""
    events = [
        sync.SyncEvent(
            event_id=e.id,
            kind=e.type,
            at=e.at,
            person=sync.SyncPerson(
                ids={k: v for k, v in e.member.model_dump(exclude={"nickname", "phone"}).items() if v},
                nickname=e.member.nickname,
                phone=e.member.phone,
            ),
        )
        for e in body.events
    ]
    report = sync.apply_events(db, workspace_id=actor.workspace_id, community_id=community_id, events=events)
    db.commit()
    return SyncOut(**report.__dict__)


@router.post("/communities/{community_id}/members/import", response_model=SyncOut)
async def import_members(
    community_id: DbId,
    file: UploadFile = File(...),
    full_list: bool = Form(True),
    actor: Actor = Depends(require(Perm.IMPORT)),
    db: Session = Depends(get_db),
) -> SyncOut:
    """Upload a group's member list (CSV, UTF-8 or GBK); bad rows are reported, good ones kept."""
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise TooLarge(details={"max_bytes": MAX_CSV_BYTES})
    report = sync.import_csv(
        db, workspace_id=actor.workspace_id, community_id=community_id, data=data, full_list=full_list
    )
    db.commit()
    return SyncOut(**report.__dict__)


@router.get("/communities/{community_id}/policies", response_model=list[PolicyOut])
def list_policies(
    community_id: DbId, actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)
) -> list[PolicyOut]:
    """Every policy of the community with its effective config."""
    c = service.get_community(db, workspace_id=actor.workspace_id, community_id=community_id)
    return [PolicyOut(kind=k, enabled=e, config=cfg) for k, e, cfg in service.effective_policies(db, c)]


@router.put("/communities/{community_id}/policies/{kind}", response_model=PolicyOut)
def put_policy(
    community_id: DbId,
    kind: str,
    body: PolicyIn,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> PolicyOut:
    """Switch a policy on/off and set its config."""
    row = service.update_policy(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        kind=kind,
        enabled=body.enabled,
        config=body.config,
    )
    db.commit()
    return PolicyOut(kind=row.kind, enabled=row.enabled, config=row.config)


@router.get("/community-enforcements", response_model=list[EnforcementOut])
def list_enforcements(
    community_id: int | None = Query(None, ge=1, le=2**63 - 1),
    customer_id: int | None = Query(None, ge=1, le=2**63 - 1),
    appeal_status: str | None = Query(None, max_length=12),
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> list[EnforcementOut]:
    """Enforcements, newest first; appeal_status=pending is the appeal queue."""
    rows = service.list_enforcements(
        db,
        workspace_id=actor.workspace_id,
        community_id=community_id,
        customer_id=customer_id,
        appeal_status=appeal_status,
        limit=page.limit,
        offset=page.offset,
    )
    return [EnforcementOut.model_validate(r) for r in rows]


@router.post("/community-enforcements/{enforcement_id}/undo", response_model=EnforcementOut)
def undo(
    enforcement_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> EnforcementOut:
    """Undo an enforcement (strike back, unmute, restore); undoing twice changes nothing."""
    row = service.undo_enforcement(
        db, workspace_id=actor.workspace_id, enforcement_id=enforcement_id, actor_operator_id=actor.operator_id
    )
    db.commit()
    return EnforcementOut.model_validate(row)


@router.post("/community-enforcements/{enforcement_id}/appeal", response_model=EnforcementOut)
def appeal(
    enforcement_id: DbId,
    body: AppealIn,
    customer_id: int = Query(ge=1, le=2**63 - 1),
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> EnforcementOut:
    """Relay a member's appeal (e.g. from a group bot); the member H5 calls the same service."""
    row = service.appeal_enforcement(
        db, workspace_id=actor.workspace_id, customer_id=customer_id, enforcement_id=enforcement_id, text=body.text
    )
    db.commit()
    return EnforcementOut.model_validate(row)


@router.post("/community-enforcements/{enforcement_id}/decision", response_model=EnforcementOut)
def decide(
    enforcement_id: DbId,
    body: AppealDecision,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> EnforcementOut:
    """Accept (undo) or reject a pending appeal."""
    row = service.decide_appeal(
        db,
        workspace_id=actor.workspace_id,
        enforcement_id=enforcement_id,
        accept=body.accept,
        actor_operator_id=actor.operator_id,
    )
    db.commit()
    return EnforcementOut.model_validate(row)


@router.get("/communities/{community_id}/health", response_model=HealthOut)
def health(
    community_id: DbId,
    days: int = Query(30, ge=7, le=365),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> HealthOut:
    """Members over time, active rate, posts per day and top contributors."""
    h = community_health.community_health(db, workspace_id=actor.workspace_id, community_id=community_id, days=days)
    data = {**h.__dict__, "top_contributors": [ContributorOut(**c.__dict__) for c in h.top_contributors]}
    return HealthOut(**data)
