"""Shared API shapes: paginated lists and job runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Paginated(BaseModel, Generic[T]):
    """A page of items with the total and the next offset (None on the last page)."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None

    @classmethod
    def of(cls, items: list[T], total: int, limit: int, offset: int) -> Paginated[T]:
        """Build a page, computing next_offset."""
        nxt = offset + limit if offset + limit < total else None
        return cls(items=items, total=total, limit=limit, offset=offset, next_offset=nxt)


class JobOut(BaseModel):
    """A background job and its progress."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    progress_done: int
    progress_total: int
    message: str
    result: dict[str, Any]
    error: str
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
