"""The demo brand's audience layer: a few tags and segments an operator of 山茶集 would keep."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.audience.models import Customer, Segment, Tag
from shequn.audience.segments import create_segment
from shequn.audience.tags import create_tag, tag_by_rule

BIG_SPENDER = {"type": "attr", "field": "total_spent", "op": "gte", "value": 100_000}

TAGS: list[dict[str, Any]] = [
    {
        "name": "VIP 名单",
        "kind": "manual",
        "color": "#c2410c",
        "description": "累计消费 ≥ ¥1,000 的客户（导入时一次性打标）",
    },
    {
        "name": "高客单",
        "kind": "rule",
        "color": "#7c3aed",
        "description": "客单价 ≥ ¥200",
        "rule": {"type": "attr", "field": "avg_order_value", "op": "gte", "value": 20_000},
    },
    {
        "name": "社交达人",
        "kind": "rule",
        "color": "#0891b2",
        "description": "影响力 ≥ 40（粉丝多的社交账号）",
        "rule": {"type": "attr", "field": "influence", "op": "gte", "value": 40},
    },
]


def _segments(tag_ids: dict[str, int]) -> list[dict[str, Any]]:
    """The demo segments (rules refer to the demo tags by id)."""
    return [
        {
            "name": "重要价值·绿茶爱好者",
            "description": "RFM 重要价值/保持客户中一年内买过绿茶的人",
            "rule": {
                "type": "and",
                "rules": [
                    {"type": "attr", "field": "rfm_group", "op": "in", "value": ["important_value", "important_keep"]},
                    {"type": "purchase", "category": "绿茶", "days": 365, "metric": "count", "op": "gte", "value": 1},
                ],
            },
        },
        {
            "name": "沉睡大客户召回",
            "description": "流失或有流失风险、累计消费 ≥ ¥500",
            "rule": {
                "type": "and",
                "rules": [
                    {"type": "attr", "field": "lifecycle", "op": "in", "value": ["at_risk", "lapsed"]},
                    {"type": "attr", "field": "total_spent", "op": "gte", "value": 50_000},
                ],
            },
        },
        {
            "name": "近30天分享达人",
            "description": "最近 30 天分享 ≥ 2 次",
            "rule": {"type": "event", "event": "share", "days": 30, "op": "gte", "value": 2},
        },
        {
            "name": "看直播未下单",
            "description": "最近 30 天看过直播，但 30 天内没有下单",
            "rule": {
                "type": "and",
                "rules": [
                    {"type": "event", "event": "live_watch", "days": 30, "op": "gte", "value": 1},
                    {"type": "purchase", "days": 30, "metric": "count", "op": "eq", "value": 0},
                ],
            },
        },
        {
            "name": "高客单社交达人",
            "description": "同时有“高客单”和“社交达人”标签",
            "rule": {
                "type": "and",
                "rules": [
                    {"type": "tag", "tag_id": tag_ids["高客单"], "op": "has"},
                    {"type": "tag", "tag_id": tag_ids["社交达人"], "op": "has"},
                ],
            },
        },
    ]


def ensure_demo_audience(session: Session, *, workspace_id: int) -> dict[str, int]:
    """Create the demo tags and segments that are missing (safe to run again)."""
    existing_tags = {
        name: tid
        for name, tid in session.execute(
            select(Tag.name, Tag.id).where(Tag.workspace_id == workspace_id, Tag.deleted_at.is_(None))
        )
    }
    made = {"tags": 0, "segments": 0}
    for spec in TAGS:
        if spec["name"] in existing_tags:
            continue
        tag = create_tag(session, workspace_id=workspace_id, **spec)
        existing_tags[tag.name] = tag.id
        made["tags"] += 1
        if spec["kind"] == "manual":
            tag_by_rule(session, workspace_id=workspace_id, tag_id=tag.id, rule=BIG_SPENDER)
    names = set(
        session.scalars(select(Segment.name).where(Segment.workspace_id == workspace_id, Segment.deleted_at.is_(None)))
    )
    for spec in _segments(existing_tags):
        if spec["name"] not in names:
            create_segment(session, workspace_id=workspace_id, **spec)
            made["segments"] += 1
    return made


def all_live_customer_ids(session: Session, *, workspace_id: int) -> list[int]:
    """Every live customer id of the workspace, ascending (the demo's event generator walks them)."""
    return list(
        session.scalars(
            select(Customer.id)
            .where(Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None))
            .order_by(Customer.id)
        )
    )
