"""The events a brand manager can subscribe to, with what each one means."""
from __future__ import annotations

from flask_babel import gettext as _

from portal.errors import ValidationFailed
from portal.i18n import N_

WILDCARD = "*"

PACKAGE_CREATED = "package.created"
PACKAGE_TRANSITIONED = "package.status.transitioned"
PACKAGE_PACKED = "package.status.packed"
PACKAGE_CANCELLED = "package.status.cancelled"
PACKAGE_SHIPPED = "package.status.shipped"
PACKAGE_DELIVERED = "package.status.delivered"
PACKAGE_ATTEMPTED_DELIVERY = "package.status.attempted_delivery"
PACKAGE_DELIVERY_FAILED = "package.status.delivery_failed"
PACKAGE_DELIVERED_WITH_OVERRIDE = "package.delivered_with_override"
PACKAGE_PACKED_FOR_REFUND = "package.status.packed_for_refund"
READY_FOR_CUSTOMER_PICKUP = "package.ready_for_customer_pickup"
PACKAGE_DELEGATE_CHANGED = "package.delegate_changed"
STOCK_LOCATION_CREATED = "stock_location.created"
STOCK_LOCATION_UPDATED = "stock_location.updated"
SHIPMENT_CREATED = "shipment.created"
WEBHOOK_TEST = "webhook.test"

# type -> description shown to brand managers (in catalogue order); marked with N_, translated where shown.
EVENT_TYPES: dict[str, str] = {
    PACKAGE_CREATED: N_("A package was created in the OMS."),
    PACKAGE_TRANSITIONED: N_("A package changed state (sent for every command, with the old and new state)."),
    PACKAGE_PACKED: N_("A package was packed (Packed All Items)."),
    PACKAGE_CANCELLED: N_("A package was cancelled."),
    PACKAGE_SHIPPED: N_("A package was handed to the cargo company."),
    PACKAGE_DELIVERED: N_("A package was delivered to the customer; after a handover where the customer refused "
                          "items, it carries handover.lines (delivered and refused units per line)."),
    PACKAGE_ATTEMPTED_DELIVERY: N_("The cargo company tried to deliver a package and could not (Attempted "
                                   "Delivery); it tries again."),
    PACKAGE_DELIVERY_FAILED: N_("The cargo company gave up delivering a package (Delivery Failed)."),
    PACKAGE_PACKED_FOR_REFUND: N_("A package went to Packed for Refund; items refused at the handover carry "
                                  "refund.lines and, for a package split off, refund.split_from."),
    PACKAGE_DELIVERED_WITH_OVERRIDE: N_("A package was handed over without the pickup code, after a manager checked "
                                        "the customer's ID (manager override); carries the reason and both users."),
    READY_FOR_CUSTOMER_PICKUP: N_("A click & collect package is ready for pickup "
                                  "(PackageReadyForCustomerPickupWhispererEvent); carries the pickup code "
                                  "only when PICKUP_CODE_DELIVERY is extension_app."),
    PACKAGE_DELEGATE_CHANGED: N_("Someone else was named to collect a package ready for pickup, replaced or "
                                 "removed (delegate collector); carries the delegate's pickup code only when "
                                 "PICKUP_CODE_DELIVERY is extension_app."),
    STOCK_LOCATION_CREATED: N_("A stock location (store or warehouse) was added."),
    STOCK_LOCATION_UPDATED: N_("A stock location's details changed."),
    SHIPMENT_CREATED: N_("A shipment was created for a package."),
    WEBHOOK_TEST: N_("A test event sent by \"Send test event\"; carries no business data."),
}

# The vendor's class names for events that have one; sent as event.name in the envelope.
VENDOR_NAMES: dict[str, str] = {
    READY_FOR_CUSTOMER_PICKUP: "PackageReadyForCustomerPickupWhispererEvent",
}


# type -> plain name, the one place every screen takes an event's name from (the wizard's step 12, the
# webhook pages, settings); marked with N_, translated by plain_name(). The type (or the vendor's class name)
# is shown beside it as a secondary label: vendor_label().
PLAIN_NAMES: dict[str, str] = {
    PACKAGE_CREATED: N_("Package created"),
    PACKAGE_TRANSITIONED: N_("Package changed state"),
    PACKAGE_PACKED: N_("Package packed"),
    PACKAGE_CANCELLED: N_("Package cancelled"),
    PACKAGE_SHIPPED: N_("Package shipped"),
    PACKAGE_DELIVERED: N_("Package delivered"),
    PACKAGE_ATTEMPTED_DELIVERY: N_("Delivery attempted"),
    PACKAGE_DELIVERY_FAILED: N_("Delivery failed"),
    PACKAGE_PACKED_FOR_REFUND: N_("Package packed for refund"),
    PACKAGE_DELEGATE_CHANGED: N_("Someone else collects a package"),
    PACKAGE_DELIVERED_WITH_OVERRIDE: N_("Package handed over without a code"),
    READY_FOR_CUSTOMER_PICKUP: N_("Package ready for pickup"),
    STOCK_LOCATION_CREATED: N_("Store or warehouse added"),
    STOCK_LOCATION_UPDATED: N_("Store or warehouse changed"),
    SHIPMENT_CREATED: N_("Shipment created"),
    WEBHOOK_TEST: N_("Test event"),
    WILDCARD: N_("All events"),
}


def plain_name(event_type: str) -> str:
    """An event's plain name in the request's language ("Package ready for pickup"); an unknown type as it is."""
    name = PLAIN_NAMES.get(event_type)
    return _(name) if name else event_type


def vendor_label(event_type: str) -> str:
    """The technical name shown beside the plain one: the vendor's class name where it has one, else the type."""
    return VENDOR_NAMES.get(event_type, event_type)


def choices() -> list[tuple[str, str]]:
    """(value, label) pairs for a form: the wildcard first, then every event type."""
    return [(WILDCARD, _("* (every event)"))] + [(t, t) for t in EVENT_TYPES]


def is_known(event_type: str) -> bool:
    """True for the wildcard and every catalogued event type."""
    return event_type == WILDCARD or event_type in EVENT_TYPES


def validate_wanted_events(key: str, value: object) -> list[str]:
    """WANTED_EVENTS (setup step 12): a list of catalogue event types, stored in catalogue order.

    Registered with the settings service at start-up (portal/wiring.py): the settings know no catalogue.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(_("WANTED_EVENTS must be a list of event types."), field="events")
    unknown = [v for v in value if v not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(_("Unknown event type %(event)r: choose events from the list.", event=unknown[0]),
                               field="events")
    return [t for t in EVENT_TYPES if t in set(value)]
