"""Console: prize quizzes: list, create/edit, the question editor, results (per question, scores), winners."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from shequn.console.charts import bar_chart
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core.errors import ShequnError
from shequn.core.fmt import yuan_to_fen, zone
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.promotions.quiz import service as quiz_service
from shequn.promotions.quiz.schemas import QuestionIn, QuizIn

router = APIRouter(route_class=ConsoleRoute)

TIME_FIELDS = ("starts_at", "ends_at")
INT_FIELDS = ("time_limit_s", "pass_mark", "winners_cap", "prize_points", "prize_coupon_template_id", "campaign_id")
TEXT_FIELDS = ("name", "description", "prize_rule", "prize_kind", "prize_name")
NOTICES = {
    "created": "quiz.done.created",
    "saved": "quiz.done.saved",
    "published": "quiz.done.published",
    "cancelled": "quiz.done.cancelled",
    "drawn": "quiz.done.drawn",
    "question": "quiz.done.question",
    "shipped": "quiz.done.shipped",
}


# --- form helpers (shared with the challenges pages) ---------------------------------------------


def local_time(value: datetime | None, tz: str) -> str:
    """A UTC time as the value of a datetime-local input in the workspace zone."""
    return value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if value else ""


def parse_time(raw: str, tz: str) -> datetime | None:
    """A datetime-local value typed in the workspace zone, as an aware UTC time (None if blank)."""
    raw = (raw or "").strip()
    return datetime.fromisoformat(raw).replace(tzinfo=zone(tz)).astimezone(UTC) if raw else None


def yuan(fen: int | None) -> str:
    """Fen as a yuan string for an input."""
    if not fen:
        return ""
    whole, cents = divmod(fen, 100)
    return f"{whole}.{cents:02d}" if cents else str(whole)


def read_form(
    values: dict[str, str], tz: str, *, times: tuple[str, ...], ints: tuple[str, ...], texts: tuple[str, ...]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Form strings → schema fields (times, whole numbers, the prize cost in yuan), errors naming the field."""
    payload: dict[str, Any] = {k: values.get(k, "").strip() for k in texts}
    errors: list[dict[str, str]] = []
    for k in times:
        try:
            payload[k] = parse_time(values.get(k, ""), tz)
        except ValueError:
            errors.append({"field": k, "message": "not a date and time"})
    for k in ints:
        raw = values.get(k, "").strip()
        if raw and not (raw.isdigit() and len(raw) < 12):
            errors.append({"field": k, "message": "not a whole number"})
        payload[k] = int(raw) if raw.isdigit() and len(raw) < 12 else None
    cost = values.get("prize_cost", "").strip()
    payload["prize_cost_fen"] = yuan_to_fen(cost) if cost else 0
    if payload["prize_cost_fen"] is None:
        errors.append({"field": "prize_cost", "message": "not an amount"})
    return {k: v for k, v in payload.items() if v is not None}, errors


def schema_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as {field, message}; cross-field rules name their field at the start of the message."""
    out = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else str(e["msg"]).removeprefix("Value error, ").split(" ")[0]
        out.append({"field": field, "message": str(e["msg"]).removeprefix("Value error, ")})
    return out


def field_errors(errors: list[dict[str, str]]) -> dict[str, str]:
    """Field → message (the form shows each beside its input; unknown fields at the top)."""
    out: dict[str, str] = {}
    for e in errors:
        out[e.get("field", "")] = e.get("message", "")
    return out


async def posted(request: Request) -> dict[str, str]:
    """The posted form as strings."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def back(url: str, message: str) -> RedirectResponse:
    """Redirect with an error message for the page to show."""
    return RedirectResponse(f"{url}?error={quote(message[:200])}", status_code=303)


def run_step(
    ctx: Console, url: str, step: Callable[[], object], done: str, *, audit: tuple[str, str, int] | None = None
) -> Response:
    """Run one console action: commit and say done, or roll back and show why (a 404 stays a 404 page)."""
    try:
        step()
    except ValidationError as exc:
        return back(url, "; ".join(e["message"] for e in schema_errors(exc)))
    except ShequnError as exc:
        if exc.status_code == 404:
            raise
        ctx.db.rollback()
        details = exc.details if isinstance(exc.details, list) else []
        extra = "; ".join(str(d.get("message", "")) for d in details if isinstance(d, dict))
        return back(url, exc.message(ctx.locale) + (f" ({extra})" if extra else ""))
    if audit is not None:
        identity_service.record_audit(ctx.db, ctx.actor, audit[0], audit[1], audit[2], {})
    ctx.db.commit()
    return RedirectResponse(f"{url}?done={done}", status_code=303)


def save_form(
    ctx: Console,
    values: dict[str, str],
    *,
    schema: type[BaseModel],
    fields: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
    save: Callable[[Any], tuple[int, str]],
    base: str,
) -> Response | dict[str, str]:
    """Read the posted form (times, whole numbers, texts) into schema and save it: a redirect, or field errors."""
    times, ints, texts = fields
    payload, errors = read_form(values, ctx.workspace.timezone, times=times, ints=ints, texts=texts)
    if not errors:
        try:
            saved_id, done = save(schema.model_validate(payload))
            ctx.db.commit()
            return RedirectResponse(f"{base}/{saved_id}?done={done}", status_code=303)
        except ValidationError as exc:
            errors = schema_errors(exc)
        except ShequnError as exc:
            ctx.db.rollback()
            errors = list(exc.details or [{"field": "", "message": exc.message(ctx.locale)}])
    return field_errors(errors)


# --- list, new, edit ----------------------------------------------------------------------------


def _values(q: Any, tz: str) -> dict[str, str]:
    if q is None:
        return {"time_limit_s": "120", "prize_rule": "all", "prize_kind": "none"}
    out = {k: str(getattr(q, k) or "") for k in (*TEXT_FIELDS, *INT_FIELDS)}
    out.update({k: local_time(getattr(q, k), tz) for k in TIME_FIELDS})
    out["prize_cost"] = yuan(q.prize_cost_fen)
    return out


def _form_page(request: Request, ctx: Console, *, q: Any, values: dict[str, str], errors: dict[str, str]) -> Response:
    ws = ctx.workspace.id
    return render(
        request,
        "quiz_form.html",
        ctx,
        status=422 if errors else 200,
        q=q,
        values=values,
        errors=errors,
        campaigns=quiz_service.campaign_choices(ctx.db, workspace_id=ws),
        coupons=quiz_service.coupon_choices(ctx.db, workspace_id=ws),
    )


@router.get("/quizzes")
def quizzes_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every quiz with its phase, rule and results so far."""
    ctx.require(Perm.READ)
    page = page_number(request.query_params.get("page"))
    rows, total = quiz_service.list_quizzes(
        ctx.db, workspace_id=ctx.workspace.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    done = request.query_params.get("done", "")
    return render(
        request,
        "quizzes.html",
        ctx,
        quizzes=[(q, quiz_service.phase(q), quiz_service.totals(ctx.db, quiz_id=q.id)) for q in rows],
        pages=pager(total, page),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
    )


@router.get("/quizzes/new")
def new_form(request: Request, ctx: Console = Depends(console)) -> Response:
    """The empty form."""
    ctx.require(Perm.WRITE)
    return _form_page(request, ctx, q=None, values=_values(None, ctx.workspace.timezone), errors={})


async def _save(request: Request, ctx: Console, quiz_id: int | None) -> Response:
    values = await posted(request)
    ws = ctx.workspace.id
    q = quiz_service.get_quiz(ctx.db, workspace_id=ws, quiz_id=quiz_id) if quiz_id else None

    def save(data: QuizIn) -> tuple[int, str]:
        if q is None:
            new = quiz_service.create_quiz(ctx.db, workspace_id=ws, data=data, created_by=ctx.operator_id)
            identity_service.record_audit(ctx.db, ctx.actor, "quiz.create", "quiz", new.id, {"name": new.name})
            return new.id, "created"
        quiz_service.update_quiz(ctx.db, workspace_id=ws, quiz_id=q.id, data=data)
        return q.id, "saved"

    out = save_form(
        ctx, values, schema=QuizIn, fields=(TIME_FIELDS, INT_FIELDS, TEXT_FIELDS), save=save, base="/quizzes"
    )
    if isinstance(out, Response):
        return out
    return _form_page(request, ctx, q=q, values=values, errors=out)


@router.post("/quizzes/new")
async def create(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Create a draft (errors come back beside their fields)."""
    ctx.require(Perm.WRITE)
    return await _save(request, ctx, None)


@router.get("/quizzes/{quiz_id}/edit")
def edit_form(quiz_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The form filled with the quiz."""
    ctx.require(Perm.WRITE)
    q = quiz_service.get_quiz(ctx.db, workspace_id=ctx.workspace.id, quiz_id=quiz_id)
    return _form_page(request, ctx, q=q, values=_values(q, ctx.workspace.timezone), errors={})


@router.post("/quizzes/{quiz_id}/edit")
async def save(quiz_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Save a draft's edit."""
    ctx.require(Perm.WRITE)
    return await _save(request, ctx, quiz_id)


# --- the quiz page ------------------------------------------------------------------------------


def _charts(ctx: Console, quiz_id: int) -> tuple[Markup, Markup, list[Any]]:
    stats = quiz_service.question_stats(ctx.db, quiz_id=quiz_id)
    rates = bar_chart(
        [(f"Q{s.position}", round(s.rate * 100)) for s in stats],
        value_label=lambda v: f"{v}%",
        title=ctx.t("quiz.chart.rates"),
        height=220,
    )
    dist = bar_chart(
        [(str(n), count) for n, count in quiz_service.score_distribution(ctx.db, quiz_id=quiz_id)],
        value_label=str,
        title=ctx.t("quiz.chart.scores"),
        height=220,
    )
    return rates, dist, stats


@router.get("/quizzes/{quiz_id}")
def detail(quiz_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The quiz: figures, questions (the editor while a draft), charts, winners with fulfilment, participants."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    q = quiz_service.get_quiz(ctx.db, workspace_id=ws, quiz_id=quiz_id)
    page = page_number(request.query_params.get("page"))
    attempts, total = quiz_service.list_attempts(
        ctx.db, workspace_id=ws, quiz_id=q.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    winners, _ = quiz_service.list_attempts(ctx.db, workspace_id=ws, quiz_id=q.id, winners_only=True, limit=200)
    rates, dist, stats = _charts(ctx, q.id)
    done = request.query_params.get("done", "")
    return render(
        request,
        "quiz.html",
        ctx,
        q=q,
        phase=quiz_service.phase(q),
        totals=quiz_service.totals(ctx.db, quiz_id=q.id),
        questions=quiz_service.list_questions(ctx.db, quiz_id=q.id),
        stats=stats,
        rates_chart=rates,
        scores_chart=dist,
        winners=winners,
        attempts=attempts,
        pages=pager(total, page),
        draw=quiz_service.published_draw(ctx.db, q) if q.prize_rule == "random_k" else None,
        member_url=f"/m/{ctx.workspace.slug}/quiz/{q.id}",
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        error=request.query_params.get("error", "")[:200],
    )


def _question_in(values: dict[str, str]) -> QuestionIn:
    """The question editor's fields: options one per line, correct options as 1-based numbers ("1" or "1,3")."""
    options = [line.strip() for line in values.get("options", "").splitlines() if line.strip()]
    raw = values.get("correct", "").replace("，", ",").replace(" ", ",")
    correct = [int(p) - 1 for p in raw.split(",") if p.strip().isdigit()]
    return QuestionIn.model_validate(
        {"kind": values.get("kind", "single"), "text": values.get("text", ""), "options": options, "correct": correct}
    )


@router.post("/quizzes/{quiz_id}/questions")
async def add_question(quiz_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Append a question to a draft."""
    ctx.require(Perm.WRITE)
    values = await posted(request)
    ws = ctx.workspace.id

    def step() -> None:
        quiz_service.add_question(ctx.db, workspace_id=ws, quiz_id=quiz_id, data=_question_in(values))

    return run_step(ctx, f"/quizzes/{quiz_id}", step, "question#questions")


@router.post("/quizzes/{quiz_id}/questions/{question_id}/{action}")
def question_action(quiz_id: DbId, question_id: DbId, action: str, ctx: Console = Depends(console_post)) -> Response:
    """Move a question up or down, or delete it (drafts only)."""
    ctx.require(Perm.WRITE)
    ws, url = ctx.workspace.id, f"/quizzes/{quiz_id}"
    if action not in ("up", "down", "delete"):
        return RedirectResponse(url, status_code=303)

    def step() -> None:
        if action == "delete":
            quiz_service.delete_question(ctx.db, workspace_id=ws, quiz_id=quiz_id, question_id=question_id)
        else:
            delta = -1 if action == "up" else 1
            quiz_service.move_question(ctx.db, workspace_id=ws, quiz_id=quiz_id, question_id=question_id, delta=delta)

    return run_step(ctx, url, step, "question#questions")


STEPS: dict[str, tuple[Callable[..., Any], str]] = {
    "publish": (quiz_service.publish_quiz, "published"),
    "cancel": (quiz_service.cancel_quiz, "cancelled"),
    "draw": (quiz_service.draw, "drawn"),
}


@router.post("/quizzes/{quiz_id}/{action}")
def act(quiz_id: DbId, action: str, ctx: Console = Depends(console_post)) -> Response:
    """publish, cancel or draw (random-K, after the end)."""
    ctx.require(Perm.WRITE)
    url = f"/quizzes/{quiz_id}"
    if action not in STEPS:
        return RedirectResponse(url, status_code=303)
    fn, done = STEPS[action]
    return run_step(
        ctx,
        url,
        lambda: fn(ctx.db, workspace_id=ctx.workspace.id, quiz_id=quiz_id),
        done,
        audit=(f"quiz.{action}", "quiz", quiz_id),
    )


@router.post("/quizzes/{quiz_id}/attempts/{attempt_id}/ship")
def ship(quiz_id: DbId, attempt_id: DbId, ctx: Console = Depends(console_post)) -> Response:
    """Move a physical prize to its next state."""
    ctx.require(Perm.WRITE)
    return run_step(
        ctx,
        f"/quizzes/{quiz_id}",
        lambda: quiz_service.ship(ctx.db, workspace_id=ctx.workspace.id, quiz_id=quiz_id, attempt_id=attempt_id),
        "shipped#winners",
    )
