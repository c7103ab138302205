"""Console: campaigns (list with status filter, create/edit form) and the campaign page with live results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from pydantic import ValidationError

from shequn.audience import service as audience_service
from shequn.community import service as community_service
from shequn.console.charts import bar_chart
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError, ValidationFailed
from shequn.core.fmt import money_short, yuan_to_fen, zone
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.campaigns.schemas import CampaignIn, CampaignPatch
from shequn.promotions.campaigns.service import Campaign

router = APIRouter(route_class=ConsoleRoute)

TIME_FIELDS = ("starts_at", "ends_at")
MONEY_KPIS = ("gmv_fen",)
NOTICES = {
    "created": "campaign.done.created",
    "saved": "campaign.done.saved",
    "published": "campaign.done.published",
    "cancelled": "campaign.done.cancelled",
}
LIVE_SECONDS = 10  # how often the campaign page refreshes its live parts
POLL_AFTER_END = timedelta(days=7)


# --- form values ↔ schema -----------------------------------------------------------------------


def _local(value: datetime | None, tz: str) -> str:
    """A UTC time as the value of a datetime-local input in the workspace zone."""
    return value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _yuan(fen: int | None) -> str:
    """Fen as a yuan string for an input ('' for none)."""
    if fen is None:
        return ""
    yuan, cents = divmod(fen, 100)
    return f"{yuan}.{cents:02d}" if cents else str(yuan)


def form_values(c: Campaign | None, tz: str) -> dict[str, Any]:
    """A campaign (or the defaults for a new one) as form values."""
    if c is None:
        return {"goal": "conversion", "channels": []}
    out: dict[str, Any] = {
        "name": c.name,
        "goal": c.goal,
        "description": c.description,
        "utm_campaign": c.utm_campaign,
        "budget": _yuan(c.budget_fen),
        "target_segment_id": str(c.target_segment_id or ""),
        "target_community_id": str(c.target_community_id or ""),
        "channels": list(c.channels or []),
    }
    out.update({k: _local(getattr(c, k), tz) for k in TIME_FIELDS})
    for metric, target in (c.kpis or {}).items():
        out[f"kpi_{metric}"] = _yuan(target) if metric in MONEY_KPIS else str(target)
    return out


def _problem(field: str, code: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": code}


def _to_payload(values: dict[str, Any], tz: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Form strings → schema fields, with per-field problems for what cannot be read."""
    errors: list[dict[str, str]] = []
    payload: dict[str, Any] = {k: str(values.get(k, "")).strip() for k in ("name", "goal", "description")}
    payload["utm_campaign"] = str(values.get("utm_campaign", "")).strip()
    for k in TIME_FIELDS:
        raw = str(values.get(k, "")).strip()
        try:
            payload[k] = datetime.fromisoformat(raw).replace(tzinfo=zone(tz)).astimezone(UTC) if raw else None
        except ValueError:
            errors.append(_problem(k, "not_a_time"))
        if not raw:
            errors.append(_problem(k, "required"))
    raw_budget = str(values.get("budget", "")).strip()
    payload["budget_fen"] = yuan_to_fen(raw_budget)
    if raw_budget and payload["budget_fen"] is None:
        errors.append(_problem("budget_fen", "negative" if raw_budget.startswith("-") else "not_a_number"))
    for k in ("target_segment_id", "target_community_id"):
        raw = str(values.get(k, "")).strip()
        payload[k] = int(raw) if raw.isdigit() and len(raw) < 19 else None
    payload["channels"] = list(values.get("channels") or [])
    kpis: dict[str, int] = {}
    for metric in campaigns_service.KPI_METRICS:
        raw = str(values.get(f"kpi_{metric}", "")).strip()
        if not raw:
            continue
        target = yuan_to_fen(raw) if metric in MONEY_KPIS else (int(raw) if raw.isdigit() and len(raw) < 16 else None)
        if target is None:
            errors.append(_problem("kpis", "bad_target"))
        else:
            kpis[metric] = target
    payload["kpis"] = kpis
    return payload, errors


def _field_errors(ctx: Console, errors: list[dict[str, Any]]) -> dict[str, str]:
    """Field → message in the operator's language."""
    out: dict[str, str] = {}
    for e in errors:
        field = str(e.get("field", "")).split(".")[0]
        key = f"campaign.problem.{e.get('code', '')}"
        text = ctx.t(key)
        out.setdefault(field, text if text != key else str(e.get("message", "")))
    return out


def _pydantic_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": str(e["loc"][0]) if e["loc"] else "", "message": e["msg"]} for e in exc.errors()]


def _form_page(
    request: Request, ctx: Console, *, c: Campaign | None, values: dict[str, Any], errors: dict[str, str], status: int
) -> Response:
    ws = ctx.workspace.id
    return render(
        request,
        "campaign_form.html",
        ctx,
        status=status,
        c=c,
        values=values,
        errors=errors,
        goals=campaigns_service.GOALS,
        channels=campaigns_service.CHANNELS,
        metrics=campaigns_service.KPI_METRICS,
        money_kpis=MONEY_KPIS,
        segments=[(s.id, s.name, s.members_count) for s in audience_service.list_segments(ctx.db, workspace_id=ws)],
        communities=[(m.id, m.name) for m in community_service.list_communities(ctx.db, workspace_id=ws)],
    )


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    out["channels"] = [v for v in form.getlist("channels") if isinstance(v, str)]
    return out


def _save(ctx: Console, c: Campaign | None, values: dict[str, Any]) -> tuple[Campaign | None, list[dict[str, Any]]]:
    """Create or update from the form; the campaign, or the problems to show beside their fields."""
    payload, errors = _to_payload(values, ctx.workspace.timezone)
    ws = ctx.workspace.id
    # Unreadable fields are dropped and the rest still goes through the service's checks, so every bad field is
    # marked at once; nothing is committed while any field is unreadable.
    try:
        if c is None:
            data = CampaignIn.model_validate({k: v for k, v in payload.items() if v is not None})
            saved = campaigns_service.create_campaign(ctx.db, workspace_id=ws, data=data, created_by=ctx.operator_id)
            audit = {"name": saved.name}
            identity_service.record_audit(ctx.db, ctx.actor, "campaign.create", "campaign", saved.id, audit)
        else:
            patch = CampaignPatch.model_validate(payload)
            saved = campaigns_service.update_campaign(ctx.db, workspace_id=ws, campaign_id=c.id, data=patch)
            identity_service.record_audit(ctx.db, ctx.actor, "campaign.update", "campaign", c.id, {"via": "console"})
        if errors:
            ctx.db.rollback()
            return None, errors
        ctx.db.commit()
        return saved, []
    except ValidationError as exc:
        return None, errors + _pydantic_errors(exc)
    except ValidationFailed as exc:
        ctx.db.rollback()
        return None, errors + list(exc.details or [{"field": "", "message": exc.message(ctx.locale)}])
    except ShequnError as exc:
        ctx.db.rollback()
        return None, [*errors, {"field": "", "message": exc.message(ctx.locale)}]


# --- list, new, edit ----------------------------------------------------------------------------


@router.get("/campaigns")
def campaigns_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Campaigns, latest start first, filtered by status, with budget burn."""
    ctx.require(Perm.READ)
    status = request.query_params.get("status", "")
    status = status if status in campaigns_service.STATUSES else ""
    page = page_number(request.query_params.get("page"))
    ws = ctx.workspace.id
    rows, total = campaigns_service.list_campaigns(
        ctx.db, workspace_id=ws, status=status or None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    done = request.query_params.get("done", "")
    return render(
        request,
        "campaigns.html",
        ctx,
        campaigns=[(c, campaigns_service.status_of(c)) for c in rows],
        filter_status=status,
        statuses=campaigns_service.STATUSES,
        counts=campaigns_service.status_counts(ctx.db, workspace_id=ws),
        pages=pager(total, page),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
    )


@router.get("/campaigns/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form."""
    ctx.require(Perm.WRITE)
    return _form_page(request, ctx, c=None, values=form_values(None, ctx.workspace.timezone), errors={}, status=200)


@router.post("/campaigns/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft from the form (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    values = await _form(request)
    saved, errors = _save(ctx, None, values)
    if saved is not None:
        return RedirectResponse(f"/campaigns/{saved.id}?done=created", status_code=303)
    return _form_page(request, ctx, c=None, values=values, errors=_field_errors(ctx, errors), status=422)


@router.get("/campaigns/{campaign_id}/edit")
def edit_form(campaign_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the campaign."""
    ctx.require(Perm.WRITE)
    c = campaigns_service.get_campaign(ctx.db, workspace_id=ctx.workspace.id, campaign_id=campaign_id)
    return _form_page(request, ctx, c=c, values=form_values(c, ctx.workspace.timezone), errors={}, status=200)


@router.post("/campaigns/{campaign_id}/edit")
async def save(campaign_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save the edit."""
    ctx.require(Perm.WRITE)
    c = campaigns_service.get_campaign(ctx.db, workspace_id=ctx.workspace.id, campaign_id=campaign_id)
    values = await _form(request)
    saved, errors = _save(ctx, c, values)
    if saved is not None:
        return RedirectResponse(f"/campaigns/{campaign_id}?done=saved", status_code=303)
    c = campaigns_service.get_campaign(ctx.db, workspace_id=ctx.workspace.id, campaign_id=campaign_id)
    return _form_page(request, ctx, c=c, values=values, errors=_field_errors(ctx, errors), status=422)


# --- the campaign page --------------------------------------------------------------------------


def _live(ctx: Console, campaign_id: int) -> dict[str, Any]:
    """What the live parts of the campaign page render: results and the charts."""
    r = campaigns_service.campaign_results(ctx.db, workspace_id=ctx.workspace.id, campaign_id=campaign_id)
    step = max(1, -(-len(r.days) // 12))  # at most ~12 dates under the bars; every bar keeps its tooltip

    def day_label(i: int, label: str) -> str:
        return label[5:] if i % step == 0 else ""

    gmv_chart = (
        bar_chart(
            [(d.day, d.gmv_fen) for d in r.days],
            value_label=lambda v: money_short(v, ctx.locale),
            title=ctx.t("campaign.chart.gmv"),
            axis_label=day_label,
        )
        if any(d.orders for d in r.days)
        else Markup("")
    )
    part_chart = (
        bar_chart(
            [(d.day, d.participations) for d in r.days],
            value_label=str,
            title=ctx.t("campaign.chart.participations"),
            axis_label=day_label,
        )
        if any(d.participations for d in r.days)
        else Markup("")
    )
    top = max((v for _, v in r.funnel), default=0)
    # Late refunds and redemptions still move an ended campaign for a while; a cancelled or long-ended one is still.
    polling = r.status != "cancelled" and (r.status != "ended" or utcnow() - r.campaign.ends_at < POLL_AFTER_END)
    return {
        "r": r,
        "gmv_chart": gmv_chart,
        "part_chart": part_chart,
        "funnel_top": top,
        "live_seconds": LIVE_SECONDS if polling else 0,
    }


def _names(ctx: Console, c: Campaign) -> dict[str, str]:
    """The target segment's and community's names ('' when none or gone)."""
    out = {"segment": "", "community": ""}
    try:
        if c.target_segment_id:
            out["segment"] = audience_service.get_segment(
                ctx.db, workspace_id=c.workspace_id, segment_id=c.target_segment_id
            ).name
    except ShequnError:
        out["segment"] = f"#{c.target_segment_id}"
    try:
        if c.target_community_id:
            out["community"] = community_service.get_community(
                ctx.db, workspace_id=c.workspace_id, community_id=c.target_community_id
            ).name
    except ShequnError:
        out["community"] = f"#{c.target_community_id}"
    return out


@router.get("/campaigns/{campaign_id}")
def detail(campaign_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The campaign: header, KPI cards, budget burn, funnel, activities and activity over time."""
    ctx.require(Perm.READ)
    live = _live(ctx, campaign_id)
    c = live["r"].campaign
    done = request.query_params.get("done", "")
    return render(
        request,
        "campaign.html",
        ctx,
        c=c,
        names=_names(ctx, c),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        error=request.query_params.get("error", "")[:200],
        **live,
    )


@router.get("/campaigns/{campaign_id}/live")
def live_part(campaign_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The live parts alone (htmx polls this every LIVE_SECONDS)."""
    ctx.require(Perm.READ)
    live = _live(ctx, campaign_id)
    return render(request, "campaign_live.html", ctx, c=live["r"].campaign, **live)


def _act(ctx: Console, campaign_id: int, action: str) -> Response:
    ws = ctx.workspace.id
    try:
        if action == "publish":
            campaigns_service.publish_campaign(ctx.db, workspace_id=ws, campaign_id=campaign_id)
        else:
            campaigns_service.cancel_campaign(ctx.db, workspace_id=ws, campaign_id=campaign_id)
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        return RedirectResponse(f"/campaigns/{campaign_id}?error={quote(exc.message(ctx.locale)[:200])}", 303)
    identity_service.record_audit(ctx.db, ctx.actor, f"campaign.{action}", "campaign", campaign_id, {})
    ctx.db.commit()
    past = {"publish": "published", "cancel": "cancelled"}[action]
    return RedirectResponse(f"/campaigns/{campaign_id}?done={past}", status_code=303)


@router.post("/campaigns/{campaign_id}/publish")
def publish(campaign_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Publish a draft."""
    ctx.require(Perm.WRITE)
    return _act(ctx, campaign_id, "publish")


@router.post("/campaigns/{campaign_id}/cancel")
def cancel(campaign_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Call the campaign off."""
    ctx.require(Perm.WRITE)
    return _act(ctx, campaign_id, "cancel")
