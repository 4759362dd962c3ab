"""Partial pickup at the counter: the handover dialog's per-line "takes it / refuses it (why)" choices.

The dialog's form posts to the delivery command's route as always; when a line is marked refused, that route
hands the request to deliver_with_refusals() here, which runs portal.packages.partial.hand_over.
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import POSTED_FORM_HOOKS, _command_form_response, _panel_response
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.packages import handover_lines, partial, queries
from portal.packages.models import Package, Transition
from portal.web import is_htmx, plain_int, user_store_ids

HANDOVER_FORM = "packages/_form_handover.html"
# The fields of a refused line: refuse_<order item> (the reason) and refuse_qty_<order item> (units).
REASON_FIELD = "refuse_"
UNITS_FIELD = "refuse_qty_"
# Errors about the refusals are shown beside them, not under the code.
REFUSAL_FIELDS = ("refused", "confirm_full")



@bp.app_context_processor
def refusal_reasons() -> dict:
    """The reasons a customer refuses an item (the handover dialog, the refund form), and the package page's
    handover record (what was refused, where it went)."""
    return {"refusal_reasons": handover_lines.REASONS, "reason_label": handover_lines.reason_label,
            "handover_record": lambda package: handover_lines.handover_record(db.session, package)}


def has_refusals(form: MultiDict) -> bool:
    """Whether the handover form marks any line refused."""
    return any(name.startswith(REASON_FIELD) and not name.startswith(UNITS_FIELD) and value
               for name, value in form.items())


def refusals_from_form(form: MultiDict) -> list[dict]:
    """The refused lines of the handover form, as the API takes them: [{order_item, quantity, reason}]."""
    refused = []
    for name, reason in form.items():
        if not name.startswith(REASON_FIELD) or name.startswith(UNITS_FIELD) or not reason:
            continue
        order_item = plain_int(name[len(REASON_FIELD):])
        if order_item is None:
            continue
        line: dict = {"order_item": order_item, "reason": reason}
        units = form.get(f"{UNITS_FIELD}{order_item}", "").strip()
        if units:
            line["quantity"] = plain_int(units) if plain_int(units) is not None else units
        refused.append(line)
    return refused


def refusals_hook(package: Package, transition: Transition):
    """The delivery command's posted dialog with refused lines goes to deliver_with_refusals; others: None."""
    if transition.command_code != partial.DELIVERY_CODE or not has_refusals(request.form):
        return None
    return deliver_with_refusals(package, transition)


POSTED_FORM_HOOKS.append(refusals_hook)


def deliver_with_refusals(package: Package, transition: Transition):
    """Run the handover with the refused lines of the posted dialog; answer like the delivery command's route."""
    store_ids = user_store_ids()
    try:
        result = partial.hand_over(
            db.session, package.id, code=request.form.get("otp", ""), refused=refusals_from_form(request.form),
            user_id=current_user.id, store_ids=store_ids, visibility=current_user.visibility,
            expected_version=request.form.get("version", type=int),
            confirm_full=request.form.get("confirm_full") == "1")
    except NotFound:
        abort(404)
    except DomainError as exc:
        package = queries.get_package(db.session, package.id, store_ids)
        status = exc.http_status if exc.http_status in (409, 429) else 422  # htmx swaps these (base.html)
        if not is_htmx():
            flash(exc.message, "error")
        if exc.code == "concurrent_change" and is_htmx():
            return _panel_response(package, status=status, error=exc.message, close_modal=True,
                                   toast=(exc.message, "error"))
        if exc.field in REFUSAL_FIELDS:
            return _command_form_response(package, transition, HANDOVER_FORM, status, None, exc.field,
                                          refusal_error=exc.message,
                                          full_refusal=isinstance(exc, partial.FullRefusalUnconfirmed))
        return _command_form_response(package, transition, HANDOVER_FORM, status, exc.message, exc.field,
                                      exc.details)
    if not is_htmx():
        flash(result.message, "success")
        return redirect(url_for("packages.index") if result.delivered else
                        url_for("packages.show", package_id=package.id))
    return _panel_response(result.package, toast=(result.message, "success"), close_modal=True,
                           delivered_to=result.package.customer.full_name if result.delivered else None)
