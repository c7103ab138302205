"""Process-level guard settings read from SHEQUN_GUARD_* environment variables (documented defaults).

The member middleware's limits are re-read at most once a second (reading four variables costs ~6 µs, a third
of the middleware's cost per request); `reset()` forgets them at once (tests).
  SHEQUN_GUARD_MEMBER_IP_LIMIT      requests per window per client IP on member paths (default 1200; 0 = off)
  SHEQUN_GUARD_MEMBER_DEVICE_LIMIT  requests per window per device cookie on member paths (default 600; 0 = off)
  SHEQUN_GUARD_MEMBER_WINDOW_S      the window of both, in seconds (default 60)
  SHEQUN_GUARD_TRUST_PROXY          1: the client IP is the last X-Forwarded-For hop (behind one reverse proxy)
  SHEQUN_GUARD_ENABLED              0: check_member_action admits everything (benchmarks of the bare hot path)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

DEFAULT_IP_LIMIT = 1200  # 20 requests/s sustained after a burst of 1200: a shared NAT full of shoppers passes
DEFAULT_DEVICE_LIMIT = 600  # 10 requests/s sustained after a burst of 600: no person taps or polls that fast
DEFAULT_WINDOW_S = 60


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return max(0, int(raw)) if raw else default
    except ValueError:
        return default


@dataclass(frozen=True)
class MemberLimits:
    """The member middleware's limits."""

    ip_limit: int
    device_limit: int
    window_s: int
    trust_proxy: bool


def _read_member_limits() -> MemberLimits:
    return MemberLimits(
        ip_limit=_int("SHEQUN_GUARD_MEMBER_IP_LIMIT", DEFAULT_IP_LIMIT),
        device_limit=_int("SHEQUN_GUARD_MEMBER_DEVICE_LIMIT", DEFAULT_DEVICE_LIMIT),
        window_s=max(1, _int("SHEQUN_GUARD_MEMBER_WINDOW_S", DEFAULT_WINDOW_S)),
        trust_proxy=os.environ.get("SHEQUN_GUARD_TRUST_PROXY", "") == "1",
    )


_cached: tuple[float, MemberLimits] | None = None


def member_limits() -> MemberLimits:
    """The current member middleware limits (re-read from the environment at most once a second)."""
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] > 1.0:
        _cached = (now, _read_member_limits())
    return _cached[1]


def reset() -> None:
    """Read the environment again on the next call."""
    global _cached
    _cached = None


def checks_enabled() -> bool:
    """Whether check_member_action and record_failure do anything (on unless SHEQUN_GUARD_ENABLED=0)."""
    return os.environ.get("SHEQUN_GUARD_ENABLED", "1") != "0"
