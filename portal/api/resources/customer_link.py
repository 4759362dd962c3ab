"""The QR handover's customer page for integrators, and the stores' opening hours it shows.

The link in the ready-for-pickup SMS carries the pickup code sealed (portal/packages/customer_link.py); the
portal keeps codes only as hashes, so a link exists only where the code was sent: in the SMS, or, in Extension
application mode, in the event's secret part (customer_link). With such a link's token an integrator's app can
read what the customer page shows and draw the QR code itself.
"""
from __future__ import annotations

from flask_babel import gettext as _
from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.resources.delegate import Delegate, NewDelegate
from portal.api.schemas import Answer, Body, Timestamp
from portal.errors import NotFound
from portal.extensions import db
from portal.packages import customer_link, delegate, pickup_settings
from portal.packages.delegate_models import PackageDelegate


class CustomerPage(Answer):
    """What the customer page of a link shows, and nothing more."""

    code: str | None = Field(description="The pickup code (None when pickup codes are off).")
    qr_content: str = Field(description="What the QR code holds: the staff's scanner types it into the scan box.")
    store_name: str
    address: str
    opening_hours: list[str]
    pick_up_by: str = Field(description="The pick-up-by date as the customer reads it (store time zone, locale).")
    hold_until: Timestamp | None


@operation("GET", "/oms/customer-links/<token>/", answer=CustomerPage, tag="packages", access=Access.ANY,
           errors=("404",), summary="What the customer page of a link shows (the token from the link's path).",
           description="404 for a forged or tampered token, and for one that no longer works: the package was "
                       "delivered or left Ready for Customer Pickup, its hold ended, or a new code was sent. "
                       "Store staff only for their stores.")
def read_customer_link(token: str):
    """The customer page of a token, as JSON."""
    store_ids = caller().store_ids
    try:
        view = customer_link.customer_view(db.session, token)
    except customer_link.LinkInvalid:
        view = None
    if view is None or (store_ids is not None and view.store_id not in store_ids):
        raise NotFound(_("This link is not valid any more."))
    return CustomerPage(code=view.code, qr_content=view.qr_content, store_name=view.store_name,
                        address=view.address, opening_hours=view.opening_hours, pick_up_by=view.pick_up_by,
                        hold_until=view.hold_until)


class LinkCollector(Answer):
    """Who collects the order of a customer's link: the customer, and the delegate they named (masked)."""

    delegate: Delegate | None = Field(description="null: only the customer, with the link's code.")


def _customer_view(token: str) -> customer_link.CustomerView:
    """The customer's own page of a token the caller may see; NotFound for an invalid link and a delegate's."""
    store_ids = caller().store_ids
    try:
        view = customer_link.customer_view(db.session, token)
    except customer_link.LinkInvalid:
        view = None
    if view is None or view.for_delegate or (store_ids is not None and view.store_id not in store_ids):
        raise NotFound(_("This link is not valid any more."))
    return view


def _collector(token: str) -> LinkCollector:
    """The answer after a change: who collects now."""
    view = _customer_view(token)
    return LinkCollector(delegate=Delegate.of(view.delegate) if view.delegate is not None else None)


@operation("PUT", "/oms/customer-links/<token>/delegate/", body=NewDelegate, answer=LinkCollector, tag="packages",
           access=Access.ANY, errors=("404", "409"), is_idempotent=True,
           example={"name": "Deniz Yılmaz", "phone": "+90 532 123 45 67"},
           summary="Name (or replace) who collects, as the customer does on their page (the token from the link).",
           description="For an integrator's app showing the customer page. The delegate is texted a code and a "
                       "link of their own; the customer's code keeps working; no notice goes to the customer (it "
                       "is their own link). 404 for a link that no longer works and for the delegate's own link. "
                       "Store staff only for their stores. Limited like resending a code (429).")
def put_link_delegate(token: str, body: NewDelegate):
    """Name the delegate from the customer's link."""
    view = _customer_view(token)
    delegate.name_delegate(db.session, view.package_id, name=body.name, phone=body.phone,
                           user_id=caller().user_id, store_ids=None, source=PackageDelegate.CUSTOMER)
    return _collector(token)


@operation("DELETE", "/oms/customer-links/<token>/delegate/", status=204, tag="packages", access=Access.ANY,
           errors=("404",), summary="Take back the delegate named from the customer's link: their code and link "
                                    "stop working.")
def delete_link_delegate(token: str):
    """Remove the delegate from the customer's link; 204 even when none was named."""
    view = _customer_view(token)
    delegate.remove_delegate(db.session, view.package_id, user_id=caller().user_id, store_ids=None,
                             source=PackageDelegate.CUSTOMER)


class OpeningHours(Answer):
    """A store's opening hours as its customer page shows them."""

    stock_location: int
    opening_hours: list[str] = Field(description="One line per row, e.g. \"Mon-Sat 10:00-22:00\".")


class NewOpeningHours(Body):
    """A store's new opening hours (an empty list hides them)."""

    opening_hours: list[str] = Field(max_length=customer_link.MAX_HOURS_LINES)


@operation("GET", "/oms/stock-locations/<int:store_id>/opening-hours/", answer=OpeningHours, tag="packages",
           access=Access.MANAGERS, errors=("404",), summary="A store's opening hours, shown on the customer page.")
def get_opening_hours(store_id: int):
    """The store's opening hours."""
    return OpeningHours(stock_location=store_id, opening_hours=customer_link.opening_hours(db.session, store_id))


@operation("PUT", "/oms/stock-locations/<int:store_id>/opening-hours/", body=NewOpeningHours, answer=OpeningHours,
           tag="packages", access=Access.MANAGERS, errors=("404", "422"),
           summary="Set a store's opening hours (brand managers and admins).",
           example={"opening_hours": ["Mon-Sat 10:00-22:00", "Sun 12:00-20:00"]})
def set_opening_hours(store_id: int, body: NewOpeningHours):
    """Replace the store's opening hours."""
    current, _changed = pickup_settings.save(db.session, store_id, user_id=caller().user_id,
                                             opening_hours=body.opening_hours)
    return OpeningHours(stock_location=store_id, opening_hours=current.opening_hours)
