"""Pickup shelf slots of a store: list, create and change slots (managers), the shelf view, and putting a ready
package on a slot, moving it or taking it off (any token of the package's store)."""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body, RowId, Timestamp
from portal.extensions import db
from portal.packages import pickup_settings, shelf
from portal.packages.shelf_models import ShelfAssignment, ShelfSlot


class Slot(Answer):
    """A shelf slot."""

    id: int
    store: int = Field(description="The stock location's id.")
    label: str
    barcode: str
    is_active: bool

    @classmethod
    def of(cls, slot: ShelfSlot) -> Slot:
        """The answer for a slot."""
        return cls(id=slot.id, store=slot.stock_location_id, label=slot.label, barcode=slot.barcode,
                   is_active=slot.is_active)


class Placement(Answer):
    """A package on a slot, since when."""

    package: int
    package_number: str
    slot: int
    slot_label: str
    since: Timestamp

    @classmethod
    def of(cls, row: ShelfAssignment) -> Placement:
        """The answer for a current assignment."""
        return cls(package=row.package_id, package_number=row.package.number, slot=row.slot_id,
                   slot_label=row.slot.label, since=row.assigned_at)


class ShelfRow(Answer):
    """One slot of the shelf with the packages on it, oldest first."""

    slot: Slot
    packages: list[Placement]


class Shelf(Answer):
    """A store's shelf."""

    store: int
    shared_slots_allowed: bool
    slots: list[ShelfRow]


class NewSlot(Body):
    """A slot to add; without a barcode the slot gets SLOT-<store>-<LABEL>."""

    label: str = Field(min_length=1, max_length=shelf.LABEL_MAX)
    barcode: str = Field("", max_length=shelf.BARCODE_MAX)


class SlotChange(Body):
    """What to change on a slot; a slot holding a package cannot be deactivated."""

    label: str | None = Field(None, min_length=1, max_length=shelf.LABEL_MAX)
    barcode: str | None = Field(None, min_length=1, max_length=shelf.BARCODE_MAX)
    is_active: bool | None = None


class ShelfSettingsChange(Body):
    """A store's shelf rules."""

    shared_slots_allowed: bool


class SlotChoice(Body):
    """The slot to put the package on: its id or its scanned barcode."""

    slot: RowId | None = Field(None, description="The slot's id.")
    barcode: str | None = Field(None, max_length=shelf.BARCODE_MAX, description="The slot's scanned barcode.")


def _managers_store_ids() -> list[int] | None:
    """The stores the caller may manage (admins and brand managers: every store)."""
    return caller().store_ids


@operation("GET", "/oms/stores/<int:store_id>/shelf/", summary="A store's pickup shelf: each slot and what it holds.",
           access=Access.ANY, answer=Shelf, errors=("404",), tag="shelf")
def show_shelf(store_id: int):
    """Every slot of the store, active first, with the packages on it and since when."""
    rows = shelf.shelf(db.session, store_id, caller().store_ids)
    return Shelf(store=store_id, shared_slots_allowed=shelf.shared_slots_allowed(db.session, store_id),
                 slots=[ShelfRow(slot=Slot.of(r.slot), packages=[Placement.of(a) for a in r.assignments])
                        for r in rows])


@operation("GET", "/oms/stores/<int:store_id>/shelf-slots/", summary="A store's shelf slots.", access=Access.ANY,
           answer=list[Slot], errors=("404",), tag="shelf")
def list_shelf_slots(store_id: int):
    """The store's slots in label order."""
    shelf.check_store(db.session, store_id, caller().store_ids)
    return [Slot.of(s) for s in shelf.list_slots(db.session, store_id)]


@operation("POST", "/oms/stores/<int:store_id>/shelf-slots/", summary="Add a shelf slot (managers).",
           access=Access.MANAGERS, body=NewSlot, answer=Slot, status=201, errors=("404",), tag="shelf",
           example={"label": "A1", "barcode": "SHELF-A1"})
def create_shelf_slot(store_id: int, body: NewSlot):
    """Add a slot; its barcode is unique in the store."""
    return Slot.of(shelf.create_slot(db.session, store_id, label=body.label, barcode=body.barcode,
                                     store_ids=_managers_store_ids()))


@operation("PATCH", "/oms/shelf-slots/<int:slot_id>/", summary="Rename, re-barcode or (de)activate a slot (managers).",
           access=Access.MANAGERS, body=SlotChange, answer=Slot, errors=("404", "409"), tag="shelf")
def update_shelf_slot(slot_id: int, body: SlotChange):
    """Change a slot; a slot holding a package cannot be deactivated (409)."""
    return Slot.of(shelf.update_slot(db.session, slot_id, store_ids=_managers_store_ids(), label=body.label,
                                     barcode=body.barcode, is_active=body.is_active))


@operation("PUT", "/oms/stores/<int:store_id>/shelf-settings/", summary="Allow or forbid shared slots (managers).",
           access=Access.MANAGERS, body=ShelfSettingsChange, answer=Shelf, errors=("404",), tag="shelf")
def update_shelf_settings(store_id: int, body: ShelfSettingsChange):
    """Turn shared slots on or off; answers the shelf."""
    shelf.check_store(db.session, store_id, _managers_store_ids())
    pickup_settings.save(db.session, store_id, user_id=caller().user_id, shared_slots=body.shared_slots_allowed)
    return show_shelf(store_id=store_id)


@operation("PUT", "/oms/packages/<int:package_id>/shelf-slot/",
           summary="Put a ready package on a slot, or move it to another one.", access=Access.ANY, body=SlotChoice,
           answer=Placement, errors=("404", "409"), tag="shelf", example={"barcode": "SHELF-A1"},
           description="The package must be Ready for Customer Pickup. A slot holding another package is refused "
                       "(409) unless the store allows shared slots. Audited as shelf-assign or shelf-move.")
def assign_shelf_slot(package_id: int, body: SlotChoice):
    """Put the package on the slot named by id or barcode."""
    current = caller()
    row = shelf.assign(db.session, package_id, slot_id=body.slot, barcode=body.barcode, user_id=current.user_id,
                       store_ids=current.store_ids)
    return Placement.of(row)


@operation("DELETE", "/oms/packages/<int:package_id>/shelf-slot/", summary="Take a ready package off its slot.",
           access=Access.ANY, status=204, errors=("400", "404"), tag="shelf")
def free_shelf_slot(package_id: int):
    """Free the package's slot (audited as shelf-free); 204 even when it was on none."""
    current = caller()
    shelf.free(db.session, package_id, user_id=current.user_id, store_ids=current.store_ids)
