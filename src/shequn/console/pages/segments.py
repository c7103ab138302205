"""Segments: the list, the visual rule builder with its live preview, the detail page and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from shequn.audience import service as audience_service
from shequn.console import fmt
from shequn.console.pages.segment_parts import RuleWords, builder_config, label, line_chart, rfm_name, segment_profile
from shequn.console.web import PER_PAGE, Console, ConsoleRoute, console, console_post, page_number, pager, render
from shequn.core import jobs
from shequn.core.clock import utcnow
from shequn.core.errors import Conflict, ShequnError, ValidationFailed
from shequn.core.web import DbId
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm

router = APIRouter(route_class=ConsoleRoute)

SAMPLE = 10
HISTORY_LIMIT = 100
SIZE_POINTS = 200
EXPORT_BATCH = 2_000
MAX_RULE_CHARS = 64 * 1024
NEW_RULE: dict[str, Any] = {
    "type": "and",
    "rules": [{"type": "attr", "field": "orders_count", "op": "gte", "value": 1}],
}
NOTICES = {
    "created": "segments.done.created",
    "saved": "segments.done.saved",
    "deleted": "segments.done.deleted",
    "refresh": "segments.done.refresh",
}
EXPORT_COLUMNS = (
    "id",
    "name",
    "phone_masked",
    "email_masked",
    "province",
    "city",
    "orders_count",
    "total_spent",
    "last_order_at",
    "rfm_group",
    "lifecycle",
)


def parse_rule(raw: str) -> Any:
    """The rule JSON typed or serialised by the builder (ValidationFailed at field "rule" when unreadable)."""
    if len(raw) > MAX_RULE_CHARS:
        raise ValidationFailed(details=[{"field": "rule", "code": "rule_too_large", "message": "rule too large"}])
    try:
        return json.loads(raw)
    except ValueError:
        raise ValidationFailed(details=[{"field": "rule", "code": "bad_json", "message": "not valid JSON"}]) from None


def field_errors(ctx: Console, exc: ShequnError) -> list[dict[str, str]]:
    """A validation error's details as {field, code, message} in the operator's language."""
    out = []
    for d in exc.details or []:
        if not isinstance(d, dict):
            continue
        field = str(d.get("field") or "")
        english = str(d.get("message") or "")
        if d.get("code"):
            code = str(d["code"])
            # English keeps the rule checker's precise wording; other languages get the code's translation.
            message = english if ctx.locale == "en" and english else label(ctx, f"segments.err.{code}", english)
        elif exc.code != ValidationFailed.code:
            code, message = exc.code, exc.message(ctx.locale)  # e.g. segment_name_taken
        else:
            code, message = exc.code, label(ctx, f"segments.err.field.{field}", english)
        out.append({"field": field, "code": code, "message": message or exc.message(ctx.locale)})
    if not out:
        out.append({"field": "", "code": exc.code, "message": exc.message(ctx.locale)})
    return out


def duration(ms: int | None) -> str:
    """A refresh time: 850 ms, 2.4 s."""
    if ms is None:
        return "—"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _audit(ctx: Console, action: str, segment_id: int, details: dict[str, Any]) -> None:
    identity_service.record_audit(ctx.db, ctx.actor, action, "segment", segment_id, details)


# --- the list -----------------------------------------------------------------------------------


def _list_page(request: Request, ctx: Console, *, error: str = "", status: int = 200) -> Response:
    done = request.query_params.get("done", "")
    return render(
        request,
        "segments.html",
        ctx,
        status=status,
        segments=audience_service.list_segments(ctx.db, workspace_id=ctx.workspace.id),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        error=error,
        duration=duration,
    )


@router.get("/segments")
def segments_list(request: Request, ctx: Console = Depends(console)) -> Response:
    """Every segment with its size, kind and last refresh."""
    ctx.require(Perm.READ)
    return _list_page(request, ctx)


# --- the builder (new and edit) -----------------------------------------------------------------


def _builder_page(
    request: Request,
    ctx: Console,
    *,
    segment: Any = None,
    values: dict[str, str],
    errors: list[dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    errors = errors or []
    locked = segment is not None and segment.kind == "static"
    form_errors = {e["field"]: e["message"] for e in errors if not e["field"].startswith("rule")}
    rule_errors = [e for e in errors if e["field"].startswith("rule")]
    return render(
        request,
        "segment_new.html",
        ctx,
        status=status,
        segment=segment,
        values=values,
        form_errors=form_errors,
        rule_errors=rule_errors,
        has_errors=bool(errors),
        locked=locked,
        config=builder_config(
            ctx, segment_id=segment.id if segment is not None else None, errors=rule_errors, readonly=locked
        ),
    )


def _values(name: str, description: str, kind: str, rule: str) -> dict[str, str]:
    kind = kind if kind in ("dynamic", "static") else "dynamic"
    return {"name": name, "description": description, "kind": kind, "rule": rule}


@router.get("/segments/new")
def segment_new(request: Request, ctx: Console = Depends(console)) -> Response:
    """The builder with a starter rule (roles that cannot save may still preview)."""
    ctx.require(Perm.READ)
    return _builder_page(
        request, ctx, values=_values("", "", "dynamic", json.dumps(NEW_RULE, ensure_ascii=False, indent=2))
    )


@router.post("/segments/new")
def segment_create(
    request: Request,
    name: str = Form(""),
    description: str = Form(""),
    kind: str = Form("dynamic"),
    rule: str = Form(""),
    ctx: Console = Depends(console_post),
) -> Response:
    """Create a dynamic or static segment and go to its page; problems re-show the builder."""
    ctx.require(Perm.WRITE)
    values = _values(name, description, kind, rule)
    try:
        seg = audience_service.create_segment(
            ctx.db,
            workspace_id=ctx.workspace.id,
            name=name,
            description=description,
            kind=values["kind"],
            rule=parse_rule(rule),
            created_by=ctx.operator_id,
        )
        _audit(ctx, "segment.created", seg.id, {"name": seg.name, "kind": seg.kind, "members": seg.members_count})
    except (ValidationFailed, Conflict) as exc:
        ctx.db.rollback()
        return _builder_page(request, ctx, values=values, errors=field_errors(ctx, exc), status=exc.status_code)
    ctx.db.commit()
    return RedirectResponse(f"/segments/{seg.id}?done=created", status_code=303)


async def _posted_rule(request: Request) -> Any:
    """The rule of a preview request: a JSON body {"rule": …} (the builder) or a form field rule (no script)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = (await request.body()).decode("utf-8", "replace")
        payload = parse_rule(body)
        if not isinstance(payload, dict) or "rule" not in payload:
            raise ValidationFailed(details=[{"field": "rule", "code": "required", "message": 'send {"rule": …}'}])
        return payload["rule"]
    value = (await request.form()).get("rule")
    return parse_rule(value if isinstance(value, str) else "")


@router.post("/segments/preview")
async def segment_preview(request: Request, ctx: Console = Depends(console_post)) -> Response:
    """The builder's live result: count and sample members, or the rule's field errors."""
    ctx.require(Perm.READ)
    started = time.perf_counter()
    try:
        count, people = audience_service.preview(
            ctx.db, workspace_id=ctx.workspace.id, rule=await _posted_rule(request), sample=SAMPLE
        )
    except ValidationFailed as exc:
        ctx.db.rollback()
        # 200 with data-state="invalid": the fragment is the answer (htmx swaps 2xx only; browsers log 4xx).
        return render(request, "partials/segment_preview.html", ctx, errors=field_errors(ctx, exc), count=None)
    took = int((time.perf_counter() - started) * 1000)
    customers, _, _ = audience_service.customer_counts(ctx.db, workspace_id=ctx.workspace.id)
    return render(
        request,
        "partials/segment_preview.html",
        ctx,
        errors=[],
        count=count,
        people=people,
        customers=customers,
        took=took,
        rfm_name=lambda code: rfm_name(ctx, code),
    )


# --- one segment --------------------------------------------------------------------------------


@router.get("/segments/{segment_id}")
def segment_detail(segment_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """Size, members, membership history, size over time and (when available) the profile."""
    ctx.require(Perm.READ)
    ws = ctx.workspace.id
    seg = audience_service.get_segment(ctx.db, workspace_id=ws, segment_id=segment_id)
    page = page_number(request.query_params.get("page"))
    members, total = audience_service.list_members(
        ctx.db, workspace_id=ws, segment_id=seg.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    sizes = audience_service.list_sizes(ctx.db, workspace_id=ws, segment_id=seg.id, limit=SIZE_POINTS)
    done = "" if request.query_params.get("page") else request.query_params.get("done", "")  # once, not per page
    return render(
        request,
        "segment.html",
        ctx,
        seg=seg,
        members=members,
        pg=pager(total, page),
        history=audience_service.list_history(ctx.db, workspace_id=ws, segment_id=seg.id, limit=HISTORY_LIMIT),
        sizes=sizes,
        size_chart=line_chart(sizes, title=ctx.t("segments.detail.size"), tz=ctx.workspace.timezone, until=utcnow()),
        rule_words=RuleWords(ctx).html(seg.rule),
        profile=segment_profile(ctx, seg.id),
        rule_json=json.dumps(seg.rule, ensure_ascii=False, indent=2),
        notice=ctx.t(NOTICES[done]) if done in NOTICES else "",
        duration=duration,
        rfm_name=lambda code: rfm_name(ctx, code),
    )


@router.get("/segments/{segment_id}/edit")
def segment_edit(segment_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The builder on a saved segment's rule (a static segment's rule is shown, not changed)."""
    ctx.require(Perm.READ)
    seg = audience_service.get_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
    rule = json.dumps(seg.rule, ensure_ascii=False, indent=2)
    return _builder_page(request, ctx, segment=seg, values=_values(seg.name, seg.description, seg.kind, rule))


@router.post("/segments/{segment_id}/edit")
def segment_update(
    segment_id: DbId,
    request: Request,
    name: str = Form(""),
    description: str = Form(""),
    rule: str = Form(""),
    ctx: Console = Depends(console_post),
) -> Response:
    """Save name, description and (dynamic segments) the rule, which refreshes the segment."""
    ctx.require(Perm.WRITE)
    seg = audience_service.get_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
    values = _values(name, description, seg.kind, rule if seg.kind == "dynamic" else json.dumps(seg.rule, indent=2))
    try:
        new_rule = parse_rule(rule) if seg.kind == "dynamic" else None
        seg = audience_service.update_segment(
            ctx.db,
            workspace_id=ctx.workspace.id,
            segment_id=seg.id,
            name=name,
            description=description,
            rule=new_rule,
        )
        _audit(ctx, "segment.updated", seg.id, {"name": seg.name, "rule_changed": new_rule is not None})
    except (ValidationFailed, Conflict) as exc:
        ctx.db.rollback()
        seg = audience_service.get_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
        return _builder_page(
            request, ctx, segment=seg, values=values, errors=field_errors(ctx, exc), status=exc.status_code
        )
    ctx.db.commit()
    return RedirectResponse(f"/segments/{seg.id}?done=saved", status_code=303)


@router.post("/segments/{segment_id}/refresh")
def segment_refresh(
    segment_id: DbId, request: Request, back: str = Form(""), ctx: Console = Depends(console_post)
) -> Response:
    """Queue a full refresh of one segment (the job runs after commit)."""
    ctx.require(Perm.WRITE)
    seg = audience_service.get_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
    if seg.kind != "dynamic":  # a refresh would replace the snapshot a static segment exists to keep
        return _list_page(request, ctx, error=ctx.t("segments.static_no_refresh", name=seg.name), status=409)
    jobs.enqueue_job(
        ctx.db,
        workspace_id=ctx.workspace.id,
        kind=audience_service.SEGMENT_REFRESH_JOB,
        params={"segment_id": seg.id},
        created_by=ctx.operator_id,
    )
    ctx.db.commit()
    target = f"/segments/{seg.id}" if back == "detail" else "/segments"
    return RedirectResponse(target + "?done=refresh", status_code=303)


@router.post("/segments/{segment_id}/delete")
def segment_delete(segment_id: DbId, request: Request, ctx: Console = Depends(console_post)) -> Response:
    """Delete a segment, unless other segments' rules refer to it (then say which)."""
    ctx.require(Perm.WRITE)
    seg = audience_service.get_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
    name = seg.name
    try:
        audience_service.delete_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=seg.id)
    except Conflict as exc:
        ctx.db.rollback()
        users = "; ".join(", ".join(d.get("segments", [])) for d in exc.details or [])
        message = ctx.t("segments.in_use", name=name, users=users) if users else exc.message(ctx.locale)
        return _list_page(request, ctx, error=message, status=409)
    _audit(ctx, "segment.deleted", segment_id, {"name": name})
    ctx.db.commit()
    return RedirectResponse("/segments?done=deleted", status_code=303)


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{yuan}.{cents:02d}"


def _cell(value: object) -> str:
    """Neutralise spreadsheet formulas in a CSV cell (=, +, -, @ at the start)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/segments/{segment_id}/export.csv")
def segment_export(segment_id: DbId, ctx: Console = Depends(console)) -> Response:
    """Every member as CSV with PII masked (UTF-8 with BOM so Excel reads the Chinese), streamed."""
    ctx.require(Perm.EXPORT)
    seg = audience_service.get_segment(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
    ws, sid, tz = ctx.workspace.id, seg.id, ctx.workspace.timezone
    _audit(ctx, "segment.exported", sid, {"name": seg.name, "members": seg.members_count})
    ctx.db.commit()

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_COLUMNS)
        yield "\ufeff" + buf.getvalue()
        buf.seek(0)
        buf.truncate()
        members = audience_service.iter_member_rows(ctx.db, workspace_id=ws, segment_id=sid, batch=EXPORT_BATCH)
        for n, c in enumerate(members, start=1):
            last = fmt.local_dt(c.last_order_at, tz, "%Y-%m-%d %H:%M:%S") if c.last_order_at else ""
            writer.writerow(
                [
                    c.id,
                    _cell(c.name),
                    _cell(c.phone_masked),
                    _cell(c.email_masked),
                    _cell(c.province),
                    _cell(c.city),
                    c.orders_count,
                    _yuan(c.total_spent),
                    last,
                    c.rfm_group or "",
                    c.lifecycle or "",
                ]
            )
            if n % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{sid}-members.csv"'},
    )


@router.get("/customers/{customer_id}/segments")
def customer_segments(customer_id: DbId, request: Request, ctx: Console = Depends(console)) -> Response:
    """The segments card of the customer 360 (a fragment htmx loads into the page)."""
    ctx.require(Perm.READ)
    c = audience_service.get_customer(ctx.db, workspace_id=ctx.workspace.id, customer_id=customer_id)
    segments = audience_service.customer_segments(ctx.db, workspace_id=ctx.workspace.id, customer_id=c.id)
    return render(request, "partials/customer_segments.html", ctx, segments=segments)
