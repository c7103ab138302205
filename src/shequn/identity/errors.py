"""Identity errors."""

from shequn.core.errors import Conflict, ShequnError, Unauthenticated


class InvalidCredentials(Unauthenticated):
    """Wrong email or password."""

    code = "invalid_credentials"


class InvalidToken(Unauthenticated):
    """Unknown, revoked or malformed API token."""

    code = "invalid_token"


class EmailTaken(Conflict):
    """Another operator already uses this email."""

    code = "email_taken"


class SlugTaken(Conflict):
    """Another workspace already uses this slug."""

    code = "slug_taken"


class WeakPassword(ShequnError):
    """The password is too short."""

    code = "weak_password"
    status_code = 422


class LastOwner(Conflict):
    """A workspace must keep at least one owner."""

    code = "last_owner"


class TooManyAttempts(ShequnError):
    """Too many wrong passwords for this account: it is locked for a while."""

    code = "too_many_attempts"
    status_code = 429
