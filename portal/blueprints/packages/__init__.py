"""The store floor: the package list, a package's page and its commands."""
from flask import Blueprint

bp = Blueprint("packages", __name__)

from portal.blueprints.packages import packing, routes  # noqa: E402,F401
