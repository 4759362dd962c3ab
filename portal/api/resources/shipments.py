"""A package's cargo shipment: read it, fetch its label, ask for it again (any token; staff in their stores only)."""
from __future__ import annotations

from flask import Response
from flask_babel import gettext as _
from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Timestamp
from portal.errors import NotFound
from portal.extensions import db
from portal.packages import queries, shipments
from portal.packages.shipment_models import Shipment as ShipmentRow


class ShipmentCargoCompany(Answer):
    """The cargo company that carries the shipment."""

    id: int
    erp_code: str
    name: str


class Shipment(Answer):
    """A package's shipment with its cargo company."""

    id: int
    package: int
    status: str = Field(description="pending (waiting for a worker), creating, created, or failed (see last_error; "
                                    "next_attempt_at is when it is tried again, empty when only a retry helps).",
                        examples=["created"])
    tracking_number: str = Field(description="Empty until the cargo company has made the shipment.")
    tracking_status: str = Field(description="What the cargo company last reported: created, in_transit, "
                                             "attempted_delivery, delivered or delivery_failed.")
    cargo_company: ShipmentCargoCompany | None
    has_label: bool
    attempts: int
    last_error: str
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    tracked_at: Timestamp | None


def _answer(shipment: ShipmentRow) -> Shipment:
    """The shipment in the API's shape."""
    company = shipment.cargo_company
    return Shipment(
        id=shipment.id, package=shipment.package_id, status=shipment.status, tracking_number=shipment.tracking_number,
        tracking_status=shipment.tracking_status,
        cargo_company=ShipmentCargoCompany(id=company.id, erp_code=company.erp_code, name=company.name)
        if company else None,
        has_label=bool(shipment.label_type), attempts=shipment.attempts, last_error=shipment.last_error,
        next_attempt_at=shipment.next_attempt_at, created_at=shipment.created_at, tracked_at=shipment.tracked_at)


def _shipment_of(package_id: int) -> ShipmentRow:
    """The shipment of a package the caller may see; raises NotFound."""
    package = queries.get_package(db.session, package_id, caller().store_ids)
    shipment = shipments.get_shipment(db.session, package.id)
    if shipment is None:
        raise NotFound(_("Package %(number)s has no shipment.", number=package.number))
    return shipment


@operation("GET", "/oms/packages/<int:package_id>/shipment/", answer=Shipment, access=Access.ANY,
           errors=("404",), tag="packages", summary="The package's cargo shipment.")
def read_shipment(package_id: int):
    """The package's shipment: its status, tracking number and state, and the last error when it failed."""
    return _answer(_shipment_of(package_id))


@operation("GET", "/oms/packages/<int:package_id>/shipment/label/", access=Access.ANY, errors=("404",),
           tag="packages", summary="The shipment's label (a PDF).",
           description="The label the cargo company made, as application/pdf; 404 until the shipment is created.")
def shipment_label(package_id: int):
    """The label as the cargo company gave it."""
    shipment = _shipment_of(package_id)
    if not shipment.label_type or shipment.label is None:
        raise NotFound(_("The shipment has no label yet."))
    return Response(shipment.label, mimetype=shipment.label_type, headers={
        "Content-Disposition": f'inline; filename="label-{shipment.tracking_number}.pdf"'})


@operation("POST", "/oms/packages/<int:package_id>/shipment/retry/", answer=Shipment, access=Access.ANY,
           errors=("400", "404", "409"), tag="packages", is_idempotent=True,
           summary="Ask the cargo company for the shipment again.",
           description="For a failed shipment (or a packed cargo package that has none): the shipment is made by a "
                       "worker right after; read it again for the outcome. 400 when it was created already or "
                       "the package needs none.")
def retry_shipment(package_id: int):
    """Try the package's shipment again."""
    current = caller()
    shipment = shipments.request_shipment(db.session, package_id, user_id=current.user_id,
                                          store_ids=current.store_ids)
    return _answer(shipment)
