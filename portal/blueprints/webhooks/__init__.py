"""Webhook subscriptions for brand managers and admins: the list, the form, secrets, the delivery log."""
from flask import Blueprint, abort, request
from flask_login import current_user

from portal.accounts.models import Role
from portal.extensions import login_manager

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
ROLES = (Role.ADMIN.value, Role.BRAND_MANAGER.value)
RECEIVE_ENDPOINT = "webhooks.inspector_receive"


@bp.before_request
def managers_only():
    """Only brand managers and admins may see or change webhooks; store staff get 403.

    The built-in inspector's receiving endpoint is the exception: deliveries come from the portal's worker,
    with no session (it answers 404 unless the inspector is on).
    """
    if request.endpoint == RECEIVE_ENDPOINT:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role not in ROLES:
        abort(403)
    return None


from portal.blueprints.webhooks import console, routes  # noqa: E402,F401
