"""The sandbox's records: generated on demand from a seed, so 100,000 addresses cost no memory.

Every resource is a `Collection` of records numbered 0..count-1 (id = index + 1). A record is computed
from its index and the seed each time it is asked for; only changes made through `mutate` (a few
overridden fields, a list of added records, the set of deleted ones) are kept in memory. A deleted
record drops out of its list and its detail answers 404; ids are never reused.

Dates: untouched records carry a modified_date in early 2024 that grows with the id; every change
made by `mutate` is stamped after 2025-01-01 and later than the change before it. That ordering lets a
`modified_date__gt` filter be answered with arithmetic instead of a scan.
"""
from __future__ import annotations

import bisect
import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox.places import CHANNELS, NEIGHBOURHOOD_TIERS, NEIGHBOURHOODS, PROVINCES, STOCK_LOCATIONS, STREETS

BASE_EPOCH = datetime(2024, 1, 2, 8, 0, 0, tzinfo=UTC)
MUTATION_EPOCH = datetime(2025, 1, 1, 9, 0, 0, tzinfo=UTC)
BASE_STEP_SECONDS = 11
# Keeps every untouched record's date (BASE_EPOCH + index * 11 s) before MUTATION_EPOCH.
MAX_RECORDS = 2_000_000
MUTABLE_ADD = ("districts", "stock_locations", "channels", "orders")


def quick_hash(seed: int, salt: int, index: int) -> int:
    """A deterministic 32-bit hash of (seed, salt, index): the sandbox's "random" choices, cheap per record."""
    x = (index * 2654435761 + salt * 40503 + seed * 2246822519) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 2246822519) & 0xFFFFFFFF
    return x ^ (x >> 13)


def format_date(moment: datetime) -> str:
    """A UTC moment as the DRF timestamp Omnitron sends ("2024-01-02T08:00:11.000000Z"); sorts as text."""
    # isoformat is far faster than strftime or astimezone, which matters at 100,000 records a sync;
    # every moment the sandbox makes is already in UTC, so only "+00:00" needs turning into "Z".
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


@functools.lru_cache(maxsize=512)
def _day_text(day: int) -> str:
    """The date part of BASE_EPOCH + day days."""
    return (BASE_EPOCH + timedelta(days=day)).date().isoformat()


def base_date_text(index: int) -> str:
    """format_date(BASE_EPOCH + index * BASE_STEP_SECONDS), by integer arithmetic: the hot path of every page."""
    day, rest = divmod(BASE_EPOCH.hour * 3600 + index * BASE_STEP_SECONDS, 86_400)
    return f"{_day_text(day)}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}.000000Z"


def parse_date(text: str) -> datetime:
    """Parse an ISO 8601 timestamp ("Z" or an offset; naive means UTC). Raises ValueError."""
    # A "+" in a query string arrives as a space when the client did not escape it.
    text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text.strip()).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """Microseconds since BASE_EPOCH."""
    delta = moment - BASE_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class Selection:
    """An id-ordered list of record indexes made of a few parts (lists or ranges), sliced without copying."""

    def __init__(self, parts: Sequence[Sequence[int]]):
        self.parts = [part for part in parts if len(part)]

    def __len__(self) -> int:
        """How many indexes the selection holds."""
        return sum(len(part) for part in self.parts)

    def window(self, offset: int, limit: int) -> list[int]:
        """The indexes at positions offset .. offset+limit-1."""
        out: list[int] = []
        for part in self.parts:
            if limit <= 0:
                break
            if offset >= len(part):
                offset -= len(part)
                continue
            chunk = part[offset:offset + limit]
            out.extend(chunk)
            limit -= len(chunk)
            offset = 0
        return out


@dataclass
class Collection:
    """One resource (countries, districts, ...): generated records plus the changes made to them."""

    name: str
    base_count: int
    make: Callable[[int], dict]
    extras: list[datetime] = field(default_factory=list)  # modified time of each added record
    overrides: dict[int, dict] = field(default_factory=dict)  # index -> changed fields (+ "_modified")
    deleted: set[int] = field(default_factory=set)  # indexes deleted through mutate (reset brings them back)

    @property
    def size(self) -> int:
        """Records ever made (ids 1..size), deleted ones included."""
        return self.base_count + len(self.extras)

    @property
    def count(self) -> int:
        """Records currently in the resource."""
        return self.size - len(self.deleted)

    def exists(self, index: int) -> bool:
        """True when a record with this index was made and not deleted."""
        return 0 <= index < self.size and index not in self.deleted

    def _without_deleted(self, part: Sequence[int]) -> list[Sequence[int]]:
        """A part of a selection minus the deleted indexes; a range is cut around them, not listed out."""
        if not self.deleted:
            return [part]
        if not isinstance(part, range):
            return [[i for i in part if i not in self.deleted]]
        pieces, start = [], part.start
        for index in sorted(i for i in self.deleted if part.start <= i < part.stop):
            pieces.append(range(start, index))
            start = index + 1
        return [*pieces, range(start, part.stop)]

    def base_modified(self, index: int) -> datetime:
        """When an untouched record was last modified."""
        if index < self.base_count:
            return BASE_EPOCH + timedelta(seconds=index * BASE_STEP_SECONDS)
        return self.extras[index - self.base_count]

    def record(self, index: int) -> dict:
        """The record at an index, with any changes applied."""
        record = self.make(index)
        override = self.overrides.get(index)
        if override:
            record.update({k: v for k, v in override.items() if k != "_modified"})
            record["modified_date"] = format_date(override["_modified"])
        elif index < self.base_count:
            record["modified_date"] = base_date_text(index)
        else:
            record["modified_date"] = format_date(self.base_modified(index))
        return record

    def selection(self, modified_after: datetime | None = None) -> Selection:
        """Indexes in id order, optionally only those modified after a moment."""
        if modified_after is None:
            return Selection(self._without_deleted(range(self.size)))
        step = BASE_STEP_SECONDS * 1_000_000
        # Untouched base records are dated BASE_EPOCH + index * step, so the newer ones are a suffix.
        base_start = min(max(_micros(modified_after) // step + 1, 0), self.base_count)
        # Added records are dated in the order they were added, so the newer ones are a suffix as well.
        extra_start = bisect.bisect_right(self.extras, modified_after)
        changed = sorted(i for i, o in self.overrides.items() if o["_modified"] > modified_after)
        parts = [
            [i for i in changed if i < base_start],
            range(base_start, self.base_count),
            [i for i in changed if self.base_count <= i < self.base_count + extra_start],
            range(self.base_count + extra_start, self.size),
        ]
        return Selection([piece for part in parts for piece in self._without_deleted(part)])


class AddressTree:
    """Turkey's provinces and townships, with a configurable number of districts spread over the townships."""

    def __init__(self, seed: int, district_count: int):
        self.seed = seed
        self.district_count = district_count
        self.cities = PROVINCES
        # townships[i] = (city index, position within the city, name)
        self.townships = [(c, p, name) for c, (_, _, names) in enumerate(PROVINCES) for p, name in enumerate(names)]
        self.per_township, self.remainder = divmod(district_count, len(self.townships))
        # Worked out once: districts are generated on every page request, up to 100,000+ a sync.
        self.township_keys = [(c + 1, f"{PROVINCES[c][0]:02d}{p + 1:02d}") for c, p, _ in self.townships]
        self.district_names = [[f"{tier}{name} Mahallesi" for name in NEIGHBOURHOODS] for tier in NEIGHBOURHOOD_TIERS]

    def country(self, index: int) -> dict:
        """The one country."""
        return {"id": 1, "name": "Türkiye", "code": "TR", "parent": None, "is_active": True}

    def city(self, index: int) -> dict:
        """A province, numbered by its licence-plate code."""
        plate, name, _ = self.cities[index]
        return {"id": index + 1, "name": name, "code": f"{plate:02d}", "country": 1, "parent": 1,
                "is_active": True}

    def township(self, index: int) -> dict:
        """A township (ilçe) of a province."""
        city_index, position, name = self.townships[index]
        plate = self.cities[city_index][0]
        return {"id": index + 1, "name": name, "code": f"{plate:02d}{position + 1:02d}", "city": city_index + 1,
                "parent": city_index + 1, "is_active": True}

    def locate_district(self, index: int) -> tuple[int, int]:
        """(township index, position within the township) of a district."""
        townships = len(self.townships)
        if index >= self.district_count:
            # Districts added later go round the townships, after each township's own districts.
            extra = index - self.district_count
            township = extra % townships
            base = self.per_township + (1 if township < self.remainder else 0)
            return township, base + extra // townships
        big = self.per_township + 1
        if index < self.remainder * big:
            return divmod(index, big)
        township, position = divmod(index - self.remainder * big, self.per_township)
        return self.remainder + township, position

    def district(self, index: int) -> dict:
        """A district (mahalle): a neighbourhood name unique within its township."""
        township, position = self.locate_district(index)
        city_id, code_prefix = self.township_keys[township]
        count = len(NEIGHBOURHOODS)
        # Each township starts the name list at a different place so neighbours do not look alike.
        repeat, tier = divmod(position // count, len(NEIGHBOURHOOD_TIERS))
        name = self.district_names[tier][(position + township * 37) % count]
        if repeat:
            name = f"{name[:-10]} {repeat + 1}. Kısım Mahallesi"
        # About one district in fifty has been merged into a neighbour and is inactive.
        is_active = quick_hash(self.seed, 4, index) % 50 != 0
        return {"id": index + 1, "name": name, "code": f"{code_prefix}{position + 1:04d}", "township": township + 1,
                "city": city_id, "parent": township + 1, "is_active": is_active}


class StockLocations:
    """About a hundred stores and a few warehouses in the big cities, with coordinates."""

    def __init__(self, seed: int, tree: AddressTree):
        self.seed = seed
        self.tree = tree
        self.stores_only = [s for s in STOCK_LOCATIONS if s[6] == "store"]
        self.city_index = {plate: i for i, (plate, _, _) in enumerate(PROVINCES)}

    def make(self, index: int) -> dict:
        """A stock location; past the named list, more branches of the named stores."""
        if index < len(STOCK_LOCATIONS):
            code, name, plate, township, lat, lon, kind = STOCK_LOCATIONS[index]
        else:
            extra = index - len(STOCK_LOCATIONS)
            cycle, position = divmod(extra, len(self.stores_only))
            code, name, plate, township, lat, lon, kind = self.stores_only[position]
            code, name = f"{code}-{cycle + 2}", f"{name} {cycle + 2}"
            # A second branch sits a little away from the first: up to about 2 km.
            lat += (quick_hash(self.seed, 5, index) % 4001 - 2000) / 100_000
            lon += (quick_hash(self.seed, 6, index) % 4001 - 2000) / 100_000
        city_index = self.city_index[plate]
        city = PROVINCES[city_index][1]
        street = STREETS[quick_hash(self.seed, 7, index) % len(STREETS)]
        number = quick_hash(self.seed, 8, index) % 180 + 1
        return {
            "id": index + 1, "name": name, "erp_code": code, "stock_location_type": kind,
            "city": city, "city_id": city_index + 1, "township": township,
            "address": f"{street} No:{number}, {township}/{city}",
            "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}", "is_active": True,
        }


def channel(index: int) -> dict:
    """A sales channel; past the named list, more marketplaces."""
    if index < len(CHANNELS):
        name, kind, active = CHANNELS[index]
    else:
        name, kind, active = f"Pazaryeri {index - len(CHANNELS) + 1}", "marketplace", True
    return {"id": index + 1, "name": name, "channel_type": kind, "is_active": active}


class Dataset:
    """Every resource of the sandbox, plus the changes tests and admins make between runs (thread-safe)."""

    def __init__(self, seed: int = 2024, address_count: int = 3000, store_count: int = 100, order_count: int = 300):
        if not all(0 <= n <= MAX_RECORDS for n in (address_count, store_count, order_count)):
            raise ValueError(f"Record counts must be between 0 and {MAX_RECORDS}.")
        self.seed = seed
        self.lock = threading.Lock()
        self.generation = 0
        tree = AddressTree(seed, address_count)
        stores = StockLocations(seed, tree)
        self.collections = {
            "countries": Collection("countries", 1, tree.country),
            "cities": Collection("cities", len(tree.cities), tree.city),
            "townships": Collection("townships", len(tree.townships), tree.township),
            "districts": Collection("districts", address_count, tree.district),
            "stock_locations": Collection("stock_locations", store_count, stores.make),
            "channels": Collection("channels", len(CHANNELS), channel),
        }
        from sandbox.orders import OrderCollection, OrderMaker  # orders build on Collection, defined here

        self.collections["orders"] = OrderCollection(
            "orders", order_count, OrderMaker(seed, order_count, tree, stores, store_count))

    def get(self, name: str) -> Collection:
        """A collection by resource name. Raises KeyError."""
        return self.collections[name]

    def page(self, name: str, offset: int, limit: int,
             modified_after: datetime | None = None) -> tuple[int, list[dict]]:
        """(matching count, records at offset..offset+limit-1) of a resource, in id order."""
        collection = self.collections[name]
        with self.lock:
            selection = collection.selection(modified_after)
            return len(selection), [collection.record(i) for i in selection.window(offset, limit)]

    def detail(self, name: str, record_id: int) -> dict | None:
        """One record by id, or None."""
        collection = self.collections[name]
        with self.lock:
            if not collection.exists(record_id - 1):
                return None
            return collection.record(record_id - 1)

    def mutate(self, name: str, update: int = 0, ids: list[int] | None = None, changes: dict | None = None,
               add: int = 0, delete: list[int] | None = None) -> dict:
        """Change some records (default: flip is_active), add new ones and delete some by id.

        Changed and added records get a new modified_date; deleted ones leave the list (as when
        Omnitron deletes a record) until reset(). Raises KeyError for an unknown resource and
        ValueError for ids out of range or deleted, or adding to a resource whose records cannot be
        invented (countries, cities, townships).
        """
        collection = self.collections[name]
        if changes and {"id", "modified_date"} & set(changes):
            raise ValueError("id and modified_date cannot be changed; modified_date moves by itself.")
        if add and name not in MUTABLE_ADD:
            raise ValueError(f"Records can be added only to {', '.join(MUTABLE_ADD)}.")
        with self.lock:
            self.generation += 1
            moment = MUTATION_EPOCH + timedelta(seconds=61 * self.generation)
            count = collection.size
            chosen = [i - 1 for i in ids or []]
            doomed = {i - 1 for i in delete or []}
            if any(not collection.exists(i) for i in (*chosen, *doomed)):
                raise ValueError(f"{name} ids run from 1 to {count}, without the deleted ones.")
            update = min(update, collection.count)
            if update:
                # Spread the changed records over the whole range, a little differently each generation.
                gap = count // update
                chosen += [i * count // update + self.generation % gap for i in range(update)]
                chosen = [i for i in chosen if collection.exists(i)]
            for index in sorted(set(chosen)):
                current = collection.record(index)
                # Without explicit changes a record is switched on or off; an order (no is_active) is only touched.
                fields = dict(changes) if changes else (
                    {"is_active": not current["is_active"]} if "is_active" in current else {})
                collection.overrides[index] = {**collection.overrides.get(index, {}), **fields, "_modified": moment}
            collection.extras.extend([moment] * add)
            collection.deleted |= doomed
            return {"resource": name, "generation": self.generation, "updated_ids": sorted({i + 1 for i in chosen}),
                    "added_ids": list(range(count + 1, count + add + 1)),
                    "deleted_ids": sorted(i + 1 for i in doomed), "count": collection.count}

    def reset(self) -> None:
        """Forget every change: the data is as generated from the seed again."""
        with self.lock:
            for collection in self.collections.values():
                collection.extras.clear()
                collection.overrides.clear()
                collection.deleted.clear()
            self.generation = 0
