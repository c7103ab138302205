"""Segment page parts: builder configuration, the size-over-time chart, the rule in words, the profile."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from shequn.audience import rules as audience_rules
from shequn.audience import service as audience_service
from shequn.audience.rfm import GROUP_NAMES as RFM_GROUP_NAMES
from shequn.commerce import service as commerce_service
from shequn.console import fmt
from shequn.console.charts import HBar, hbars
from shequn.console.web import Console

MONEY_FIELDS = ("total_spent", "avg_order_value")
# Platforms a customer's `platforms` list may hold (order sources and the social networks identities come from).
PLATFORMS = ("taobao", "youzan", "shopify", "woocommerce", "api", "wechat", "weibo", "douyin", "xiaohongshu")

# --- labels and helpers -------------------------------------------------------------------------


def label(ctx: Console, key: str, fallback: str) -> str:
    """A console string, or fallback when the catalogs have no such key (data values such as codes)."""
    text = ctx.t(key)
    return fallback if text == key else text


def rfm_name(ctx: Console, code: str | None) -> str:
    """An RFM group's name in the operator's language (the code itself when unknown)."""
    if not code:
        return ""
    names = RFM_GROUP_NAMES.get(code)
    return names[1 if ctx.locale == "en" else 0] if names else code


def _choice_labels(ctx: Console, field: str, choices: Sequence[str]) -> list[dict[str, str]]:
    if field == "rfm_group":
        return [{"value": c, "label": rfm_name(ctx, c)} for c in choices]
    return [{"value": c, "label": label(ctx, f"segments.{field}.{c}", c)} for c in choices]


def _op_labels(ctx: Console, context: str, ops: Sequence[str]) -> dict[str, str]:
    """Operator labels; a context (date, tag, segment …) may word an operator its own way."""
    return {op: label(ctx, f"segments.op.{context}.{op}", label(ctx, f"segments.op.{op}", op)) for op in ops}


def _tag_options(ctx: Console) -> list[dict[str, Any]]:
    """The workspace's live tags for the tag condition (the builder falls back to an id box without them)."""
    tags, _ = audience_service.list_tags(ctx.db, workspace_id=ctx.workspace.id, limit=1000)
    return [{"id": tag.id, "name": tag.name} for tag in tags]


def builder_config(ctx: Console, *, segment_id: int | None, errors: list[dict[str, str]], readonly: bool) -> Markup:
    """Everything rule-builder.js needs (fields, operators, choices, labels) as a JSON <script> body."""
    fields = [
        {
            "name": name,
            "label": label(ctx, f"segments.field.{name}", name),
            "type": spec.type,
            "money": name in MONEY_FIELDS,
            "choices": _choice_labels(ctx, name, spec.choices),
        }
        for name, spec in audience_rules.FIELDS.items()
    ]
    ops: dict[str, list[str]] = {kind: list(values) for kind, values in audience_rules.OPS.items()}
    ops |= {
        "count": list(audience_rules.COUNT_OPS),
        "tag": list(audience_rules.TAG_OPS),
        "segment": list(audience_rules.SEGMENT_OPS),
    }
    ws = ctx.workspace.id
    segments = [
        {"id": s.id, "name": s.name}
        for s in audience_service.list_segments(ctx.db, workspace_id=ws)
        if s.id != segment_id
    ]
    text_keys = [
        *("match_all", "match_any", "not", "add_condition", "add_group", "remove", "choose", "value", "to"),
        *("yuan", "days", "comma_hint", "any_time", "in_last", "scope.order", "scope.category", "scope.product"),
        *("metric.count", "metric.amount", "event_name", "tag_id", "weight", "no_segments", "no_tags"),
        *("json_invalid", "category", "product_id", "condition", "group", "preview_failed"),
    ]
    config = {
        "fields": fields,
        "ops": ops,
        "op_labels": {context: _op_labels(ctx, context, values) for context, values in ops.items()},
        "types": {t: ctx.t(f"segments.type.{t}") for t in ("attr", "tag", "purchase", "event", "segment")},
        "tags": _tag_options(ctx),
        "segments": segments,
        "categories": commerce_service.list_categories(ctx.db, workspace_id=ws)[:500],
        "cities": audience_service.list_cities(ctx.db, workspace_id=ws)[:500],
        "platforms": [{"value": p, "label": label(ctx, f"source.{p}", p)} for p in PLATFORMS],
        "text": {k: ctx.t(f"segments.builder.{k}") for k in text_keys},
        "preview_url": "/segments/preview",
        "errors": errors,
        "readonly": readonly,
    }
    # Inside <script type="application/json"> only "</" could end the element early; \u003c keeps it inert.
    return Markup(json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"))


# --- the size-over-time chart ---------------------------------------------------------------------


def _nice_top(value: int, ticks: int) -> int:
    """The smallest round axis top (1, 2, 2.5, 5 × 10^n per tick) at or above value."""
    if value <= 0:
        return ticks
    step = value / ticks
    magnitude = 10 ** max(0, len(str(int(step))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= step:
            return int(m * magnitude * ticks) or ticks
    return int(10 * magnitude * ticks)


def line_chart(
    points: Sequence[tuple[datetime, int]],
    *,
    title: str,
    tz: str,
    until: datetime | None = None,
    width: int = 560,
    height: int = 220,
    ticks: int = 4,
) -> Markup:
    """A step line of a size over time: each size holds from its refresh until the next (or until `until`)."""
    left, right, top, bottom = 48, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_top(max((v for _, v in points), default=0), ticks)
    times = [at.timestamp() for at, _ in points]
    end = max([*times, until.timestamp()]) if until is not None and times else (times[-1] if times else 1.0)
    t0 = times[0] if times else 0.0
    span = (end - t0) or 1.0
    day = "%Y%m%d"
    same_day = bool(points) and fmt.local_dt(points[0][0], tz, day) == fmt.local_dt(points[-1][0], tz, day)
    label_fmt = "%H:%M" if same_day else "%m-%d"

    def x(ts: float) -> float:
        return left + plot_w * (ts - t0) / span

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / top_value

    parts = [
        f'<svg class="chart line" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet">'
    ]
    for i in range(ticks + 1):
        gy = top + plot_h - plot_h * i / ticks
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{escape(fmt.number(top_value * i // ticks))}</text>"
        )
    if points:
        path = [f"M{x(times[0]):.1f},{y(points[0][1]):.1f}"]
        path += [f"H{x(ts):.1f}V{y(v):.1f}" for ts, (_, v) in zip(times[1:], points[1:], strict=True)]
        path.append(f"H{x(end):.1f}")
        line = "".join(path)
        parts.append(
            f'<path class="area" d="{line}V{top + plot_h:.1f}H{x(times[0]):.1f}Z"/><path class="line" d="{line}"/>'
        )
        for ts, (at, v) in zip(times, points, strict=True):
            parts.append(
                f'<circle class="dot" cx="{x(ts):.1f}" cy="{y(v):.1f}" r="3">'
                f"<title>{escape(fmt.local_dt(at, tz))}: {escape(fmt.number(v))}</title></circle>"
            )
        n = len(points)
        last_x = -1e9
        for i in sorted({0, n - 1, *(round(k * (n - 1) / 4) for k in range(1, 4))}):
            lx = x(times[i])
            if lx - last_x < 56:
                continue
            last_x = lx
            anchor = "start" if i == 0 else ("end" if lx > width - right - 30 else "middle")
            parts.append(
                f'<text class="axis" x="{lx:.1f}" y="{height - 8}" text-anchor="{anchor}">'
                f"{escape(fmt.local_dt(points[i][0], tz, label_fmt))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


# --- the rule in words ----------------------------------------------------------------------------

COUNT_SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


class RuleWords:
    """Says a rule in the operator's language, as nested lists (the detail page's "rule" card)."""

    def __init__(self, ctx: Console) -> None:
        self.ctx = ctx
        ws = ctx.workspace.id
        self.segments = {s.id: s.name for s in audience_service.list_segments(ctx.db, workspace_id=ws)}
        self.tags = {t["id"]: t["name"] for t in _tag_options(ctx)}

    def html(self, rule: Any) -> Markup:
        """The rule as a nested <ul>; anything unexpected is shown as its JSON."""
        return Markup('<div class="rule-words">') + self.node(rule, negate=False) + Markup("</div>")

    def node(self, rule: Any, *, negate: bool) -> Markup:
        t = self.ctx.t
        if isinstance(rule, dict) and rule.get("type") == "not" and "rule" in rule:
            return self.node(rule["rule"], negate=not negate)
        prefix = Markup('<span class="rw-not">{}</span> ').format(t("segments.words.not")) if negate else Markup("")
        if isinstance(rule, dict) and rule.get("type") in ("and", "or") and isinstance(rule.get("rules"), list):
            head = t("segments.builder.match_all" if rule["type"] == "and" else "segments.builder.match_any")
            items = Markup("").join(
                Markup("<li>{}</li>").format(self.node(child, negate=False)) for child in rule["rules"]
            )
            return Markup('{}<span class="rw-group">{}</span><ul>{}</ul>').format(prefix, head, items)
        try:
            text = self.leaf(rule)
        except (KeyError, TypeError, ValueError, AttributeError):
            text = json.dumps(rule, ensure_ascii=False)
        return prefix + Markup('<span class="rw-leaf">{}</span>').format(text)

    def money(self, value: Any) -> str:
        return fmt.money(value, self.ctx.workspace.currency) if isinstance(value, int) else str(value)

    def leaf(self, rule: dict[str, Any]) -> str:
        ctx, kind, op = self.ctx, rule["type"], rule.get("op")
        if kind == "attr":
            name = rule["field"]
            spec = audience_rules.FIELDS[name]
            field = label(ctx, f"segments.field.{name}", name)
            if op in ("is_set", "is_not_set"):
                return f"{field} {ctx.t(f'segments.op.{op}')}"
            if op in ("within_days", "before_days"):
                return f"{field} {ctx.t(f'segments.words.{op}', n=rule['value'])}"
            value = rule.get("value")
            values = value if isinstance(value, list) else [value]
            if name in MONEY_FIELDS:
                shown = [self.money(v) for v in values]
            elif spec.choices:
                labels = {c["value"]: c["label"] for c in _choice_labels(ctx, name, spec.choices)}
                shown = [labels.get(str(v), str(v)) for v in values]
            elif name == "platforms":
                shown = [label(ctx, f"source.{v}", str(v)) for v in values]
            else:
                shown = [str(v) for v in values]
            joined = f" {ctx.t('segments.builder.to')} ".join(shown) if op == "between" else "、".join(shown)
            op_text = _op_labels(ctx, spec.type, [op])[op] if op in ("contains", "not_contains") else None
            op_text = op_text or COUNT_SYMBOLS.get(str(op)) or ctx.t(f"segments.op.{op}")
            return f"{field} {op_text} {joined}"
        if kind == "tag":
            name = self.tags.get(rule["tag_id"], f"#{rule['tag_id']}")
            if op == "weight_gte":
                return ctx.t("segments.words.tag_weight", tag=name, value=rule.get("value"))
            return ctx.t(f"segments.words.tag_{op}", tag=name)
        if kind == "segment":
            name = self.segments.get(rule["segment_id"], f"#{rule['segment_id']}")
            return ctx.t(f"segments.words.segment_{op}", segment=name)
        days = rule.get("days")
        window = ctx.t("segments.words.days", n=days) if days else ctx.t("segments.words.ever")
        amount = kind == "purchase" and rule.get("metric") == "amount"
        value = self.money(rule["value"]) if amount else fmt.number(rule["value"])
        if kind == "event":
            what = ctx.t("segments.words.event", event=rule["event"])
            measure = ctx.t("segments.words.times")
        else:
            if rule.get("product_id") is not None:
                what = ctx.t("segments.words.product", id=rule["product_id"])
            elif rule.get("category") is not None:
                what = ctx.t("segments.words.category", category=rule["category"])
            else:
                what = ctx.t("segments.builder.scope.order")
            measure = ctx.t("segments.builder.metric.amount" if amount else "segments.builder.metric.count")
        return f"{window} · {what} · {measure} {COUNT_SYMBOLS[str(op)]} {value}"


# --- the profile block (shown once audience.service offers segment_profile) -------------------------


def segment_profile(ctx: Console, segment_id: int) -> dict[str, list[HBar]] | None:
    """RFM mix, categories by spend, cities and lifecycle of a segment's members, or None.

    Only when audience.service.segment_profile exists (audience.profiles: grouped queries); streaming
    every member here instead would be too slow for big segments, so without it the block is left out.
    Its lists hold (key, members, spend in fen).
    """
    profile_of = getattr(audience_service, "segment_profile", None)
    if profile_of is None:
        return None
    p = profile_of(ctx.db, workspace_id=ctx.workspace.id, segment_id=segment_id)
    currency = ctx.workspace.currency
    return {
        "rfm": hbars([(rfm_name(ctx, k), n) for k, n, _ in p.rfm], fmt.number, of_total=True),
        "categories": hbars([(k, amount) for k, _, amount in p.categories], lambda v: fmt.money(v, currency)),
        "cities": hbars([(k, n) for k, n, _ in p.cities], fmt.number),
        "lifecycle": hbars(
            [(label(ctx, f"segments.lifecycle.{k}", k), n) for k, n, _ in p.lifecycle], fmt.number, of_total=True
        ),
    }
