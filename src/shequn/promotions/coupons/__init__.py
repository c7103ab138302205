"""Coupons: templates, codes, claims, per-customer limits, stacking, redemption from orders, refunds, fan-out."""
