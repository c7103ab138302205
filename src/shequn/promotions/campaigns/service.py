"""Campaigns service: the one module other packages (activities, console, demo) call."""

from __future__ import annotations

from shequn.promotions.campaigns.budget import BudgetExhausted, charge_budget, refund_budget
from shequn.promotions.campaigns.manage import (
    CHANNELS,
    GOALS,
    KPI_METRICS,
    STATUSES,
    campaign_belongs,
    cancel_campaign,
    check_campaign,
    create_campaign,
    get_campaign,
    list_campaign_choices,
    list_campaigns,
    publish_campaign,
    status_counts,
    status_of,
    update_campaign,
)
from shequn.promotions.campaigns.models import Campaign
from shequn.promotions.campaigns.results import DAY_PREFIX, Day, Kpi, Results, campaign_results

__all__ = [
    "CHANNELS",
    "DAY_PREFIX",
    "GOALS",
    "KPI_METRICS",
    "STATUSES",
    "BudgetExhausted",
    "Campaign",
    "Day",
    "Kpi",
    "Results",
    "campaign_belongs",
    "campaign_results",
    "cancel_campaign",
    "charge_budget",
    "check_campaign",
    "create_campaign",
    "get_campaign",
    "list_campaign_choices",
    "list_campaigns",
    "publish_campaign",
    "refund_budget",
    "status_counts",
    "status_of",
    "update_campaign",
]
