"""Console pages: one router gathering every page module (server-rendered Jinja2 + htmx)."""

from fastapi import APIRouter

from shequn.console.pages import auth, commerce, customers, discovery, imports, overview, segments, settings, tags

router = APIRouter(include_in_schema=False)
for _module in (auth, overview, customers, discovery, segments, commerce, imports, settings, tags):
    router.include_router(_module.router)
