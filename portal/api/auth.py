"""Token authentication for the API: `Authorization: Token <key>`, and nothing else.

Session cookies never authenticate an API request: the blueprint is exempt from CSRF checks, so a
cookie-authenticated API would let any web page post commands in a logged-in user's name.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import request
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address

from portal.accounts import auth
from portal.api.errors import error_response
from portal.extensions import db
from portal.outage import OUTAGE_ERRORS

SCHEME = "Token"
# Keys are 43 characters; anything far longer is not a key and is not worth hashing.
_MAX_KEY_LENGTH = 256
_ENVIRON_KEY = "portal.api_caller"


@dataclass
class ApiCaller:
    """Who is calling: the user behind a valid token, or why there is none."""

    user_id: int | None
    role: str | None
    store_ids: list[int] | None  # None: every store (admins and brand managers)
    visibility: str | None  # which commands the user's screens offer (INSTORE or OMS_WEB); a token acts with it
    token_digest: str | None
    problem: str | None  # "missing" or "invalid" when user_id is None


def _resolve() -> ApiCaller:
    """Read the Authorization header and look the token up once per request."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        return ApiCaller(None, None, None, None, None, "missing")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != SCHEME.lower() or not key or len(key) > _MAX_KEY_LENGTH:
        return ApiCaller(None, None, None, None, None, "invalid")
    owner = auth.token_owner(db.session, key)
    if owner is None:
        return ApiCaller(None, None, None, None, None, "invalid")
    return ApiCaller(owner.user_id, owner.role, owner.store_ids, owner.visibility,
                     hashlib.sha256(key.encode()).hexdigest(), None)


def caller() -> ApiCaller:
    """The caller of the current request (resolved on first use, then kept for the rest of the request)."""
    # Kept in the WSGI environ, not in g: g belongs to the app context, which may outlive one request.
    found = request.environ.get(_ENVIRON_KEY)
    if found is None:
        found = request.environ[_ENVIRON_KEY] = _resolve()
    return found


def unauthorized(problem: str | None):
    """401 with the challenge that tells clients which scheme to use."""
    if problem == "missing":
        response = error_response(401, _("Authentication credentials were not provided. "
                                         "Send the header Authorization: Token <key>."), "not_authenticated")
    else:
        response = error_response(401, _("Invalid token."), "authentication_failed")
    response.headers["WWW-Authenticate"] = SCHEME
    return response


def rate_limit_key() -> str:
    """Rate-limit bucket: the token for valid tokens; the client address otherwise.

    Invalid tokens share the address's bucket, so inventing tokens does not buy fresh limits.
    """
    try:
        current = caller()
    except OUTAGE_ERRORS:
        # The database is unreachable: count by address, and leave the session clean (the limiter would swallow
        # the error and leave a failed transaction behind); the authentication that follows answers 503.
        db.session.rollback()
        return f"api-ip:{get_remote_address()}"
    if current.token_digest:
        return f"api-token:{current.token_digest[:32]}"
    return f"api-ip:{get_remote_address()}"
