"""Anti-abuse errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from typing import Any

from shequn.core.errors import NotFound, PermissionDenied, ShequnError, ValidationFailed


class Blocked(PermissionDenied):
    """The customer, device, phone or IP is on the workspace's blacklist."""

    code = "guard_blocked"


class RateLimited(ShequnError):
    """Too many attempts of this action; details carry retry_after (seconds) and the rule that tripped."""

    code = "guard_rate_limited"
    status_code = 429

    def __init__(self, *, retry_after: float, rule: str, action: str, **params: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(details={"retry_after": seconds, "rule": rule, "action": action}, seconds=seconds, **params)
        self.retry_after = seconds


class TooFast(RateLimited):
    """A bot-like pattern (machine-speed bursts, one device or IP used by many customers)."""

    code = "guard_too_fast"


class GuessingLimited(RateLimited):
    """Too many wrong codes: further attempts wait until the failure window frees up."""

    code = "guard_code_guessing"


class BlockNotFound(NotFound):
    """No such blacklist entry in this workspace."""

    code = "guard_block_not_found"


class FlagNotFound(NotFound):
    """No such flagged event in this workspace (or its subject cannot be blacklisted)."""

    code = "guard_flag_not_found"


class InvalidGuardInput(ValidationFailed):
    """A blacklist entry or limit override that cannot be stored (details name the field)."""

    code = "guard_invalid"
