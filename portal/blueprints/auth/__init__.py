"""Log in, log out, and the user's profile with API tokens."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from portal.blueprints.auth import routes  # noqa: E402,F401
