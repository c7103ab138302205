"""Coupon services: the one module other domains, pages and routes call."""

from __future__ import annotations

from shequn.promotions.coupons.claims import (
    claim_by_code,
    claim_coupon,
    find_grant,
    grant_coupon,
    list_customer_grants,
    list_grants,
    shown_state,
)
from shequn.promotions.coupons.codes import code_counts, codes_csv, export_code_rows, generate_codes, mask_code
from shequn.promotions.coupons.fanout import FANOUT_JOB, FanoutReport, run_fanout, start_fanout
from shequn.promotions.coupons.matching import MATCH_JOB, match_orders, order_ref_of
from shequn.promotions.coupons.models import CouponGrant, CouponTemplate
from shequn.promotions.coupons.pricing import Line
from shequn.promotions.coupons.redeem import Redemption, expire_grants, redeem, reverse_order
from shequn.promotions.coupons.stats import TemplateResults, summarize, template_results
from shequn.promotions.coupons.templates import (
    create_template,
    face_value,
    get_template,
    list_open_templates,
    list_templates,
    list_templates_for_choice,
    set_status,
    update_template,
)

__all__ = [
    "FANOUT_JOB",
    "MATCH_JOB",
    "CouponGrant",
    "CouponTemplate",
    "FanoutReport",
    "Line",
    "Redemption",
    "TemplateResults",
    "claim_by_code",
    "claim_coupon",
    "code_counts",
    "codes_csv",
    "create_template",
    "expire_grants",
    "export_code_rows",
    "face_value",
    "find_grant",
    "generate_codes",
    "get_template",
    "grant_coupon",
    "list_customer_grants",
    "list_grants",
    "list_open_templates",
    "list_templates",
    "list_templates_for_choice",
    "mask_code",
    "match_orders",
    "order_ref_of",
    "redeem",
    "reverse_order",
    "run_fanout",
    "set_status",
    "shown_state",
    "start_fanout",
    "summarize",
    "template_results",
    "update_template",
]
