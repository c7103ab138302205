"""Anti-abuse service: check a member action (blacklist, bot-like bursts, rate and guessing limits), record failures,
manage the blacklist and the workspace's limit overrides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.identity.service import Actor
from shequn.promotions.guard import limits
from shequn.promotions.guard.blacklist import (
    BLOCK_KINDS,
    active_block,
    add_block,
    block_values,
    blocked_customers,
    display_subject,
    display_value,
    is_blocked,
    list_blocks,
    remove_block,
    short_id,
)
from shequn.promotions.guard.config import checks_enabled
from shequn.promotions.guard.errors import Blocked, FlagNotFound, GuessingLimited, RateLimited, TooFast
from shequn.promotions.guard.flags import Attempt, hourly_counts, list_flags, record_flag
from shequn.promotions.guard.models import GuardBlock, GuardFlag
from shequn.promotions.guard.overrides import (
    RuleView,
    delete_override,
    effective_rules,
    list_overrides,
    rule_table,
    set_override,
)
from shequn.promotions.guard.policy import ANY_ACTION, FAILURE_RULES, SUBJECT_RULES, Rule, public_ip

# The one entry point for other domains, the console and the API; the pieces live in sibling modules.
__all__ = [
    "BLOCK_KINDS",
    "Blocked",
    "GuessingLimited",
    "RateLimited",
    "RuleView",
    "TooFast",
    "add_block",
    "block_flag_subject",
    "blocked_customers",
    "check_member_action",
    "delete_override",
    "display_subject",
    "display_value",
    "effective_rules",
    "hourly_counts",
    "is_blocked",
    "list_blocks",
    "list_flags",
    "list_overrides",
    "record_failure",
    "remove_block",
    "rule_table",
    "set_override",
    "short_id",
]


def _subjects(attempt: Attempt) -> dict[str, str]:
    """The identifying values of an attempt, by subject rule name (IP only when it identifies a client)."""
    out: dict[str, str] = {}
    if attempt.customer_id is not None:
        out["customer"] = str(attempt.customer_id)
    if attempt.device_id:
        out["device"] = attempt.device_id
    if attempt.phone_hash:
        out["phone"] = attempt.phone_hash
    ip = public_ip(attempt.ip)
    if ip:
        out["ip"] = ip
    return out


def _caller_conn(session: Session) -> Connection | None:
    """The session's own connection when SQLite already holds its write lock (a second connection would wait on
    it forever); counts then roll back with the caller, which only happens if a service checks after writing."""
    if session.get_bind().dialect.name != "sqlite" or not session.in_transaction():
        return None
    conn = session.connection()
    raw = conn.connection.driver_connection
    return conn if getattr(raw, "in_transaction", False) else None


@dataclass(frozen=True)
class _Label:
    error: type[RateLimited]
    reason: str
    rule: str
    subject: str


def _key(attempt: Attempt, rule: str, value: str) -> str:
    return f"g:{attempt.workspace_id}:{attempt.action}:{rule}:{value}"


def _plan(
    attempt: Attempt, rules: dict[str, Rule], subjects: dict[str, str]
) -> tuple[list[limits.Check], list[limits.Distinct], list[_Label]]:
    """The GCRA checks and distinct-customer sets of one attempt, each with what to raise if it refuses."""
    checks: list[limits.Check] = []
    labels: list[_Label] = []

    def add(key: str, rule: Rule, label: _Label, consume: bool = True) -> None:
        if rule.limit > 0:
            checks.append(limits.Check(key=key, limit=rule.limit, window_us=rule.window_ms * 1000, consume=consume))
            labels.append(label)

    actor_key = f"device:{subjects['device']}" if "device" in subjects else f"customer:{subjects.get('customer', '')}"
    if "burst" in rules and ("device" in subjects or "customer" in subjects):
        burst_key = f"g:{attempt.workspace_id}:{ANY_ACTION}:burst:{actor_key}"
        add(burst_key, rules["burst"], _Label(TooFast, "too_fast", "burst", actor_key))
    for rule_name, subject_rule in FAILURE_RULES.items():
        if rule_name in rules and subject_rule in subjects:
            subject = f"{subject_rule}:{subjects[subject_rule]}"
            label = _Label(GuessingLimited, "guessing", rule_name, subject)
            add(_key(attempt, rule_name, subjects[subject_rule]), rules[rule_name], label, consume=False)
    for rule_name in SUBJECT_RULES:
        if rule_name in rules and rule_name in subjects:
            subject = f"{rule_name}:{subjects[rule_name]}"
            add(
                _key(attempt, rule_name, subjects[rule_name]),
                rules[rule_name],
                _Label(RateLimited, "rate_limited", rule_name, subject),
            )
    sets: list[limits.Distinct] = []
    if attempt.customer_id is not None:
        for rule_name, subject_rule in (("device_customers", "device"), ("ip_customers", "ip")):
            rule = rules.get(rule_name)
            if rule is not None and rule.limit > 0 and subject_rule in subjects:
                subject = f"{subject_rule}:{subjects[subject_rule]}"
                sets.append(
                    limits.Distinct(
                        attempt.workspace_id, subject, attempt.customer_id, rule.limit, rule.window_ms * 1000
                    )
                )
                labels.append(_Label(TooFast, "too_fast", rule_name, subject))
    return checks, sets, labels


def check_member_action(
    session: Session,
    *,
    workspace_id: int,
    action: str,
    customer_id: int | None,
    device_id: str | None = None,
    phone_hash: str | None = None,
    ip: str | None = None,
) -> None:
    """Refuse a member action that is blacklisted (Blocked), bot-like (TooFast), over a limit (RateLimited) or
    after too many wrong codes (GuessingLimited); otherwise count it. Call it before the action writes anything."""
    if not checks_enabled():
        return
    attempt = Attempt(workspace_id, action, customer_id, device_id or "", phone_hash or "", ip or "")
    conn = _caller_conn(session)
    block = active_block(session, workspace_id, block_values(customer_id, device_id, phone_hash, ip))
    if block is not None:
        record_flag(conn, attempt, reason="blocked", rule="blacklist", subject=f"{block.kind}:{block.value}")
        raise Blocked(kind=block.kind)
    rules = effective_rules(session, workspace_id=workspace_id, action=action)
    checks, sets, labels = _plan(attempt, rules, _subjects(attempt))
    if not checks and not sets:
        return
    index, retry = limits.run(checks, sets, conn=conn)
    if index:
        label = labels[index - 1]
        record_flag(conn, attempt, reason=label.reason, rule=label.rule, subject=label.subject)
        raise label.error(retry_after=retry, rule=label.rule, action=action)


def record_failure(
    session: Session,
    *,
    workspace_id: int,
    action: str,
    customer_id: int | None,
    device_id: str | None = None,
    phone_hash: str | None = None,
    ip: str | None = None,
) -> None:
    """Count a failed attempt (e.g. a wrong coupon code) toward the action's guessing limits; survives rollback."""
    if not checks_enabled():
        return
    attempt = Attempt(workspace_id, action, customer_id, device_id or "", phone_hash or "", ip or "")
    rules = effective_rules(session, workspace_id=workspace_id, action=action)
    subjects = _subjects(attempt)
    conn = _caller_conn(session)
    for rule_name, subject_rule in FAILURE_RULES.items():
        rule = rules.get(rule_name)
        if rule is None or rule.limit <= 0 or subject_rule not in subjects:
            continue
        check = limits.Check(_key(attempt, rule_name, subjects[subject_rule]), rule.limit, rule.window_ms * 1000)
        index, _ = limits.run([check], conn=conn)
        if index:
            record_flag(
                conn, attempt, reason="guessing", rule=rule_name, subject=f"{subject_rule}:{subjects[subject_rule]}"
            )


# Flag subjects are "<subject rule>:<value>"; a phone subject is blacklisted by its hash.
_SUBJECT_BLOCK_KIND = {"customer": "customer", "device": "device", "phone": "phone_hash", "ip": "ip"}


def block_flag_subject(session: Session, actor: Actor, *, flag_id: int, days: float = 7) -> GuardBlock:
    """Blacklist the subject that tripped a flagged event for `days` (review → block without copying ids)."""
    flag = session.scalar(
        select(GuardFlag).where(GuardFlag.id == flag_id, GuardFlag.workspace_id == actor.workspace_id)
    )
    kind, _, value = flag.subject.partition(":") if flag else ("", "", "")
    if flag is None or kind not in _SUBJECT_BLOCK_KIND:
        raise FlagNotFound()
    until = utcnow() + timedelta(days=days)
    reason = f"{flag.reason}:{flag.rule} · {flag.action}"
    return add_block(session, actor, kind=_SUBJECT_BLOCK_KIND[kind], value=value, reason=reason, until=until)
