"""Console: UGC challenges: list, create/edit, entries with votes, judging, winners and results, votes over time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from shequn.community import service as community_service
from shequn.console.charts import bar_chart
from shequn.console.pages.quizzes import back, local_time, posted, run_step, save_form, yuan
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.clock import utcnow
from shequn.core.fmt import local_dt
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.challenges import service as challenge_service
from shequn.promotions.challenges.schemas import ChallengeIn
from shequn.promotions.quiz import service as quiz_service

router = APIRouter(route_class=ConsoleRoute)

TIME_FIELDS = ("entry_starts_at", "entry_ends_at", "vote_starts_at", "vote_ends_at")
INT_FIELDS = (
    "community_id",
    "max_votes_per_member",
    "winners_cap",
    "prize_points",
    "prize_coupon_template_id",
    "campaign_id",
)
TEXT_FIELDS = ("name", "description", "hashtag", "mode", "prize_kind", "prize_name")
NOTICES = {
    "created": "challenge.done.created",
    "saved": "challenge.done.saved",
    "published": "challenge.done.published",
    "cancelled": "challenge.done.cancelled",
    "decided": "challenge.done.decided",
    "results": "challenge.done.results",
    "synced": "challenge.done.synced",
    "scored": "challenge.done.scored",
    "shipped": "challenge.done.shipped",
}


def _values(c: Any, tz: str) -> dict[str, str]:
    if c is None:
        return {"mode": "vote", "max_votes_per_member": "3", "winners_cap": "3", "prize_kind": "none"}
    out = {k: str(getattr(c, k) or "") for k in (*TEXT_FIELDS, *INT_FIELDS)}
    out.update({k: local_time(getattr(c, k), tz) for k in TIME_FIELDS})
    out["prize_cost"] = yuan(c.prize_cost_fen)
    return out


def _form_page(request: Request, ctx: Console, *, c: Any, values: dict[str, str], errors: dict[str, str]) -> Response:
    ws = ctx.workspace.id
    return render(
        request,
        "challenge_form.html",
        ctx,
        status=422 if errors else 200,
        c=c,
        values=values,
        errors=errors,
        communities=[(x.id, x.name) for x in community_service.list_communities(ctx.db, workspace_id=ws)],
        campaigns=quiz_service.campaign_choices(ctx.db, workspace_id=ws),
        coupons=quiz_service.coupon_choices(ctx.db, workspace_id=ws),
    )


@router.get("/challenges")
def challenges_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every challenge with its hashtag, phase, entries and votes."""
    ctx.require(Perm.READ)
    page = page_number(request.query_params.get("page"))
    rows, total = challenge_service.list_challenges(
        ctx.db, workspace_id=ctx.workspace.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    done = request.query_params.get("done", "")
    return render(
        request,
        "challenges.html",
        ctx,
        challenges=[(c, challenge_service.phase(c)) for c in rows],
        pages=pager(total, page),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
    )


@router.get("/challenges/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form."""
    ctx.require(Perm.WRITE)
    return _form_page(request, ctx, c=None, values=_values(None, ctx.workspace.timezone), errors={})


async def _save(request: Request, ctx: Console, challenge_id: int | None) -> Response:
    values = await posted(request)
    ws = ctx.workspace.id
    c = challenge_service.get_challenge(ctx.db, workspace_id=ws, challenge_id=challenge_id) if challenge_id else None

    def save(data: ChallengeIn) -> tuple[int, str]:
        if c is None:
            new = challenge_service.create_challenge(ctx.db, workspace_id=ws, data=data, created_by=ctx.operator_id)
            identity_service.record_audit(
                ctx.db, ctx.actor, "challenge.create", "challenge", new.id, {"hashtag": new.hashtag}
            )
            return new.id, "created"
        challenge_service.update_challenge(ctx.db, workspace_id=ws, challenge_id=c.id, data=data)
        return c.id, "saved"

    out = save_form(
        ctx, values, schema=ChallengeIn, fields=(TIME_FIELDS, INT_FIELDS, TEXT_FIELDS), save=save, base="/challenges"
    )
    if isinstance(out, Response):
        return out
    return _form_page(request, ctx, c=c, values=values, errors=out)


@router.post("/challenges/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    return await _save(request, ctx, None)


@router.get("/challenges/{challenge_id}/edit")
def edit_form(challenge_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the challenge."""
    ctx.require(Perm.WRITE)
    c = challenge_service.get_challenge(ctx.db, workspace_id=ctx.workspace.id, challenge_id=challenge_id)
    return _form_page(request, ctx, c=c, values=_values(c, ctx.workspace.timezone), errors={})


@router.post("/challenges/{challenge_id}/edit")
async def save(challenge_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save a draft's edit."""
    ctx.require(Perm.WRITE)
    return await _save(request, ctx, challenge_id)


@router.get("/challenges/{challenge_id}")
def detail(challenge_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The challenge: figures, entries ranked (with the judging form when judged), winners, votes over time."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    c = challenge_service.get_challenge(ctx.db, workspace_id=ws, challenge_id=challenge_id)
    if c.status == "published":
        challenge_service.maybe_sync(ctx.db, challenge=c)
        ctx.db.commit()
    page = page_number(request.query_params.get("page"))
    order = "score" if c.mode == "judge" else "votes"
    entries, total = challenge_service.list_entries(
        ctx.db, challenge=c, order=order, status=None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    tz = ctx.workspace.timezone
    series = challenge_service.votes_over_time(ctx.db, challenge=c, buckets=8)  # 8: every label readable
    chart = bar_chart(
        [(local_dt(at, tz, "%m-%d %H:%M"), n) for at, n in series],
        value_label=str,
        title=ctx.t("challenge.chart.votes"),
        height=220,
    )
    community = community_service.get_community(ctx.db, workspace_id=ws, community_id=c.community_id)
    done = request.query_params.get("done", "")
    return render(
        request,
        "challenge.html",
        ctx,
        c=c,
        phase=challenge_service.phase(c),
        entries=entries,
        pages=pager(total, page),
        winners=challenge_service.winners(ctx.db, challenge=c),
        votes_chart=chart,
        community_name=community.name,
        can_decide=challenge_service.decide_ready(c, utcnow()),
        member_url=f"/m/{ctx.workspace.slug}/challenges/{c.id}",
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        error=request.query_params.get("error", "")[:200],
    )


@router.post("/challenges/{challenge_id}/entries/{entry_id}/{action}")
async def entry_action(
    challenge_id: DbId, entry_id: DbId, action: str, request: Request, ctx: Console = Depends(console_post)
) -> Response:
    """Score an entry (judging) or move its physical prize to the next state."""
    ctx.require(Perm.WRITE)
    ws, url = ctx.workspace.id, f"/challenges/{challenge_id}"
    if action == "ship":
        return run_step(
            ctx,
            url,
            lambda: challenge_service.ship(ctx.db, workspace_id=ws, challenge_id=challenge_id, entry_id=entry_id),
            "shipped#entries",
        )
    if action != "score":
        return RedirectResponse(url, status_code=303)
    raw = (await posted(request)).get("score", "").strip()
    if not raw.isdigit() or int(raw) > 100:
        return back(url, ctx.t("challenge.score_invalid"))

    def step() -> None:
        challenge_service.judge(
            ctx.db,
            workspace_id=ws,
            challenge_id=challenge_id,
            entry_id=entry_id,
            score=int(raw),
            operator_id=ctx.operator_id,
        )

    return run_step(ctx, url, step, "scored#entries")


def _sync(db: Any, workspace_id: int, challenge_id: int) -> None:
    challenge_service.sync_entries(
        db, challenge=challenge_service.get_challenge(db, workspace_id=workspace_id, challenge_id=challenge_id)
    )


STEPS: dict[str, tuple[Callable[..., Any], str]] = {
    "publish": (challenge_service.publish_challenge, "published"),
    "cancel": (challenge_service.cancel_challenge, "cancelled"),
    "decide": (challenge_service.decide, "decided"),
    "results": (challenge_service.publish_results, "results"),
}


@router.post("/challenges/{challenge_id}/{action}")
def act(challenge_id: DbId, action: str, ctx: Console = Depends(console_post)) -> Response:
    """publish, cancel, sync (pick up hashtag posts now), decide (winners and prizes) or results (publish them)."""
    ctx.require(Perm.WRITE)
    ws, url = ctx.workspace.id, f"/challenges/{challenge_id}"
    if action == "sync":
        return run_step(ctx, url, lambda: _sync(ctx.db, ws, challenge_id), "synced")
    if action not in STEPS:
        return RedirectResponse(url, status_code=303)
    fn, done = STEPS[action]
    return run_step(
        ctx,
        url,
        lambda: fn(ctx.db, workspace_id=ws, challenge_id=challenge_id),
        done,
        audit=(f"challenge.{action}", "challenge", challenge_id),
    )
