"""Domain errors with stable machine codes; one handler maps them to HTTP."""

from __future__ import annotations

from typing import Any


class ShequnError(Exception):
    """Base of every error a user may see: a stable code, an HTTP status and message parameters."""

    code = "error"
    status_code = 400

    def __init__(self, code: str | None = None, *, details: Any = None, **params: Any) -> None:
        self.code = code or self.code
        self.details = details
        self.params = params
        super().__init__(self.code)

    def message(self, locale: str) -> str:
        """The message in the given locale."""
        from shequn.core.i18n import translate

        return translate(f"error.{self.code}", locale, **self.params)


class NotFound(ShequnError):
    """The object does not exist in this workspace (also used to hide other workspaces' objects)."""

    code = "not_found"
    status_code = 404


class PermissionDenied(ShequnError):
    """The operator's role does not allow the action."""

    code = "permission_denied"
    status_code = 403


class Unauthenticated(ShequnError):
    """No valid session or token."""

    code = "unauthenticated"
    status_code = 401


class Conflict(ShequnError):
    """The request conflicts with the current state."""

    code = "conflict"
    status_code = 409


class ValidationFailed(ShequnError):
    """Input failed validation; details lists {field, message} items."""

    code = "validation_failed"
    status_code = 422


class TooLarge(ShequnError):
    """An upload or request body exceeds its limit."""

    code = "too_large"
    status_code = 413


class InvalidText(ShequnError):
    """Text that is not valid Unicode (e.g. lone surrogates from a broken client) cannot be stored."""

    code = "invalid_text"
    status_code = 422
