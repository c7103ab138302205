"""Identity API: who am I, API tokens, operators, audit log."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity import service
from shequn.identity.deps import api_actor, require
from shequn.identity.roles import Perm
from shequn.identity.schemas import (
    AuditOut,
    MeOut,
    OperatorInvite,
    OperatorOut,
    RoleUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    WorkspaceUpdate,
)
from shequn.identity.service import Actor

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.get("/me", response_model=MeOut)
def me(actor: Actor = Depends(api_actor), db: Session = Depends(get_db)) -> MeOut:
    """The workspace and role of the calling token."""
    ws = service.get_workspace(db, actor.workspace_id)
    assert ws is not None
    return MeOut(
        workspace_id=ws.id,
        workspace_slug=ws.slug,
        workspace_name=ws.name,
        timezone=ws.timezone,
        currency=ws.currency,
        role=actor.role,
        token_id=actor.token_id,
    )


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(actor: Actor = Depends(api_actor), db: Session = Depends(get_db)) -> list[TokenOut]:
    """The workspace's API tokens."""
    return [TokenOut.model_validate(t) for t in service.list_api_tokens(db, actor)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, actor: Actor = Depends(api_actor), db: Session = Depends(get_db)) -> TokenCreated:
    """Issue a token; the secret is in this response only."""
    plain, tok = service.create_api_token(db, actor, name=body.name, role=body.role)
    db.commit()
    return TokenCreated(token=plain, **TokenOut.model_validate(tok).model_dump())


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: DbId, actor: Actor = Depends(api_actor), db: Session = Depends(get_db)) -> None:
    """Revoke a token."""
    service.revoke_api_token(db, actor, token_id)
    db.commit()


@router.get("/operators", response_model=list[OperatorOut])
def list_operators(actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> list[OperatorOut]:
    """Operators of the workspace."""
    return [
        OperatorOut(id=op.id, email=op.email, name=op.name, role=role)
        for op, role in service.list_members(db, workspace_id=actor.workspace_id)
    ]


@router.post("/operators", response_model=OperatorOut, status_code=201)
def invite_operator(
    body: OperatorInvite, actor: Actor = Depends(api_actor), db: Session = Depends(get_db)
) -> OperatorOut:
    """Add an operator with a role."""
    op = service.invite_operator(db, actor, email=body.email, name=body.name, password=body.password, role=body.role)
    db.commit()
    return OperatorOut(id=op.id, email=op.email, name=op.name, role=body.role)


@router.get("/audit", response_model=Paginated[AuditOut])
def audit(
    actor: Actor = Depends(api_actor), page: Page = Depends(page_params), db: Session = Depends(get_db)
) -> Paginated[AuditOut]:
    """The audit log, newest first."""
    rows, total = service.list_audit(db, actor, limit=page.limit, offset=page.offset)
    return Paginated[AuditOut].of([AuditOut.model_validate(r) for r in rows], total, page.limit, page.offset)


@router.patch("/workspace", response_model=MeOut)
def update_workspace(body: WorkspaceUpdate, actor: Actor = Depends(api_actor), db: Session = Depends(get_db)) -> MeOut:
    """Change the workspace's name, timezone, currency or locale (owners)."""
    ws = service.update_workspace(db, actor, **body.model_dump(exclude_unset=True))
    db.commit()
    return MeOut(
        workspace_id=ws.id,
        workspace_slug=ws.slug,
        workspace_name=ws.name,
        timezone=ws.timezone,
        currency=ws.currency,
        role=actor.role,
        token_id=actor.token_id,
    )


@router.patch("/operators/{operator_id}", response_model=OperatorOut)
def set_role(
    operator_id: DbId, body: RoleUpdate, actor: Actor = Depends(api_actor), db: Session = Depends(get_db)
) -> OperatorOut:
    """Change an operator's role in this workspace."""
    service.set_member_role(db, actor, operator_id=operator_id, role=body.role)
    db.commit()
    op = next(o for o, _ in service.list_members(db, workspace_id=actor.workspace_id) if o.id == operator_id)
    return OperatorOut(id=op.id, email=op.email, name=op.name, role=body.role)


@router.delete("/operators/{operator_id}", status_code=204)
def remove_operator(operator_id: DbId, actor: Actor = Depends(api_actor), db: Session = Depends(get_db)) -> None:
    """Remove an operator from this workspace."""
    service.remove_member(db, actor, operator_id=operator_id)
    db.commit()
