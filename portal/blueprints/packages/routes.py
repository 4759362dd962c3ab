"""Routes of the store floor. Each parses the request, calls one domain function and renders."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.blueprints.packages import actions, bp, queue
from portal.blueprints.packages.command_forms import form_template, params_from_form
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db
from portal.otp import service as otp
from portal.outbox import service as outbox
from portal.packages import commands, delegate, handover, override, queries, work_queue
from portal.packages.models import DenialReason, Transition
from portal.packages.states import STATES, State
from portal.settings import service as settings
from portal.stores.models import StockLocation
from portal.web import (
    answer,
    check_int_args,
    htmx_headers,
    htmx_response,
    hx_redirect,
    is_fragment_request,
    is_htmx,
    user_store_ids,
)

# Roles that may lift the per-user code limit for their staff.
MANAGER_ROLES = ("admin", "brand_manager")

# Routes that take over a posted command form when it asks for more than the command (partial_routes: refused
# items at the handover); each answers a response, or None to let the command run as usual.
POSTED_FORM_HOOKS: list = []

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
    """The staff home: the work queue's tabs with live counts, or the filtered list ("All").

    The scan box's Enter (a scanner's or a person's) resolves what was scanned: a package or order number opens
    the package, an item barcode of one open package its packing screen; nothing found says so in the field.
    """
    store_ids = user_store_ids()
    error = scan_error = None
    try:
        check_int_args(request.args, LIST_INT_ARGS)
        filters = queries.PackageFilters.from_args(request.args)
    except ValidationFailed as exc:
        filters, error = queries.PackageFilters(), exc.message
    if filters.stock_location is not None and store_ids is not None and filters.stock_location not in store_ids:
        filters.stock_location, error = None, _("That store is not one of yours.")
    scope = [filters.stock_location] if filters.stock_location is not None else store_ids
    is_scan = htmx_headers().trigger == "package-filters" or (
        not is_htmx() and request.args.get("open") == "1")
    scanned = filters.search if is_scan else ""
    if scanned:
        target, scan_error = queue.scan_target(work_queue.resolve_scan(db.session, scanned, scope))
        if target is not None:
            # A full page load for htmx: the package page needs its own layout, and the handover opens from it.
            return hx_redirect(target)
        if scan_error:
            filters.search = ""
    tab = queue.chosen_tab(request.args, filters)
    limit = current_app.config["PAGE_SIZE"]
    if tab == "all":
        page = queries.list_packages(db.session, filters, scope, limit=limit)
        queue_page = None
    else:
        page = None
        queue_page = work_queue.queue_page(db.session, tab, scope, after=filters.after, limit=limit,
                                           allowance=queue.allowance())
    if store_ids is None:
        # Only the full page shows the store filter; (id, name) rows cost a tenth of 500 loaded entities.
        stores = [] if is_fragment_request() else db.session.execute(
            select(StockLocation.id, StockLocation.name).order_by(StockLocation.name)).all()
    else:
        stores = current_user.stock_locations
    # The tab goes in the list's own URLs unless the filters already imply it (a bare URL is "To pack").
    implied = tab == ("all" if filters.status is not None or filters.delivery_type or filters.search else "pack")
    tab_arg = None if implied and (tab == "all" or filters.after is None) else tab
    parts = ("package_table", "scan_field") if is_scan and is_htmx() else ("package_table",)
    return answer(
        "packages/index.html", *parts, page=page, queue_page=queue_page, tab=tab, tab_arg=tab_arg,
        counts=work_queue.queue_counts(db.session, scope), filters=filters, error=error, stores=stores,
        states=list(STATES.values()), scanned=scanned, scan_error=scan_error, oob=is_htmx(),
        refresh_seconds=current_app.config["LIST_REFRESH_SECONDS"],
    )


def _viewer() -> tuple[str, str]:
    """The user's visibility and role, read once per request: a command's commit expires the user's row, and
    reading it again for the panel drawn afterwards would reload the user and their stores (two statements)."""
    who = getattr(request, "_panel_viewer", None)
    if who is None:
        who = (current_user.visibility, current_user.role)
        request._panel_viewer = who  # type: ignore[attr-defined]  # per request, unlike g in the tests
    return who


def _panel_context(package, error: str | None = None) -> dict:
    """What the package panel shows: actions, SMS state, history."""
    visibility, role = _viewer()
    otp_enabled = settings.is_otp_enabled(db.session)
    transitions = commands.available_transitions(db.session, package, visibility)
    sms = outbox.latest_sms(db.session, package.id)
    pickup = otp.latest_code(db.session, package.id) if package.state == State.READY_FOR_CUSTOMER_PICKUP else None
    pairs = [(t, form_template(t, otp_enabled)) for t in transitions]
    primary_action, more_actions = actions.arrange(pairs)
    return {
        "package": package,
        "transitions": pairs, "primary_action": primary_action, "more_actions": more_actions,
        "held_users": handover.held_users(db.session, package.stock_location_id)
        if role in MANAGER_ROLES else [],
        "history": queries.package_history(db.session, package.id),
        # History rows keep the command's slug; staff read the vendor's command name.
        "command_names": commands.command_names(db.session),
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


def _command_form_response(package, transition, template, status=200, error=None, field=None, details=None,
                           **extra):
    """The command's form: a modal fragment for htmx, a page of its own otherwise (extra: more template context)."""
    context = dict(package=package, transition=transition, form_template=template, error=error,
                   error_field=field, details=details or {},
                   denial_reasons=list(db.session.scalars(
                       select(DenialReason).where(DenialReason.is_active.is_(True))
                       .order_by(DenialReason.priority, DenialReason.title))),
                   pickup=otp.latest_code(db.session, package.id), values=request.form,
                   action_label=actions.wording(transition).label,
                   consequence=actions.wording(transition).consequence,
                   override_reasons=override.REASONS, **extra)
    return answer("packages/command.html", "command_form", code=status, **context)


def _visible_transition(package, slug: str) -> Transition:
    """The command named by slug if this user's screens show it; 404 for unknown or hidden commands.

    A visible command that does not start from the package's current state (the page was stale) is
    returned, so that running it answers with the engine's explanation rather than a bare 404.
    """
    transition = commands.transition_by_slug(db.session, slug)
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
        return hx_redirect(url_for("packages.pack", package_id=package.id, scan=request.args.get("scan") or None))
    template = form_template(transition, settings.is_otp_enabled(db.session))
    if template is None:
        return redirect(url_for("packages.show", package_id=package.id))
    return _command_form_response(package, transition, template)


@bp.post("/packages/<int:package_id>/commands/<slug>")
@login_required
def run_command(package_id: int, slug: str):
    """Run a command from a button or a modal form; answer with the updated panel and a toast."""
    store_ids = user_store_ids()
    _viewer()  # read before the command's commit
    package = queries.get_package(db.session, package_id, store_ids)
    transition = _visible_transition(package, slug)
    template = form_template(transition, settings.is_otp_enabled(db.session))
    for hook in POSTED_FORM_HOOKS:
        if (taken := hook(package, transition)) is not None:
            return taken
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
    delivered_to = None
    if result.to_state == State.DELIVERED and transition.command_code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND":
        delivered_to = delegate.collector_name(db.session, package.id) or result.package.customer.full_name
    if not is_htmx():
        flash(result.message, "success")
        if delivered_to:  # back to the scan box for the next customer
            return redirect(url_for("packages.index"))
        return redirect(url_for("packages.show", package_id=package.id))
    # The commit expired the package: one statement reloads it with its items (lazy loads would take two).
    package = queries.get_package(db.session, package_id, store_ids)
    return _panel_response(package, toast=(result.message, "success"), close_modal=True,
                           delivered_to=delivered_to)


def _panel_response(package, status: int = 200, error: str | None = None, close_modal: bool = False,
                    toast: tuple[str, str] | None = None, delivered_to: str | None = None):
    """The package panel as the answer to an htmx action, retargeted onto the panel."""
    message, level = toast or (None, "success")
    events = {"packages-changed": True, **({"close-modal": True} if close_modal else {})}
    return answer("packages/show.html", "package_panel", code=status, fragment=True, toast=message, level=level,
                  events=events, headers={"HX-Retarget": "#package-panel", "HX-Reswap": "outerHTML"},
                  open_handover=None, delivered_to=delivered_to, **_panel_context(package, error))


def _dialog_response(package, status: int = 200, error: str | None = None, toast: tuple[str, str] | None = None,
                     **extra):
    """The handover dialog re-rendered after a resend from inside it, with the panel behind it updated out of band.

    The dialog stays open and its resend form stays on the page, so htmx fires the answer's toast on an element
    the document still hears (closing the dialog first detached the form and the toast was lost). extra: more
    context for the dialog (the delegate form's error and values).
    """
    transition = next((t for t, template in _panel_context(package)["transitions"]
                       if t.command_code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND" and template), None)
    if transition is None:  # no longer ready for pickup: show the page as it is
        return _panel_response(package, status=status, error=error, close_modal=True, toast=toast)
    message, level = toast or (None, "success")
    template = form_template(transition, settings.is_otp_enabled(db.session))
    context = dict(package=package, transition=transition, form_template=template, error=error, error_field="otp",
                   details={}, denial_reasons=[], pickup=otp.latest_code(db.session, package.id), values={},
                   action_label=actions.wording(transition).label, consequence=None,
                   override_reasons=override.REASONS, **extra)
    body = answer("packages/command.html", "command_form", fragment=True, **context).get_data(as_text=True)
    panel = answer("packages/show.html", "package_panel", fragment=True, oob=True, open_handover=None,
                   delivered_to=None, **_panel_context(package)).get_data(as_text=True)
    return htmx_response(body + panel, status, toast=message, level=level, events={"packages-changed": True})


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
        status = exc.http_status if exc.http_status == 429 else 422
        if request.form.get("in_dialog"):
            return _dialog_response(package, status=status, error=exc.message, toast=(exc.message, "error"))
        return _panel_response(package, status=status, error=exc.message, toast=(exc.message, "error"))
    sms = outbox.latest_sms(db.session, package_id)
    message, level = result.message, "success"
    if sms is not None and sms.status in (sms.FAILED, sms.DEAD):
        message, level = _("SMS not sent. Use Retry to send the new code."), "error"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id))
    if request.form.get("in_dialog"):
        return _dialog_response(result.package, toast=(message, level))
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
