"""The 15-step OMS setup wizard (admins only). Each step's routes live in a module of their own."""
from flask import Blueprint
from flask_login import current_user

bp = Blueprint("setup", __name__, url_prefix="/setup")


@bp.before_request
def admins_only():
    """Only admins may use the wizard."""
    from flask import abort, current_app

    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)


from portal.blueprints.setup import routes, routes_admin, routes_catalog, routes_settings, routes_sync  # noqa: E402,F401
from portal.blueprints.setup import routes_events  # noqa: E402,F401
from portal.blueprints.setup import routes_orders  # noqa: E402,F401
