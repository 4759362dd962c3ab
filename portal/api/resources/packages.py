"""Packages: the list, one package, and running a command on it (any token; staff see their stores only)."""
from __future__ import annotations

from typing import Any, Literal

from flask import current_app, url_for
from flask_babel import gettext as _
from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body, Query, QueryInt, QueryLimit, RowId, Status, StockLocation, Timestamp
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.packages import commands, queries
from portal.packages.models import Package as PackageRow
from portal.packages.models import Transition as TransitionRow

MAX_LIMIT = 100
MAX_NAME_LENGTH = 200
# Command parameters the domain names bare, reported by their place in the body.
RENAMES = {name: f"input_parameters.{name}" for name in ("otp", "code", "barcodes", "denial_reason",
                                                          "tracking_number", "reason")}


class Customer(Answer):
    """The customer a package is for."""

    first_name: str
    last_name: str
    phone: str


class Package(Answer):
    """A package as the list shows it; the same fields the events carry, plus counts, times and version."""

    id: int
    number: str
    order_number: str
    status: Status
    delivery_type: Literal["in_store", "cargo"]
    delivery_from_store: bool
    stock_location: StockLocation
    customer: Customer
    item_count: int
    created_at: Timestamp | None
    updated_at: Timestamp | None
    hold_until: Timestamp | None = Field(description="Pick up by: when a ready package's hold ends (null "
                                                           "until it is made ready for pickup).")
    version: int = Field(description="Grows by one with every change of state.")

    @classmethod
    def fields_of(cls, package: PackageRow) -> dict:
        """The list's fields of a package."""
        return dict(
            id=package.id, number=package.number, order_number=package.order_number,
            status=Status.of_state(package.state), delivery_type=package.delivery_type,
            delivery_from_store=package.delivery_from_store,
            stock_location=StockLocation(id=package.stock_location_id, erp_code=package.stock_location.erp_code,
                                         name=package.stock_location.name),
            customer=Customer(first_name=package.customer.first_name, last_name=package.customer.last_name,
                              phone=package.customer.phone),
            item_count=package.item_count, created_at=package.created_at, updated_at=package.updated_at,
            hold_until=package.hold_until, version=package.version)

    @classmethod
    def of(cls, package: PackageRow) -> Package:
        """A package row as the list shows it."""
        return cls(**cls.fields_of(package))


class PackageItem(Answer):
    """An order item of a package."""

    order_item: int
    sku: str
    name: str
    barcode: str
    quantity: int


class AvailableTransition(Answer):
    """A command a package offers: enough to run it."""

    id: int
    slug: str
    name: str
    command_code: str
    destination_state: Status | None = Field(description="null: the state the package had before it was blocked.")

    @classmethod
    def of(cls, transition: TransitionRow) -> AvailableTransition:
        """A transition row as a package offers it."""
        return cls(id=transition.id, slug=transition.slug, name=transition.name,
                   command_code=transition.command_code, destination_state=Status.of(transition.destination_state))


class PackageDetail(Package):
    """A package with its items and the commands that start from its state."""

    items: list[PackageItem]
    transitions: list[AvailableTransition] = Field(
        description="Active commands that start from the package's state.")


class PackagePage(Answer):
    """A page of packages, newest first."""

    results: list[Package]
    next: str | None = Field(json_schema_extra={"format": "uri"}, description="Older packages; null on the last page.")
    previous: str | None = Field(json_schema_extra={"format": "uri"},
                                 description="Newer packages; null on the first page.")


class PackageFilter(Query):
    """The package list's filters and cursor."""

    status: str | None = Field(None, max_length=64,
                               description="Status code (550) or value (ready_for_customer_pickup).")
    delivery_type: Literal["in_store", "cargo"] | None = None
    stock_location: QueryInt | None = Field(None, description="Stock location id.")
    search: str | None = Field(None, max_length=200, description="Exact package number or order number.")
    q: str | None = Field(None, max_length=200, description="The same as search.")
    after: QueryInt | None = Field(None, description="Cursor: packages older than this id (from `next`).")
    before: QueryInt | None = Field(None, description="Cursor: packages newer than this id (from `previous`).")
    limit: QueryLimit | None = Field(None, description=f"Page size (default 25; larger values are capped at "
                                                       f"{MAX_LIMIT}).")


@operation("GET", "/oms/packages/", summary="Packages in the caller's stores, newest first.", access=Access.ANY,
           query=PackageFilter, answer=PackagePage, tag="packages",
           description="Keyset pagination: follow `next` and `previous`; every page costs the same.")
def list_packages(query: PackageFilter):
    """A page of packages in the caller's stores, newest first, with links to the neighbouring pages."""
    args = {name: str(value) for name, value in query.model_dump(exclude_none=True).items() if name != "limit"}
    filters = queries.PackageFilters.from_args(args)
    limit = min(query.limit or current_app.config["PAGE_SIZE"], MAX_LIMIT)
    page = queries.list_packages(db.session, filters, caller().store_ids, limit=limit)
    extra: dict[str, Any] = {"limit": limit} if query.limit is not None else {}

    def link(**cursor) -> str:
        """The URL of a neighbouring page with the same filters."""
        return url_for("api.list_packages", _external=True, **filters.query_args(**cursor), **extra)

    return PackagePage(results=[Package.of(p) for p in page.packages],
                       next=link(after=page.next_after) if page.next_after is not None else None,
                       previous=link(before=page.prev_before) if page.prev_before is not None else None)


@operation("GET", "/oms/packages/<int:package_id>/", summary="One package with its items and available commands.",
           access=Access.ANY, answer=PackageDetail, errors=("404",), tag="packages")
def show_package(package_id: int):
    """One package with its items and the commands that start from its state."""
    package = queries.get_package(db.session, package_id, caller().store_ids)
    transitions = commands.available_transitions(db.session, package, None)
    return PackageDetail(**Package.fields_of(package),
                         items=[PackageItem(order_item=i.order_item, sku=i.sku, name=i.name, barcode=i.barcode,
                                            quantity=i.quantity) for i in package.items],
                         transitions=[AvailableTransition.of(t) for t in transitions])


class ItemBarcode(Body):
    """The barcode scanned for an order item."""

    order_item: RowId
    barcode: str = Field(max_length=200)


class OverrideInput(Body):
    """Hand over without the pickup code after checking the customer's ID (manager override)."""

    reason: Literal["lost_sms", "phone_battery", "code_not_received", "other"] = Field(
        description="Why there is no code: lost_sms, phone_battery, code_not_received, or other (then a note).")
    note: str = Field("", max_length=500, description="Free text; required when reason is other.")
    id_checked: bool = Field(description="The customer's ID was checked; must be true.")
    manager_username: str | None = Field(None, max_length=150, description="Store staff: the authorising "
                                                                           "manager's username.")
    manager_password: str | None = Field(None, max_length=200, description="Store staff: the authorising "
                                                                           "manager's password (wrong ones count "
                                                                           "toward a limit).")


class CommandInput(Body):
    """What a command needs; each command reads only its own parameters."""

    package: RowId | None = Field(None, description="When given, must equal package_id.")
    otp: str | None = Field(None, max_length=20, description="The customer's pickup code "
                                                            "(self-service-package-delivery).")
    code: str | None = Field(None, max_length=20, description="The same as otp.")
    barcodes: ItemBarcode | list[ItemBarcode] | None = Field(
        None, description="Complete Packaging: the barcode of every order item.")
    denial_reason: RowId | None = Field(None, description="Refuse with denial reason: its id.")
    tracking_number: str | None = Field(None, max_length=200, description="Ship the package.")
    reason: str | None = Field(None, max_length=2000, description="Block the package.")
    override: OverrideInput | None = Field(
        None, description="Self-service-package-delivery without a code: a manager (admin or brand manager token, "
                          "or a staff token with a manager's username and password) authorises it. Refused when "
                          "the store switched the override off.")


class CommandRequest(Body):
    """Give `transition` or `slug` (or both, naming the same command)."""

    transition: RowId | None = Field(None, description="Transition id.")
    slug: str | None = Field(None, max_length=MAX_NAME_LENGTH,
                             description="Transition slug, e.g. ready-for-customer-pickup.")
    input_parameters: CommandInput | None = None


@operation("POST", "/oms/packages/<int:package_id>/command/", summary="Run a command on a package.",
           access=Access.ANY, body=CommandRequest, errors=("403", "404", "409", "422"), status=204, tag="packages",
           renames=RENAMES,
           is_idempotent=True,
           example={"slug": "complete-packaging-from-waiting",
                    "input_parameters": {"package": 12, "barcodes": {"order_item": 12, "barcode": "868000956286"}}},
           description="The command is named by transition id or slug. Running it from a state it does not "
                       "start from is a validation error (400). A token acts with its user's visibility: a store "
                       "staff token runs the commands the store screens offer (INSTORE), and refuses the OMS WEB-only "
                       "ones (unblock, cancel, reschedule, shipment status updates) as the screens do; integrations "
                       "that need those use a token of an admin or brand manager.")
def run_command(package_id: int, body: CommandRequest):
    """Run a command on a package, named by transition id or slug; 204 when it ran."""
    params = body.input_parameters.model_dump(mode="json", exclude_unset=True) if body.input_parameters else {}
    if params.get("package") is not None and params["package"] != package_id:
        raise ValidationFailed(_("input_parameters.package does not match the package in the URL."),
                               field="input_parameters.package")
    current = caller()
    commands.run_command(db.session, package_id, transition_id=body.transition, slug=body.slug or None,
                         params=params, user_id=current.user_id, store_ids=current.store_ids,
                         visibility=current.visibility)

