"""The REST API for integrated software: token auth, JSON in and out, the same domain code as the UI."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from portal.api import routes, setup_routes  # noqa: E402,F401
