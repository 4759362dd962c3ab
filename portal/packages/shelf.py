"""Pickup shelf slots: define a store's slots, put a ready package on one, move it, free it, and see the shelf.

Putting a package on a slot does not change its state, so it does not go through run_command: these small
functions write their own audit row (PackageLog with the state unchanged and command "shelf-assign",
"shelf-move" or "shelf-free"). run_command calls release() itself when a command takes a package out of
Ready for Customer Pickup (delivery, cancel, reschedule, ...), inside the command's own transaction.

Two packages on one slot are refused by the database, not only by a check: see ShelfAssignment.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from portal.db_types import rowcount, utcnow
from portal.errors import CommandRejected, ConcurrentChange, DomainError, NotFound, ValidationFailed
from portal.packages.barcodes import ean13_check_digit
from portal.packages.locks import lock_package
from portal.packages.models import Package, PackageLog
from portal.packages.shelf_models import ShelfAssignment, ShelfSettings, ShelfSlot
from portal.packages.states import State
from portal.stores.models import StockLocation

ASSIGN, MOVE, FREE = "shelf-assign", "shelf-move", "shelf-free"
LABEL_MAX, BARCODE_MAX = 40, 64


class SlotTaken(CommandRejected):
    """The slot holds another package (and the store does not share slots), or holds one and cannot close."""

    code = "slot_taken"
    http_status = 409


@dataclass
class ShelfRow:
    """One slot of the shelf view with the packages on it now (oldest first)."""

    slot: ShelfSlot
    assignments: list[ShelfAssignment]


def check_store(session: Session, store_id: int, store_ids: list[int] | None) -> StockLocation:
    """The store, or NotFound unless it exists and the actor may see it (store_ids None: every store)."""
    store = session.get(StockLocation, store_id)
    if store is None or (store_ids is not None and store_id not in store_ids):
        raise NotFound(_("Store not found."))
    return store


def shared_slots_allowed(session: Session, store_id: int) -> bool:
    """Whether this store lets several packages share one slot (off unless set)."""
    row = session.get(ShelfSettings, store_id)
    return bool(row and row.shared_slots_allowed)


def set_shared_slots(session: Session, store_id: int, allowed: bool) -> None:
    """Turn shared slots on or off for a store, and commit."""
    row = session.get(ShelfSettings, store_id)
    if row is None:
        row = ShelfSettings(stock_location_id=store_id, shared_slots_allowed=allowed)
        session.add(row)
    row.shared_slots_allowed = allowed
    session.commit()


def list_slots(session: Session, store_id: int, *, active_only: bool = False) -> list[ShelfSlot]:
    """A store's slots in label order."""
    stmt = select(ShelfSlot).where(ShelfSlot.stock_location_id == store_id)
    if active_only:
        stmt = stmt.where(ShelfSlot.is_active.is_(True))
    return list(session.scalars(stmt.order_by(ShelfSlot.label, ShelfSlot.id)))


def get_slot(session: Session, slot_id: int, store_ids: list[int] | None) -> ShelfSlot:
    """One slot, if the actor may see its store."""
    slot = session.get(ShelfSlot, slot_id)
    if slot is None or (store_ids is not None and slot.stock_location_id not in store_ids):
        raise NotFound(_("Shelf slot not found."))
    return slot


def _clean(label: str, barcode: str) -> tuple[str, str]:
    """Trimmed label and barcode, or ValidationFailed naming the field."""
    label, barcode = (label or "").strip(), (barcode or "").strip()
    if not label or len(label) > LABEL_MAX:
        raise ValidationFailed(_("A slot needs a label of 1 to %(max)s characters.", max=LABEL_MAX), field="label")
    if not barcode or len(barcode) > BARCODE_MAX or not barcode.isprintable() or " " in barcode:
        raise ValidationFailed(_("A slot needs a barcode of 1 to %(max)s characters without spaces.",
                                 max=BARCODE_MAX), field="barcode")
    return label, barcode


def default_barcode(session: Session, store_id: int) -> str:
    """A free in-store EAN-13 for a new slot: 29, the store id in 5 digits, a slot number in 5, the check digit.

    The 2 prefix is the range GS1 leaves to in-store use, so a slot label never reads as a product; the labels
    print it as bars (portal/packages/barcodes.py) that the scan box reads like any item barcode.
    """
    taken = set(session.scalars(select(ShelfSlot.barcode).where(ShelfSlot.stock_location_id == store_id)))
    number = len(taken) + 1
    while True:
        first12 = f"29{store_id % 100000:05d}{number % 100000:05d}"
        code = first12 + str(ean13_check_digit(first12))
        if code not in taken:
            return code
        number += 1


def _save_slot(session: Session, slot: ShelfSlot) -> ShelfSlot:
    """Commit a new or changed slot; a barcode already used in the store is refused."""
    try:
        session.add(slot)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ValidationFailed(_("Another slot of this store has this barcode."), field="barcode") from exc
    return slot


def create_slot(session: Session, store_id: int, *, label: str, barcode: str = "",
                store_ids: list[int] | None) -> ShelfSlot:
    """Add a slot to a store. Without a barcode the slot gets an in-store EAN-13 (see default_barcode)."""
    check_store(session, store_id, store_ids)
    label, barcode = _clean(label, (barcode or "").strip() or default_barcode(session, store_id))
    return _save_slot(session, ShelfSlot(stock_location_id=store_id, label=label, barcode=barcode))


def update_slot(session: Session, slot_id: int, *, store_ids: list[int] | None, label: str | None = None,
                barcode: str | None = None, is_active: bool | None = None) -> ShelfSlot:
    """Rename a slot, change its barcode, or (de)activate it. An occupied slot cannot be deactivated."""
    slot = get_slot(session, slot_id, store_ids)
    new_label, new_barcode = _clean(slot.label if label is None else label,
                                    slot.barcode if barcode is None else barcode)
    if is_active is False and slot.is_active and occupants(session, slot.id):
        raise SlotTaken(_("Slot %(label)s holds a package: move it first.", label=slot.label))
    slot.label, slot.barcode = new_label, new_barcode
    if is_active is not None:
        slot.is_active = is_active
    return _save_slot(session, slot)


def occupants(session: Session, slot_id: int) -> list[ShelfAssignment]:
    """The current assignments of one slot, oldest first."""
    return list(session.scalars(
        select(ShelfAssignment).where(ShelfAssignment.slot_id == slot_id, ShelfAssignment.released_at.is_(None))
        .order_by(ShelfAssignment.assigned_at, ShelfAssignment.id)))


def current(session: Session, package_id: int) -> ShelfAssignment | None:
    """Where the package is now, or None."""
    return session.scalars(select(ShelfAssignment).where(
        ShelfAssignment.package_id == package_id, ShelfAssignment.released_at.is_(None))).first()


def current_slots(session: Session, package_ids: list[int]) -> dict[int, ShelfSlot]:
    """The current slot of each of these packages that has one (for the work-queue cards)."""
    if not package_ids:
        return {}
    rows = session.scalars(select(ShelfAssignment).where(
        ShelfAssignment.package_id.in_(package_ids), ShelfAssignment.released_at.is_(None)))
    return {row.package_id: row.slot for row in rows}


def shelf(session: Session, store_id: int, store_ids: list[int] | None) -> list[ShelfRow]:
    """The shelf view: every slot of the store (active first) with the packages on it."""
    check_store(session, store_id, store_ids)
    slots = list_slots(session, store_id)
    held: dict[int, list[ShelfAssignment]] = {slot.id: [] for slot in slots}
    rows = session.scalars(
        select(ShelfAssignment).join(ShelfSlot, ShelfSlot.id == ShelfAssignment.slot_id)
        .where(ShelfSlot.stock_location_id == store_id, ShelfAssignment.released_at.is_(None))
        .order_by(ShelfAssignment.assigned_at, ShelfAssignment.id))
    for row in rows:
        held.setdefault(row.slot_id, []).append(row)
    ordered = sorted(slots, key=lambda s: (not s.is_active, s.label.lower(), s.id))
    return [ShelfRow(slot=s, assignments=held[s.id]) for s in ordered]


def find_slot(session: Session, store_id: int, *, slot_id: int | None = None, barcode: str | None = None) -> ShelfSlot:
    """An active slot of this store, by id or by its scanned barcode (or label, for typing it in)."""
    stmt = select(ShelfSlot).where(ShelfSlot.stock_location_id == store_id, ShelfSlot.is_active.is_(True))
    if slot_id is not None:
        slot = session.scalars(stmt.where(ShelfSlot.id == slot_id)).first()
    else:
        text = (barcode or "").strip()
        slot = session.scalars(stmt.where(ShelfSlot.barcode == text)).first() if text else None
        if slot is None and text:
            slot = session.scalars(stmt.where(ShelfSlot.label == text)).first()
    if slot is None:
        raise ValidationFailed(_("No active shelf slot of this store matches “%(text)s”.",
                                 text=barcode if slot_id is None else slot_id), field="slot")
    return slot


def _lock_ready_package(session: Session, package_id: int, store_ids: list[int] | None) -> Package:
    """Take the package's row lock and check it waits for pickup."""
    package = lock_package(session, package_id, store_ids)
    if package.state != State.READY_FOR_CUSTOMER_PICKUP:
        raise CommandRejected(_("Only packages ready for customer pickup go on the pickup shelf."))
    return package


def _audit(session: Session, package: Package, command: str, user_id: int | None, note: str) -> None:
    """The audit row of a shelf change (the state stays as it is)."""
    session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                           command=command, user_id=user_id, note=note))


def _release_rows(session: Session, package_id: int, user_id: int | None, at: datetime) -> int:
    """Mark the package's current assignment released; how many rows that touched."""
    return rowcount(session.execute(
        update(ShelfAssignment)
        .where(ShelfAssignment.package_id == package_id, ShelfAssignment.released_at.is_(None))
        .values(released_at=at, released_by=user_id).execution_options(synchronize_session=False)))


def assign(session: Session, package_id: int, *, user_id: int | None, store_ids: list[int] | None,
           slot_id: int | None = None, barcode: str | None = None) -> ShelfAssignment:
    """Put a ready package on a slot (by id or scanned barcode), moving it if it was on another one; commit.

    Raises NotFound, CommandRejected (not ready, or the slot is taken and the store does not share slots),
    ValidationFailed (no such active slot) or ConcurrentChange.
    """
    try:
        package = _lock_ready_package(session, package_id, store_ids)
        slot = find_slot(session, package.stock_location_id, slot_id=slot_id, barcode=barcode)
        before = current(session, package.id)
        if before is not None and before.slot_id == slot.id:
            session.rollback()
            return before
        shared = shared_slots_allowed(session, package.stock_location_id)
        others = [a for a in occupants(session, slot.id) if a.package_id != package.id]
        if others and not shared:
            raise SlotTaken(_("Slot %(label)s already holds package %(number)s.", label=slot.label,
                                    number=others[0].package.number), field="slot")
        now = utcnow()
        _release_rows(session, package.id, user_id, now)
        session.flush()
        row = ShelfAssignment(package_id=package.id, slot_id=slot.id, exclusive=not shared, assigned_at=now,
                              assigned_by=user_id)
        session.add(row)
        if before is None:
            _audit(session, package, ASSIGN, user_id, _("Put on shelf slot %(label)s.", label=slot.label))
        else:
            _audit(session, package, MOVE, user_id, _("Moved from shelf slot %(old)s to %(new)s.",
                                                      old=before.slot.label, new=slot.label))
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except IntegrityError as exc:
        session.rollback()
        raise SlotTaken(_("Someone else put a package on this slot just now: choose another slot."),
                              field="slot") from exc
    except OperationalError as exc:
        session.rollback()
        raise ConcurrentChange(_("Someone else changed this package at the same moment. Please try again.")) from exc
    return row


def release(session: Session, package: Package, *, user_id: int | None, note: str = "") -> bool:
    """Free the package's slot inside the caller's transaction (no commit); True when it was on one.

    run_command calls this when a command takes the package out of Ready for Customer Pickup.
    """
    held = current(session, package.id)
    if held is None:
        return False
    _release_rows(session, package.id, user_id, utcnow())
    _audit(session, package, FREE, user_id, note or _("Shelf slot %(label)s freed.", label=held.slot.label))
    return True


def free(session: Session, package_id: int, *, user_id: int | None, store_ids: list[int] | None) -> bool:
    """Take a ready package off its slot by hand and commit; False when it was on none."""
    try:
        package = _lock_ready_package(session, package_id, store_ids)
        freed = release(session, package, user_id=user_id)
        session.commit()
    except DomainError:
        session.rollback()
        raise
    return freed
