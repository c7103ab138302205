"""Flash-sale errors: stable codes, messages in `locales/` as `error.<code>`."""

from __future__ import annotations

from shequn.core.errors import Conflict, NotFound, ShequnError


class FlashSaleNotFound(NotFound):
    """No such flash sale in this workspace (or not visible to this member)."""

    code = "flash_sale_not_found"


class ReservationNotFound(NotFound):
    """No such reservation in this workspace, or not the member's own."""

    code = "flash_reservation_not_found"


class FlashNotEditable(Conflict):
    """Stock, limit and price are fixed once the sale is published (claims are already counted against them)."""

    code = "flash_not_editable"


class FlashBadTransition(Conflict):
    """A lifecycle change that is not allowed from the current status."""

    code = "flash_bad_transition"


class ReservationExpired(Conflict):
    """The reservation's pay-by time has passed: its stock went back to the sale."""

    code = "flash_reservation_expired"


class ReservationClosed(Conflict):
    """The reservation is already paid or cancelled."""

    code = "flash_reservation_closed"


class ClaimRefused(ShequnError):
    """A decided claim that won no stock: sold out, over the limit, not started, ended (409)."""

    status_code = 409


def refusal(outcome: str) -> ShequnError:
    """The error for a refused claim outcome (the guard raises its own guard_blocked / guard_rate_limited)."""
    if outcome == "not_found":
        return FlashSaleNotFound()
    return ClaimRefused(f"flash_{outcome}")
