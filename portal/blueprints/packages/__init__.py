"""The store floor: the work queue, a package's page, its commands, packing, the handover, the pickup shelf and the
printed paper."""
from flask import Blueprint

bp = Blueprint("packages", __name__)

from portal.blueprints.packages import (  # noqa: E402,F401
    delegate_routes,
    handover_routes,
    hold_routes,
    override_routes,
    packing,
    partial_routes,
    pickup_settings_routes,
    preview,
    printing,
    queue,
    routes,
    shelf_routes,
    shipment_routes,
)
