"""Operator API of promotions.guard: blacklist, flagged events, limit overrides."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.schemas import Paginated
from shequn.core.web import DbId, Page, get_db, page_params
from shequn.identity.deps import require
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.guard import service
from shequn.promotions.guard.models import GuardBlock
from shequn.promotions.guard.schemas import BlockIn, BlockKind, BlockOut, FlagOut, RuleIn, RuleOut

router = APIRouter(prefix="/api/v1/guard", tags=["promotions"])
ActionPath = Path(min_length=1, max_length=32, pattern=r"^[a-z*][a-z0-9_.*]*$")
RulePath = Path(min_length=1, max_length=32, pattern=r"^[a-z_]+$")


def block_out(block: GuardBlock) -> BlockOut:
    """An entry as the API shows it (identifiers shortened or masked)."""
    return BlockOut(
        id=block.id,
        kind=block.kind,
        display=service.display_value(block),
        reason=block.reason,
        until=block.until,
        active=block.until is None or block.until > utcnow(),
        created_by=block.created_by,
        created_at=block.created_at,
    )


@router.get("/blocks", response_model=Paginated[BlockOut])
def list_blocks(
    kind: BlockKind | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[BlockOut]:
    """The workspace's blacklist, newest first."""
    rows, total = service.list_blocks(
        db, workspace_id=actor.workspace_id, kind=kind, limit=page.limit, offset=page.offset
    )
    return Paginated.of([block_out(b) for b in rows], total, page.limit, page.offset)


@router.post("/blocks", response_model=BlockOut, status_code=201)
def add_block(body: BlockIn, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)) -> BlockOut:
    """Blacklist a customer, device, phone (number or hash) or IP; adding it again updates reason and end."""
    block = service.add_block(db, actor, kind=body.kind, value=body.value, reason=body.reason, until=body.until)
    db.commit()
    return block_out(block)


@router.delete("/blocks/{block_id}", status_code=204)
def remove_block(
    block_id: DbId, actor: Actor = Depends(require(Perm.WRITE)), db: Session = Depends(get_db)
) -> Response:
    """Take an entry off the blacklist."""
    service.remove_block(db, actor, block_id=block_id)
    db.commit()
    return Response(status_code=204)


@router.get("/flags", response_model=Paginated[FlagOut])
def list_flags(
    action: str | None = None,
    reason: Literal["blocked", "rate_limited", "too_fast", "guessing"] | None = None,
    page: Page = Depends(page_params),
    actor: Actor = Depends(require(Perm.READ)),
    db: Session = Depends(get_db),
) -> Paginated[FlagOut]:
    """Refused member actions (one row per rule, subject and minute, with a count), newest first."""
    rows, total = service.list_flags(
        db, workspace_id=actor.workspace_id, action=action, reason=reason, limit=page.limit, offset=page.offset
    )
    items = [FlagOut.model_validate(f, from_attributes=True) for f in rows]
    for item in items:  # device ids and phone hashes shortened, as in the console
        item.subject = service.display_subject(item.subject)
    return Paginated.of(items, total, page.limit, page.offset)


def _rule_out(view: service.RuleView) -> RuleOut:
    return RuleOut(
        action=view.action,
        rule=view.rule,
        limit=view.current.limit,
        window_s=view.current.window_s,
        default_limit=view.default.limit if view.default else None,
        default_window_s=view.default.window_s if view.default else None,
        overridden=view.overridden,
    )


@router.get("/limits", response_model=list[RuleOut])
def list_limits(actor: Actor = Depends(require(Perm.READ)), db: Session = Depends(get_db)) -> list[RuleOut]:
    """Every rule in force: defaults and the workspace's overrides ("*" rows are the bot heuristics)."""
    return [_rule_out(v) for v in service.rule_table(db, workspace_id=actor.workspace_id)]


@router.put("/limits/{action}/{rule}", response_model=RuleOut)
def set_limit(
    body: RuleIn,
    action: str = ActionPath,
    rule: str = RulePath,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> RuleOut:
    """Override one rule of one action for this workspace."""
    service.set_override(db, actor, action=action, rule=rule, limit=body.limit, window_ms=round(body.window_s * 1000))
    db.commit()
    views = service.rule_table(db, workspace_id=actor.workspace_id)
    return _rule_out(next(v for v in views if v.action == action and v.rule == rule))


@router.delete("/limits/{action}/{rule}", status_code=204)
def reset_limit(
    action: str = ActionPath,
    rule: str = RulePath,
    actor: Actor = Depends(require(Perm.WRITE)),
    db: Session = Depends(get_db),
) -> Response:
    """Go back to the default for one rule."""
    service.delete_override(db, actor, action=action, rule=rule)
    db.commit()
    return Response(status_code=204)
