"""Loyalty API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shequn.core.web import MAX_DB_INT
from shequn.loyalty.service import MAX_POINTS


class PointsEntryOut(BaseModel):
    """One ledger movement."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    delta: int
    reason: str
    ref: str
    note: str
    balance_after: int
    created_at: datetime


class PointsOut(BaseModel):
    """A customer's points and latest movements."""

    customer_id: int
    balance: int
    earned_total: int
    spent_total: int
    entries: list[PointsEntryOut]
    entries_total: int


class AdjustIn(BaseModel):
    """A manual correction: positive adds, negative takes (never below zero); ref makes retries safe."""

    customer_id: int = Field(ge=1, le=MAX_DB_INT)
    delta: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    note: str = Field("", max_length=200)
    ref: str | None = Field(None, min_length=1, max_length=64, description="defaults to a fresh id (not retry-safe)")


class AdjustOut(BaseModel):
    """The outcome of an adjustment."""

    customer_id: int
    balance: int
    entry_id: int
    created: bool
