"""Background jobs and signal receivers of loyalty."""

from __future__ import annotations


def register() -> None:
    """Register this capability's job handlers and signal receivers (called once at start-up)."""
