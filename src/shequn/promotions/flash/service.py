"""The flash-sale service other layers call (routes, console, member pages, other domains)."""

from __future__ import annotations

from shequn.promotions.flash.claims import (
    OUTCOMES,
    ClaimResult,
    ReservationView,
    claim,
    decode_script_result,
    note_refusal,
    redis_url,
    view_of,
)
from shequn.promotions.flash.consumer import drain, start_worker, stop_worker
from shequn.promotions.flash.manage import (
    cancel_sale,
    create_sale,
    get_sale,
    list_sales,
    load_into_redis,
    phase_of,
    publish_sale,
    stock_left,
    update_sale,
)
from shequn.promotions.flash.prereg import is_preregistered, preregister, preregistration_count, send_due_reminders
from shequn.promotions.flash.reports import (
    claims_per_minute,
    outcome_totals,
    oversell_check,
    summarize,
    sync_outcomes,
)
from shequn.promotions.flash.reservations import (
    cancel_reservation,
    expire_due,
    get_reservation,
    list_reservations,
    match_paid_orders,
    pay_reservation,
)

__all__ = [
    "OUTCOMES",
    "ClaimResult",
    "ReservationView",
    "cancel_reservation",
    "cancel_sale",
    "claim",
    "claims_per_minute",
    "create_sale",
    "decode_script_result",
    "drain",
    "expire_due",
    "get_reservation",
    "get_sale",
    "is_preregistered",
    "list_reservations",
    "list_sales",
    "load_into_redis",
    "match_paid_orders",
    "note_refusal",
    "outcome_totals",
    "oversell_check",
    "pay_reservation",
    "phase_of",
    "preregister",
    "preregistration_count",
    "publish_sale",
    "redis_url",
    "send_due_reminders",
    "start_worker",
    "stock_left",
    "stop_worker",
    "summarize",
    "sync_outcomes",
    "update_sale",
    "view_of",
]
