"""The 15-step OMS setup wizard (admins only). Each step's routes live in a module of their own
(step_NN_<key>.py, in the order of portal/setup/steps.py); shared_*.py hold what several steps share."""
from flask import Blueprint, abort
from flask_login import current_user

from portal.extensions import db, login_manager
from portal.setup import service as wizard
from portal.setup.steps import STEPS

bp = Blueprint("setup", __name__, url_prefix="/setup")


@bp.before_request
def admins_only():
    """Only admins may use the wizard."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)


@bp.context_processor
def wizard_guide() -> dict:
    """Every wizard page can ask for the step to do next (read when a template asks) and the number of steps."""

    def wizard_next() -> wizard.StepStatus | None:
        """The step to do next, as the wizard home shows it."""
        return wizard.next_step(wizard.statuses(db.session))

    return {"wizard_next": wizard_next, "step_count": len(STEPS)}


from portal.blueprints.setup import (  # noqa: E402,F401
    home,
    shared_sync,
    step_01_machine,
    step_02_users,
    step_03_application,
    step_04_addresses,
    step_05_stock_locations,
    step_06_channels,
    step_07_omnitron_credentials,
    step_08_order_filtering,
    step_09_geolocation,
    step_10_stock_integration,
    step_11_scenarios,
    step_12_events,
    step_13_package_commands,
    step_14_cargo_companies,
    step_15_jobs,
)
