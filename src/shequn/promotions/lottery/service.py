"""Lottery service: the one module other packages (console, member pages, campaigns, demo) call."""

from __future__ import annotations

from shequn.promotions.lottery.draws import DayLeft, DrawResult, check_open, day_left, draw_lottery, find_draw
from shequn.promotions.lottery.fairness import verify_log
from shequn.promotions.lottery.manage import (
    PHASES,
    cancel_lottery,
    create_lottery,
    get_lottery,
    list_lotteries,
    list_prizes,
    phase_of,
    publish_lottery,
    reveal_ended,
    reveal_lottery,
    secret_seed,
    update_lottery,
)
from shequn.promotions.lottery.models import Lottery, LotteryDraw, LotteryPrize
from shequn.promotions.lottery.prizes import (
    fulfilment_counts,
    fulfilment_queue,
    get_draw,
    list_my_draws,
    mark_fulfilment,
    mask_phone,
    set_address,
)
from shequn.promotions.lottery.reports import (
    PrizeStat,
    cost_spent,
    draw_counts,
    draws_per_day,
    prize_stats,
    summarize,
    verification_draws,
)
from shequn.promotions.lottery.views import (
    fulfilment_out,
    lottery_out,
    member_state,
    public_prizes,
    verification,
    won_out,
)

__all__ = [
    "PHASES",
    "DayLeft",
    "DrawResult",
    "Lottery",
    "LotteryDraw",
    "LotteryPrize",
    "PrizeStat",
    "cancel_lottery",
    "check_open",
    "cost_spent",
    "create_lottery",
    "day_left",
    "draw_counts",
    "draw_lottery",
    "draws_per_day",
    "find_draw",
    "fulfilment_counts",
    "fulfilment_out",
    "fulfilment_queue",
    "get_draw",
    "get_lottery",
    "list_lotteries",
    "list_my_draws",
    "list_prizes",
    "lottery_out",
    "mark_fulfilment",
    "mask_phone",
    "member_state",
    "phase_of",
    "prize_stats",
    "public_prizes",
    "publish_lottery",
    "reveal_ended",
    "reveal_lottery",
    "secret_seed",
    "set_address",
    "summarize",
    "update_lottery",
    "verification",
    "verification_draws",
    "verify_log",
    "won_out",
]
