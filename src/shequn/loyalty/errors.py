"""Loyalty errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, ValidationFailed


class InsufficientPoints(Conflict):
    """The customer does not have enough points for this spend."""

    code = "points_insufficient"


class BadPointsAmount(ValidationFailed):
    """Points must be a positive whole number (adjustments: non-zero)."""

    code = "points_bad_amount"
