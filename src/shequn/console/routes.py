"""Console pages: one router gathering every page module (server-rendered Jinja2 + htmx)."""

from fastapi import APIRouter

from shequn.console.pages import (
    auth,
    commerce,
    communities,
    customers,
    discovery,
    fission,
    gatherings,
    imports,
    overview,
    segments,
    settings,
    tags,
    ugc,
)

router = APIRouter(include_in_schema=False)
_MODULES = (auth, overview, customers, discovery, segments, communities, fission, ugc, gatherings, commerce, imports)
for _module in (*_MODULES, settings, tags):
    router.include_router(_module.router)
