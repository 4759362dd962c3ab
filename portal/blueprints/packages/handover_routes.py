"""Handover routes: a manager lifting the per-user code limit from a package's page; the customer's QR code
opening the handover with the code filled in."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import (
    MANAGER_ROLES,
    _command_form_response,
    _handover_transition,
    _panel_context,
    _panel_response,
)
from portal.errors import CommandRejected, DomainError, NotFound
from portal.extensions import db
from portal.packages import customer_link, handover, queries
from portal.web import is_htmx, role_required, user_store_ids


@bp.app_template_filter("clock_time")
def clock_time(value: datetime | None, tz_name: str | None = None) -> str:
    """A time of today at the counter, to the second (14:05:09): two codes sent in one minute read differently."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz_name or current_app.config["DISPLAY_TIMEZONE"])).strftime("%H:%M:%S")


@bp.post("/packages/<int:package_id>/code-limit/<int:user_id>/lift")
@login_required
@role_required(*MANAGER_ROLES)
def lift_code_limit(package_id: int, user_id: int):
    """Let a user held by the per-user code limit check codes again, with a reason (managers; audited)."""
    store_ids = user_store_ids()
    try:
        message = handover.lift_code_limit(db.session, package_id, user_id, user_id=current_user.id,
                                           store_ids=store_ids, reason=request.form.get("reason", ""))
        level = "success"
    except NotFound:
        abort(404)
    except DomainError as exc:
        message, level = exc.message, "error"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id))
    package = queries.get_package(db.session, package_id, store_ids)
    return _panel_response(package, toast=(message, level))


@bp.get("/packages/<int:package_id>/handover/qr")
@login_required
def qr_handover(package_id: int):
    """The handover dialog opened by the customer's QR code (token: its content), with the code filled in.

    A QR code of another package or store, a forged one, or one that no longer works (delivered, expired, a new
    code sent) is refused with the reason at the code field; nothing counts as a wrong code. Confirming posts
    the code like a typed one: the command door checks it with the usual limits and writes the audit row.
    """
    store_ids = user_store_ids()
    package = queries.get_package(db.session, package_id, store_ids)
    context = _panel_context(package)
    transition = _handover_transition(context)
    try:
        scanned = customer_link.scan(db.session, request.args.get("token", ""), store_ids, package_id=package.id)
    except CommandRejected as exc:
        if transition is None:
            return _panel_response(package, status=422, error=exc.message, close_modal=True,
                                   toast=(exc.message, "error"))
        template = next(t for tr, t in context["transitions"] if tr.id == transition.id)
        return _command_form_response(package, transition, template, 422, exc.message, "otp")
    if transition is None:  # codes are off: the package page's own delivery button hands it over
        return _panel_response(package, close_modal=True)
    template = next(t for tr, t in context["transitions"] if tr.id == transition.id)
    return _command_form_response(package, transition, template, prefill_code=scanned.code or "")
