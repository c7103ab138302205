"""One place that tells the time, so tests and jobs agree on UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime, naive_tz: ZoneInfo = SHANGHAI) -> datetime:
    """Make a datetime aware (naive values are read in naive_tz) and convert it to UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_tz)
    return value.astimezone(UTC)
