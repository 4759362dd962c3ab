"""The store floor's work queue: tabs of packages that need the staff, their counts, due times, and the scan box.

Tabs: "pack" (not packed yet, or packed and still in the store's hands), "pickup" (ready, waiting for the
customer), "problems" (a problem state, or a ready package whose pickup SMS did not go out) and "all" (the
filtered table of portal.packages.queries). Queue tabs list the oldest package first.

Counts come from the (stock_location_id, state, id) index (or (state, id) for a user of every store): an
index-only range per store and active state, never a count over the table, and each count stops at COUNT_CAP
("999+" on screen), so that its cost is bounded however many packages pile up. The "SMS not sent" count
starts from the few failed or dead SMS rows (the (status, next_attempt_at) index).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from portal.db_types import utcnow
from portal.outbox.models import OutboxMessage
from portal.outbox.service import SMS
from portal.packages.models import Package, PackageItem
from portal.packages.states import State

# Packages whose items can still be scanned for packing.
OPEN_TO_PACK: tuple[int, ...] = (State.WAITING, State.PREPARING, State.READY_FOR_PACKAGING)
TAB_STATES: dict[str, tuple[int, ...]] = {
    "pack": (*OPEN_TO_PACK, State.PACKED),
    "pickup": (State.READY_FOR_CUSTOMER_PICKUP,),
    "problems": (State.ATTEMPTED_DELIVERY, State.DELIVERY_FAILED, State.OUT_OF_STOCK, State.BLOCKED,
                 State.NEEDS_RESCHEDULING, State.CANCELLATION_WAITING),
}
TABS: tuple[str, ...] = ("pack", "pickup", "problems", "all")
QUEUE_TABS: tuple[str, ...] = ("pack", "pickup", "problems")
_SMS_NOT_SENT = (OutboxMessage.FAILED, OutboxMessage.DEAD)
# A tab count stops here: the floor needs "a lot", not the exact size of a pile, and a bounded count stays cheap.
COUNT_CAP = 1000


@dataclass(frozen=True)
class Allowance:
    """How long a package may take: packing from its creation, pickup from when it became ready."""

    pack: timedelta = timedelta(hours=4)
    pickup: timedelta = timedelta(days=7)


@dataclass
class QueueCounts:
    """How many packages each queue tab holds."""

    pack: int = 0
    pickup: int = 0
    problems: int = 0
    cap: int = COUNT_CAP

    def of(self, tab: str) -> int | None:
        """The count of a tab (at most the cap); None for "all", which has no count."""
        return min(getattr(self, tab), self.cap) if tab in QUEUE_TABS else None

    def text(self, tab: str) -> str:
        """The count as shown: "999+" once it reaches the cap."""
        value = self.of(tab)
        if value is None:
            return ""
        return f"{self.cap - 1}+" if value >= self.cap else str(value)


@dataclass
class Card:
    """One package in a queue tab, with its due time when one applies."""

    package: Package
    due_kind: str | None = None   # "pack" (pack by) or "pickup" (pick up by)
    due_at: datetime | None = None
    overdue: bool = False
    sms_not_sent: bool = False
    hold_expired: bool = False  # ready, and its pick-up-by time has passed (portal.packages.hold)


@dataclass
class QueuePage:
    """A page of a queue tab, oldest first, with the cursor to the next page."""

    tab: str
    cards: list[Card] = field(default_factory=list)
    next_after: int | None = None


def _scoped(stmt, store_ids):
    """Limit a statement on packages to the given stores (a list, or an expanding parameter; None: every store)."""
    return stmt if store_ids is None else stmt.where(Package.stock_location_id.in_(store_ids))


def _sms_not_sent_ids(store_ids):
    """Ready packages in the stores whose newest SMS failed or is dead, as a select of package ids."""
    newer = aliased(OutboxMessage)
    stmt = (select(OutboxMessage.package_id)
            .join(Package, Package.id == OutboxMessage.package_id)
            .where(OutboxMessage.status.in_(_SMS_NOT_SENT), OutboxMessage.kind == SMS,
                   Package.state == State.READY_FOR_CUSTOMER_PICKUP,
                   ~select(newer.id).where(newer.package_id == OutboxMessage.package_id, newer.kind == SMS,
                                           newer.id > OutboxMessage.id).exists()))
    return _scoped(stmt, store_ids)


def _hold_expired_ids(store_ids, now):
    """Ready packages in the stores whose hold has ended, as a select of package ids (the (state, hold_until) index)."""
    return _scoped(select(Package.id).where(Package.state == State.READY_FOR_CUSTOMER_PICKUP,
                                            Package.hold_until <= now), store_ids)


def _capped_count(stmt, cap: int):
    """COUNT(*) of a select, stopping at cap rows, as a scalar subquery (one column of queue_counts' statement)."""
    return select(func.count()).select_from(stmt.limit(cap).subquery()).scalar_subquery()


# queue_counts' statement for each shape (all stores or a list of them, and the cap), built once per process: the
# statement of five subqueries costs more to build than to run; its stores and time go in as parameters.
_COUNTS: dict[tuple[bool, int], Select] = {}


def _counts_statement(scoped: bool, cap: int) -> Select:
    """The five capped counts as one statement: the tabs', then failed SMS, then ended holds (params stores, now)."""
    statement = _COUNTS.get((scoped, cap))
    if statement is None:
        stores: BindParameter[list[int]] | None = bindparam("stores", expanding=True) if scoped else None
        columns = [_capped_count(_scoped(select(Package.id).where(Package.state.in_(states)), stores), cap)
                   for states in TAB_STATES.values()]
        # No DISTINCT: only a package's newest SMS can qualify, so each package comes once (and SQLite keeps
        # starting from the few failed rows instead of walking the outbox in package order).
        columns.append(_capped_count(_sms_not_sent_ids(stores), cap))
        columns.append(_capped_count(_hold_expired_ids(stores, bindparam("now")), cap))
        statement = _COUNTS.setdefault((scoped, cap), select(*columns))
    return statement


def queue_counts(session: Session, store_ids: list[int] | None, cap: int = COUNT_CAP) -> QueueCounts:
    """The count of every queue tab, each an index-only count that stops at cap, and one for failed SMS.

    One statement, built once (each count a scalar subquery of it): one round trip for the five.
    """
    params: dict = {"now": utcnow()}
    if store_ids is not None:
        params["stores"] = list(store_ids)
    values = [value or 0 for value in session.execute(_counts_statement(store_ids is not None, cap), params).one()]
    counts = QueueCounts(cap=cap)
    for tab, value in zip(TAB_STATES, values, strict=False):
        setattr(counts, tab, value)
    # A ready package whose hold ended with its SMS failed counts once in each: a rare overlap, kept for a cheap count.
    counts.problems += values[-2] + values[-1]
    return counts


def queue_page(session: Session, tab: str, store_ids: list[int] | None, *, after: int | None = None,
               limit: int = 25, allowance: Allowance | None = None, now: datetime | None = None) -> QueuePage:
    """A page of a queue tab in the user's stores, oldest first (ids above `after`)."""
    allowance = allowance or Allowance()
    now = now or utcnow()
    states = TAB_STATES[tab]
    sms_ids: set[int] = set()
    condition: ColumnElement[bool] = Package.state.in_(states)
    if tab == "problems":
        sms_ids = set(session.scalars(_sms_not_sent_ids(store_ids)))
        condition = or_(condition, Package.id.in_(sms_ids)) if sms_ids else condition
        condition = or_(condition, and_(Package.state == State.READY_FOR_CUSTOMER_PICKUP, Package.hold_until <= now))
    stmt = _scoped(select(Package).where(condition), store_ids)
    if after is not None:
        stmt = stmt.where(Package.id > after)
    rows = list(session.scalars(stmt.order_by(Package.id.asc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    cards = [_card(package, allowance, now, package.id in sms_ids) for package in rows]
    return QueuePage(tab=tab, cards=cards, next_after=rows[-1].id if rows and has_more else None)


def _card(package: Package, allowance: Allowance, now: datetime, sms_not_sent: bool) -> Card:
    """A package's card: "pack by" from its creation, "pick up by" its hold's end (or from when it was made ready)."""
    card = Card(package=package, sms_not_sent=sms_not_sent)
    if package.state in OPEN_TO_PACK:
        card.due_kind, card.due_at = "pack", package.created_at + allowance.pack
    elif package.state == State.READY_FOR_CUSTOMER_PICKUP:
        card.due_kind = "pickup"
        card.due_at = package.hold_until or package.updated_at + allowance.pickup
        card.hold_expired = package.hold_until is not None and package.hold_until <= now
    card.overdue = card.due_at is not None and card.due_at < now
    return card


@dataclass
class ScanMatch:
    """What a scan found: a package (by its number or its order's), an item of one open package, or nothing.

    kind: "package", "item" (package + barcode: open its packing screen), "several" (an order number or a
    barcode that several packages share: show them in the list) or "none".
    """

    kind: str
    text: str
    package: Package | None = None
    barcode: str | None = None


def resolve_scan(session: Session, raw: str, store_ids: list[int] | None) -> ScanMatch:
    """Find what a scanned or typed text means in the user's stores.

    A package number, then an order number, then an item barcode of a package still to pack. Every lookup
    is one indexed equality (packages.number, packages.order_number, package_items.barcode). Pickup codes
    are not looked up: they are stored as hashes bound to their package, so no index can find one.
    """
    text = raw.strip()[:64]
    if not text:
        return ScanMatch("none", text)
    term = text.upper()
    package = session.scalar(_scoped(select(Package).where(Package.number == term), store_ids))
    if package is not None:
        return ScanMatch("package", text, package)
    by_order = list(session.scalars(
        _scoped(select(Package).where(Package.order_number == term), store_ids).order_by(Package.id).limit(2)))
    if len(by_order) == 1:
        return ScanMatch("package", text, by_order[0])
    if by_order:
        return ScanMatch("several", text)
    ids = list(session.scalars(
        _scoped(select(Package.id).join(PackageItem, and_(PackageItem.package_id == Package.id))
                .where(PackageItem.barcode == text, Package.state.in_(OPEN_TO_PACK)), store_ids)
        .distinct().limit(2)))
    if len(ids) == 1:
        return ScanMatch("item", text, session.get(Package, ids[0]), barcode=text)
    if ids:
        return ScanMatch("several", text, barcode=text)
    return ScanMatch("none", text)
