"""Imports every domain's models so Alembic and tests see the whole schema."""

from shequn.analytics import models as analytics_models
from shequn.audience import models as audience_models
from shequn.commerce import models as commerce_models
from shequn.community import models as community_models
from shequn.community.fission import models as fission_models
from shequn.community.gatherings import models as gatherings_models
from shequn.community.ugc import models as ugc_models
from shequn.core import models as core_models
from shequn.core import outbox as outbox_models
from shequn.core.types import Base
from shequn.identity import models as identity_models
from shequn.loyalty import models as loyalty_models
from shequn.promotions.campaigns import models as campaigns_models
from shequn.promotions.challenges import models as challenges_models
from shequn.promotions.coupons import models as coupons_models
from shequn.promotions.flash import models as flash_models
from shequn.promotions.guard import models as guard_models
from shequn.promotions.lottery import models as lottery_models
from shequn.promotions.quiz import models as quiz_models

__all__ = [
    "Base",
    "analytics_models",
    "audience_models",
    "campaigns_models",
    "challenges_models",
    "commerce_models",
    "community_models",
    "core_models",
    "coupons_models",
    "fission_models",
    "flash_models",
    "gatherings_models",
    "guard_models",
    "identity_models",
    "lottery_models",
    "loyalty_models",
    "outbox_models",
    "quiz_models",
    "ugc_models",
]
