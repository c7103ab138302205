"""Console: anti-abuse: refused member actions (chart, review, block), blacklist, per-workspace limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from shequn.console.charts import bar_chart
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.clock import utcnow
from shequn.core.errors import ShequnError
from shequn.core.fmt import number, zone
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.guard import service as guard_service
from shequn.promotions.guard.policy import ACTIONS

router = APIRouter(route_class=ConsoleRoute)

REASONS = ("blocked", "rate_limited", "too_fast", "guessing")
HOURS = 24
NOTICES = {"blocked": "guard.done.blocked", "removed": "guard.done.removed", "saved": "guard.done.saved"}


def _hour_labels(ctx: Console, now: datetime) -> list[tuple[datetime, str]]:
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    tz = zone(ctx.workspace.timezone)
    hours = [start + timedelta(hours=i) for i in range(HOURS)]
    # "24 06:00" (day, hour): the tooltip shows it whole, and bar_chart's axis drops the first two characters
    # when there are many bars, leaving the hour.
    return [(h, h.astimezone(tz).strftime("%d %H:00")) for h in hours]


def hourly_charts(ctx: Console) -> tuple[Markup, list[tuple[str, int, Markup]]]:
    """The last 24 hours of refusals: all actions together, then one small chart per action that had any."""
    counts = guard_service.hourly_counts(ctx.db, workspace_id=ctx.workspace.id, hours=HOURS)
    hours = _hour_labels(ctx, utcnow())
    total = [(label, sum(per.get(h, 0) for per in counts.values())) for h, label in hours]
    overall = bar_chart(total, value_label=number, title=ctx.t("guard.chart.title"), height=220)
    per_action = []
    for action in sorted(counts, key=lambda a: -sum(counts[a].values())):
        points = [(label, counts[action].get(h, 0)) for h, label in hours]
        chart = bar_chart(points, value_label=number, title=action, height=120, ticks=2)
        per_action.append((action, sum(counts[action].values()), chart))
    return overall, per_action


def _tabs_page(request: Request, ctx: Console, template: str, tab: str, **variables: Any) -> Response:
    done = request.query_params.get("done", "")
    notice = ctx.t(NOTICES[done]) if done in NOTICES else ""
    return render(request, template, ctx, tab=tab, notice=notice, **variables)


@router.get("/guard")
def guard_home(request: Request, ctx: Console = Depends(console)) -> Response:
    """Refusals per action per hour and the flagged events, filterable by action and reason."""
    ctx.require(Perm.READ)
    action = request.query_params.get("action", "")
    reason = request.query_params.get("reason", "")
    reason = reason if reason in REASONS else ""
    page = page_number(request.query_params.get("page"))
    flags, total = guard_service.list_flags(
        ctx.db,
        workspace_id=ctx.workspace.id,
        action=action or None,
        reason=reason or None,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    overall, per_action = hourly_charts(ctx)
    return _tabs_page(
        request,
        ctx,
        "guard.html",
        "flags",
        flags=flags,
        pages=pager(total, page),
        action=action,
        reason=reason,
        actions=ACTIONS,
        reasons=REASONS,
        chart=overall,
        per_action=per_action,
        subject_display=guard_service.display_subject,
    )


@router.get("/guard/blacklist")
def blacklist(request: Request, ctx: Console = Depends(console)) -> Response:
    """Blacklist entries with the add form."""
    ctx.require(Perm.READ)
    page = page_number(request.query_params.get("page"))
    kind = request.query_params.get("kind", "")
    kind = kind if kind in guard_service.BLOCK_KINDS else ""
    rows, total = guard_service.list_blocks(
        ctx.db, workspace_id=ctx.workspace.id, kind=kind or None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return _blacklist_page(request, ctx, rows=rows, total=total, page=page, kind=kind, values={}, error="")


def _blacklist_page(
    request: Request,
    ctx: Console,
    *,
    rows: list[Any],
    total: int,
    page: int,
    kind: str,
    values: dict[str, str],
    error: str,
    status: int = 200,
) -> Response:
    now = utcnow()
    return render(
        request,
        "guard_blacklist.html",
        ctx,
        status=status,
        tab="blacklist",
        notice=ctx.t(NOTICES[d]) if (d := request.query_params.get("done", "")) in NOTICES else "",
        blocks=rows,
        active={b.id: b.until is None or b.until > now for b in rows},
        display={b.id: guard_service.display_value(b) for b in rows},
        added_by=identity_service.operator_names(ctx.db, {b.created_by for b in rows if b.created_by}),
        pages=pager(total, page),
        kind=kind,
        kinds=guard_service.BLOCK_KINDS,
        values=values,
        error=error,
    )


def _parse_until(raw: str, days: str, tz: str) -> datetime | None:
    """The block's end: a number of days from now, or a local date-time, or None (until removed)."""
    if days.strip():
        return utcnow() + timedelta(days=float(days))
    if raw.strip():
        return datetime.fromisoformat(raw.strip()).replace(tzinfo=zone(tz)).astimezone(UTC)
    return None


@router.post("/guard/blacklist")
async def add_block(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Add (or renew) a blacklist entry; a flag row's "block" button posts here too."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        until = _parse_until(values.get("until", ""), values.get("days", ""), ctx.workspace.timezone)
        guard_service.add_block(
            ctx.db,
            ctx.actor,
            kind=values.get("kind", ""),
            value=values.get("value", ""),
            reason=values.get("reason", ""),
            until=until,
        )
        ctx.db.commit()
    except (ShequnError, ValueError) as exc:
        ctx.db.rollback()
        message = exc.message(ctx.locale) if isinstance(exc, ShequnError) else ctx.t("guard.err.until")
        if isinstance(exc, ShequnError) and isinstance(exc.details, list) and exc.details:
            message = f"{message} ({exc.details[0].get('field')}: {exc.details[0].get('message')})"
        rows, total = guard_service.list_blocks(ctx.db, workspace_id=ctx.workspace.id, limit=PER_PAGE)
        return _blacklist_page(
            request, ctx, rows=rows, total=total, page=1, kind="", values=values, error=message, status=422
        )
    return RedirectResponse("/guard/blacklist?done=blocked", status_code=303)


@router.post("/guard/flags/{flag_id}/block")
async def block_from_flag(flag_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Blacklist the subject of a flagged event for 7 days (its full id never reaches the page)."""
    ctx.require(Perm.WRITE)
    guard_service.block_flag_subject(ctx.db, ctx.actor, flag_id=flag_id, days=7)
    ctx.db.commit()
    return RedirectResponse("/guard/blacklist?done=blocked", status_code=303)


@router.post("/guard/blacklist/{block_id}/remove")
async def remove_block(block_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Take an entry off the blacklist."""
    ctx.require(Perm.WRITE)
    guard_service.remove_block(ctx.db, ctx.actor, block_id=block_id)
    ctx.db.commit()
    return RedirectResponse("/guard/blacklist?done=removed", status_code=303)


@router.get("/guard/limits")
def limits_page(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every rule in force with its default; writers can change and reset them."""
    ctx.require(Perm.READ)
    rules = guard_service.rule_table(ctx.db, workspace_id=ctx.workspace.id)
    return _tabs_page(request, ctx, "guard_limits.html", "limits", rules=rules, errors={})


@router.post("/guard/limits")
async def save_limits(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save the rows whose values differ from what is in force; "reset" buttons go back to the default."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    rules = guard_service.rule_table(ctx.db, workspace_id=ctx.workspace.id)
    reset = values.get("reset", "")
    errors: dict[str, str] = {}
    for view in rules:
        name = f"{view.action}|{view.rule}"
        if reset == name:
            guard_service.delete_override(ctx.db, ctx.actor, action=view.action, rule=view.rule)
            continue
        raw_limit, raw_window = values.get(f"limit:{name}", ""), values.get(f"window:{name}", "")
        if not raw_limit and not raw_window:
            continue
        try:
            limit, window_ms = int(raw_limit), round(float(raw_window) * 1000)
            if (limit, window_ms) != (view.current.limit, view.current.window_ms):
                guard_service.set_override(
                    ctx.db, ctx.actor, action=view.action, rule=view.rule, limit=limit, window_ms=window_ms
                )
        except ValueError:
            errors[name] = ctx.t("guard.err.number")
        except ShequnError as exc:
            errors[name] = exc.message(ctx.locale)
    if errors:
        ctx.db.rollback()
        rules = guard_service.rule_table(ctx.db, workspace_id=ctx.workspace.id)
        return render(
            request, "guard_limits.html", ctx, status=422, tab="limits", notice="", rules=rules, errors=errors
        )
    ctx.db.commit()
    return RedirectResponse("/guard/limits?done=saved", status_code=303)
