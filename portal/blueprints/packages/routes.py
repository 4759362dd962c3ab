"""Routes of the store floor. Each parses the request, calls one domain function and renders."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.blueprints.packages import bp
from portal.blueprints.packages.command_forms import form_template, params_from_form
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db
from portal.otp import service as otp
from portal.outbox import service as outbox
from portal.packages import commands, queries
from portal.packages.models import DenialReason, Transition
from portal.packages.states import STATES, State
from portal.settings import service as settings
from portal.stores.models import StockLocation
from portal.web import (
    answer,
    check_int_args,
    htmx_headers,
    hx_redirect,
    is_fragment_request,
    is_htmx,
    user_store_ids,
)

# URL arguments of the list that must be plain numbers a row id can have.
LIST_INT_ARGS = ("after", "before", "stock_location")


@bp.get("/")
@login_required
def home():
    """The staff home is the package list."""
    return redirect(url_for("packages.index"))


@bp.get("/packages")
@login_required
def index():
    """The package list: filters in the URL, the table swapped by htmx, a scan plus Enter opens a match."""
    store_ids = user_store_ids()
    error = None
    try:
        check_int_args(request.args, LIST_INT_ARGS)
        filters = queries.PackageFilters.from_args(request.args)
    except ValidationFailed as exc:
        filters, error = queries.PackageFilters(), exc.message
    if filters.stock_location is not None and store_ids is not None and filters.stock_location not in store_ids:
        filters.stock_location, error = None, _("That store is not one of yours.")
    page = queries.list_packages(db.session, filters, store_ids, limit=current_app.config["PAGE_SIZE"])
    opened_by_enter = request.args.get("open") == "1" or (
        htmx_headers().trigger == "package-filters")
    if filters.search and opened_by_enter and len(page.packages) == 1 and page.prev_before is None:
        return _open_package(page.packages[0])
    if store_ids is None:
        # Only the full page shows the store filter; (id, name) rows cost a tenth of 500 loaded entities.
        stores = [] if is_fragment_request() else db.session.execute(
            select(StockLocation.id, StockLocation.name).order_by(StockLocation.name)).all()
    else:
        stores = current_user.stock_locations
    waiting = queries.waiting_count(db.session, store_ids) if store_ids is not None else None
    return answer(
        "packages/index.html", "package_table", page=page, filters=filters, error=error, stores=stores,
        states=list(STATES.values()), waiting=waiting,
        refresh_seconds=current_app.config["LIST_REFRESH_SECONDS"],
    )


def _open_package(package):
    """Go to a package's page; a package ready for pickup opens straight on the handover form."""
    args = {"package_id": package.id}
    if package.state == State.READY_FOR_CUSTOMER_PICKUP:
        args["handover"] = 1
    # A full page load for htmx: the package page needs its own layout, and the handover modal opens from it.
    return hx_redirect(url_for("packages.show", **args))


def _panel_context(package, error: str | None = None) -> dict:
    """What the package panel shows: actions, SMS state, history."""
    otp_enabled = settings.is_otp_enabled(db.session)
    transitions = commands.available_transitions(db.session, package, current_user.visibility)
    sms = outbox.latest_sms(db.session, package.id)
    pickup = otp.latest_code(db.session, package.id) if package.state == State.READY_FOR_CUSTOMER_PICKUP else None
    return {
        "package": package,
        "transitions": [(t, form_template(t, otp_enabled)) for t in transitions],
        "history": queries.package_history(db.session, package.id),
        # History rows keep the command's slug; staff read the vendor's command name.
        "command_names": {slug: name for slug, name in db.session.execute(select(Transition.slug, Transition.name))},
        "sms": sms, "pickup": pickup, "otp_enabled": otp_enabled, "panel_error": error,
    }


def _handover_transition(context) -> Transition | None:
    """The delivery command with a code form, when the package offers it."""
    for transition, template in context["transitions"]:
        if transition.command_code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND" and template:
            return transition
    return None


@bp.get("/packages/<int:package_id>")
@login_required
def show(package_id: int):
    """A package's page: items, customer, history and the commands it offers."""
    package = queries.get_package(db.session, package_id, user_store_ids())
    context = _panel_context(package)
    open_handover = _handover_transition(context) if request.args.get("handover") == "1" else None
    return answer("packages/show.html", "package_panel", open_handover=open_handover, **context)


def _command_form_response(package, transition, template, status=200, error=None, field=None, details=None):
    """The command's form: a modal fragment for htmx, a page of its own otherwise."""
    context = dict(package=package, transition=transition, form_template=template, error=error,
                   error_field=field, details=details or {},
                   denial_reasons=list(db.session.scalars(
                       select(DenialReason).where(DenialReason.is_active.is_(True))
                       .order_by(DenialReason.priority, DenialReason.title))),
                   pickup=otp.latest_code(db.session, package.id), values=request.form)
    return answer("packages/command.html", "command_form", code=status, **context)


def _visible_transition(package, slug: str) -> Transition:
    """The command named by slug if this user's screens show it; 404 for unknown or hidden commands.

    A visible command that does not start from the package's current state (the page was stale) is
    returned, so that running it answers with the engine's explanation rather than a bare 404.
    """
    transition = db.session.scalar(select(Transition).where(Transition.slug == slug))
    if transition is None or current_user.visibility not in (transition.visibility or []):
        abort(404)
    return transition


@bp.get("/packages/<int:package_id>/commands/<slug>")
@login_required
def command_form(package_id: int, slug: str):
    """The form a command asks for (handover code, barcodes, denial reason...)."""
    package = queries.get_package(db.session, package_id, user_store_ids())
    transition = _visible_transition(package, slug)
    if transition.command_code == "COMPLETE_PACKAGING":  # packed on the packing screen, in any order
        return hx_redirect(url_for("packages.pack", package_id=package.id))
    template = form_template(transition, settings.is_otp_enabled(db.session))
    if template is None:
        return redirect(url_for("packages.show", package_id=package.id))
    return _command_form_response(package, transition, template)


@bp.post("/packages/<int:package_id>/commands/<slug>")
@login_required
def run_command(package_id: int, slug: str):
    """Run a command from a button or a modal form; answer with the updated panel and a toast."""
    store_ids = user_store_ids()
    package = queries.get_package(db.session, package_id, store_ids)
    transition = _visible_transition(package, slug)
    template = form_template(transition, settings.is_otp_enabled(db.session))
    version = request.form.get("version", type=int)
    try:
        result = commands.run_command(
            db.session, package.id, transition_id=transition.id, params=params_from_form(transition, request.form),
            user_id=current_user.id, store_ids=store_ids, visibility=current_user.visibility,
            expected_version=version)
    except NotFound:
        abort(404)
    except DomainError as exc:
        package = queries.get_package(db.session, package_id, store_ids)
        status = exc.http_status if exc.http_status in (409, 429) else 422
        if not is_htmx():
            flash(exc.message, "error")
            if template:
                return _command_form_response(package, transition, template, status, exc.message, exc.field,
                                              exc.details)
            return redirect(url_for("packages.show", package_id=package.id))
        if template and exc.code != "concurrent_change":
            return _command_form_response(package, transition, template, status, exc.message, exc.field,
                                          exc.details)
        return _panel_response(package, status=status, error=exc.message, close_modal=True,
                               toast=(exc.message, "error"))
    if not is_htmx():
        flash(result.message, "success")
        return redirect(url_for("packages.show", package_id=package.id))
    return _panel_response(result.package, toast=(result.message, "success"), close_modal=True)


def _panel_response(package, status: int = 200, error: str | None = None, close_modal: bool = False,
                    toast: tuple[str, str] | None = None):
    """The package panel as the answer to an htmx action, retargeted onto the panel."""
    message, level = toast or (None, "success")
    events = {"packages-changed": True, **({"close-modal": True} if close_modal else {})}
    return answer("packages/show.html", "package_panel", code=status, fragment=True, toast=message, level=level,
                  events=events, headers={"HX-Retarget": "#package-panel", "HX-Reswap": "outerHTML"},
                  open_handover=None, **_panel_context(package, error))


@bp.post("/packages/<int:package_id>/pickup-code")
@login_required
def resend_code(package_id: int):
    """Send the customer a new pickup code; the old one stops working."""
    store_ids = user_store_ids()
    try:
        result = commands.resend_pickup_code(db.session, package_id, user_id=current_user.id, store_ids=store_ids)
    except NotFound:
        abort(404)
    except DomainError as exc:
        package = queries.get_package(db.session, package_id, store_ids)
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("packages.show", package_id=package_id))
        return _panel_response(package, status=exc.http_status if exc.http_status == 429 else 422,
                               error=exc.message, toast=(exc.message, "error"))
    sms = outbox.latest_sms(db.session, package_id)
    message, level = result.message, "success"
    if sms is not None and sms.status in (sms.FAILED, sms.DEAD):
        message, level = _("SMS not sent. Use Retry to send the new code."), "error"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id))
    return _panel_response(result.package, toast=(message, level))


@bp.post("/packages/<int:package_id>/sms/<int:message_id>/retry")
@login_required
def retry_sms(package_id: int, message_id: int):
    """Try a failed SMS again."""
    store_ids = user_store_ids()
    package = queries.get_package(db.session, package_id, store_ids)
    sms = outbox.latest_sms(db.session, package.id)
    if sms is None or sms.id != message_id:
        abort(404)
    sms = outbox.retry_sms(db.session, message_id)
    if sms is None:  # deleted since the check above
        abort(404)
    if sms.status == sms.SENT:
        message, level = _("SMS sent."), "success"
    elif sms.status in (sms.PENDING, sms.SENDING):
        message, level = _("The SMS is on its way."), "success"
    else:
        message, level = _("SMS not sent. The provider did not accept it; try again shortly."), "error"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package.id))
    db.session.refresh(package)
    return _panel_response(package, toast=(message, level))
