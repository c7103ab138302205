"""Console: flash sales and their live stock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from shequn.commerce import service as commerce_service
from shequn.console.charts import bar_chart, hbars
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.errors import ShequnError
from shequn.core.fmt import zone
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.flash import service as flash_service
from shequn.promotions.flash.schemas import SaleIn, SalePatch

router = APIRouter(route_class=ConsoleRoute)
INT_FIELDS = ("stock", "per_customer_limit", "reservation_ttl_min", "product_id", "campaign_id")
MONEY_FIELDS = ("flash_price", "original_price")
TIME_FIELDS = ("starts_at", "ends_at")


def _local(value: datetime | None, tz: str) -> str:
    return value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def form_values(sale: Any, tz: str) -> dict[str, str]:
    """A sale (or the defaults of a new one) as form strings."""
    if sale is None:
        return {"per_customer_limit": "1", "reservation_ttl_min": "15", "preregistration": "on"}
    out = {k: str(getattr(sale, k) or "") for k in ("title", "sku", *INT_FIELDS)}
    out.update({k: f"{getattr(sale, k) / 100:.2f}" for k in MONEY_FIELDS})
    out.update({k: _local(getattr(sale, k), tz) for k in TIME_FIELDS})
    out["preregistration"] = "on" if sale.preregistration else ""
    return out


def _payload(values: dict[str, str], tz: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Form strings → schema fields (yuan → fen, local time → UTC), with errors for what cannot be read."""
    out: dict[str, Any] = {"title": values.get("title", "").strip(), "sku": values.get("sku", "").strip()}
    errors: list[dict[str, str]] = []
    for k in INT_FIELDS:
        raw = values.get(k, "").strip()
        if raw:
            if raw.isdigit() and len(raw) < 12:
                out[k] = int(raw)
            else:
                errors.append({"field": k, "message": "not a whole number"})
    for k in MONEY_FIELDS:
        raw = values.get(k, "").strip()
        if raw:
            try:
                out[k] = int((Decimal(raw) * 100).to_integral_value())
            except InvalidOperation:
                errors.append({"field": k, "message": "not an amount"})
    for k in TIME_FIELDS:
        raw = values.get(k, "").strip()
        if raw:
            try:
                out[k] = datetime.fromisoformat(raw).replace(tzinfo=zone(tz)).astimezone(UTC)
            except ValueError:
                errors.append({"field": k, "message": "not a date and time"})
    out["preregistration"] = values.get("preregistration") == "on"
    return out, errors


def _errors(exc: Exception, ctx: Console) -> list[dict[str, str]]:
    if isinstance(exc, ValidationError):
        return [{"field": str(e["loc"][0]) if e["loc"] else "", "message": e["msg"]} for e in exc.errors()]
    if isinstance(exc, ShequnError):
        return list(exc.details or [{"field": "", "message": exc.message(ctx.locale)}])
    raise exc


def _form(
    request: Request, ctx: Console, *, sale: Any, values: dict[str, str], errors: list[Any], status: int = 200
) -> Response:
    products, _n = commerce_service.list_products(ctx.db, workspace_id=ctx.workspace.id, limit=200)
    return render(
        request,
        "flash_form.html",
        ctx,
        status=status,
        sale=sale,
        values=values,
        errors={e.get("field", ""): e.get("message", "") for e in errors},
        products=[(p.id, f"{p.sku} · {p.title}") for p in products],
        campaigns=campaigns_service.list_campaign_choices(ctx.db, workspace_id=ctx.workspace.id),
    )


async def _values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.get("/flash-sales")
def sales_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every flash sale with its phase, stock and sold units."""
    ctx.require(Perm.READ)
    page = page_number(request.query_params.get("page"))
    rows, total = flash_service.list_sales(
        ctx.db, workspace_id=ctx.workspace.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render(
        request,
        "flash_sales.html",
        ctx,
        sales=[(s, flash_service.phase_of(s), flash_service.stock_left(s)) for s in rows],
        pages=pager(total, page),
        engine="Redis" if flash_service.redis_url() else "SQL",
    )


@router.get("/flash-sales/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form."""
    ctx.require(Perm.WRITE)
    return _form(request, ctx, sale=None, values=form_values(None, ctx.workspace.timezone), errors=[])


@router.post("/flash-sales/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    values = await _values(request)
    payload, errors = _payload(values, ctx.workspace.timezone)
    if not errors:
        try:
            data = SaleIn.model_validate(payload)
            sale = flash_service.create_sale(
                ctx.db, workspace_id=ctx.workspace.id, data=data, created_by=ctx.operator_id
            )
            identity_service.record_audit(
                ctx.db, ctx.actor, "flash_sale.create", "flash_sale", sale.id, {"title": sale.title}
            )
            ctx.db.commit()
            return RedirectResponse(f"/flash-sales/{sale.id}", status_code=303)
        except (ValidationError, ShequnError) as exc:
            ctx.db.rollback()
            errors = _errors(exc, ctx)
    return _form(request, ctx, sale=None, values=values, errors=errors, status=422)


@router.get("/flash-sales/{sale_id}/edit")
def edit_form(sale_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the sale."""
    ctx.require(Perm.WRITE)
    sale = flash_service.get_sale(ctx.db, workspace_id=ctx.workspace.id, sale_id=sale_id)
    return _form(request, ctx, sale=sale, values=form_values(sale, ctx.workspace.timezone), errors=[])


@router.post("/flash-sales/{sale_id}/edit")
async def save(sale_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save an edit (price, stock, limit and start only while a draft)."""
    ctx.require(Perm.WRITE)
    sale = flash_service.get_sale(ctx.db, workspace_id=ctx.workspace.id, sale_id=sale_id)
    values = await _values(request)
    payload, errors = _payload(values, ctx.workspace.timezone)
    if not errors:
        if sale.status != "draft":  # frozen fields are not sent back once published
            for k in ("flash_price", "stock", "per_customer_limit", "starts_at"):
                payload.pop(k, None)
        payload.pop("product_id", None)
        payload.pop("sku", None)
        try:
            patch = SalePatch.model_validate(payload)
            flash_service.update_sale(ctx.db, workspace_id=ctx.workspace.id, sale_id=sale.id, data=patch)
            ctx.db.commit()
            return RedirectResponse(f"/flash-sales/{sale.id}", status_code=303)
        except (ValidationError, ShequnError) as exc:
            ctx.db.rollback()
            errors = _errors(exc, ctx)
    sale = flash_service.get_sale(ctx.db, workspace_id=ctx.workspace.id, sale_id=sale_id)
    return _form(request, ctx, sale=sale, values=values, errors=errors, status=422)


@router.post("/flash-sales/{sale_id}/{action}")
async def lifecycle(sale_id: DbId, action: str, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Publish or cancel."""
    ctx.require(Perm.WRITE)
    act = {"publish": flash_service.publish_sale, "cancel": flash_service.cancel_sale}.get(action)
    if act is None:
        return RedirectResponse(f"/flash-sales/{sale_id}", status_code=303)
    act(ctx.db, workspace_id=ctx.workspace.id, sale_id=sale_id)
    identity_service.record_audit(ctx.db, ctx.actor, f"flash_sale.{action}", "flash_sale", sale_id, {})
    ctx.db.commit()
    return RedirectResponse(f"/flash-sales/{sale_id}", status_code=303)


def _live(ctx: Console, sale_id: int) -> dict[str, Any]:
    """Everything the live panel shows (the stream is written first on the Redis engine)."""
    db, ws = ctx.db, ctx.workspace.id
    sale = flash_service.get_sale(db, workspace_id=ws, sale_id=sale_id)
    if flash_service.redis_url() and sale.status != "draft":
        flash_service.drain(max_batches=20)
        flash_service.sync_outcomes(db, sale)
    flash_service.expire_due(db, sale_id=sale.id)
    db.commit()
    db.refresh(sale)
    totals = flash_service.outcome_totals(db, sale_id=sale.id)
    minutes = flash_service.claims_per_minute(db, sale_id=sale.id, last=60)
    tz = ctx.workspace.timezone
    chart = bar_chart(
        [(_local(m, tz)[11:], sum(c.values())) for m, c in minutes],
        value_label=str,
        title=ctx.t("flash.claims_per_minute"),
        width=560,
        height=220,
    )
    outcomes = hbars(
        [(ctx.t(f"flash.outcome.{o}"), totals.get(o, 0)) for o in flash_service.OUTCOMES], str, of_total=True
    )
    return {
        "sale": sale,
        "phase": flash_service.phase_of(sale),
        "left": flash_service.stock_left(sale),
        "check": flash_service.oversell_check(db, sale),
        "chart": chart if minutes else None,
        "outcomes": outcomes,
        "attempts": sum(totals.values()),
        "prereg": flash_service.preregistration_count(db, sale_id=sale.id),
        "reservations": flash_service.list_reservations(db, workspace_id=ws, sale_id=sale.id, limit=20),
    }


@router.get("/flash-sales/{sale_id}")
def detail(sale_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The sale: live stock, claims per minute, outcomes, reservations, oversell check."""
    ctx.require(Perm.READ)
    return render(
        request, "flash_sale.html", ctx, engine="Redis" if flash_service.redis_url() else "SQL", **_live(ctx, sale_id)
    )


@router.get("/flash-sales/{sale_id}/live")
def live(sale_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The live panel alone (htmx polls it every few seconds)."""
    ctx.require(Perm.READ)
    return render(request, "flash_live.html", ctx, **_live(ctx, sale_id))
