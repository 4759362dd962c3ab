"""What each sync copies (addresses, stock locations, channels) and how one page of records is upserted.

A copier turns Omnitron's records into rows, checks them, and upserts a page with a fixed number of
statements whatever the page size: one SELECT of the rows the page already has (by Omnitron id),
one executemany INSERT for the new ones and one executemany UPDATE for the changed ones. Unchanged
rows are not written at all. Rows are plain dictionaries and tuples, never ORM objects, so nothing
piles up in the session between pages.

A record Omnitron no longer lists is deactivated, never deleted (packages, scenarios and staff point at
stores; nothing a user saved is lost): is_active becomes false and remote_modified_at becomes REMOVED,
which tells it apart from a record Omnitron itself marks inactive. deactivate_missing() does it for one
stretch of Omnitron ids with a single UPDATE; the service decides which stretch a page vouches for. A
record that comes back is an ordinary update (its modified date differs from REMOVED), so it is
reactivated with Omnitron's own is_active.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.omnitron import ADDRESS_PATHS, CHANNELS_PATH, STOCK_LOCATIONS_PATH
from portal.stores.models import StockLocation
from portal.sync.models import AddressNode, Channel
from portal.webhooks import events

# How many record problems a job keeps (in its cursor and error text); the rest are only counted.
MAX_PROBLEMS = 5
# remote_modified_at of a row whose record Omnitron no longer lists (it was deactivated here, not deleted).
REMOVED = "(removed)"
_SIX_PLACES = Decimal("0.000001")


class RecordInvalid(Exception):
    """A record from Omnitron that cannot be stored as it is; the message says which field and why."""


@dataclass(frozen=True)
class Resource:
    """One Omnitron list a sync reads: its name (an address level, "stock_location", "channel"), path and label."""

    name: str
    path: str
    label: str  # plural, for messages: "districts"


@dataclass
class PageResult:
    """What upserting one page did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, resource: Resource, record: object, message: str) -> None:
        """Count a record that could not be stored and keep the first few reasons."""
        self.failed += 1
        if len(self.problems) < MAX_PROBLEMS:
            record_id = record.get("id") if isinstance(record, dict) else None
            self.problems.append(f"{resource.label.capitalize()} id {record_id}: {message}")


def _id(record: dict, key: str, label: str | None = None) -> int:
    """A positive integer id field. Raises RecordInvalid."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecordInvalid(f"{label or key} must be a positive whole number, not {value!r}.")
    return value


def _text(record: dict, key: str, limit: int, *, required: bool = True) -> str:
    """A trimmed text field of at most `limit` characters. Raises RecordInvalid."""
    value = record.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RecordInvalid(f"{key} must be text, not {value!r}.")
    value = value.strip()
    if required and not value:
        raise RecordInvalid(f"{key} is empty.")
    if len(value) > limit:
        raise RecordInvalid(f"{key} is longer than {limit} characters.")
    return value


def _flag(record: dict, key: str) -> bool:
    """A true/false field; a missing one means true (Omnitron leaves is_active out on old records)."""
    value = record.get(key, True)
    if not isinstance(value, bool):
        raise RecordInvalid(f"{key} must be true or false, not {value!r}.")
    return value


def _modified(record: dict) -> str:
    """Omnitron's modified_date as sent (DRF timestamps sort as text); empty when absent."""
    return _text(record, "modified_date", 40, required=False)


def _coordinate(record: dict, key: str, bound: int) -> Decimal | None:
    """A latitude or longitude with six decimals, within +-bound; None when absent. Raises RecordInvalid."""
    value = record.get(key)
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value)).quantize(_SIX_PLACES)
    except (InvalidOperation, ValueError):
        raise RecordInvalid(f"{key} must be a number, not {value!r}.") from None
    if not -bound <= number <= bound:
        raise RecordInvalid(f"{key} must be between -{bound} and {bound}, not {value}.")
    return number


def _same_decimal(value: object) -> Decimal | None:
    """A stored coordinate in the form _coordinate gives, so both sides compare equal when unchanged."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(_SIX_PLACES)


class Copier:
    """Upserts pages of one kind of record by Omnitron id. Subclasses say which table, fields and checks."""

    key: str
    title: str
    noun: str  # plural, for summaries: "addresses"
    resources: tuple[Resource, ...]
    table: Table
    fields: tuple[str, ...]  # compared and written on update (Omnitron owns these columns)

    def row(self, resource: Resource, record: dict) -> dict:
        """The row a record becomes ({"omnitron_id", *fields}). Raises RecordInvalid."""
        raise NotImplementedError

    def analyze(self, session: Session) -> None:
        """Refresh PostgreSQL's statistics of the table after a bulk load (committed).

        Without them the planner takes a freshly filled table for empty and answers each page's lookup
        by scanning every row of the level through the (level, parent) index: 20x slower at 50,000 rows.
        """
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"ANALYZE {self.table.name}"))
            session.commit()

    def scope(self, resource: Resource) -> list:
        """Extra WHERE conditions that pick this resource's rows (the address level)."""
        return []

    def insert_values(self, resource: Resource) -> dict:
        """Constant columns of a new row beyond the record's own (the address level)."""
        return {}

    def local_stats(self, session: Session) -> dict[str, tuple[int, str]]:
        """Per resource: (rows Omnitron still listed at the last copy, newest remote_modified_at among them)."""
        t = self.table
        count, newest = session.execute(
            select(func.count(), func.max(t.c.remote_modified_at))
            .where(t.c.omnitron_id.is_not(None), t.c.remote_modified_at != REMOVED)).one()
        return {self.resources[0].name: (count or 0, newest or "")}

    def _missing(self, resource: Resource, listed: list[int], above: int | None, upto: int | None) -> list:
        """WHERE conditions of this resource's rows with an Omnitron id in (above, upto] that is not listed
        and that are not already marked removed (None: no bound on that side)."""
        t = self.table
        where = [*self.scope(resource), t.c.omnitron_id.is_not(None), t.c.remote_modified_at != REMOVED]
        if above is not None:
            where.append(t.c.omnitron_id > above)
        if upto is not None:
            where.append(t.c.omnitron_id <= upto)
        if listed:
            where.append(t.c.omnitron_id.not_in(listed))
        return where

    def _removed_values(self) -> dict:
        """The columns a removal writes: inactive, marked REMOVED, and when (if the table records it)."""
        values = {"is_active": False, "remote_modified_at": REMOVED}
        if "synced_at" in self.table.c:
            values["synced_at"] = utcnow()
        return values

    def deactivate_missing(self, session: Session, resource: Resource, listed: list[int], above: int | None,
                           upto: int | None) -> int:
        """Deactivate the rows of one stretch of Omnitron ids that Omnitron no longer lists; returns how many.

        `listed` are the ids a page of Omnitron's id-ordered list holds and (above, upto] the ids it
        vouches for. One SELECT of whether any is missing (usually none: then nothing is written) and one
        UPDATE however many match, so memory stays flat. Not committed.
        """
        where = self._missing(resource, listed, above, upto)
        if session.execute(select(self.table.c.id).where(*where).limit(1)).first() is None:
            return 0
        return session.execute(update(self.table).where(*where).values(self._removed_values())).rowcount or 0

    def check_page(self, session: Session, resource: Resource, rows: list[tuple[dict, dict]],
                   result: PageResult) -> list[tuple[dict, dict]]:
        """Drop rows that cannot be stored (counted as failed); the base class keeps them all."""
        return rows

    def existing(self, session: Session, resource: Resource, rows: list[dict]) -> dict[int, tuple]:
        """The stored rows for a page's Omnitron ids, in one query: {omnitron_id: (id, *fields)}."""
        t = self.table
        ids = [row["omnitron_id"] for row in rows]
        found = session.execute(select(t.c.omnitron_id, t.c.id, *(t.c[f] for f in self.fields))
                                .where(t.c.omnitron_id.in_(ids), *self.scope(resource)))
        return {r[0]: tuple(r[1:]) for r in found}

    def comparable(self, stored: tuple) -> tuple:
        """The stored fields in the form row() gives (coordinates rounded the same way)."""
        return stored

    def apply_page(self, session: Session, resource: Resource, records: list) -> PageResult:
        """Upsert one page: new rows inserted, changed rows updated, unchanged rows left alone; not committed."""
        result = PageResult()
        rows: list[tuple[dict, dict]] = []
        seen: set[int] = set()
        for record in records:
            if not isinstance(record, dict):
                result.fail(resource, record, "is not a JSON object.")
                continue
            try:
                row = self.row(resource, record)
            except RecordInvalid as exc:
                result.fail(resource, record, str(exc))
                continue
            if row["omnitron_id"] in seen:
                result.fail(resource, record, "appears twice on the same page.")
                continue
            seen.add(row["omnitron_id"])
            rows.append((record, row))
        rows = self.check_page(session, resource, rows, result)
        if not rows:
            return result
        stored = self.existing(session, resource, [row for _, row in rows])
        new, changed = self.plan(resource, rows, stored, result)
        self.write(session, resource, new, changed)
        return result

    def plan(self, resource: Resource, rows: list[tuple[dict, dict]], stored: dict[int, tuple],
             result: PageResult) -> tuple[list[dict], list[dict]]:
        """Sort a page's rows into new and changed ones, counting the unchanged."""
        new, changed = [], []
        for _, row in rows:
            found = stored.get(row["omnitron_id"])
            values = tuple(row[f] for f in self.fields)
            if found is None:
                new.append(row)
            elif self.comparable(found[1:]) == values:
                result.unchanged += 1
            else:
                changed.append({"_pk": found[0], **row})
        result.created += len(new)
        result.updated += len(changed)
        return new, changed

    def write(self, session: Session, resource: Resource, new: list[dict], changed: list[dict]) -> None:
        """One executemany INSERT and one executemany UPDATE (each only when needed)."""
        t = self.table
        now = utcnow()
        if new:
            extra = self.insert_values(resource)
            session.execute(t.insert(), [{**row, **extra, "synced_at": now} if "synced_at" in t.c else
                                         {**row, **extra} for row in new])
        if changed:
            # Core UPDATE by primary key; "_pk" because "id" would clash with the column's own bind name.
            columns = ("omnitron_id", *self.fields)
            values = {c: bindparam(c) for c in columns}
            if "synced_at" in t.c:
                values["synced_at"] = bindparam("synced_at")
                changed = [{**row, "synced_at": now} for row in changed]
            session.execute(t.update().where(t.c.id == bindparam("_pk")).values(values), changed)


class AddressCopier(Copier):
    """The address tree, parents first: countries, cities, townships, districts (keyed by level and id)."""

    key = "addresses"
    title = "Addresses"
    noun = "addresses"
    resources = tuple(Resource(level, ADDRESS_PATHS[level], label) for level, label in (
        (AddressNode.COUNTRY, "countries"), (AddressNode.CITY, "cities"), (AddressNode.TOWNSHIP, "townships"),
        (AddressNode.DISTRICT, "districts")))
    table = AddressNode.__table__
    fields = ("parent_omnitron_id", "name", "code", "is_active", "remote_modified_at")
    PARENT = {AddressNode.CITY: AddressNode.COUNTRY, AddressNode.TOWNSHIP: AddressNode.CITY,
              AddressNode.DISTRICT: AddressNode.TOWNSHIP}

    def row(self, resource: Resource, record: dict) -> dict:
        """An address node; every level but the country names its parent."""
        parent_level = self.PARENT.get(resource.name)
        parent = None
        if parent_level:
            key = "parent" if record.get("parent") is not None else parent_level
            parent = _id(record, key, label=f"parent {parent_level}")
        return {"omnitron_id": _id(record, "id"), "parent_omnitron_id": parent,
                "name": _text(record, "name", 160), "code": _text(record, "code", 40, required=False),
                "is_active": _flag(record, "is_active"), "remote_modified_at": _modified(record)}

    def scope(self, resource: Resource) -> list:
        """Only this level's rows."""
        return [self.table.c.level == resource.name]

    def insert_values(self, resource: Resource) -> dict:
        """New rows get the resource's level."""
        return {"level": resource.name}

    def local_stats(self, session: Session) -> dict[str, tuple[int, str]]:
        """Rows and newest modified date per level, in one grouped query."""
        t = self.table
        found = {level: (count, newest or "") for level, count, newest in session.execute(
            select(t.c.level, func.count(), func.max(t.c.remote_modified_at))
            .where(t.c.remote_modified_at != REMOVED).group_by(t.c.level))}
        return {r.name: found.get(r.name, (0, "")) for r in self.resources}

    def check_page(self, session, resource, rows, result):
        """A node whose parent was not copied cannot be stored (the parent list is read first)."""
        parent_level = self.PARENT.get(resource.name)
        if not parent_level:
            return rows
        t = self.table
        wanted = {row["parent_omnitron_id"] for _, row in rows}
        known = set(session.scalars(select(t.c.omnitron_id)
                                    .where(t.c.level == parent_level, t.c.omnitron_id.in_(wanted))))
        kept = []
        for record, row in rows:
            if row["parent_omnitron_id"] in known:
                kept.append((record, row))
            else:
                result.fail(resource, record, f"its {parent_level} {row['parent_omnitron_id']} is not known.")
        return kept


class StockLocationCopier(Copier):
    """Stores and warehouses. A store made in the portal before (no Omnitron id) is matched by its erp_code,
    so its staff and packages stay with it."""

    key = "stock_locations"
    title = "Stores"
    noun = "stock locations"
    resources = (Resource("stock_location", STOCK_LOCATIONS_PATH, "stock locations"),)
    table = StockLocation.__table__
    fields = ("name", "erp_code", "kind", "city", "address", "latitude", "longitude", "is_active",
              "remote_modified_at")

    def row(self, resource: Resource, record: dict) -> dict:
        """A stock location; Omnitron's stock_location_type is our kind."""
        return {"omnitron_id": _id(record, "id"), "name": _text(record, "name", 120),
                "erp_code": _text(record, "erp_code", 64),
                "kind": _text(record, "stock_location_type", 20, required=False) or "store",
                "city": _text(record, "city", 80, required=False),
                "address": _text(record, "address", 255, required=False),
                "latitude": _coordinate(record, "latitude", 90), "longitude": _coordinate(record, "longitude", 180),
                "is_active": _flag(record, "is_active"), "remote_modified_at": _modified(record)}

    def comparable(self, stored: tuple) -> tuple:
        """Coordinates rounded to six places, as row() gives them."""
        name, erp_code, kind, city, address, lat, lon, active, modified = stored
        return (name, erp_code, kind, city, address, _same_decimal(lat), _same_decimal(lon), active, modified)

    def existing(self, session, resource, rows):
        """The stored rows with the page's Omnitron ids or erp_codes, in one query, keyed by Omnitron id.

        A portal-made store (no Omnitron id) with a page's erp_code is returned under that record's
        Omnitron id, so the record is written into it. The erp_codes held by other rows are kept in
        self._holders for plan() to refuse.
        """
        t = self.table
        ids = [row["omnitron_id"] for row in rows]
        codes = [row["erp_code"] for row in rows]
        found = list(session.execute(select(t.c.omnitron_id, t.c.id, *(t.c[f] for f in self.fields))
                                     .where(or_(t.c.omnitron_id.in_(ids), t.c.erp_code.in_(codes)))))
        by_id = {r[0]: tuple(r[1:]) for r in found if r[0] is not None}
        # r[3] is erp_code, r[-1] remote_modified_at. A store Omnitron removed and made again under a new id
        # takes its old row back, like a portal-made one, so its staff and packages stay with it.
        unclaimed = {r[3]: tuple(r[1:]) for r in found
                     if r[0] is None or (r[-1] == REMOVED and r[0] not in ids)}
        self._holders = {r[3]: (r[0], r[1], r[2]) for r in found}  # erp_code -> (omnitron id, pk, name)
        for row in rows:
            if row["omnitron_id"] not in by_id and row["erp_code"] in unclaimed:
                by_id[row["omnitron_id"]] = unclaimed.pop(row["erp_code"])
        return by_id

    def plan(self, resource, rows, stored, result):
        """As the base class, but an erp_code held by another store makes the record fail (erp_code is unique)."""
        kept = []
        claimed: dict[str, int] = {}  # erp_code -> the pk (or Omnitron id for new rows) taking it on this page
        for record, row in rows:
            target = stored.get(row["omnitron_id"])
            owner = target[0] if target else -row["omnitron_id"]
            holder = self._holders.get(row["erp_code"])
            if holder is not None and holder[1] != owner:
                who = f"Omnitron id {holder[0]}" if holder[0] is not None else "made in the portal"
                result.fail(resource, record, f"erp_code {row['erp_code']} is already used by the store "
                                              f"{holder[2]!r} ({who}).")
                continue
            if claimed.setdefault(row["erp_code"], owner) != owner:
                result.fail(resource, record, f"erp_code {row['erp_code']} is used twice on the same page.")
                continue
            kept.append((record, row))
        new, changed = super().plan(resource, kept, stored, result)
        # What each updated store changed, for its stock_location.updated event (the date alone is no news).
        self._changed_fields = {}
        for row in changed:
            before = self.comparable(stored[row["omnitron_id"]][1:])
            self._changed_fields[row["_pk"]] = [f for f, old in zip(self.fields, before, strict=True)
                                                if f != "remote_modified_at" and row[f] != old]
        return new, changed

    def write(self, session, resource, new, changed):
        """As the base class, then stock_location.created / .updated events for the stores written."""
        super().write(session, resource, new, changed)
        if new:
            created = session.scalars(select(StockLocation).where(
                StockLocation.omnitron_id.in_([row["omnitron_id"] for row in new]))
                .order_by(StockLocation.omnitron_id).execution_options(populate_existing=True))
            for location in created:
                events.stock_location_created(session, location)
        news = {pk: fields for pk, fields in self._changed_fields.items() if fields}
        if news:
            self._announce(session, news)

    def _announce(self, session: Session, changed: dict[int, list[str]]) -> None:
        """Record stock_location.updated for each store (by pk) with the fields that changed."""
        for location in session.scalars(select(StockLocation).where(StockLocation.id.in_(list(changed)))
                                        .order_by(StockLocation.id).execution_options(populate_existing=True)):
            events.stock_location_updated(session, location, changed=changed[location.id])

    def deactivate_missing(self, session, resource, listed, above, upto):
        """As the base class, then stock_location.updated (is_active) for each store deactivated.

        Stores are a few hundred at most, so their ids are read first to announce them.
        """
        t = self.table
        gone = list(session.scalars(select(t.c.id).where(*self._missing(resource, listed, above, upto))))
        if not gone:
            return 0
        session.execute(update(t).where(t.c.id.in_(gone)).values(self._removed_values()))
        self._announce(session, {pk: ["is_active"] for pk in gone})
        return len(gone)


class ChannelCopier(Copier):
    """Sales channels: web, mobile app, marketplaces, in-store."""

    key = "channels"
    title = "Channels"
    noun = "channels"
    resources = (Resource("channel", CHANNELS_PATH, "channels"),)
    table = Channel.__table__
    fields = ("name", "channel_type", "is_active", "remote_modified_at")

    def row(self, resource: Resource, record: dict) -> dict:
        """A channel."""
        return {"omnitron_id": _id(record, "id"), "name": _text(record, "name", 120),
                "channel_type": _text(record, "channel_type", 40, required=False),
                "is_active": _flag(record, "is_active"), "remote_modified_at": _modified(record)}


COPIERS: dict[str, type[Copier]] = {c.key: c for c in (AddressCopier, StockLocationCopier, ChannelCopier)}
KINDS = tuple(COPIERS)
