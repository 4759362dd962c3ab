"""Reading packages: the store-scoped list with keyset pagination, and one package for a user."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, or_, select, union_all
from sqlalchemy.orm import Session, joinedload, selectinload

from portal.accounts.models import User
from portal.db_types import plain_int
from portal.errors import NotFound, ValidationFailed
from portal.packages.models import Package, PackageLog
from portal.packages.states import TO_PACK, DeliveryType, State, parse_state


@dataclass
class PackageFilters:
    """The list's filters, as they appear in the URL."""

    status: int | None = None
    delivery_type: str | None = None
    stock_location: int | None = None
    search: str = ""
    after: int | None = None   # next page: ids below this one
    before: int | None = None  # previous page: ids above this one

    @classmethod
    def from_args(cls, args) -> PackageFilters:
        """Parse query-string arguments; raises ValidationFailed for values that mean nothing."""
        raw_status = (args.get("status") or "").strip()
        status = parse_state(raw_status)
        if raw_status and status is None:
            raise ValidationFailed(_("Unknown status %(raw_status)r.", raw_status=raw_status), field="status")
        delivery_type = (args.get("delivery_type") or "").strip() or None
        if delivery_type and delivery_type not in DeliveryType.ALL:
            raise ValidationFailed(_("Unknown delivery type %(type)r.", type=delivery_type), field="delivery_type")
        return cls(
            status=status, delivery_type=delivery_type,
            stock_location=_int_arg(args, "stock_location"),
            search=(args.get("search") or args.get("q") or "").strip()[:64],
            after=_int_arg(args, "after"), before=_int_arg(args, "before"),
        )

    def query_args(self, **overrides) -> dict:
        """The filters as URL arguments (empty ones left out), with overrides such as a page cursor."""
        values = {"status": self.status, "delivery_type": self.delivery_type,
                  "stock_location": self.stock_location, "search": self.search or None}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in (None, "")}


def _int_arg(args, name: str) -> int | None:
    """An integer URL argument, or None; raises ValidationFailed when it is not a number."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    value = plain_int(raw)
    if value is None:
        raise ValidationFailed(_("%(name)s must be a number.", name=name), field=name)
    return value


@dataclass
class PackagePage:
    """One page of packages, newest first, with cursors to the neighbouring pages."""

    packages: list[Package]
    next_after: int | None = None
    prev_before: int | None = None
    filters: PackageFilters = field(default_factory=PackageFilters)


def _scoped(stmt, store_ids: list[int] | None):
    """Limit a statement to the given stores (None: every store)."""
    if store_ids is None:
        return stmt
    return stmt.where(Package.stock_location_id.in_(store_ids))


def list_packages(session: Session, filters: PackageFilters, store_ids: list[int] | None,
                  limit: int = 25) -> PackagePage:
    """A page of packages matching the filters within the user's stores.

    Keyset pagination on id (newest first) keeps every page as cheap as the first: each query is
    an index range scan on (stock_location_id, state, id), (state, id) or the primary key. A user
    with several stores gets one such range per store, merged: with `stock_location_id IN (...)`
    the database would read every package of those stores and sort them to find the newest.
    """
    conditions = []
    if filters.stock_location is not None:
        conditions.append(Package.stock_location_id == filters.stock_location)
    if filters.status is not None:
        conditions.append(Package.state == filters.status)
    if filters.delivery_type:
        conditions.append(Package.delivery_type == filters.delivery_type)
    if filters.search:
        term = filters.search.upper()
        conditions.append(or_(Package.number == term, Package.order_number == term))
    backwards = filters.before is not None and filters.after is None
    if backwards:
        conditions.append(Package.id > filters.before)
        order = Package.id.asc()
    else:
        if filters.after is not None:
            conditions.append(Package.id < filters.after)
        order = Package.id.desc()
    if store_ids is not None and filters.stock_location is None and len(store_ids) > 1:
        per_store = [select(Package.id).where(Package.stock_location_id == store_id, *conditions)
                     .order_by(order).limit(limit + 1).subquery() for store_id in store_ids]
        newest = union_all(*(select(branch.c.id) for branch in per_store)).subquery()
        stmt = select(Package).where(Package.id.in_(select(newest.c.id))).order_by(order)
    else:
        stmt = _scoped(select(Package).where(*conditions), store_ids).order_by(order)
    rows = list(session.scalars(stmt.limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
        next_after = rows[-1].id if rows else None
        prev_before = rows[0].id if rows and has_more else None
    else:
        next_after = rows[-1].id if rows and has_more else None
        prev_before = rows[0].id if rows and (filters.after is not None) else None
    return PackagePage(packages=rows, next_after=next_after, prev_before=prev_before, filters=filters)


def get_package(session: Session, package_id: int, store_ids: list[int] | None) -> Package:
    """One package with its store, customer and items in one statement, if it is in the user's stores; raises
    NotFound otherwise. A package this session holds already (expired by a commit) is refreshed by it too."""
    stmt = _scoped(select(Package).where(Package.id == package_id), store_ids).options(
        joinedload(Package.items))
    package = session.scalars(stmt).unique().first()
    if package is None:
        raise NotFound(_("Package not found."))
    return package


def package_history(session: Session, package_id: int) -> list[PackageLog]:
    """The package's audit rows, newest first, with who did each (the user's stores are left to load if read:
    the history shows a name, and an eager load of every store of every user on it was most of its cost)."""
    return list(session.scalars(
        select(PackageLog).where(PackageLog.package_id == package_id).order_by(PackageLog.id.desc())
        .options(joinedload(PackageLog.user).lazyload(User.stock_locations))))


def waiting_count(session: Session, store_ids: list[int] | None) -> int:
    """How many packages wait in the user's stores (an index-only count per store)."""
    stmt = _scoped(select(func.count()).select_from(Package).where(Package.state == State.WAITING), store_ids)
    return session.scalar(stmt) or 0


@dataclass
class PickLine:
    """One item on the pick list: how many to take off the shelf in all, and for which packages."""

    barcode: str
    sku: str
    name: str
    quantity: int = 0
    packages: list[tuple[str, int]] = field(default_factory=list)  # (package number, quantity for it)


@dataclass
class PickList:
    """The items of the packages waiting to be packed, grouped by item, and the packages they came from."""

    lines: list[PickLine]
    packages: list[Package]
    limit: int
    truncated: bool  # more packages wait than the list holds: the oldest `limit` are on it

    @property
    def total_quantity(self) -> int:
        """How many pieces the list asks for in all."""
        return sum(line.quantity for line in self.lines)


PICK_LIST_LIMIT = 500


def pick_list(session: Session, store_ids: list[int] | None, limit: int = PICK_LIST_LIMIT) -> PickList:
    """The pick list of the user's stores: every package still to pack (oldest first, at most `limit`), its
    items summed per item (barcode, SKU and name) so that each shelf is visited once.

    The packages come from the (stock_location_id, state, id) index: one range per store and state.
    """
    stmt = _scoped(select(Package).where(Package.state.in_([int(s) for s in TO_PACK])), store_ids)
    stmt = stmt.options(selectinload(Package.items)).order_by(Package.id.asc()).limit(limit + 1)
    packages = list(session.scalars(stmt))
    truncated = len(packages) > limit
    packages = packages[:limit]
    lines: dict[tuple[str, str, str], PickLine] = {}
    for package in packages:
        for item in package.items:
            key = (item.barcode, item.sku, item.name)
            line = lines.get(key)
            if line is None:
                line = lines[key] = PickLine(barcode=item.barcode, sku=item.sku, name=item.name)
            line.quantity += item.quantity
            line.packages.append((package.number, item.quantity))
    ordered = sorted(lines.values(), key=lambda line: (line.name.casefold(), line.barcode, line.sku))
    return PickList(lines=ordered, packages=packages, limit=limit, truncated=truncated)
