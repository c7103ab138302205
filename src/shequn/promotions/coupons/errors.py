"""Coupon errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, ValidationFailed


class CouponTemplateNotFound(NotFound):
    """No such coupon template in this workspace."""

    code = "coupon_template_not_found"


class CouponGrantNotFound(NotFound):
    """No such coupon held (or not the member's own)."""

    code = "coupon_grant_not_found"


class CouponInvalid(ValidationFailed):
    """A template field is invalid (the field is named in params)."""

    code = "coupon_invalid"


class CouponCodeInvalid(NotFound):
    """The code entered matches no coupon (same answer for every wrong guess)."""

    code = "coupon_code_invalid"


class CouponNotActive(Conflict):
    """The template is a draft, paused or ended."""

    code = "coupon_not_active"


class CouponNotStarted(Conflict):
    """The claim window has not opened yet."""

    code = "coupon_not_started"


class CouponEnded(Conflict):
    """The claim window has closed."""

    code = "coupon_ended"


class CouponSoldOut(Conflict):
    """Every coupon of the template is issued."""

    code = "coupon_sold_out"


class CouponLimitReached(Conflict):
    """The customer (or the phone number) already holds as many as allowed."""

    code = "coupon_limit_reached"


class CouponBudgetExhausted(Conflict):
    """The template's budget cannot cover another coupon."""

    code = "coupon_budget_exhausted"


class CouponCodeTaken(Conflict):
    """This unique code was already claimed by someone."""

    code = "coupon_code_taken"


class CouponNotUsable(Conflict):
    """The coupon is not open (redeemed, expired, reversed) or not valid at this time."""

    code = "coupon_not_usable"


class CouponNotApplicable(Conflict):
    """The order does not qualify: scope, threshold or stacking rules (reason in params)."""

    code = "coupon_not_applicable"
