"""The store floor: the work queue, a package's page, its commands, packing, the handover and the printed paper."""
from flask import Blueprint

bp = Blueprint("packages", __name__)

from portal.blueprints.packages import handover_routes, hold_routes, packing, printing, queue, routes  # noqa: E402,F401
