"""The REST API for integrated software: token auth, JSON in and out, the same domain code as the UI."""
from flask import Blueprint, current_app

from portal.extensions import limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from portal.api import admin_routes, errors, routes, setup_routes, webhook_routes  # noqa: E402,F401
from portal.api.auth import rate_limit_key  # noqa: E402

errors.register(bp)
# One limit for the whole API, per token (per client address without a valid token).
limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT"], scope="api", key_func=rate_limit_key)(bp)
