"""A campaign's budget: activities charge their cost to it, and a cap is never passed under concurrency."""

from __future__ import annotations

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from shequn.core.errors import Conflict
from shequn.promotions.campaigns.models import Campaign


class BudgetExhausted(Conflict):
    """The campaign's budget cannot cover this cost."""

    code = "campaign_budget_exhausted"


def charge_budget(session: Session, *, workspace_id: int, campaign_id: int | None, amount_fen: int) -> None:
    """Add amount_fen to the campaign's spend, or raise BudgetExhausted if that would pass its cap."""
    if campaign_id is None or amount_fen <= 0:
        return
    # One conditional UPDATE: two claims racing for the last yuan cannot both pass the check.
    result = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.workspace_id == workspace_id,
            (Campaign.budget_fen.is_(None)) | (Campaign.spent_fen + amount_fen <= Campaign.budget_fen),
        )
        .values(spent_fen=Campaign.spent_fen + amount_fen)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise BudgetExhausted(campaign_id=campaign_id)


def refund_budget(session: Session, *, workspace_id: int, campaign_id: int | None, amount_fen: int) -> None:
    """Give back a cost (refund, reversal, expired reservation); spend never goes below zero."""
    if campaign_id is None or amount_fen <= 0:
        return
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.workspace_id == workspace_id)
        .values(spent_fen=case((Campaign.spent_fen >= amount_fen, Campaign.spent_fen - amount_fen), else_=0))
        .execution_options(synchronize_session=False)
    )
