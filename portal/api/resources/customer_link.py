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
from portal.api.schemas import Answer, Body, Timestamp
from portal.errors import NotFound
from portal.extensions import db
from portal.packages import customer_link, pickup_settings


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
