"""Pydantic shapes of the guard's operator API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

BlockKind = Literal["customer", "device", "phone_hash", "ip"]


class BlockIn(BaseModel):
    """A blacklist entry to add (phone_hash also accepts a phone number, stored only as its keyed hash)."""

    kind: BlockKind
    value: str = Field(min_length=1, max_length=128)
    reason: str = Field("", max_length=255)
    until: AwareDatetime | None = Field(None, description="end of the block; empty: until removed")


class BlockOut(BaseModel):
    """A blacklist entry; phone hashes and device ids are shown shortened or masked, never in full."""

    id: int
    kind: str
    display: str
    reason: str
    until: datetime | None
    active: bool
    created_by: int | None
    created_at: datetime


class FlagOut(BaseModel):
    """Refusals of one rule for one subject within one minute."""

    id: int
    action: str
    reason: str
    rule: str
    subject: str
    customer_id: int | None
    count: int
    bucket_at: datetime
    first_at: datetime
    last_at: datetime


class RuleOut(BaseModel):
    """One rule of one action: the value in force, the default, and whether the workspace overrides it."""

    action: str
    rule: str
    limit: int
    window_s: float
    default_limit: int | None
    default_window_s: float | None
    overridden: bool


class RuleIn(BaseModel):
    """A workspace's value for one rule (limit 0 turns the rule off)."""

    limit: int = Field(ge=0, le=1_000_000)
    window_s: float = Field(ge=0.1, le=86_400)
