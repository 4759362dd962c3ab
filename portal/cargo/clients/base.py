"""What every cargo client is: the protocol, what goes in and out of it, and its one error."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Tracking states every client reports, whatever its cargo company calls them.
CREATED = "created"
IN_TRANSIT = "in_transit"
ATTEMPTED_DELIVERY = "attempted_delivery"
DELIVERED = "delivered"
DELIVERY_FAILED = "delivery_failed"
TRACKING_STATES = (CREATED, IN_TRANSIT, ATTEMPTED_DELIVERY, DELIVERED, DELIVERY_FAILED)
FINAL_STATES = (DELIVERED, DELIVERY_FAILED)


class CargoError(Exception):
    """The cargo company did not do what was asked. `retryable` is False when trying again cannot help."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Address:
    """A sender or a recipient, as a label shows them."""

    name: str
    line: str = ""
    city: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ShipmentRequest:
    """A shipment to create. `key` is ours: asking twice with one key makes one shipment."""

    key: str
    reference: str
    sender: Address
    recipient: Address
    parcels: int = 1


@dataclass(frozen=True)
class CreatedShipment:
    """What the cargo company answered: the tracking number, its state, and the label (PDF bytes)."""

    tracking_number: str
    status: str
    label: bytes
    label_type: str = "application/pdf"


@dataclass(frozen=True)
class TrackingState:
    """Where a shipment is, as the cargo company reports it."""

    tracking_number: str
    status: str
    history: list[dict] = field(default_factory=list)


class CargoClient(Protocol):
    """Creates shipments and reports their tracking states; raises CargoError."""

    def create_shipment(self, request: ShipmentRequest) -> CreatedShipment:
        """Create the shipment for request.key (or return the one made for it already), with its label."""

    def track(self, tracking_numbers: list[str]) -> dict[str, TrackingState]:
        """The states of these shipments, by tracking number (unknown ones are left out)."""
