"""Events by their plain names, for people; the vendor's name (or the event type) is the secondary label.

Every event type of the catalogue has a plain name here (a test checks it). The plain names are marked
with N_ and translated where they are shown.
"""
from __future__ import annotations

from flask_babel import gettext as _

from portal.i18n import N_
from portal.webhooks import catalogue

EVENT_NAMES: dict[str, str] = {
    catalogue.PACKAGE_CREATED: N_("Package created"),
    catalogue.PACKAGE_TRANSITIONED: N_("Package changed state"),
    catalogue.PACKAGE_PACKED: N_("Package packed"),
    catalogue.PACKAGE_CANCELLED: N_("Package cancelled"),
    catalogue.PACKAGE_SHIPPED: N_("Package shipped"),
    catalogue.PACKAGE_DELIVERED: N_("Package delivered"),
    catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE: N_("Package handed over without the code (manager override)"),
    catalogue.READY_FOR_CUSTOMER_PICKUP: N_("Ready for customer pickup"),
    catalogue.STOCK_LOCATION_CREATED: N_("Store or warehouse added"),
    catalogue.STOCK_LOCATION_UPDATED: N_("Store or warehouse changed"),
    catalogue.SHIPMENT_CREATED: N_("Shipment created"),
    catalogue.WEBHOOK_TEST: N_("Test event"),
}


def plain_name(event_type: str) -> str:
    """The event's plain name in the user's language ("All events" for the wildcard; else the type itself)."""
    if event_type == catalogue.WILDCARD:
        return _("All events")
    name = EVENT_NAMES.get(event_type)
    return _(name) if name else event_type


def vendor_label(event_type: str) -> str:
    """The secondary label: the vendor's class name where it has one, else the event type as sent."""
    return catalogue.VENDOR_NAMES.get(event_type, event_type)
