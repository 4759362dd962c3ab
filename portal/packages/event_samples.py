"""Sample payloads for every event type, built by the same builders the real events use, on a made-up package.

The webhook console shows them and sends them ("Send a sample"). Nothing here touches the database: the
package, its store, customer, transition and manager are transient objects that are never added to a session.
shipment.created has no event of its own yet; its sample is the shipped package with a made-up shipment.
"""
from __future__ import annotations

from decimal import Decimal

from portal.accounts.models import User
from portal.outbox import service as outbox
from portal.packages import events
from portal.packages.models import Customer, Package, Transition
from portal.packages.states import DeliveryType, State
from portal.stores.models import StockLocation
from portal.webhooks import catalogue
from portal.webhooks import events as webhook_events

SAMPLE_UUID = "00000000-0000-4000-8000-000000000000"
# Per state event: the vendor transition that reaches the state in the sample (slug, name, command, from).
_TRANSITIONS: dict[int, tuple[str, str, str, int]] = {
    State.PACKED: ("complete-packaging-without-shipment", "Complete Packaging Without Shipment",
                   "COMPLETE_PACKAGING_WITHOUT_SHIPMENT", State.WAITING),
    State.SHIPPED: ("ship-the-package", "Ship The Package", "SHIP_PACKAGE", State.PACKED),
    State.CANCELLED: ("cancel-the-package", "Cancel The Package", "CANCEL_PACKAGE", State.CANCELLATION_WAITING),
    State.DELIVERED: ("self-service-package-delivery", "Self Service Package Delivery",
                      "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND", State.READY_FOR_CUSTOMER_PICKUP),
    State.ATTEMPTED_DELIVERY: ("update-shipment-status-shipped-to-attempted-delivery",
                               "Update The Package's Shipment Status", "UPDATE_SHIPMENT_STATUS", State.SHIPPED),
    State.DELIVERY_FAILED: ("update-shipment-status-shipped-to-delivery-failed",
                            "Update The Package's Shipment Status", "UPDATE_SHIPMENT_STATUS", State.SHIPPED),
    State.PACKED_FOR_REFUND: ("package-packed-for-refund-at-pickup", "Package Packed for Refund",
                              "PACKAGE_PACKED_FOR_REFUND", State.READY_FOR_CUSTOMER_PICKUP),
}


def sample_store() -> StockLocation:
    """A made-up store in Kadıköy."""
    return StockLocation(id=1, omnitron_id=101, erp_code="SAMPLE-KDK", name="Sample Store Kadıköy", kind="store",
                         city="Istanbul", address="Caferağa Mah. Moda Cad. 1, Kadıköy", timezone="Europe/Istanbul",
                         latitude=Decimal("40.987700"), longitude=Decimal("29.026100"), max_quota=50, quota=12,
                         is_active=True)


def sample_package(state: int = State.WAITING) -> Package:
    """A made-up click & collect package of the sample store."""
    store = sample_store()
    customer = Customer(id=1, first_name="Ayşe", last_name="Yılmaz", phone="+905551112233")
    return Package(id=1, number="SAMPLE-PKG-0001", order_number="SAMPLE-ORD-0001", stock_location_id=store.id,
                   stock_location=store, customer_id=customer.id, customer=customer, state=int(state),
                   delivery_type=DeliveryType.IN_STORE, delivery_from_store=True, item_count=2)


def _transition_events(to_state: int) -> list[outbox.NewEvent]:
    """The events a sample transition into to_state raises (package.status.transitioned first)."""
    slug, name, command, from_state = _TRANSITIONS[to_state]
    transition = Transition(id=1, slug=slug, name=name, command_code=command, source_state=int(from_state),
                            destination_state=int(to_state))
    return events.transition_events(sample_package(from_state), transition, from_state, to_state)


def sample_payload(event_type: str) -> dict:
    """The payload of a sample event of this type (raises KeyError for a type not in the catalogue)."""
    if event_type not in catalogue.EVENT_TYPES:
        raise KeyError(event_type)
    state_events = {kind: state for state, kind in events.STATE_EVENTS.items()}
    if event_type == catalogue.PACKAGE_CREATED:
        return events.package_payload(sample_package())
    if event_type == catalogue.PACKAGE_TRANSITIONED:
        return _transition_events(State.PACKED)[0].payload
    if event_type in state_events:
        return _transition_events(state_events[event_type])[1].payload
    if event_type == catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE:
        manager = User(id=2, username="sample.manager")
        return events.delivered_with_override(sample_package(State.READY_FOR_CUSTOMER_PICKUP),
                                              reason="id_checked", note="Customer showed an ID card.",
                                              performed_by=3, authorised_by=manager).payload
    if event_type == catalogue.READY_FOR_CUSTOMER_PICKUP:
        return events.package_payload(sample_package(State.PACKED), State.READY_FOR_CUSTOMER_PICKUP)
    if event_type == catalogue.STOCK_LOCATION_CREATED:
        return webhook_events.stock_location_payload(sample_store())
    if event_type == catalogue.STOCK_LOCATION_UPDATED:
        return {**webhook_events.stock_location_payload(sample_store()), "changed_fields": ["address", "quota"]}
    if event_type == catalogue.SHIPMENT_CREATED:
        return {**events.package_payload(sample_package(State.SHIPPED)),
                "shipment": {"tracking_number": "SAMPLE-TRK-0001", "cargo_company": "Sample Cargo"}}
    return {"message": "This is a test event from the OMS Portal."}


def sample_envelope(event_type: str) -> dict:
    """The sample as a receiver gets it: the event envelope around the payload."""
    return outbox.envelope(event_type, SAMPLE_UUID, {**sample_payload(event_type), "sample": True},
                           catalogue.VENDOR_NAMES.get(event_type, ""))
