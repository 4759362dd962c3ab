"""The packages' events: their payloads, the events a transition raises, and package.created.

The command engine and the order import build their events here and record them with
portal.webhooks.events; the dependency points one way (packages -> webhooks), never back.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.outbox import service as outbox
from portal.packages.models import Package, Transition
from portal.packages.states import State, state_info
from portal.webhooks import catalogue, events

READY_FOR_PICKUP_EVENT = catalogue.READY_FOR_CUSTOMER_PICKUP
# Besides package.status.transitioned (every command), reaching these states raises its own event.
STATE_EVENTS: dict[int, str] = {
    State.PACKED: catalogue.PACKAGE_PACKED,
    State.SHIPPED: catalogue.PACKAGE_SHIPPED,
    State.CANCELLED: catalogue.PACKAGE_CANCELLED,
    State.DELIVERED: catalogue.PACKAGE_DELIVERED,
    State.ATTEMPTED_DELIVERY: catalogue.PACKAGE_ATTEMPTED_DELIVERY,
    State.DELIVERY_FAILED: catalogue.PACKAGE_DELIVERY_FAILED,
    State.PACKED_FOR_REFUND: catalogue.PACKAGE_PACKED_FOR_REFUND,
}


def package_payload(package: Package, state: int | None = None) -> dict:
    """The package as events show it, with the state the way the vendor shows it."""
    info = state_info(state if state is not None else package.state)
    return {
        "id": package.id,
        "number": package.number,
        "order_number": package.order_number,
        "status": {"code": info.code, "value": info.slug, "label": info.label},
        "delivery_type": package.delivery_type,
        "delivery_from_store": package.delivery_from_store,
        "stock_location": {"id": package.stock_location_id, "erp_code": package.stock_location.erp_code,
                           "name": package.stock_location.name},
        "customer": {"first_name": package.customer.first_name, "last_name": package.customer.last_name,
                     "phone": package.customer.phone},
    }


def transition_events(package: Package, transition: Transition, from_state: int,
                      to_state: int, details: dict | None = None) -> list[outbox.NewEvent]:
    """package.status.transitioned, and the event of the state reached if it has one; details join both payloads."""
    payload = {**package_payload(package, to_state), **(details or {})}
    previous = state_info(from_state)
    raised = [outbox.NewEvent(catalogue.PACKAGE_TRANSITIONED, {
        **payload,
        "previous_status": {"code": previous.code, "value": previous.slug, "label": previous.label},
        "transition": {"id": transition.id, "slug": transition.slug, "name": transition.name,
                       "command_code": transition.command_code},
    }, package_id=package.id)]
    specific = STATE_EVENTS.get(to_state)
    if specific and to_state != from_state:
        raised.append(outbox.NewEvent(specific, payload, package_id=package.id))
    return raised


def delivered_with_override(package: Package, *, reason: str, note: str, performed_by: int | None,
                            authorised_by: User) -> outbox.NewEvent:
    """package.delivered_with_override: the package handed over without a code, with the reason and both users."""
    payload = package_payload(package, State.DELIVERED)
    payload["override"] = {"reason": reason, "note": note, "performed_by": {"id": performed_by},
                           "authorised_by": {"id": authorised_by.id, "username": authorised_by.username}}
    return outbox.NewEvent(catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE, payload, package_id=package.id)


def package_created(session: Session, package: Package) -> outbox.RecordedEvent | None:
    """Record package.created for a package just added (call before the commit that saves it)."""
    if package.id is None:
        session.flush()
    return events.record_event(session, catalogue.PACKAGE_CREATED, package_payload(package), package_id=package.id)
