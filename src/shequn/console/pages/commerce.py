"""Products and orders."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shequn.audience import service as audience_service
from shequn.audience.errors import CustomerNotFound
from shequn.commerce import service as commerce_service
from shequn.commerce.canonical import ORDER_STATUSES
from shequn.commerce.sources import SOURCES
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, page_number, pager, render
from shequn.core.web import DbId
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)
ORDER_SOURCES = (*SOURCES.keys(), "api")


@router.get("/products")
def products(request: Request, ctx: Console = Depends(console)) -> Response:
    """Products by category, searchable by SKU or title."""
    ctx.require(Perm.READ)
    qp = request.query_params
    q = (qp.get("q") or "").strip()[:100]
    category = (qp.get("category") or "")[:64]
    page = page_number(qp.get("page"))
    rows, total = commerce_service.list_products(
        ctx.db, workspace_id=ctx.workspace.id, q=q, category=category, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    categories = commerce_service.list_categories(ctx.db, workspace_id=ctx.workspace.id)
    return render(
        request,
        "products.html",
        ctx,
        rows=rows,
        pg=pager(total, page),
        categories=categories,
        f={"q": q, "category": category},
    )


@router.get("/orders")
def orders(request: Request, ctx: Console = Depends(console)) -> Response:
    """Orders, newest first, filtered by status and source or found by order id."""
    ctx.require(Perm.READ)
    qp = request.query_params
    q = (qp.get("q") or "").strip()[:64]
    status = qp.get("status") if qp.get("status") in ORDER_STATUSES else ""
    source = (qp.get("source") or "")[:32]
    customer_raw = (qp.get("customer") or "").strip()
    customer_id = int(customer_raw) if customer_raw.isdigit() and len(customer_raw) < 19 else None
    page = page_number(qp.get("page"))
    flt = commerce_service.OrderFilter(q=q, status=status or "", source=source, customer_id=customer_id)
    rows, total = commerce_service.list_orders(
        ctx.db, workspace_id=ctx.workspace.id, flt=flt, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    sources = ORDER_SOURCES if not source or source in ORDER_SOURCES else (*ORDER_SOURCES, source)
    return render(
        request,
        "orders.html",
        ctx,
        rows=rows,
        pg=pager(total, page),
        statuses=ORDER_STATUSES,
        sources=sources,
        f={"q": q, "status": status, "source": source, "customer": customer_id},
    )


@router.get("/orders/{order_id}")
def order_detail(order_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """One order with its line items and buyer."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    order = commerce_service.get_order(ctx.db, workspace_id=ws, order_id=order_id)
    items = commerce_service.list_line_items(ctx.db, workspace_id=ws, order_ids=[order.id])[order.id]
    customer = None
    if order.customer_id is not None:
        try:
            customer = audience_service.get_customer(ctx.db, workspace_id=ws, customer_id=order.customer_id)
        except CustomerNotFound:
            customer = None
    return render(request, "order.html", ctx, o=order, items=items, customer=customer)
