"""Customers: the searchable list and the customer 360."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shequn.audience import service as audience_service
from shequn.audience.api import identity_out
from shequn.audience.rfm import GROUP_NAMES as RFM_GROUP_NAMES
from shequn.commerce import service as commerce_service
from shequn.commerce.sources import SOURCES
from shequn.console import fmt
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, page_number, pager, render
from shequn.core.web import DbId
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

SORTS = ("recent", "spent", "orders", "influence", "newest")
# Identity sources people filter by: the order platforms plus the social ones identities arrive from.
PLATFORMS = (*SOURCES.keys(), "api", "wechat", "weibo", "douyin", "xiaohongshu")


def _nonneg_int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else None


@router.get("/customers")
def customers(request: Request, ctx: Console = Depends(console)) -> Response:
    """Search, filter, sort and page through customers."""
    ctx.require(Perm.READ)
    qp = request.query_params
    q = (qp.get("q") or "").strip()[:100]
    city = (qp.get("city") or "")[:32]
    platform = (qp.get("platform") or "")[:32]
    rfm_group = qp.get("rfm_group") if qp.get("rfm_group") in RFM_GROUP_NAMES else ""
    min_spent_raw = (qp.get("min_spent") or "").strip()[:20]
    min_orders_raw = (qp.get("min_orders") or "").strip()[:9]
    sort = qp.get("sort") if qp.get("sort") in SORTS else "recent"
    page = page_number(qp.get("page"))
    flt = audience_service.CustomerFilter(
        q=q,
        city=city,
        platform=platform,
        min_spent=fmt.yuan_to_fen(min_spent_raw),
        min_orders=_nonneg_int(min_orders_raw),
        rfm_group=rfm_group or "",
        sort=sort or "recent",
    )
    rows, total = audience_service.list_customers(
        ctx.db, workspace_id=ctx.workspace.id, flt=flt, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    cities = audience_service.list_cities(ctx.db, workspace_id=ctx.workspace.id)
    return render(
        request,
        "customers.html",
        ctx,
        rows=rows,
        pg=pager(total, page),
        cities=cities,
        platforms=PLATFORMS,
        sorts=SORTS,
        rfm_groups=[(code, names[1 if ctx.locale == "en" else 0]) for code, names in RFM_GROUP_NAMES.items()],
        f={
            "rfm_group": rfm_group,
            "q": q,
            "city": city,
            "platform": platform,
            "min_spent": min_spent_raw,
            "min_orders": min_orders_raw,
            "sort": sort,
        },
    )


@router.get("/customers/{customer_id}")
def customer_360(customer_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """Profile, purchase facts, social reach, identities, timeline and orders of one customer."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    c = audience_service.get_customer(ctx.db, workspace_id=ws, customer_id=customer_id)
    identities = [identity_out(i) for i in audience_service.list_identities(ctx.db, workspace_id=ws, customer_id=c.id)]
    timeline = audience_service.customer_timeline(ctx.db, workspace_id=ws, customer_id=c.id, limit=50)
    orders, orders_total = commerce_service.list_orders(
        ctx.db, workspace_id=ws, flt=commerce_service.OrderFilter(customer_id=c.id), limit=PER_PAGE
    )
    return render(
        request,
        "customer.html",
        ctx,
        c=c,
        identities=identities,
        timeline=timeline,
        orders=orders,
        orders_total=orders_total,
        merged_from=customer_id if customer_id != c.id else None,
        rfm_name=RFM_GROUP_NAMES[c.rfm_group][1 if ctx.locale == "en" else 0] if c.rfm_group else "",
    )
