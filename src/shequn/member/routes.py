"""Member H5 pages and the member API: one router gathering every page module."""

from fastapi import APIRouter

from shequn.member.pages import challenges, coupons, flash, gatherings, home, invites, lottery, quiz, ugc

router = APIRouter()
for _module in (home, invites, ugc, gatherings, coupons, flash, lottery, quiz, challenges):
    router.include_router(_module.router)
    router.include_router(_module.api)  # the member JSON API, in the OpenAPI document
