"""Admin screens for application settings and the message outbox."""
from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/admin")

from portal.blueprints.settings import routes  # noqa: E402,F401
