"""A package's cargo shipment on its page: tracking number and state, the label to view and print, the error and
Retry when the cargo company did not take it."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import _panel_response
from portal.db_types import utcnow
from portal.errors import DomainError, NotFound
from portal.extensions import db, talisman
from portal.packages import queries, shipments
from portal.packages.models import Package
from portal.packages.shipment_models import Shipment
from portal.web import is_htmx, local_time, user_store_ids

# What staff read for each tracking state the cargo company reports.
TRACKING_LABELS = {
    "created": _l("Label made; waiting for the courier"),
    "in_transit": _l("On its way"),
    "attempted_delivery": _l("Delivery attempted; the courier tries again"),
    "delivered": _l("Delivered"),
    "delivery_failed": _l("Delivery failed"),
}


@dataclass(frozen=True)
class ShipmentView:
    """What the shipment card shows."""

    shipment: Shipment | None
    company: str
    working: bool  # pending or being created: the card looks again in a moment
    failed: bool
    can_request: bool  # a cargo package with no shipment that may get one (Retry creates it)
    tracking_label: str


@bp.app_template_global("shipment_view")
def shipment_view(package: Package) -> ShipmentView | None:
    """The shipment card's facts, or None for a package that has and needs no shipment."""
    shipment = shipments.get_shipment(db.session, package.id)
    if shipment is None:
        if package.is_click_and_collect or package.state not in shipments.SHIPPABLE_STATES \
                or shipments.default_company(db.session) is None:
            return None
        return ShipmentView(None, "", working=False, failed=False, can_request=True, tracking_label="")
    working = shipment.status in (Shipment.PENDING, Shipment.CREATING)
    label = TRACKING_LABELS.get(shipment.tracking_status)
    return ShipmentView(shipment, shipment.cargo_company.name if shipment.cargo_company else "", working=working,
                        failed=shipment.status == Shipment.FAILED, can_request=False,
                        tracking_label=str(label) if label else shipment.tracking_status)


@bp.app_template_global("retry_text")
def retry_text(shipment: Shipment) -> str:
    """When a failed shipment is tried again by itself, or that only Retry will."""
    if shipment.next_attempt_at is None:
        return _("It will not be tried again by itself.")
    if shipment.next_attempt_at <= utcnow():
        return _("It is tried again in a moment.")
    return _("Tried again by itself at %(when)s.", when=local_time(shipment.next_attempt_at))


def _shipment_with_label(package_id: int) -> Shipment:
    """The shipment of a package the user may see, with its label; 404 otherwise."""
    try:
        package = queries.get_package(db.session, package_id, user_store_ids())
    except NotFound:
        abort(404)
    shipment = shipments.get_shipment(db.session, package.id)
    if shipment is None or not shipment.label_type or shipment.label is None:
        abort(404)
    return shipment


@bp.get("/packages/<int:package_id>/shipment/label.pdf")
@login_required
@talisman(frame_options="SAMEORIGIN", content_security_policy={"default-src": "'none'", "frame-ancestors": "'self'"})
def shipment_label(package_id: int):
    """The label as the cargo company made it (PDF), shown inline: the browser's viewer prints it too."""
    shipment = _shipment_with_label(package_id)
    return Response(shipment.label, mimetype=shipment.label_type, headers={
        "Content-Disposition": f'inline; filename="label-{shipment.tracking_number}.pdf"',
        "Cache-Control": "private, max-age=300"})


@bp.get("/packages/<int:package_id>/shipment/label")
@login_required
def shipment_label_page(package_id: int):
    """The label on a page of its own, with a Print button (shipment.js prints the framed PDF)."""
    shipment = _shipment_with_label(package_id)
    package = queries.get_package(db.session, package_id, user_store_ids())
    return render_template("packages/shipment_label.html", package=package, shipment=shipment)


@bp.post("/packages/<int:package_id>/shipment/retry")
@login_required
def retry_shipment(package_id: int):
    """Ask the cargo company for the shipment again (or for the first time); the worker does it right after."""
    store_ids = user_store_ids()
    try:
        shipment = shipments.request_shipment(db.session, package_id, user_id=current_user.id, store_ids=store_ids)
    except NotFound:
        abort(404)
    except DomainError as exc:
        if not is_htmx():
            flash(exc.message, "error")
            return redirect(url_for("packages.show", package_id=package_id))
        package = queries.get_package(db.session, package_id, store_ids)
        return _panel_response(package, status=422, error=exc.message)
    if shipment.status == Shipment.CREATED:
        message, level = _("Shipment created, tracking number %(number)s.", number=shipment.tracking_number), "success"
    elif shipment.status == Shipment.FAILED:
        message, level = _("The cargo company did not take the shipment: %(error)s", error=shipment.last_error), "error"
    else:
        message, level = _("The shipment is being created."), "success"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id))
    package = queries.get_package(db.session, package_id, store_ids)
    return _panel_response(package, toast=(message, level))

