"""Console: coupon templates (list, form), results, codes, fan-out to a segment with job progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import ValidationError

from shequn.audience import service as audience_service
from shequn.console.charts import bar_chart
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core import jobs
from shequn.core.errors import NotFound, ShequnError
from shequn.core.fmt import money_short, zone
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.coupons.schemas import TemplateIn, TemplatePatch

router = APIRouter(route_class=ConsoleRoute)

# Form inputs in yuan → schema fields in fen.
MONEY_FIELDS = {
    "amount": "amount_fen",
    "max_discount": "max_discount_fen",
    "min_order": "min_order_fen",
    "budget": "budget_fen",
}
INT_FIELDS = ("percent_off", "valid_days", "total_stock", "per_customer_limit", "per_phone_limit", "campaign_id")
TEXT_FIELDS = ("name", "description", "public_code")
CHOICE_FIELDS = ("kind", "scope", "validity", "code_mode")
NOTICES = {
    "created": "coupon.done.created",
    "saved": "coupon.done.saved",
    "active": "coupon.done.active",
    "paused": "coupon.done.paused",
    "ended": "coupon.done.ended",
    "codes": "coupon.done.codes",
}


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    return str(Decimal(fen) / 100).rstrip("0").rstrip(".") if fen % 100 else str(fen // 100)


def _local(value: datetime | None, tz: str) -> str:
    return value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def form_values(tpl: Any, tz: str) -> dict[str, str]:
    """A template (or the defaults for a new one) as form strings."""
    if tpl is None:
        return {"kind": "fixed", "scope": "all", "validity": "fixed", "code_mode": "none", "per_customer_limit": "1"}
    out = {k: str(getattr(tpl, k) or "") for k in (*TEXT_FIELDS, *CHOICE_FIELDS)}
    out.update({form: _yuan(getattr(tpl, field)) for form, field in MONEY_FIELDS.items()})
    out.update({k: "" if getattr(tpl, k) is None else str(getattr(tpl, k)) for k in INT_FIELDS})
    out["starts_at"], out["ends_at"] = _local(tpl.starts_at, tz), _local(tpl.ends_at, tz)
    out["scope_skus"] = "\n".join(tpl.scope_skus or [])
    out["scope_categories"] = "\n".join(tpl.scope_categories or [])
    out["stackable"] = "on" if tpl.stackable else ""
    return out


def _to_payload(values: dict[str, str], tz: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Form strings → schema fields (None where blank), with per-field errors for unreadable values."""
    payload: dict[str, Any] = {k: values.get(k, "").strip() or None for k in (*TEXT_FIELDS, *CHOICE_FIELDS)}
    errors: dict[str, str] = {}
    for form, field in MONEY_FIELDS.items():
        raw = values.get(form, "").strip()
        try:
            payload[field] = None if not raw else int(Decimal(raw) * 100)
        except InvalidOperation:
            errors[form] = "¥"
    for k in INT_FIELDS:
        raw = values.get(k, "").strip()
        if raw and not (raw.isdigit() and len(raw) < 12):
            errors[k] = "#"
        payload[k] = int(raw) if raw.isdigit() and len(raw) < 12 else None
    for k in ("starts_at", "ends_at"):
        raw = values.get(k, "").strip()
        try:
            payload[k] = datetime.fromisoformat(raw).replace(tzinfo=zone(tz)).astimezone(UTC) if raw else None
        except ValueError:
            errors[k] = "—"
    payload["scope_skus"] = [s for s in values.get("scope_skus", "").split() if s]
    payload["scope_categories"] = [s for s in values.get("scope_categories", "").replace(",", "\n").splitlines() if s]
    payload["stackable"] = values.get("stackable") == "on"
    return payload, errors


def _form_field(field: str) -> str:
    """The form input a schema field is typed in."""
    return {v: k for k, v in MONEY_FIELDS.items()}.get(field, field)


def _errors_of(ctx: Console, exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {_form_field(str(e["loc"][0]) if e["loc"] else ""): e["msg"] for e in exc.errors()}
    assert isinstance(exc, ShequnError)
    field = str(exc.params.get("field", ""))
    return {_form_field(field): exc.message(ctx.locale)}


def _form_page(request: Request, ctx: Console, *, tpl: Any, values: dict[str, str], errors: dict[str, str]) -> Response:
    return render(
        request,
        "coupon_form.html",
        ctx,
        status=422 if errors else 200,
        tpl=tpl,
        values=values,
        errors=errors,
        campaigns=campaigns_service.list_campaign_choices(ctx.db, workspace_id=ctx.workspace.id),
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.get("/coupons")
def coupons_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Templates with stock, claimed, redeemed and budget."""
    ctx.require(Perm.READ)
    status = request.query_params.get("status", "")
    status = status if status in ("draft", "active", "paused", "ended") else ""
    page = page_number(request.query_params.get("page"))
    rows, total = coupons_service.list_templates(
        ctx.db, workspace_id=ctx.workspace.id, status=status or None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    done = request.query_params.get("done", "")
    return render(
        request,
        "coupons.html",
        ctx,
        templates=rows,
        status_filter=status,
        pages=pager(total, page),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
    )


@router.get("/coupons/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form."""
    ctx.require(Perm.WRITE)
    return _form_page(request, ctx, tpl=None, values=form_values(None, ctx.workspace.timezone), errors={})


@router.post("/coupons/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    values = await _form(request)
    payload, errors = _to_payload(values, ctx.workspace.timezone)
    if not errors:
        try:
            data = TemplateIn.model_validate({k: v for k, v in payload.items() if v is not None})
            tpl = coupons_service.create_template(
                ctx.db, workspace_id=ctx.workspace.id, data=data, created_by=ctx.operator_id
            )
            identity_service.record_audit(ctx.db, ctx.actor, "coupon.create", "coupon_template", tpl.id, {})
            ctx.db.commit()
            return RedirectResponse(f"/coupons/{tpl.id}?done=created", status_code=303)
        except (ValidationError, ShequnError) as exc:
            ctx.db.rollback()
            errors = _errors_of(ctx, exc)
    return _form_page(request, ctx, tpl=None, values=values, errors=errors)


@router.get("/coupons/{template_id}/edit")
def edit_form(template_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the template."""
    ctx.require(Perm.WRITE)
    tpl = coupons_service.get_template(ctx.db, workspace_id=ctx.workspace.id, template_id=template_id)
    return _form_page(request, ctx, tpl=tpl, values=form_values(tpl, ctx.workspace.timezone), errors={})


@router.post("/coupons/{template_id}/edit")
async def save(template_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save the edit."""
    ctx.require(Perm.WRITE)
    tpl = coupons_service.get_template(ctx.db, workspace_id=ctx.workspace.id, template_id=template_id)
    values = await _form(request)
    payload, errors = _to_payload(values, ctx.workspace.timezone)
    if not errors:
        try:
            data = TemplatePatch.model_validate(payload)
            coupons_service.update_template(ctx.db, workspace_id=ctx.workspace.id, template_id=tpl.id, data=data)
            identity_service.record_audit(ctx.db, ctx.actor, "coupon.update", "coupon_template", tpl.id, {})
            ctx.db.commit()
            return RedirectResponse(f"/coupons/{tpl.id}?done=saved", status_code=303)
        except (ValidationError, ShequnError) as exc:
            ctx.db.rollback()
            errors = _errors_of(ctx, exc)
    tpl = coupons_service.get_template(ctx.db, workspace_id=ctx.workspace.id, template_id=template_id)
    return _form_page(request, ctx, tpl=tpl, values=values, errors=errors)


@router.get("/coupons/{template_id}")
def detail(template_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """Results (claims per day, redemption rate, discount, GMV), codes, fan-out and recent grants."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    tpl = coupons_service.get_template(ctx.db, workspace_id=ws, template_id=template_id)
    ctx.db.refresh(tpl)
    results = coupons_service.template_results(ctx.db, tpl)
    chart = bar_chart(
        _daily(results.per_day),
        value_label=lambda v: str(v),
        title=ctx.t("coupon.chart.claims_per_day"),
        height=200,
        axis_label=lambda i, label: label if i % 2 == 0 else "",
    )
    grants, _total = coupons_service.list_grants(ctx.db, workspace_id=ws, template_id=tpl.id, limit=20)
    fanouts = [
        j
        for j in jobs.list_jobs(ctx.db, workspace_id=ws, kind=coupons_service.FANOUT_JOB, limit=20)
        if j.params.get("template_id") == tpl.id
    ][:5]
    done = request.query_params.get("done", "")
    return render(
        request,
        "coupon.html",
        ctx,
        tpl=tpl,
        r=results,
        chart=chart,
        gmv_short=money_short(results.gmv_fen, ctx.locale),
        codes=coupons_service.code_counts(ctx.db, workspace_id=ws, template_id=tpl.id),
        grants=grants,
        fanouts=fanouts,
        segments=audience_service.list_segments(ctx.db, workspace_id=ws),
        campaign=campaigns_service.get_campaign(ctx.db, workspace_id=ws, campaign_id=tpl.campaign_id)
        if tpl.campaign_id
        else None,
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        error=request.query_params.get("error", "")[:200],
    )


def _daily(per_day: list[tuple[date, int]]) -> list[tuple[str, int]]:
    """Every day from the first issue to the last, days without issues as zero (a continuous axis)."""
    if not per_day:
        return []
    counts = dict(per_day)
    first, last = per_day[0][0], per_day[-1][0]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d.strftime("%m-%d"), counts.get(d, 0)) for d in days]


def _back(template_id: int, *, done: str = "", error: str = "") -> Response:
    query = f"done={done}" if done else f"error={quote(error[:200])}"
    return RedirectResponse(f"/coupons/{template_id}?{query}", status_code=303)


@router.post("/coupons/{template_id}/status")
async def set_status(template_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Activate, pause, resume or end."""
    ctx.require(Perm.WRITE)
    status = (await _form(request)).get("status", "")
    try:
        coupons_service.set_status(ctx.db, workspace_id=ctx.workspace.id, template_id=template_id, status=status)
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        return _back(template_id, error=exc.message(ctx.locale))
    identity_service.record_audit(ctx.db, ctx.actor, f"coupon.{status}", "coupon_template", template_id, {})
    ctx.db.commit()
    return _back(template_id, done=status)


@router.post("/coupons/{template_id}/codes")
async def generate_codes(template_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Generate unique codes."""
    ctx.require(Perm.WRITE)
    raw = (await _form(request)).get("count", "").strip()
    count = int(raw) if raw.isdigit() and len(raw) < 7 else 0
    if not 1 <= count <= 200_000:
        return _back(template_id, error=ctx.t("coupon.codes_count_hint"))
    try:
        made = coupons_service.generate_codes(
            ctx.db, workspace_id=ctx.workspace.id, template_id=template_id, count=count
        )
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        return _back(template_id, error=exc.message(ctx.locale))
    identity_service.record_audit(ctx.db, ctx.actor, "coupon.codes", "coupon_template", template_id, {"count": made})
    ctx.db.commit()
    return _back(template_id, done="codes")


@router.get("/coupons/{template_id}/codes.csv")
def export_codes(template_id: DbId, ctx: Console = Depends(console)) -> Response:
    """Download the codes (claimed ones masked)."""
    ctx.require(Perm.EXPORT)
    tpl = coupons_service.get_template(ctx.db, workspace_id=ctx.workspace.id, template_id=template_id)
    identity_service.record_audit(ctx.db, ctx.actor, "coupon.export_codes", "coupon_template", tpl.id, {})
    ctx.db.commit()
    return StreamingResponse(
        coupons_service.codes_csv(ctx.workspace.id, tpl.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coupon-{tpl.id}-codes.csv"'},
    )


@router.post("/coupons/{template_id}/fanout")
async def fanout(template_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Queue the fan-out to a segment and show its progress."""
    ctx.require(Perm.WRITE)
    values = await _form(request)
    raw = values.get("segment_id", "").strip()
    try:
        job = coupons_service.start_fanout(
            ctx.db,
            workspace_id=ctx.workspace.id,
            template_id=template_id,
            segment_id=int(raw) if raw.isdigit() and len(raw) < 12 else 0,
            message=values.get("message", "")[:500],
            created_by=ctx.operator_id,
        )
    except ShequnError as exc:
        if exc.status_code == 404 and not raw:
            raise
        ctx.db.rollback()
        return _back(template_id, error=exc.message(ctx.locale))
    identity_service.record_audit(
        ctx.db, ctx.actor, "coupon.fanout", "coupon_template", template_id, {"segment_id": raw}
    )
    ctx.db.commit()
    return RedirectResponse(f"/coupons/{template_id}/fanout/{job.id}", status_code=303)


def _fanout_view(ctx: Console, template_id: int, job_id: int) -> dict[str, Any]:
    tpl = coupons_service.get_template(ctx.db, workspace_id=ctx.workspace.id, template_id=template_id)
    job = jobs.get_job(ctx.db, workspace_id=ctx.workspace.id, job_id=job_id)
    if job is None or job.kind != coupons_service.FANOUT_JOB or job.params.get("template_id") != tpl.id:
        raise NotFound(id=job_id)
    share = (
        job.progress_done / job.progress_total if job.progress_total else (1.0 if job.status == "succeeded" else 0.0)
    )
    return {"tpl": tpl, "job": job, "share": min(share, 1.0), "finished": job.status in ("succeeded", "failed")}


@router.get("/coupons/{template_id}/fanout/{job_id}")
def fanout_page(template_id: DbId, job_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The fan-out job: progress (refreshing) and its report."""
    ctx.require(Perm.READ)
    return render(request, "coupon_fanout.html", ctx, **_fanout_view(ctx, template_id, job_id))


@router.get("/coupons/{template_id}/fanout/{job_id}/progress")
def fanout_progress(template_id: DbId, job_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The progress block alone (htmx polls it)."""
    ctx.require(Perm.READ)
    return render(request, "coupon_fanout_progress.html", ctx, **_fanout_view(ctx, template_id, job_id))
