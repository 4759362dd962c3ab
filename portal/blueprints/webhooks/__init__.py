"""Webhook subscriptions for brand managers and admins: the list, the form, secrets, the delivery log."""
from flask import Blueprint, abort
from flask_login import current_user

from portal.accounts.models import Role
from portal.extensions import login_manager

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
ROLES = (Role.ADMIN.value, Role.BRAND_MANAGER.value)


@bp.before_request
def managers_only():
    """Only brand managers and admins may see or change webhooks; store staff get 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role not in ROLES:
        abort(403)
    return None


from portal.blueprints.webhooks import routes  # noqa: E402,F401
