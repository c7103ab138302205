"""Tables (filled in by the capability's owner)."""

from __future__ import annotations
