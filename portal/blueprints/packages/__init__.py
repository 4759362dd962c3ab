"""The store floor: the work queue, a package's page, its commands, packing, the handover and the printed paper."""
from flask import Blueprint

bp = Blueprint("packages", __name__)

from portal.blueprints.packages import (  # noqa: E402,F401
    handover_routes,
    packing,
    printing,
    queue,
    routes,
    shelf_routes,
)
