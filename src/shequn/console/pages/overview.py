"""The overview dashboard: headline figures, GMV by month, top categories and cities, statuses, imports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shequn.audience import service as audience_service
from shequn.audience.rfm import GROUP_NAMES as RFM_GROUP_NAMES
from shequn.commerce import service as commerce_service
from shequn.console import fmt
from shequn.console.charts import bar_chart, hbars, last_months
from shequn.console.web import Console, ConsoleRoute, console, render
from shequn.core import jobs
from shequn.core.clock import utcnow
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)


@router.get("/")
def overview(request: Request, ctx: Console = Depends(console)) -> Response:
    """Headline figures and charts for the current workspace."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    db = ctx.db
    customers, buyers, repeat = audience_service.customer_counts(db, workspace_id=ws)
    totals = commerce_service.order_totals(db, workspace_id=ws)
    aov = totals["gmv"] // totals["paid_orders"] if totals["paid_orders"] else 0

    by_month = {
        m: (g, n)
        for m, g, n in commerce_service.gmv_by_month(db, workspace_id=ws, tz=ctx.workspace.timezone, months=12)
    }
    now_local = utcnow().astimezone(fmt.zone(ctx.workspace.timezone))
    months = last_months(now_local, 12, max(by_month) if by_month else None)
    gmv_points = [(m, by_month.get(m, (0, 0))[0]) for m in months]
    gmv_chart = bar_chart(
        gmv_points, value_label=lambda v: fmt.money_short(v, ctx.locale), title=ctx.t("overview.gmv_by_month")
    )
    gmv_12m = sum(v for _, v in gmv_points)

    categories = hbars(
        commerce_service.top_categories(db, workspace_id=ws, limit=8),
        lambda v: fmt.money(v, ctx.workspace.currency),
        of_total=True,
    )
    cities = hbars(audience_service.top_cities(db, workspace_id=ws, limit=8), fmt.number)
    statuses = hbars(
        [(ctx.t(f"status.{s}"), n) for s, n in commerce_service.status_counts(db, workspace_id=ws).items() if n],
        fmt.number,
        of_total=True,
    )
    english = ctx.locale == "en"
    rfm = hbars(
        [
            (RFM_GROUP_NAMES[code][1 if english else 0], n)
            for code, n in audience_service.rfm_group_counts(db, workspace_id=ws).items()
        ],
        fmt.number,
        of_total=True,
    )
    recent_jobs = jobs.list_jobs(db, workspace_id=ws, limit=5)
    figures = [
        ("overview.customers", fmt.number(customers), ""),
        ("overview.buyers", fmt.number(buyers), ctx.t("overview.of_customers", pct=fmt.pct(buyers, customers))),
        ("overview.repeat_rate", fmt.pct(repeat, buyers), ctx.t("overview.repeat_buyers", n=fmt.number(repeat))),
        (
            "overview.orders",
            fmt.number(totals["orders"]),
            ctx.t("overview.paid_orders", n=fmt.number(totals["paid_orders"])),
        ),
        (
            "overview.gmv",
            fmt.money(totals["gmv"], ctx.workspace.currency),
            ctx.t("overview.gmv_12m", amount=fmt.money(gmv_12m, ctx.workspace.currency)),
        ),
        ("overview.aov", fmt.money(aov, ctx.workspace.currency), ""),
    ]
    return render(
        request,
        "overview.html",
        ctx,
        figures=figures,
        gmv_chart=gmv_chart,
        categories=categories,
        cities=cities,
        statuses=statuses,
        rfm=rfm,
        jobs=recent_jobs,
        has_orders=totals["orders"] > 0,
    )
