"""The operator API of every promotions capability, gathered for the app."""

from __future__ import annotations

from fastapi import APIRouter

from shequn.promotions.campaigns.api import router as campaigns_router
from shequn.promotions.challenges.api import router as challenges_router
from shequn.promotions.coupons.api import router as coupons_router
from shequn.promotions.flash.api import router as flash_router
from shequn.promotions.guard.api import router as guard_router
from shequn.promotions.lottery.api import router as lottery_router
from shequn.promotions.quiz.api import router as quiz_router

router = APIRouter()
for _router in (campaigns_router, coupons_router, flash_router, lottery_router, quiz_router, challenges_router):
    router.include_router(_router)
router.include_router(guard_router)
