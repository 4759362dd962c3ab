"""Errors from outside systems (Omnitron, a stock service, a geocoding provider), told as what to do.

Every wizard step that calls an outside system shows its failure the same way: first what the admin
should do ("The address could not be reached: check the URL"), then the technical detail (the adapter's
own message, status code, URL) behind a disclosure (templates/_explained.html). The advice depends on
what went wrong (a kind) and on whether the service takes credentials at all: a 401 from a stock engine
that needs none means the URL points at something else, not that a password is wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.geolocation.client import GeocodingError
from portal.integrations.engines import TOKEN_AUTH, ProbeResult, StockEngine
from portal.omnitron import OmnitronError

UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
AUTH = "auth"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
REDIRECT = "redirect"
SERVER = "server"
BAD_RESPONSE = "bad_response"
INVALID_KEY = "invalid_key"
QUOTA = "quota"
NO_PLACE = "no_place"
OTHER = "other"

# kind -> what to do, in plain words (AUTH depends on the credentials and is worked out in advice()).
ADVICE = {
    UNREACHABLE: _l("The address could not be reached: check the URL, and that the service is running."),
    TIMEOUT: _l("The service did not answer in time: try again, and if it keeps happening check the URL and "
                "the network."),
    FORBIDDEN: _l("The login works, but this user may not do this (HTTP 403): ask the service's administrator "
                  "for the permission."),
    NOT_FOUND: _l("Nothing answers at this address (HTTP 404): check the URL."),
    REDIRECT: _l("The address sends you elsewhere: use the address it redirects to as the URL."),
    SERVER: _l("The service has a problem of its own: try again later, or tell the people who run it."),
    BAD_RESPONSE: _l("Something answered, but not the service expected: check the URL."),
    INVALID_KEY: _l("The key was refused: check that it was copied whole and is enabled for geocoding."),
    QUOTA: _l("The key has used up its quota: wait, or raise the quota with the provider."),
    NO_PLACE: _l("The provider found no place for this address: try a fuller address."),
    OTHER: _l("The service refused the request: see the technical detail, or ask the people who run it."),
}

_OMNITRON_KINDS = {
    "omnitron_unreachable": UNREACHABLE, "omnitron_timeout": TIMEOUT, "omnitron_auth_failed": AUTH,
    "omnitron_forbidden": FORBIDDEN, "omnitron_not_found": NOT_FOUND, "omnitron_server_error": SERVER,
    "omnitron_bad_response": BAD_RESPONSE,
}
_GEOCODING_KINDS = {
    GeocodingError.INVALID_KEY: INVALID_KEY, GeocodingError.QUOTA: QUOTA, GeocodingError.TIMEOUT: TIMEOUT,
    GeocodingError.UNREACHABLE: UNREACHABLE, GeocodingError.NOT_FOUND: NO_PLACE,
    GeocodingError.BAD_REQUEST: OTHER, GeocodingError.PROVIDER_ERROR: SERVER,
    GeocodingError.BAD_RESPONSE: BAD_RESPONSE,
}


_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


@dataclass(frozen=True)
class Explained:
    """An outside system's failure: what to do (advice), and the technical detail for whoever needs it."""

    kind: str
    advice: str
    detail: str


def advice(kind: str, *, needs_credentials: bool = True, token: bool = False) -> str:
    """What to do about a failure of this kind, in the request's language."""
    if kind == AUTH:
        if not needs_credentials:
            return _("This engine needs no credentials, yet the address asked for a login (HTTP 401): the URL "
                     "probably points at another service. Check the URL.")
        if token:
            return _("The server answered 401: check the token.")
        return _("The server answered 401: check the username and password.")
    return str(ADVICE.get(kind, ADVICE[OTHER]))


def kind_of_status(status: int | None) -> str:
    """The kind of failure an HTTP status stands for (no status: nothing answered)."""
    if status is None:
        return UNREACHABLE
    if status == 401:
        return AUTH
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return NOT_FOUND
    if 300 <= status < 400:
        return REDIRECT
    if status >= 500:
        return SERVER
    return OTHER


def _detail(message: str, *, url: str | None = None, status: int | None = None) -> str:
    """The technical detail: the adapter's message, then the address and HTTP status when known."""
    parts = [message]
    if url:
        parts.append(_("Address: %(url)s", url=url))
    if status is not None:
        parts.append(_("HTTP status: %(status)s", status=status))
    return "\n".join(parts)


def omnitron(exc: OmnitronError) -> Explained:
    """An Omnitron client error (steps 1, 3 and the copies of steps 4 to 6)."""
    kind = _OMNITRON_KINDS.get(exc.code, kind_of_status(exc.status) if exc.status else OTHER)
    return Explained(kind, advice(kind), _detail(exc.message, url=exc.url, status=exc.status))


def stock_test(result: ProbeResult, engine: StockEngine | None, url: str = "") -> Explained | None:
    """A stock integration's failed connection test (step 10); None when the test passed."""
    if result.ok:
        return None
    kind = kind_of_status(result.status)
    needs = engine.requires_credentials if engine is not None else True
    token = engine is not None and engine.auth == TOKEN_AUTH
    return Explained(kind, advice(kind, needs_credentials=needs, token=token),
                     _detail(result.message, url=url or None, status=result.status))


def stock_record(message: str, ok: bool | None, engine: StockEngine | None, url: str = "") -> Explained | None:
    """A stored connection test result (the integration keeps only its message): the HTTP status is read back
    from the "(HTTP 401)" the test's message carries; None when the last test passed or there was none."""
    if ok is None or ok:
        return None
    found = _HTTP_STATUS.search(message or "")
    return stock_test(ProbeResult(False, message, int(found.group(1)) if found else None), engine, url)


def geocoding(exc: GeocodingError) -> Explained:
    """A geocoding provider's failure (step 9's key test)."""
    kind = _GEOCODING_KINDS.get(exc.kind, OTHER)
    return Explained(kind, advice(kind), exc.message)
