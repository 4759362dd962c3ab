"""Manager override at the counter: hand a package over without the customer's code, after an ID check."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import _command_form_response, _panel_response
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.packages import commands, queries
from portal.packages.models import Transition
from portal.packages.states import State
from portal.web import is_htmx, user_store_ids

DELIVERY_CODE = "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND"
HANDOVER_FORM = "packages/_form_handover.html"


def _delivery_transition(package) -> Transition:
    """The delivery command this user's screens show from the package's state; 404 when there is none."""
    transition = db.session.scalar(
        select(Transition).where(Transition.command_code == DELIVERY_CODE,
                                 Transition.source_state == State.READY_FOR_CUSTOMER_PICKUP,
                                 Transition.is_active.is_(True)).order_by(Transition.position, Transition.id))
    if transition is None or current_user.visibility not in (transition.visibility or []):
        abort(404)
    return transition


def override_params(form) -> dict:
    """The delivery command's override parameter from the dialog's fields."""
    return {"override": {"reason": form.get("override_reason", ""), "note": form.get("override_note", ""),
                         "id_checked": form.get("override_id_checked") == "on",
                         "manager_username": form.get("manager_username", ""),
                         "manager_password": form.get("manager_password", "")}}


@bp.post("/packages/<int:package_id>/override")
@login_required
def deliver_with_override(package_id: int):
    """Hand over without a code: a manager (this user, or one typing their login on the tablet) authorises it."""
    store_ids = user_store_ids()
    package = queries.get_package(db.session, package_id, store_ids)
    transition = _delivery_transition(package)
    try:
        result = commands.run_command(
            db.session, package.id, transition_id=transition.id, params=override_params(request.form),
            user_id=current_user.id, store_ids=store_ids, visibility=current_user.visibility,
            expected_version=request.form.get("version", type=int))
    except NotFound:
        abort(404)
    except DomainError as exc:
        package = queries.get_package(db.session, package_id, store_ids)
        status = exc.http_status if exc.http_status in (409, 429) else 422  # htmx swaps these (base.html)
        if not is_htmx():
            flash(exc.message, "error")
        return _command_form_response(package, transition, HANDOVER_FORM, status, override_error=exc.message,
                                      override_field=exc.field)
    if not is_htmx():
        flash(result.message, "success")
        return redirect(url_for("packages.index"))
    return _panel_response(result.package, toast=(result.message, "success"), close_modal=True,
                           delivered_to=result.package.customer.full_name)
