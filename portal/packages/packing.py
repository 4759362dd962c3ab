"""Packing in any order: each scan ticks the first unticked unit of a line with that barcode.

The ticks live in packing_scans (one row per package line) so that a reload, or a second tablet, sees
them. Completing and "not found on the shelf" go through commands.run_command, the one door.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db_types import rowcount, utcnow
from portal.errors import CommandRejected, ValidationFailed
from portal.packages import commands, queries
from portal.packages.models import DenialReason, Package, PackageItem, PackingScan, Transition

PACK_CODE = "COMPLETE_PACKAGING"
REFUSE_CODE = "PACKAGE_REFUSE_WITH_DENIAL_REASON"
NOT_FOUND_REASON = "NOT_FOUND"  # remote_id of the vendor's "Product not found in store" denial reason
MAX_BARCODE = 64


@dataclass
class Line:
    """One package line and how many of its units are ticked."""

    item: PackageItem
    scanned: int = 0
    by_hand: int = 0
    has_row: bool = True  # False until the packing screen created the line's packing_scans row

    @property
    def done(self) -> int:
        """Units ticked, by scan or by hand."""
        return self.scanned + self.by_hand

    @property
    def complete(self) -> bool:
        """Every unit of the line is ticked."""
        return self.done >= self.item.quantity


@dataclass
class Packing:
    """The packing screen's state for one package."""

    package: Package
    lines: list[Line]
    transition: Transition | None  # the Complete Packaging command from the package's state, if shown here
    not_found: Transition | None  # the refuse command that takes a package with a missing item

    @property
    def units_done(self) -> int:
        """Units ticked over every line."""
        return sum(min(line.done, line.item.quantity) for line in self.lines)

    @property
    def units_total(self) -> int:
        """Units in the package."""
        return sum(line.item.quantity for line in self.lines)

    @property
    def is_complete(self) -> bool:
        """Every line is ticked."""
        return all(line.complete for line in self.lines)


@dataclass
class Tick:
    """The outcome of one scan or tap: the line that changed and the package's state after it."""

    packing: Packing
    line: Line


def _commands(session: Session, package: Package, visibility: str | None) -> dict[str, Transition]:
    """The first command of each code that starts from the package's state and is shown to this user."""
    found: dict[str, Transition] = {}
    for transition in commands.available_transitions(session, package, visibility):
        found.setdefault(transition.command_code, transition)
    return found


def _commit_keeping_loaded(session: Session) -> None:
    """Commit without expiring what the session holds: the answer renders from it without reloading it.

    Only packing_scans rows change here (by a Core UPDATE or INSERT), and the Line counts are kept by hand.
    """
    real = session() if callable(session) else session  # the scoped session's own Session
    keep = real.expire_on_commit
    real.expire_on_commit = False
    try:
        real.commit()
    finally:
        real.expire_on_commit = keep


def _lines(session: Session, package: Package) -> list[Line]:
    """The package's lines with their tick counts, in list order; a line without its row yet has has_row False."""
    counts = {row.package_item_id: (row.scanned, row.by_hand) for row in session.execute(
        select(PackingScan.package_item_id, PackingScan.scanned, PackingScan.by_hand)
        .where(PackingScan.package_id == package.id))}
    lines = []
    for item in package.items:
        scanned, by_hand = counts.get(item.id, (0, 0))
        lines.append(Line(item, scanned, by_hand, has_row=item.id in counts))
    return lines


def _ensure_rows(session: Session, package: Package, lines: list[Line]) -> None:
    """Create the zero rows of lines that have none yet; another tablet creating them first is fine."""
    missing = [line.item.id for line in lines if not line.has_row]
    if not missing:
        return
    try:
        session.execute(insert(PackingScan), [
            {"package_item_id": item_id, "package_id": package.id, "scanned": 0, "by_hand": 0, "updated_at": utcnow()}
            for item_id in missing])
        _commit_keeping_loaded(session)
    except IntegrityError:
        session.rollback()
    for line in lines:
        line.has_row = True


def load(session: Session, package_id: int, store_ids: list[int] | None, visibility: str | None) -> Packing:
    """The packing state of a package in the user's stores (NotFound otherwise)."""
    package = queries.get_package(session, package_id, store_ids)
    found = _commands(session, package, visibility)
    return Packing(package, _lines(session, package), found.get(PACK_CODE), found.get(REFUSE_CODE))


def open_packing(session: Session, package_id: int, store_ids: list[int] | None,
                 visibility: str | None) -> Packing:
    """Load the packing state and make sure every line has its row, so that scans are one UPDATE each."""
    packing = load(session, package_id, store_ids, visibility)
    if packing.transition is not None:
        _ensure_rows(session, packing.package, packing.lines)
    return packing


def _require_packable(packing: Packing) -> Transition:
    """The Complete Packaging command; CommandRejected when the package is not waiting to be packed."""
    if packing.transition is None:
        raise CommandRejected(_("Package %(number)s is not waiting to be packed.", number=packing.package.number))
    return packing.transition


def _bump(session: Session, packing: Packing, line: Line, by_hand: bool) -> bool:
    """Tick one more unit of the line unless it is full; False when another tablet filled it first."""
    column = PackingScan.by_hand if by_hand else PackingScan.scanned
    changed = rowcount(session.execute(
        update(PackingScan)
        .where(PackingScan.package_item_id == line.item.id,
               PackingScan.scanned + PackingScan.by_hand < line.item.quantity)
        .values({column: column + 1, PackingScan.updated_at: utcnow()})
        .execution_options(synchronize_session=False)))
    if changed != 1:
        session.rollback()
        return False
    _commit_keeping_loaded(session)
    if by_hand:
        line.by_hand += 1
    else:
        line.scanned += 1
    return True


def scan(session: Session, package_id: int, barcode: str, *, store_ids: list[int] | None,
         visibility: str | None) -> Tick:
    """Tick the first unticked unit of a line with this barcode. ValidationFailed names a barcode the package
    does not have, or one whose lines are all ticked; then nothing changes."""
    text = (barcode or "").strip()[:MAX_BARCODE]
    if not text:
        raise ValidationFailed(_("Scan an item's barcode."), field="barcode")
    for _attempt in range(3):
        packing = load(session, package_id, store_ids, visibility)
        _require_packable(packing)
        matching = [line for line in packing.lines if line.item.barcode == text]
        if not matching:
            raise ValidationFailed(_("%(barcode)s is not in this package.", barcode=text), field="barcode",
                                   details={"barcode": text})
        line = next((m for m in matching if not m.complete), None)
        if line is None:
            done = matching[-1]
            raise ValidationFailed(
                _("%(name)s is already ticked (%(done)s of %(total)s).", name=done.item.name, done=done.done,
                  total=done.item.quantity), field="barcode", details={"barcode": text})
        _ensure_rows(session, packing.package, packing.lines)
        if _bump(session, packing, line, by_hand=False):
            return Tick(packing, line)
    raise ValidationFailed(_("Someone else is packing this package; scan again."), field="barcode")


def tick_by_hand(session: Session, package_id: int, item_id: int, *, store_ids: list[int] | None,
                 visibility: str | None) -> Tick:
    """Tick one unit of a line by tap, for a label that will not scan; the audit row says so."""
    packing = load(session, package_id, store_ids, visibility)
    _require_packable(packing)
    line = next((m for m in packing.lines if m.item.id == item_id), None)
    if line is None:
        raise ValidationFailed(_("That item is not in this package."), field="item")
    if line.complete:
        raise ValidationFailed(_("%(name)s is already ticked.", name=line.item.name), field="item")
    _ensure_rows(session, packing.package, packing.lines)
    if not _bump(session, packing, line, by_hand=True):
        raise ValidationFailed(_("%(name)s is already ticked.", name=line.item.name), field="item")
    return Tick(packing, line)


def clear(session: Session, package_id: int) -> None:
    """Forget the package's ticks (after packing, after "not found", or to start over)."""
    session.execute(delete(PackingScan).where(PackingScan.package_id == package_id))
    session.commit()


def complete(session: Session, package_id: int, *, user_id: int | None, store_ids: list[int] | None,
             visibility: str | None, expected_version: int | None = None) -> commands.CommandResult:
    """Run Complete Packaging with the ticked lines' barcodes; the audit row names the lines ticked by hand."""
    packing = load(session, package_id, store_ids, visibility)
    transition = _require_packable(packing)
    if not packing.is_complete:
        left = packing.units_total - packing.units_done
        raise ValidationFailed(_("Tick every item first; %(count)s left.", count=left), field="barcode")
    params = {
        "barcodes": [{"order_item": line.item.order_item, "barcode": line.item.barcode} for line in packing.lines],
        "ticked_by_hand": {str(line.item.order_item): line.by_hand for line in packing.lines if line.by_hand},
    }
    result = commands.run_command(session, package_id, transition_id=transition.id, params=params, user_id=user_id,
                                  store_ids=store_ids, visibility=visibility, expected_version=expected_version)
    clear(session, package_id)
    return result


def not_found_reason(session: Session) -> DenialReason | None:
    """The "product not found in store" denial reason, or the first active one when it was switched off."""
    reasons = list(session.scalars(select(DenialReason).where(DenialReason.is_active.is_(True))
                                   .order_by(DenialReason.priority, DenialReason.id)))
    return next((r for r in reasons if r.remote_id == NOT_FOUND_REASON), reasons[0] if reasons else None)


def mark_not_found(session: Session, package_id: int, item_id: int, *, user_id: int | None,
                   store_ids: list[int] | None, visibility: str | None) -> commands.CommandResult:
    """Refuse the package as "not found in store" (the vendor's path to rescheduling), naming the item."""
    packing = load(session, package_id, store_ids, visibility)
    line = next((m for m in packing.lines if m.item.id == item_id), None)
    if line is None:
        raise ValidationFailed(_("That item is not in this package."), field="item")
    reason = not_found_reason(session)
    if packing.not_found is None or reason is None:
        raise CommandRejected(_("No command here takes a package with a missing item; ask a manager."))
    result = commands.run_command(
        session, package_id, transition_id=packing.not_found.id, user_id=user_id, store_ids=store_ids,
        visibility=visibility, params={"denial_reason": reason.id, "not_found": [line.item.order_item]})
    clear(session, package_id)
    return result
