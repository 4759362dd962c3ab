"""Domain errors. Domain code raises these; the web layer maps them to messages and status codes."""
from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause. `message` is safe to show to a salesperson.

    Raise it with a translated message, `_("...")`: the text is taken in the locale of the request (or the
    default locale in workers and commands). A lazy string is resolved here, so JSON answers get a plain str.
    """

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, details: dict | None = None):
        message = str(message)
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class ValidationFailed(DomainError):
    """Input is missing or wrong; nothing was changed."""

    code = "validation_error"


class CommandRejected(DomainError):
    """The command cannot run on this package now (wrong state, not applicable)."""

    code = "command_rejected"


class InvalidOtp(DomainError):
    """The pickup code is wrong, expired, used or locked."""

    code = "invalid_otp"


class RateLimited(DomainError):
    """Too many attempts; try again later."""

    code = "rate_limited"
    http_status = 429


class ConcurrentChange(DomainError):
    """Someone else changed the same record at the same time."""

    code = "concurrent_change"
    http_status = 409


class NotFound(DomainError):
    """The record does not exist or is outside the user's stores."""

    code = "not_found"
    http_status = 404


class PermissionDenied(DomainError):
    """The user's role may not do this."""

    code = "permission_denied"
    http_status = 403
