"""Member H5 pages and the member API: one router gathering every page module."""

from fastapi import APIRouter

from shequn.member.pages import gatherings, home, invites, ugc

router = APIRouter()
for _module in (home, invites, ugc, gatherings):
    router.include_router(_module.router)
    router.include_router(_module.api)  # the member JSON API, in the OpenAPI document
