"""The REST API for integrated software: token auth, JSON in and out, the same domain code as the UI.

Each resource is one module in portal/api/resources/ with its pydantic models and its operations
(portal/api/operations.py); the OpenAPI document is generated from them (portal/api/openapi.py).
"""
from flask import Blueprint, current_app, request

from portal.extensions import limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from portal.api import errors, resources  # noqa: E402,F401
from portal.api.auth import caller, rate_limit_key, unauthorized  # noqa: E402
from portal.api.operations import PUBLIC_ENDPOINTS  # noqa: E402


@bp.before_request
def authenticate():
    """Every route but the public ones (the OpenAPI document) needs a valid token; cookies are ignored."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    current = caller()
    if current.user_id is None:
        return unauthorized(current.problem)
    return None


errors.register(bp)
# One limit for the whole API, per token (per client address without a valid token).
limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT"], scope="api", key_func=rate_limit_key)(bp)
