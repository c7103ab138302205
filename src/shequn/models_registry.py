"""Imports every domain's models so Alembic and tests see the whole schema."""

from shequn.analytics import models as analytics_models
from shequn.audience import models as audience_models
from shequn.commerce import models as commerce_models
from shequn.community import models as community_models
from shequn.community.fission import models as fission_models
from shequn.community.gatherings import models as gatherings_models
from shequn.community.ugc import models as ugc_models
from shequn.core import models as core_models
from shequn.core.types import Base
from shequn.identity import models as identity_models

__all__ = [
    "Base",
    "analytics_models",
    "audience_models",
    "commerce_models",
    "community_models",
    "core_models",
    "fission_models",
    "gatherings_models",
    "identity_models",
    "ugc_models",
]
