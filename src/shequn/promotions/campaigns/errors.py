"""Campaign errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from typing import Any

from shequn.core.errors import Conflict, NotFound, ValidationFailed
from shequn.promotions.campaigns.budget import BudgetExhausted


class CampaignNotFound(NotFound):
    """No such campaign in this workspace."""

    code = "campaign_not_found"


class CampaignInvalid(ValidationFailed):
    """One or more fields are wrong; details lists {field, code, message}, the message names the fields."""

    code = "campaign_invalid"

    def message(self, locale: str) -> str:
        """The message naming each bad field in the operator's language."""
        from shequn.core.i18n import translate

        problems: list[dict[str, Any]] = list(self.details or [])
        names = []
        for p in problems:
            label = translate(f"campaign.field.{p.get('field', '')}", locale)
            names.append(label if not label.startswith("campaign.field.") else str(p.get("field", "")))
        sep = "、" if locale == "zh-CN" else ", "
        return translate("error.campaign_invalid", locale, fields=sep.join(dict.fromkeys(names)))


class CampaignClosed(Conflict):
    """A cancelled campaign cannot be edited, published or cancelled again."""

    code = "campaign_closed"


class CampaignBadTransition(Conflict):
    """The status change is not allowed from the current status (e.g. publish a published campaign)."""

    code = "campaign_bad_transition"


__all__ = ["BudgetExhausted", "CampaignBadTransition", "CampaignClosed", "CampaignInvalid", "CampaignNotFound"]
