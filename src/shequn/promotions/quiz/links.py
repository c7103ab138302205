"""Other capabilities quizzes and challenges call, each through its service module."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shequn.loyalty import service as loyalty_service
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.guard import service as guard_service


def check_member_action(
    session: Session, *, workspace_id: int, action: str, customer_id: int | None, device_id: str | None = None
) -> None:
    """The anti-abuse guard (blacklist, rate limits, bursts) for one member action; raises when refused."""
    guard_service.check_member_action(
        session, workspace_id=workspace_id, action=action, customer_id=customer_id, device_id=device_id or None
    )


def grant_coupon(
    session: Session, *, workspace_id: int, template_id: int, customer_id: int, source: str, source_ref: str
) -> str:
    """Grant a coupon (idempotent by source and ref); the grant's id as text."""
    grant = coupons_service.grant_coupon(
        session,
        workspace_id=workspace_id,
        template_id=template_id,
        customer_id=customer_id,
        source=source,
        source_ref=source_ref,
    )
    return str(grant.id)


def award_points(session: Session, *, workspace_id: int, customer_id: int, points: int, reason: str, ref: str) -> str:
    """Award points (idempotent by reason and ref); the new balance as text."""
    balance = loyalty_service.award_points(
        session, workspace_id=workspace_id, customer_id=customer_id, points=points, reason=reason, ref=ref
    )
    return str(balance)


def campaign_choices(session: Session, *, workspace_id: int) -> list[tuple[int, str]]:
    """(id, name) of the workspace's campaigns for the forms' campaign select."""
    return list(campaigns_service.list_campaign_choices(session, workspace_id=workspace_id))


def coupon_choices(session: Session, *, workspace_id: int) -> list[tuple[int, str]]:
    """(id, name) of the workspace's coupon templates for the prize select."""
    return list(coupons_service.list_templates_for_choice(session, workspace_id=workspace_id))
