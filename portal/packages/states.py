"""The package state catalogue: vendor status codes, names and the colour category of each chip.

Codes 100, 200, 400, 500, 920 and 1100 are the vendor's; the others are ours, ordered along the
lifecycle so that "status below 400" (quota rules) keeps meaning "not packed yet".
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from portal.i18n import N_


class State(IntEnum):
    """Package status codes."""

    WAITING = 100
    WAITING_REMOTE_ACTION = 110
    PREPARING = 200
    WAITING_FOR_TRANSFER = 300
    READY_FOR_PACKAGING = 400
    PACKED = 500
    READY_FOR_CUSTOMER_PICKUP = 550
    SHIPPED = 600
    ATTEMPTED_DELIVERY = 650
    DELIVERY_FAILED = 700
    DELIVERED = 800
    OUT_OF_STOCK = 920
    BLOCKED = 930
    NEEDS_RESCHEDULING = 940
    CANCELLATION_WAITING = 950
    CANCELLED = 960
    PACKED_FOR_REFUND = 1100


@dataclass(frozen=True)
class StateInfo:
    """How a state is named and shown. `label` is the English name (API payloads carry it as is); screens show
    it translated, `_(info.label)`: the labels are marked with N_ for the catalogue."""

    code: int
    slug: str
    label: str
    category: str  # waiting | working | ready | done | problem
    is_final: bool = False
    tone: str = "neutral"  # what the chip's colour means to staff: one of TONES


# What a chip's colour tells the staff, one meaning per colour (portal.css has a token set for each):
# todo: the store has work to do; waiting: the store waits for someone else (the customer, a carrier, a
# transfer, a decision); done: finished as hoped; problem: needs a person; neutral: ended without a result.
TONES = ("todo", "waiting", "done", "problem", "neutral")


_INFO = [
    StateInfo(State.WAITING, "waiting", N_("Waiting"), "waiting", tone="todo"),
    StateInfo(State.WAITING_REMOTE_ACTION, "waiting_remote_action", N_("Waiting Remote Action"), "waiting", tone="waiting"),
    StateInfo(State.PREPARING, "preparing", N_("Preparing"), "working", tone="todo"),
    StateInfo(State.WAITING_FOR_TRANSFER, "waiting_for_transfer", N_("Waiting for Transfer"), "waiting", tone="waiting"),
    StateInfo(State.READY_FOR_PACKAGING, "ready_for_packaging", N_("Ready for Packaging"), "working", tone="todo"),
    StateInfo(State.PACKED, "packed", N_("Packed All Items"), "working", tone="todo"),
    StateInfo(State.READY_FOR_CUSTOMER_PICKUP, "ready_for_customer_pickup", N_("Ready for Customer Pickup"), "ready",
              tone="waiting"),
    StateInfo(State.SHIPPED, "shipped", N_("Shipped"), "ready", tone="waiting"),
    StateInfo(State.ATTEMPTED_DELIVERY, "attempted_delivery", N_("Attempted Delivery"), "problem", tone="problem"),
    StateInfo(State.DELIVERY_FAILED, "delivery_failed", N_("Delivery Failed"), "problem", tone="problem"),
    StateInfo(State.DELIVERED, "delivered", N_("Delivered"), "done", is_final=True, tone="done"),
    StateInfo(State.OUT_OF_STOCK, "out_of_stock", N_("Out of Stock"), "problem", tone="problem"),
    StateInfo(State.BLOCKED, "blocked", N_("Blocked"), "problem", tone="problem"),
    StateInfo(State.NEEDS_RESCHEDULING, "needs_rescheduling", N_("Needs Rescheduling"), "problem", tone="problem"),
    StateInfo(State.CANCELLATION_WAITING, "cancellation_waiting", N_("Cancellation Waiting"), "problem", tone="waiting"),
    StateInfo(State.CANCELLED, "cancelled", N_("Cancelled"), "done", is_final=True, tone="neutral"),
    StateInfo(State.PACKED_FOR_REFUND, "packed_for_refund", N_("Packed for Refund"), "done", is_final=True, tone="neutral"),
]
STATES: dict[int, StateInfo] = {info.code: info for info in _INFO}
# The states whose next step is packing in the store: the pick list and the "To pack" work.
TO_PACK = (State.WAITING, State.PREPARING, State.READY_FOR_PACKAGING)
BY_SLUG: dict[str, StateInfo] = {info.slug: info for info in _INFO}


def state_info(code: int | None) -> StateInfo:
    """Return the catalogue entry for a status code; unknown codes get a neutral entry."""
    if code is not None and code in STATES:
        return STATES[code]
    return StateInfo(code or 0, f"unknown_{code}", f"Unknown ({code})", "problem", tone="problem")


def parse_state(value: object) -> int | None:
    """Accept a status code or slug and return the code, or None when it is not a known state."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.isdigit():
        code = int(text)
        return code if code in STATES else None
    info = BY_SLUG.get(text.lower())
    return info.code if info else None


class DeliveryType:
    """Delivery types of a package."""

    IN_STORE = "in_store"
    CARGO = "cargo"
    ALL = (IN_STORE, CARGO)
    LABELS = {IN_STORE: N_("In store"), CARGO: N_("Cargo")}


class Visibility:
    """Where a command's button is shown: the OMS web back office or the Instore tablet app."""

    OMS_WEB = "OMS_WEB"
    INSTORE = "INSTORE"
    ALL = (OMS_WEB, INSTORE)
    LABELS = {OMS_WEB: N_("OMS WEB"), INSTORE: N_("INSTORE")}
