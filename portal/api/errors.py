"""The API's one error shape, {"detail", "code", "field"?, ...details}, for domain and HTTP errors alike."""
from __future__ import annotations

import logging
import re

from flask import Response, jsonify, request
from flask_babel import gettext as _
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, default_exceptions

from portal.errors import DomainError
from portal.extensions import db

log = logging.getLogger(__name__)

# Keys of the error body that details may not overwrite.
_RESERVED = ("detail", "code", "field")


def error_response(status: int, detail: str, code: str, field: str | None = None,
                   details: dict | None = None) -> Response:
    """A JSON error response in the API's shape; details are merged in as extra keys."""
    body = {"detail": detail, "code": code}
    if field:
        body["field"] = field
    for key, value in (details or {}).items():
        if key not in _RESERVED:
            body[key] = value
    response = jsonify(body)
    response.status_code = status
    return response


def domain_error_response(error: DomainError) -> Response:
    """The JSON answer to a domain error, with the error's own status and code."""
    return error_response(error.http_status, error.message, error.code, error.field, error.details)


def _http_code(error: HTTPException) -> str:
    """A snake_case code for an HTTP error ("Method Not Allowed" -> "method_not_allowed")."""
    if error.code == 429:
        return "rate_limited"  # the same code the domain's RateLimited uses
    return re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")


def http_error_response(error: HTTPException) -> Response:
    """The JSON answer to an HTTP error raised while serving an API route (keeps its headers)."""
    detail = error.description or error.name
    if error.code == 429:
        detail = _("Too many requests (%(limit)s). Please wait a moment and try again.", limit=detail)
    response = error_response(error.code or 500, detail, _http_code(error))
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def number_too_large_response(error: Exception) -> Response:
    """A value the database cannot hold reached a query (a forged huge id, say): the request's fault, a 400."""
    db.session.rollback()
    log.warning("refused %s %s: %s", request.method, request.path, error)
    return error_response(400, _("A value in the request is too large."), "validation_error")


def register(bp) -> None:
    """Answer every error on the blueprint's routes in JSON.

    Handlers are registered per status code because Flask prefers a handler registered for the
    code (web.py's app-wide pages) over one registered for the HTTPException class.
    """
    bp.register_error_handler(DomainError, domain_error_response)
    bp.register_error_handler(OverflowError, number_too_large_response)
    bp.register_error_handler(DataError, number_too_large_response)
    for code in default_exceptions:
        bp.register_error_handler(code, http_error_response)
