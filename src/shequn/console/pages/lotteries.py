"""Console: lotteries, prizes, draws and fulfilment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from shequn.console.charts import bar_chart
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.errors import ShequnError, ValidationFailed
from shequn.core.fmt import zone
from shequn.core.settings import get_settings
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.lottery import service as lottery_service
from shequn.promotions.lottery.schemas import LotteryIn, LotteryPatch

router = APIRouter(route_class=ConsoleRoute)

PRIZE_ROWS = 8
KINDS = ("physical", "coupon", "points", "thanks")
PRIZE_FIELDS = ("name", "kind", "weight", "stock", "points", "coupon_template_id", "cost")
INT_FIELDS = ("draws_per_day", "points_per_draw", "bought_per_day", "campaign_id")
NOTICES = ("created", "saved", "publish", "cancel", "reveal", "shipped", "delivered")


# --- form values ↔ schema -----------------------------------------------------------------------


def _local(value: datetime | None, tz: str) -> str:
    return value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}".rstrip("0").rstrip(".") if fen else ""


def form_values(lottery: Any, prizes: list[Any], tz: str) -> dict[str, str]:
    """A lottery (or the defaults for a new one) as form strings."""
    if lottery is None:
        return {
            "draws_per_day": "1",
            "p0_kind": "physical",
            "p1_kind": "points",
            "p2_kind": "thanks",
            "p2_name": "谢谢参与",
            "p2_weight": "50",
        }
    out = {"name": lottery.name, "description": lottery.description}
    out.update({k: "" if getattr(lottery, k) is None else str(getattr(lottery, k)) for k in INT_FIELDS})
    out.update({k: _local(getattr(lottery, k), tz) for k in ("starts_at", "ends_at")})
    for i, p in enumerate(prizes):
        out.update(
            {
                f"p{i}_name": p.name,
                f"p{i}_kind": p.kind,
                f"p{i}_weight": str(p.weight),
                f"p{i}_stock": "" if p.stock is None else str(p.stock),
                f"p{i}_points": str(p.points or ""),
                f"p{i}_coupon_template_id": str(p.coupon_template_id or ""),
                f"p{i}_cost": _yuan(p.cost_fen),
            }
        )
    return out


def _int(values: dict[str, str], key: str, errors: list[dict[str, str]]) -> int | None:
    raw = values.get(key, "").strip()
    if not raw:
        return None
    if raw.isdigit() and len(raw) < 12:
        return int(raw)
    errors.append({"field": key, "message": "not a whole number"})
    return None


def _prize_rows(values: dict[str, str], errors: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The filled prize rows (a row without a name is ignored)."""
    rows: list[dict[str, Any]] = []
    for i in range(PRIZE_ROWS):
        if not values.get(f"p{i}_name", "").strip():
            continue
        at = len(rows)
        row: dict[str, Any] = {"name": values[f"p{i}_name"].strip(), "kind": values.get(f"p{i}_kind", "thanks")}
        for key in ("weight", "stock", "points", "coupon_template_id"):
            value = _int(values, f"p{i}_{key}", errors)
            if errors and errors[-1]["field"] == f"p{i}_{key}":
                errors[-1]["field"] = f"prizes.{at}.{key}"
            if value is not None:
                row[key] = value
        row.setdefault("weight", 0)
        try:
            row["cost_fen"] = int(Decimal(values.get(f"p{i}_cost", "").strip() or "0") * 100)
        except InvalidOperation:
            errors.append({"field": f"prizes.{at}.cost_fen", "message": "not an amount"})
        rows.append(row)
    return rows


def _to_payload(values: dict[str, str], tz: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Form strings → schema fields, with per-field errors for what cannot be read."""
    errors: list[dict[str, str]] = []
    payload: dict[str, Any] = {"name": values.get("name", "").strip(), "description": values.get("description", "")}
    for key in ("starts_at", "ends_at"):
        raw = values.get(key, "").strip()
        try:
            payload[key] = datetime.fromisoformat(raw).replace(tzinfo=zone(tz)).astimezone(UTC) if raw else None
        except ValueError:
            errors.append({"field": key, "message": "not a date and time"})
    for key in INT_FIELDS:
        payload[key] = _int(values, key, errors)
    payload["prizes"] = _prize_rows(values, errors)
    return payload, errors


def _pydantic_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(x) for x in e["loc"]), "message": e["msg"]} for e in exc.errors()]


def _form_page(
    request: Request,
    ctx: Console,
    *,
    lottery: Any,
    values: dict[str, str],
    errors: list[dict[str, str]],
    status: int = 200,
) -> Response:
    weights = [values.get(f"p{i}_weight", "") for i in range(PRIZE_ROWS)]
    total = sum(int(w) for w in weights if w.isdigit())
    return render(
        request,
        "lottery_form.html",
        ctx,
        status=status,
        lottery=lottery,
        values=values,
        errors={e.get("field", ""): e.get("message", "") for e in errors},
        rows=range(PRIZE_ROWS),
        kinds=KINDS,
        probabilities=[(int(w) / total if total and w.isdigit() else None) for w in weights],
        campaigns=campaigns_service.list_campaign_choices(ctx.db, workspace_id=ctx.workspace.id),
        coupons=coupons_service.list_templates_for_choice(ctx.db, workspace_id=ctx.workspace.id),
        locked=lottery is not None and lottery.status != "draft",
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _save(ctx: Console, lottery: Any, values: dict[str, str]) -> tuple[Any, list[dict[str, str]]]:
    """Create or update from the form; returns the lottery or the errors."""
    payload, errors = _to_payload(values, ctx.workspace.timezone)
    if errors:
        return None, errors
    try:
        if lottery is None:
            data = LotteryIn.model_validate({k: v for k, v in payload.items() if v is not None and v != ""})
            saved = lottery_service.create_lottery(
                ctx.db, workspace_id=ctx.workspace.id, data=data, created_by=ctx.operator_id
            )
            identity_service.record_audit(
                ctx.db, ctx.actor, "lottery.create", "lottery", saved.id, {"name": saved.name}
            )
        else:
            keep = ("name", "description") if lottery.status != "draft" else tuple(payload)
            patch = LotteryPatch.model_validate({k: payload[k] for k in keep})
            saved = lottery_service.update_lottery(
                ctx.db, workspace_id=ctx.workspace.id, lottery_id=lottery.id, data=patch
            )
            identity_service.record_audit(ctx.db, ctx.actor, "lottery.update", "lottery", saved.id, {})
        ctx.db.commit()
        return saved, []
    except ValidationError as exc:
        return None, _pydantic_errors(exc)
    except ValidationFailed as exc:
        ctx.db.rollback()
        return None, list(exc.details or [{"field": "", "message": exc.message(ctx.locale)}])
    except ShequnError as exc:
        ctx.db.rollback()
        return None, [{"field": "", "message": exc.message(ctx.locale)}]


# --- pages --------------------------------------------------------------------------------------


@router.get("/lotteries")
def lotteries_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every lottery with its phase, window, draws and prize table size."""
    ctx.require(Perm.READ)
    phase = request.query_params.get("phase", "")
    phase = phase if phase in lottery_service.PHASES else ""
    page = page_number(request.query_params.get("page"))
    rows, total = lottery_service.list_lotteries(
        ctx.db, workspace_id=ctx.workspace.id, phase=phase or None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render(
        request,
        "lottery_list.html",
        ctx,
        lotteries=[(x, lottery_service.phase_of(x)) for x in rows],
        draws=lottery_service.draw_counts(ctx.db, lottery_ids=[x.id for x in rows]),
        phase=phase,
        phases=lottery_service.PHASES,
        pages=pager(total, page),
    )


@router.get("/lotteries/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form with a starter prize table."""
    ctx.require(Perm.WRITE)
    return _form_page(request, ctx, lottery=None, values=form_values(None, [], ctx.workspace.timezone), errors=[])


@router.post("/lotteries/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    values = await _form(request)
    saved, errors = _save(ctx, None, values)
    if saved is not None:
        return RedirectResponse(f"/lotteries/{saved.id}?done=created", status_code=303)
    return _form_page(request, ctx, lottery=None, values=values, errors=errors, status=422)


def _get(ctx: Console, lottery_id: int) -> Any:
    return lottery_service.get_lottery(ctx.db, workspace_id=ctx.workspace.id, lottery_id=lottery_id)


@router.get("/lotteries/{lottery_id}/edit")
def edit_form(lottery_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the lottery (rules locked once published)."""
    ctx.require(Perm.WRITE)
    lottery = _get(ctx, lottery_id)
    prizes = lottery_service.list_prizes(ctx.db, lottery_id=lottery.id)
    values = form_values(lottery, prizes, ctx.workspace.timezone)
    return _form_page(request, ctx, lottery=lottery, values=values, errors=[])


@router.post("/lotteries/{lottery_id}/edit")
async def save(lottery_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save the edit."""
    ctx.require(Perm.WRITE)
    lottery = _get(ctx, lottery_id)
    values = await _form(request)
    saved, errors = _save(ctx, lottery, values)
    if saved is not None:
        return RedirectResponse(f"/lotteries/{saved.id}?done=saved", status_code=303)
    return _form_page(request, ctx, lottery=_get(ctx, lottery_id), values=values, errors=errors, status=422)


@router.get("/lotteries/{lottery_id}")
def detail(lottery_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """Results: draws per day, expected vs observed, won vs stock, budget, fulfilment queue, commitment."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    lottery = _get(ctx, lottery_id)
    per_day = lottery_service.draws_per_day(ctx.db, workspace_id=ws, lottery_id=lottery.id)
    stats = lottery_service.prize_stats(ctx.db, workspace_id=ws, lottery_id=lottery.id)
    draws = sum(n for _d, n, _p in per_day)
    campaign = (
        campaigns_service.get_campaign(ctx.db, workspace_id=ws, campaign_id=lottery.campaign_id)
        if lottery.campaign_id
        else None
    )
    fstatus = request.query_params.get("fulfilment", "")
    fstatus = fstatus if fstatus in ("pending", "ready", "shipped", "delivered") else ""
    queue = lottery_service.fulfilment_queue(ctx.db, workspace_id=ws, lottery_id=lottery.id, status=fstatus or None)
    done = request.query_params.get("done", "")
    base = (get_settings().public_url or str(request.base_url)).rstrip("/")
    return render(
        request,
        "lottery.html",
        ctx,
        lottery=lottery,
        phase=lottery_service.phase_of(lottery),
        stats=stats,
        draws=draws,
        chart=bar_chart([(d[5:], n) for d, n, _p in per_day], value_label=str, title=ctx.t("lottery.c.per_day"))
        if per_day
        else "",
        paid_draws=sum(p for _d, _n, p in per_day),
        cost=lottery_service.cost_spent(ctx.db, lottery_id=lottery.id),
        campaign=campaign,
        queue=[lottery_service.fulfilment_out(d, name) for d, name in queue],
        fulfilment=lottery_service.fulfilment_counts(ctx.db, workspace_id=ws, lottery_id=lottery.id),
        fstatus=fstatus,
        can_reveal=(lottery.status == "published" and lottery_service.phase_of(lottery) == "ended")
        or (lottery.status == "cancelled" and lottery.commitment is not None),
        member_url=f"{base}/m/{ctx.workspace.slug}/lottery/{lottery.id}",
        verify_url=f"{base}/m/{ctx.workspace.slug}/lottery/{lottery.id}/verify",
        notice=ctx.t(f"lottery.c.done_{done}") if done in NOTICES else "",
        error=request.query_params.get("error", "")[:200],
    )


def _back(lottery_id: int, **query: str) -> Response:
    q = "&".join(f"{k}={quote(v[:200])}" for k, v in query.items())
    return RedirectResponse(f"/lotteries/{lottery_id}?{q}", status_code=303)


@router.post("/lotteries/{lottery_id}/{action}")
def act(lottery_id: DbId, action: str, ctx: Console = Depends(console_post)) -> Response:
    """Publish (commit to a seed), cancel, or reveal the seed after the end."""
    ctx.require(Perm.WRITE)
    moves = {
        "publish": lottery_service.publish_lottery,
        "cancel": lottery_service.cancel_lottery,
        "reveal": lottery_service.reveal_lottery,
    }
    if action not in moves:
        return _back(lottery_id, error="unknown action")
    try:
        lottery = moves[action](ctx.db, workspace_id=ctx.workspace.id, lottery_id=lottery_id)
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        details = exc.details if isinstance(exc.details, list) else []
        extra = "; ".join(f"{d.get('field', '')}: {d.get('message', '')}" for d in details if isinstance(d, dict))
        return _back(lottery_id, error=exc.message(ctx.locale) + (f" ({extra})" if extra else ""))
    identity_service.record_audit(
        ctx.db, ctx.actor, f"lottery.{action}", "lottery", lottery.id, {"commitment": lottery.commitment or ""}
    )
    ctx.db.commit()
    return _back(lottery_id, done=action)


@router.post("/lotteries/{lottery_id}/draws/{draw_id}/fulfilment")
async def fulfil(lottery_id: DbId, draw_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Mark a physical prize shipped (with a tracking number) or delivered."""
    ctx.require(Perm.WRITE)
    values = await _form(request)
    status = values.get("status", "")
    try:
        draw = lottery_service.mark_fulfilment(
            ctx.db,
            workspace_id=ctx.workspace.id,
            draw_id=draw_id,
            status=status,
            tracking_no=values.get("tracking_no", "").strip()[:64],
        )
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        return _back(lottery_id, error=exc.message(ctx.locale))
    identity_service.record_audit(ctx.db, ctx.actor, f"lottery.{status}", "lottery_draw", draw.id, {})
    ctx.db.commit()
    return _back(lottery_id, done=status)
