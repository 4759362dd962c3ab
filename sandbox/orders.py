"""The sandbox's orders: generated from the seed, and filtered and sorted the way Omnitron's order list is.

An order has an Omnitron status (the ones ORDER_FILTERING offers), a channel (one of the sandbox's
channels), a customer, a shipping address whose city and township exist in the address tree (with
coordinates when the township has stores nearby), a delivery type (cargo, or in_store with the
pickup store's erp_code for click & collect) and its items (product name, sku, barcode, quantity).

Dates: untouched orders were created between 2024-10-01 and 2024-12-30 in id order and last modified
up to a day and a half later, all before the sandbox's mutation epoch; orders added or changed with
/__sandbox__/mutate carry the mutation's moment, like every other resource.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sandbox.data import Collection, format_date, quick_hash
from sandbox.places import PROVINCES, STREETS

ORDER_EPOCH = datetime(2024, 10, 1, 6, 0, 0, tzinfo=UTC)
ORDER_SPAN_SECONDS = 90 * 86_400
MAX_MODIFIED_LAG_SECONDS = 36 * 3600
# Stores past this many are branches far down the list; pickups and coordinates use the first ones.
PICKUP_STORE_SCAN = 500

# (status, weight): most fetched orders are approved, as in a brand's real order list.
STATUS_WEIGHTS = (("approved", 34), ("waiting", 8), ("payment_waiting", 5), ("confirmation_waiting", 5),
                  ("preparing", 15), ("shipped", 12), ("delivered", 10), ("cancelled", 7), ("refunded", 4))
# (channel id, weight) over the sandbox's named channels (places.CHANNELS, ids from 1).
CHANNEL_WEIGHTS = ((1, 34), (2, 24), (3, 14), (4, 10), (5, 5), (6, 5), (7, 2), (8, 6))
FIRST_NAMES = ("Ali", "Ayşe", "Mehmet", "Fatma", "Can", "Zeynep", "Emre", "Elif", "Burak", "Selin", "Deniz", "Ece",
               "Mert", "Seda", "Kerem", "İrem", "Oğuz", "Gizem", "Hakan", "Büşra")
LAST_NAMES = ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan", "Doğan",
              "Kılıç", "Aslan", "Çetin", "Koç", "Kurt", "Özdemir")
EMAIL_ASCII = str.maketrans("çğıöşüÇĞİÖŞÜ", "cgiosuCGIOSU")
# (name, sku stem, price in TRY)
PRODUCTS = (("Linen shirt", "SHIRT", "899.90"), ("Denim jacket", "JACKET", "1899.90"),
            ("Leather belt", "BELT", "449.90"), ("Sneakers", "SHOE", "2299.90"), ("Wool scarf", "SCARF", "399.90"),
            ("Chino trousers", "CHINO", "1099.90"), ("Cotton T-shirt", "TEE", "349.90"),
            ("Sunglasses", "SUN", "1299.90"), ("Knit sweater", "KNIT", "1199.90"), ("Canvas tote", "TOTE", "299.90"))
COLOURS = (("Black", "BLK"), ("White", "WHT"), ("Navy", "NVY"), ("Beige", "BEI"), ("Olive", "OLV"))
SIZES = ("S", "M", "L", "XL")
ORDERINGS = ("id", "-id", "created_date", "-created_date", "modified_date", "-modified_date")


def ean13(number: int) -> str:
    """An EAN-13 barcode (Turkey's 868 prefix) with a valid check digit, derived from a number."""
    digits = [8, 6, 8] + [int(d) for d in f"{number % 10**9:09d}"]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits + [check]))


def _weighted(choices: tuple[tuple[object, int], ...], roll: int) -> object:
    """The choice a roll lands on, each taking as many slots as its weight."""
    roll %= sum(weight for _, weight in choices)
    for value, weight in choices:
        if roll < weight:
            return value
        roll -= weight
    return choices[-1][0]


class OrderMaker:
    """Builds order number `index` from the seed; the address tree and stores keep the addresses real."""

    def __init__(self, seed: int, base_count: int, tree, stores, store_count: int):
        """Work out once where addresses may be and which stores customers collect from, per city."""
        self.seed = seed
        self.base_count = base_count
        self.step = ORDER_SPAN_SECONDS / max(base_count, 1)
        township_index = {(c, name): i for i, (c, _, name) in enumerate(tree.townships)}
        self.townships = tree.townships
        # Stores whose township is in the tree: a delivery address near one of them gets coordinates.
        self.anchors: list[tuple[int, int, float, float]] = []  # (city index, township index, lat, lon)
        self.pickups: dict[int, list[dict]] = {}  # city index -> stores a customer may collect from
        city_points: dict[int, list[tuple[float, float]]] = {}
        for index in range(min(store_count, PICKUP_STORE_SCAN)):
            store = stores.make(index)
            city = store["city_id"] - 1
            township = township_index.get((city, store["township"]))
            lat, lon = float(store["latitude"]), float(store["longitude"])
            city_points.setdefault(city, []).append((lat, lon))
            if township is not None:
                self.anchors.append((city, township, lat, lon))
            if store["stock_location_type"] == "store":
                self.pickups.setdefault(city, []).append(
                    {"id": store["id"], "erp_code": store["erp_code"], "name": store["name"]})
        self.city_centres = {c: (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
                             for c, points in city_points.items()}
        self.cache: dict[int, dict] = {}

    def roll(self, salt: int, index: int) -> int:
        """A deterministic number for one choice about one order."""
        return quick_hash(self.seed, 100 + salt, index)

    def __call__(self, index: int) -> dict:
        """The order at an index (cached: the list is filtered and sorted on every request)."""
        order = self.cache.get(index)
        if order is None:
            order = self.cache[index] = self.make(index)
        return dict(order)

    def _address(self, index: int, first: str, last: str, phone: str) -> tuple[dict, int]:
        """A shipping address and its city index: mostly near a store (with coordinates), else anywhere."""
        roll = self.roll(3, index)
        if self.anchors and roll % 100 < 75:
            city, township, lat, lon = self.anchors[roll // 100 % len(self.anchors)]
            # Up to about 4 km from the store.
            lat += (self.roll(4, index) % 8001 - 4000) / 100_000
            lon += (self.roll(5, index) % 8001 - 4000) / 100_000
            point: tuple[float, float] | None = (lat, lon)
        else:
            township = roll // 100 % len(self.townships)
            city = self.townships[township][0]
            centre = self.city_centres.get(city)
            point = None
            if centre is not None:
                point = (centre[0] + (self.roll(4, index) % 10001 - 5000) / 100_000,
                         centre[1] + (self.roll(5, index) % 10001 - 5000) / 100_000)
        plate, city_name, _ = PROVINCES[city]
        township_name = self.townships[township][2]
        street = STREETS[self.roll(6, index) % len(STREETS)]
        return {
            "first_name": first, "last_name": last, "phone_number": phone,
            "line": f"{street} No:{self.roll(7, index) % 140 + 1} D:{self.roll(8, index) % 20 + 1}",
            "country": {"id": 1, "name": "Türkiye", "code": "TR"},
            "city": {"id": city + 1, "name": city_name, "code": f"{plate:02d}"},
            "township": {"id": township + 1, "name": township_name},
            "postcode": f"{plate:02d}{self.roll(9, index) % 900 + 100}",
            "latitude": f"{point[0]:.6f}" if point else None,
            "longitude": f"{point[1]:.6f}" if point else None,
        }, city

    def _items(self, index: int) -> list[dict]:
        """One to four order items; a product's colour and size fix its sku and barcode."""
        items = []
        for n in range(self.roll(10, index) % 4 + 1):
            pick = self.roll(11 + n, index)
            product = pick % len(PRODUCTS)
            colour = pick // 7 % len(COLOURS)
            size = pick // 53 % len(SIZES)
            name, stem, price = PRODUCTS[product]
            variant = (product * len(COLOURS) + colour) * len(SIZES) + size
            items.append({"id": (index + 1) * 10 + n, "quantity": 2 if pick % 11 == 0 else 1, "price": price,
                          "product": {"name": f"{name}, {COLOURS[colour][0]}, {SIZES[size]}",
                                      "sku": f"{stem}-{COLOURS[colour][1]}-{SIZES[size]}",
                                      "barcode": ean13(self.seed * 1000 + variant)}})
        return items

    def make(self, index: int) -> dict:
        """Build one order."""
        first = FIRST_NAMES[self.roll(1, index) % len(FIRST_NAMES)]
        last = LAST_NAMES[self.roll(2, index) % len(LAST_NAMES)]
        is_test = self.roll(20, index) % 40 == 0
        if is_test:
            first, last = "Test", "Müşteri"
        digits = self.roll(21, index) % 10**7
        phone = f"+90 5{30 + digits % 30} {digits // 30 % 900 + 100} {digits % 9000 + 1000}"
        email = f"{first}.{last}{index + 1}@example.com".translate(EMAIL_ASCII).lower()
        address, city = self._address(index, first, last, phone)
        delivery_type, pickup = "cargo", None
        stores_here = self.pickups.get(city)
        if stores_here and self.roll(22, index) % 100 < 28:
            delivery_type, pickup = "in_store", stores_here[self.roll(23, index) % len(stores_here)]
        items = self._items(index)
        total = sum(float(item["price"]) * item["quantity"] for item in items)
        created = ORDER_EPOCH + timedelta(seconds=int(index * self.step) + self.roll(24, index) % max(int(self.step), 1))
        modified = created + timedelta(seconds=self.roll(25, index) % MAX_MODIFIED_LAG_SECONDS)
        return {
            "id": index + 1, "number": f"{self.seed % 90 + 10}{index + 1:08d}",
            "status": _weighted(STATUS_WEIGHTS, self.roll(26, index)),
            "channel": _weighted(CHANNEL_WEIGHTS, self.roll(27, index)),
            "is_test": is_test,
            "customer": {"id": 5000 + self.roll(28, index) % 90_000, "first_name": first, "last_name": last,
                         "email": email, "phone_number": phone},
            "shipping_address": address,
            "delivery_type": delivery_type,
            "pickup_store": pickup,
            "currency": "TRY", "amount": f"{total:.2f}",
            "orderitem_set": items,
            "created_date": format_date(created),
            "modified_date": format_date(modified),
        }


@dataclass
class OrderCollection(Collection):
    """The orders resource: like any collection, but its dates come from the orders themselves."""

    def record(self, index: int) -> dict:
        """The order at an index, with any changes applied; added orders are created when they were added."""
        record = self.make(index)
        if index >= self.base_count:
            moment = format_date(self.extras[index - self.base_count])
            record["created_date"] = record["modified_date"] = moment
        override = self.overrides.get(index)
        if override:
            record.update({k: v for k, v in override.items() if k != "_modified"})
            record["modified_date"] = format_date(override["_modified"])
        return record


@dataclass(frozen=True)
class OrderFilters:
    """What the order list was asked for; None means "any"."""

    statuses: frozenset[str] | None = None
    channels: frozenset[int] | None = None
    created_gte: str | None = None
    created_lt: str | None = None
    modified_gt: str | None = None
    modified_gte: str | None = None
    is_test: bool | None = None

    def match(self, order: dict) -> bool:
        """True when the order passes every filter (dates compare as fixed-width UTC text)."""
        return ((self.statuses is None or order["status"] in self.statuses)
                and (self.channels is None or order["channel"] in self.channels)
                and (self.created_gte is None or order["created_date"] >= self.created_gte)
                and (self.created_lt is None or order["created_date"] < self.created_lt)
                and (self.modified_gt is None or order["modified_date"] > self.modified_gt)
                and (self.modified_gte is None or order["modified_date"] >= self.modified_gte)
                and (self.is_test is None or order["is_test"] == self.is_test))


def sort_key(ordering: str) -> Callable[[dict], tuple]:
    """The sort key of an ?ordering= value; the id breaks ties so pages never overlap."""
    field = ordering.lstrip("-")
    if field == "id":
        return lambda order: (order["id"],)
    return lambda order: (order[field], order["id"])


def query(dataset, filters: OrderFilters, ordering: str, offset: int, limit: int) -> tuple[int, list[dict]]:
    """(matching count, one window of orders) of the dataset's orders, filtered and sorted."""
    collection = dataset.get("orders")
    with dataset.lock:
        size = getattr(collection, "size", collection.count)
        deleted: set[int] = getattr(collection, "deleted", set())
        matching = [order for order in (collection.record(i) for i in range(size) if i not in deleted)
                    if filters.match(order)]
    matching.sort(key=sort_key(ordering), reverse=ordering.startswith("-"))
    return len(matching), matching[offset:offset + limit]
