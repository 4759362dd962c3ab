"""Errors of the Omnitron client, each with a message an admin can act on.

They are domain errors answered with 502 Bad Gateway: the portal itself is fine, the system behind it
is not. (A 401 from Omnitron must not look like the portal user's own session expiring.)
"""
from __future__ import annotations

from portal.errors import DomainError


class OmnitronError(DomainError):
    """Base of every Omnitron client error; `status` is Omnitron's HTTP status when it answered."""

    code = "omnitron_error"
    http_status = 502

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None, attempts: int = 1):
        details = {"omnitron_url": url, "omnitron_status": status}
        super().__init__(message, details={k: v for k, v in details.items() if v is not None})
        self.url = url
        self.status = status
        self.attempts = attempts


class OmnitronUnreachable(OmnitronError):
    """No answer: connection refused, unknown host, connection dropped or no answer in time."""

    code = "omnitron_unreachable"


class OmnitronNotAllowed(OmnitronError):
    """The SSRF guard refused OMNITRON_URL's address (private, loopback, metadata ...) before connecting."""

    code = "omnitron_not_allowed"


class OmnitronTimeout(OmnitronUnreachable):
    """Omnitron accepted the connection but did not answer within the read timeout."""

    code = "omnitron_timeout"


class OmnitronAuthError(OmnitronError):
    """Omnitron refused the username and password, or the token even after logging in again (401)."""

    code = "omnitron_auth_failed"


class OmnitronForbidden(OmnitronError):
    """The Omnitron user is logged in but lacks permission for this call (403)."""

    code = "omnitron_forbidden"


class OmnitronNotFound(OmnitronError):
    """Omnitron has no such path or record (404)."""

    code = "omnitron_not_found"


class OmnitronServerError(OmnitronError):
    """Omnitron kept answering 5xx after every retry."""

    code = "omnitron_server_error"


class OmnitronBadResponse(OmnitronError):
    """Omnitron answered, but not with the JSON expected (wrong URL, a proxy's error page, another 4xx)."""

    code = "omnitron_bad_response"
