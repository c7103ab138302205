"""Analytics inputs and outputs: a batch of tracked events and what ingesting it did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000
MAX_DB_INT = 2**63 - 1


class IdentityRef(BaseModel):
    """A platform identity naming the customer, e.g. {source: wechat, kind: openid, value: …}."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=32)
    kind: str = Field(min_length=1, max_length=16, description="openid, unionid, customer_id, email, phone …")
    value: str = Field(min_length=1, max_length=255)


class EventIn(BaseModel):
    """One tracked event; event_id is the client's unique id, so a resent event is not counted twice."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64, description="e.g. share, page_view, coupon_claim")
    customer_id: int | None = Field(None, ge=1, le=MAX_DB_INT)
    identity: IdentityRef | None = None
    occurred_at: datetime = Field(description="ISO 8601 with a time zone")
    props: dict[str, Any] = Field(default_factory=dict, description='a string "category" also feeds interests')


class EventBatch(BaseModel):
    """1 to 1,000 events, written all or none."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(BaseModel):
    """Events stored, events skipped as already received, and stored events naming no known customer."""

    accepted: int
    duplicates: int
    unresolved: int = 0
