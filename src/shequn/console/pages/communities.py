"""Console: communities, members, policies, enforcements and appeals, and the health view."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup, escape
from starlette.datastructures import UploadFile

from shequn.community import service as community_service
from shequn.console.charts import hbars
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core import fmt
from shequn.core.errors import ShequnError, TooLarge
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

TABS = ("overview", "members", "history", "moderation", "settings")
MEMBER_ACTIONS = ("approve", "reject", "mute", "unmute", "remove", "restore", "role")
SETTINGS_TEXT = ("name", "theme", "partner_name", "description", "rules_text", "external_id")
SETTINGS_CHOICE = ("platform", "visibility", "nature", "mode", "status")
MAX_CSV_BYTES = 10 * 1024 * 1024


def _audit(ctx: Console, action: str, community_id: int, details: dict[str, Any] | None = None) -> None:
    identity_service.record_audit(ctx.db, ctx.actor, action, "community", community_id, details or {})


def _error_text(ctx: Console, exc: ShequnError) -> str:
    """The error's message plus its field details (e.g. which setting was wrong)."""
    fields = [str(d.get("field")) for d in (exc.details or []) if isinstance(d, dict) and d.get("field")]
    message = exc.message(ctx.locale)
    return f"{message} ({', '.join(fields)})" if fields else message


def day_bars(points: list[tuple[date, int]], *, title: str, width: int = 560, height: int = 200) -> Markup:
    """A small daily bar chart (inline SVG) with a max label and a tooltip per day."""
    left, bottom, top = 36, 22, 10
    plot_w, plot_h = width - left - 6, height - top - bottom
    peak = max((v for _, v in points), default=0) or 1
    slot = plot_w / max(len(points), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet">',
        f'<line class="grid" x1="{left}" x2="{width - 6}" y1="{top}" y2="{top}"/>',
        f'<text class="axis" x="{left - 4}" y="{top + 4}" text-anchor="end">{escape(fmt.number(peak))}</text>',
        f'<line class="grid" x1="{left}" x2="{width - 6}" y1="{top + plot_h}" y2="{top + plot_h}"/>',
        f'<text class="axis" x="{left - 4}" y="{top + plot_h + 4}" text-anchor="end">0</text>',
    ]
    for i, (day, value) in enumerate(points):
        h = plot_h * value / peak
        x = left + i * slot + slot * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot * 0.7, 1):.1f}" '
            f'height="{h:.1f}" rx="1"><title>{day:%m-%d}: {escape(fmt.number(value))}</title></rect>'
        )
        if (i % 7 == 0 and len(points) - 1 - i >= 3) or i == len(points) - 1:
            parts.append(
                f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{height - 6}" text-anchor="middle">{day:%m-%d}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


# --- list and create ----------------------------------------------------------------------------


@router.get("/communities")
def communities_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every community with its platform, visibility and members; the create form for writers."""
    ctx.require(Perm.READ)
    q = request.query_params.get("q", "")[:100]
    platform = request.query_params.get("platform", "")
    rows = community_service.list_communities(
        ctx.db,
        workspace_id=ctx.workspace.id,
        q=q,
        platform=platform if platform in community_service.PLATFORMS else None,
    )
    appeals = community_service.list_enforcements(ctx.db, workspace_id=ctx.workspace.id, appeal_status="pending")
    return render(
        request,
        "communities.html",
        ctx,
        communities=rows,
        q=q,
        platform=platform,
        appeals=len(appeals),
        platforms=community_service.PLATFORMS,
        visibilities=community_service.VISIBILITIES,
        natures=community_service.NATURES,
        modes=community_service.MODES,
        error=request.query_params.get("error", "")[:300],
    )


def _int_or_none(raw: Any) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() else None


@router.post("/communities")
async def communities_create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a community and open it; a problem comes back to the list with the message."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    values: dict[str, Any] = {k: str(form.get(k) or "") for k in (*SETTINGS_TEXT, *SETTINGS_CHOICE) if k in form}
    values["capacity"] = _int_or_none(form.get("capacity"))
    values["owner_operator_id"] = ctx.operator_id
    try:
        c = community_service.create_community(ctx.db, workspace_id=ctx.workspace.id, **values)
        _audit(ctx, "community.created", c.id, {"name": c.name})
    except ShequnError as exc:
        ctx.db.rollback()
        return RedirectResponse("/communities?" + _qs(error=_error_text(ctx, exc)), status_code=303)
    ctx.db.commit()
    return RedirectResponse(f"/communities/{c.id}?tab=settings&done=created", status_code=303)


def _qs(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


# --- the community page -------------------------------------------------------------------------


def _tab_vars(request: Request, ctx: Console, community: community_service.Community, tab: str) -> dict[str, Any]:
    ws, cid = ctx.workspace.id, community.id
    if tab == "overview":
        h = community_service.community_health(ctx.db, workspace_id=ws, community_id=cid)
        return {
            "health": h,
            "members_chart": day_bars(h.members_by_day, title=ctx.t("community.health.members_over_time")),
            "posts_chart": day_bars(h.posts_by_day, title=ctx.t("community.health.posts_per_day")),
            "kinds": hbars(
                [(ctx.t(f"community.activity.{k}") if k else k, v) for k, v in h.activity_by_kind.items()],
                fmt.number,
            ),
        }
    if tab == "members":
        status = request.query_params.get("status", "")
        role = request.query_params.get("role", "")
        q = request.query_params.get("q", "")[:100]
        page = page_number(request.query_params.get("page"))
        total, rows = community_service.list_members(
            ctx.db,
            workspace_id=ws,
            community_id=cid,
            status=status if status in community_service.STATUSES else None,
            role=role if role in community_service.ROLES else None,
            q=q,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
        )
        return {"rows": rows, "pg": pager(total, page), "filter_status": status, "filter_role": role, "q": q}
    if tab == "history":
        changes = community_service.list_member_history(ctx.db, workspace_id=ws, community_id=cid, limit=200)
        return {"changes": changes}
    if tab == "moderation":
        return {
            "appeals": community_service.list_enforcements(
                ctx.db, workspace_id=ws, community_id=cid, appeal_status="pending"
            ),
            "enforcements": community_service.list_enforcements(ctx.db, workspace_id=ws, community_id=cid, limit=200),
        }
    return {"policies": community_service.effective_policies(ctx.db, community)}


@router.get("/communities/{community_id}")
def community_page(community_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """One community: overview (health), members, history, moderation (enforcements, appeals), settings."""
    ctx.require(Perm.READ)
    community = community_service.get_community(ctx.db, workspace_id=ctx.workspace.id, community_id=community_id)
    tab = request.query_params.get("tab", "overview")
    tab = tab if tab in TABS else "overview"
    done = request.query_params.get("done", "")
    return render(
        request,
        "community.html",
        ctx,
        c=community,
        tab=tab,
        tabs=TABS,
        notice=ctx.t(f"community.done.{done}") if done.isidentifier() and done else "",
        error=request.query_params.get("error", "")[:300],
        platforms=community_service.PLATFORMS,
        visibilities=community_service.VISIBILITIES,
        natures=community_service.NATURES,
        modes=community_service.MODES,
        roles=community_service.ROLES,
        statuses=community_service.STATUSES,
        **_tab_vars(request, ctx, community, tab),
    )


def _back(community_id: int, tab: str, *, done: str = "", error: str = "", extra: str = "") -> RedirectResponse:
    params = {"tab": tab, **({"done": done} if done else {}), **({"error": error} if error else {})}
    return RedirectResponse(f"/communities/{community_id}?{_qs(**params)}{extra}", status_code=303)


@router.post("/communities/{community_id}/settings")
async def community_settings(community_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save the settings and the written rules."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    values: dict[str, Any] = {k: str(form.get(k) or "") for k in (*SETTINGS_TEXT, *SETTINGS_CHOICE) if k in form}
    if "capacity" in form:
        values["capacity"] = _int_or_none(form.get("capacity"))
    try:
        community_service.update_community(ctx.db, workspace_id=ctx.workspace.id, community_id=community_id, **values)
        _audit(ctx, "community.updated", community_id, {"fields": sorted(values)})
    except ShequnError as exc:
        ctx.db.rollback()
        return _back(community_id, "settings", error=_error_text(ctx, exc))
    ctx.db.commit()
    return _back(community_id, "settings", done="saved")


def _policy_config(form: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Form fields cfg.<key> typed like the policy's defaults (checkboxes, numbers, word lists)."""
    config: dict[str, Any] = {}
    for key, default in defaults.items():
        raw = form.get(f"cfg.{key}")
        if isinstance(default, bool):
            config[key] = raw is not None
        elif isinstance(default, int):
            text = str(raw or "").strip()
            config[key] = int(text) if text.lstrip("-").isdigit() else text
        elif isinstance(default, list):
            text = str(raw or "").replace("，", ",").replace("\n", ",")
            config[key] = [w.strip() for w in text.split(",") if w.strip()]
    return config


@router.post("/communities/{community_id}/policies/{kind}")
async def community_policy(
    community_id: DbId, kind: str, request: Request, ctx: Console = Depends(console_post)
) -> Response:
    """Switch a policy and save its settings."""
    ctx.require(Perm.WRITE)
    policy = community_service.POLICIES.get(kind)
    form = await request.form()
    try:
        if policy is None:
            raise community_service.ValidationFailed(details=[{"field": "kind"}])
        community_service.update_policy(
            ctx.db,
            workspace_id=ctx.workspace.id,
            community_id=community_id,
            kind=kind,
            enabled=form.get("enabled") is not None,
            config=_policy_config(form, policy.defaults),
        )
        _audit(ctx, "community.policy_saved", community_id, {"kind": kind})
    except ShequnError as exc:
        ctx.db.rollback()
        return _back(community_id, "settings", error=_error_text(ctx, exc))
    ctx.db.commit()
    return _back(community_id, "settings", done="policy_saved")


@router.post("/communities/{community_id}/members/add")
async def member_add(community_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Add a customer by id."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    customer_id = _int_or_none(form.get("customer_id"))
    try:
        if customer_id is None:
            raise community_service.ValidationFailed(details=[{"field": "customer_id"}])
        community_service.add_member(
            ctx.db,
            workspace_id=ctx.workspace.id,
            community_id=community_id,
            customer_id=customer_id,
            nickname=str(form.get("nickname") or "")[:64],
            actor_operator_id=ctx.operator_id,
        )
        _audit(ctx, "community.member_added", community_id, {"customer_id": customer_id})
    except ShequnError as exc:
        ctx.db.rollback()
        return _back(community_id, "members", error=_error_text(ctx, exc))
    ctx.db.commit()
    return _back(community_id, "members", done="member_added")


@router.post("/communities/{community_id}/members/{member_id}/{action}")
async def member_action(
    community_id: DbId, member_id: DbId, action: str, request: Request, ctx: Console = Depends(console_post)
) -> Response:
    """Approve, reject, mute, unmute, remove, restore or change the role of a member."""
    ctx.require(Perm.WRITE)
    form = await request.form()
    try:
        if action not in MEMBER_ACTIONS:
            raise community_service.ValidationFailed(details=[{"field": "action"}])
        community_service.member_action(
            ctx.db,
            workspace_id=ctx.workspace.id,
            community_id=community_id,
            member_id=member_id,
            action=action,
            actor_operator_id=ctx.operator_id,
            minutes=_int_or_none(form.get("minutes")) or 60,
            reason=str(form.get("reason") or "")[:500],
            role=str(form.get("role") or "member"),
        )
        _audit(ctx, f"community.member_{action}", community_id, {"member_id": member_id})
    except ShequnError as exc:
        ctx.db.rollback()
        return _back(community_id, "members", error=_error_text(ctx, exc))
    ctx.db.commit()
    back = str(form.get("back") or "members")
    return _back(community_id, back if back in TABS else "members", done="member_" + action)


@router.post("/communities/{community_id}/import")
async def member_import(community_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Upload a real group's member list (CSV); the result shows counts and the bad lines."""
    ctx.require(Perm.IMPORT)
    form = await request.form()
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile):
            raise community_service.ValidationFailed(details=[{"field": "file"}])
        data = await upload.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise TooLarge(details={"max_bytes": MAX_CSV_BYTES})
        report = community_service.import_csv(
            ctx.db,
            workspace_id=ctx.workspace.id,
            community_id=community_id,
            data=data,
            full_list=form.get("full_list") is not None,
        )
        _audit(ctx, "community.members_imported", community_id, {"joined": report.joined, "left": report.left})
    except ShequnError as exc:
        ctx.db.rollback()
        return _back(community_id, "members", error=_error_text(ctx, exc))
    ctx.db.commit()
    bad = ", ".join(f"{e.get('line')}:{ctx.t('community.csv_error.' + str(e.get('code')))}" for e in report.errors[:20])
    summary = ctx.t(
        "community.import_summary",
        joined=report.joined,
        left=report.left,
        unchanged=report.unchanged,
        bad=len(report.errors),
    )
    return _back(community_id, "members", done="imported", error=f"{summary} {bad}" if report.errors else "")


@router.post("/communities/{community_id}/enforcements/{enforcement_id}/{decision}")
async def enforcement_decision(
    community_id: DbId, enforcement_id: DbId, decision: str, ctx: Console = Depends(console_post)
) -> Response:
    """Undo an enforcement, or accept/reject its pending appeal."""
    ctx.require(Perm.WRITE)
    ws = ctx.workspace.id
    try:
        row = community_service.get_enforcement(ctx.db, workspace_id=ws, enforcement_id=enforcement_id)
        if row.community_id != community_id or decision not in ("undo", "accept", "reject"):
            raise community_service.EnforcementNotFound()
        if decision == "undo":
            community_service.undo_enforcement(
                ctx.db, workspace_id=ws, enforcement_id=enforcement_id, actor_operator_id=ctx.operator_id
            )
        else:
            community_service.decide_appeal(
                ctx.db,
                workspace_id=ws,
                enforcement_id=enforcement_id,
                accept=decision == "accept",
                actor_operator_id=ctx.operator_id,
            )
        _audit(ctx, f"community.enforcement_{decision}", community_id, {"enforcement_id": enforcement_id})
    except ShequnError as exc:
        ctx.db.rollback()
        return _back(community_id, "moderation", error=_error_text(ctx, exc))
    ctx.db.commit()
    return _back(community_id, "moderation", done=f"enforcement_{decision}")
