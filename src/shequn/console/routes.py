"""Console pages: one router gathering every page module (server-rendered Jinja2 + htmx)."""

from fastapi import APIRouter

from shequn.console.pages import (
    auth,
    campaigns,
    challenges,
    commerce,
    communities,
    coupons,
    customers,
    discovery,
    fission,
    flash_sales,
    gatherings,
    guard,
    imports,
    lotteries,
    overview,
    quizzes,
    segments,
    settings,
    tags,
    ugc,
)

router = APIRouter(include_in_schema=False)
_MODULES = (auth, overview, customers, discovery, segments, communities, fission, ugc, gatherings, commerce, imports)
_PROMOTIONS = (campaigns, coupons, flash_sales, lotteries, quizzes, challenges, guard)
for _module in (*_MODULES, *_PROMOTIONS, settings, tags):
    router.include_router(_module.router)
