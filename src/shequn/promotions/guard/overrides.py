"""Per-workspace overrides of the guard's limits (audited)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.identity.service import Actor
from shequn.promotions.guard.errors import InvalidGuardInput
from shequn.promotions.guard.models import GuardLimitOverride
from shequn.promotions.guard.policy import ACTIONS, ANY_ACTION, Rule, default_rules, valid_rule


def effective_rules(session: Session, *, workspace_id: int, action: str) -> dict[str, Rule]:
    """The action's rules plus the heuristics, with the workspace's overrides applied."""
    rules = {**default_rules(ANY_ACTION), **default_rules(action)}
    rows = session.execute(
        select(
            GuardLimitOverride.action, GuardLimitOverride.rule, GuardLimitOverride.limit, GuardLimitOverride.window_ms
        ).where(GuardLimitOverride.workspace_id == workspace_id, GuardLimitOverride.action.in_((action, ANY_ACTION)))
    ).all()
    for row_action, rule, limit, window_ms in rows:
        if row_action == ANY_ACTION or rule not in default_rules(ANY_ACTION):
            rules[rule] = Rule(limit, window_ms)
    return rules


def list_overrides(session: Session, *, workspace_id: int) -> list[GuardLimitOverride]:
    """The workspace's overridden rules."""
    return list(
        session.scalars(
            select(GuardLimitOverride)
            .where(GuardLimitOverride.workspace_id == workspace_id)
            .order_by(GuardLimitOverride.action, GuardLimitOverride.rule)
        ).all()
    )


def set_override(
    session: Session, actor: Actor, *, action: str, rule: str, limit: int, window_ms: int
) -> GuardLimitOverride:
    """Set the workspace's own limit for one rule of one action (limit 0 turns it off); audited."""
    identity_service.check_perm(actor, Perm.WRITE)
    if not valid_rule(action, rule):
        raise InvalidGuardInput(details=[{"field": "rule", "message": f"unknown rule {rule!r} for {action!r}"}])
    if not 0 <= limit <= 1_000_000:
        raise InvalidGuardInput(details=[{"field": "limit", "message": "0 to 1000000"}])
    if not 100 <= window_ms <= 86_400_000:
        raise InvalidGuardInput(details=[{"field": "window_s", "message": "0.1 s to 24 h"}])
    row = session.scalar(
        select(GuardLimitOverride).where(
            GuardLimitOverride.workspace_id == actor.workspace_id,
            GuardLimitOverride.action == action,
            GuardLimitOverride.rule == rule,
        )
    )
    if row is None:
        row = GuardLimitOverride(workspace_id=actor.workspace_id, action=action, rule=rule)
        session.add(row)
    row.limit, row.window_ms, row.updated_at = limit, window_ms, utcnow()
    session.flush()
    identity_service.record_audit(
        session,
        actor,
        "guard.limit_set",
        "guard_limit",
        row.id,
        {"action": action, "rule": rule, "limit": limit, "window_ms": window_ms},
    )
    return row


def delete_override(session: Session, actor: Actor, *, action: str, rule: str) -> None:
    """Go back to the default for one rule; audited."""
    identity_service.check_perm(actor, Perm.WRITE)
    session.execute(
        delete(GuardLimitOverride).where(
            GuardLimitOverride.workspace_id == actor.workspace_id,
            GuardLimitOverride.action == action,
            GuardLimitOverride.rule == rule,
        )
    )
    identity_service.record_audit(session, actor, "guard.limit_reset", "guard_limit", f"{action}:{rule}")


@dataclass(frozen=True)
class RuleView:
    """One rule of one action as the console and API show it."""

    action: str
    rule: str
    current: Rule
    default: Rule | None
    overridden: bool


def rule_table(session: Session, *, workspace_id: int) -> list[RuleView]:
    """Every built-in rule (heuristics first) with the workspace's value, plus overrides of other rules."""
    overrides = {
        (o.action, o.rule): Rule(o.limit, o.window_ms) for o in list_overrides(session, workspace_id=workspace_id)
    }
    out: list[RuleView] = []
    for action in (ANY_ACTION, *ACTIONS):
        for rule, default in default_rules(action).items():
            current = overrides.pop((action, rule), None)
            out.append(RuleView(action, rule, current or default, default, current is not None))
    for (action, rule), current in sorted(overrides.items()):
        out.append(RuleView(action, rule, current, None, True))
    return out
