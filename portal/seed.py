"""Demo data: stores, users for every role, and about 200 packages moved through the real command engine."""
from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.accounts import auth
from portal.accounts.models import Role, User
from portal.db_types import utcnow
from portal.outbox import service as outbox
from portal.packages import commands, quota
from portal.packages.models import Customer, DenialReason, Package, PackageItem, PackageLog
from portal.packages.states import DeliveryType, State
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting
from portal.stores.models import StockLocation

DEMO_STORES = [
    # erp_code, name, city, lat, lon, kind
    ("IST-KDK", "Kadıköy Store", "Istanbul", "40.990200", "29.029300", "store"),
    ("IST-BSK", "Beşiktaş Store", "Istanbul", "41.042900", "29.007500", "store"),
    ("ANK-KZL", "Kızılay Store", "Ankara", "39.920800", "32.854100", "store"),
    ("IZM-ALS", "Alsancak Store", "Izmir", "38.437300", "27.142300", "store"),
    ("BRS-NLF", "Nilüfer Store", "Bursa", "40.213200", "28.986300", "store"),
    ("WH-CENTRAL", "Central Warehouse", "Kocaeli", "40.765500", "29.940800", "warehouse"),
]

DEMO_USERS = [
    # username, password, role, stores, full name
    ("admin", "admin-demo-1", Role.ADMIN.value, [], "Ayşe Admin"),
    ("manager", "manager-demo-1", Role.BRAND_MANAGER.value, [], "Mehmet Manager"),
    ("kadikoy", "kadikoy-demo-1", Role.STAFF.value, ["IST-KDK"], "Zeynep Kadıköy"),
    ("besiktas", "besiktas-demo-1", Role.STAFF.value, ["IST-BSK"], "Can Beşiktaş"),
    ("floater", "floater-demo-1", Role.STAFF.value, ["IST-KDK", "IST-BSK"], "Elif Floater"),
]

FIRST = ["Ali", "Ayşe", "Mehmet", "Fatma", "Can", "Zeynep", "Emre", "Elif", "Burak", "Selin", "Deniz", "Ece"]
LAST = ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan", "Doğan"]
PRODUCTS = [("Linen shirt", "SHIRT"), ("Denim jacket", "JACKET"), ("Leather belt", "BELT"), ("Sneakers", "SHOE"),
            ("Wool scarf", "SCARF"), ("Chino trousers", "CHINO"), ("Cotton T-shirt", "TEE"), ("Sunglasses", "SUN")]

# Target state -> slugs to run from Waiting; None means "set directly" (no command leads there yet).
PATHS = {
    State.WAITING: [],
    State.PREPARING: ["deallocate-package-reservations"],
    State.PACKED: ["complete-packaging-without-shipment"],
    State.READY_FOR_CUSTOMER_PICKUP: ["complete-packaging-without-shipment", "ready-for-customer-pickup"],
    State.SHIPPED: ["complete-packaging-from-waiting", "ship-the-package"],
    State.BLOCKED: ["block-the-package-for-action-from-waiting"],
    State.NEEDS_RESCHEDULING: ["refuse-with-denial-reason-from-waiting"],
    State.DELIVERED: None, State.READY_FOR_PACKAGING: None, State.CANCELLED: None, State.OUT_OF_STOCK: None,
}
WEIGHTS = {State.WAITING: 45, State.PREPARING: 20, State.PACKED: 20, State.READY_FOR_CUSTOMER_PICKUP: 30,
           State.SHIPPED: 20, State.BLOCKED: 6, State.NEEDS_RESCHEDULING: 6, State.DELIVERED: 30,
           State.READY_FOR_PACKAGING: 10, State.CANCELLED: 8, State.OUT_OF_STOCK: 5}


def ean13(rng: random.Random) -> str:
    """A random EAN-13 barcode with a valid check digit."""
    digits = [8, 6, 8] + [rng.randrange(10) for _ in range(9)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits + [check]))


def seed_stores(session: Session) -> dict[str, StockLocation]:
    """Create the demo stores (idempotent by ERP code)."""
    stores = {}
    for code, name, city, lat, lon, kind in DEMO_STORES:
        store = session.scalar(select(StockLocation).where(StockLocation.erp_code == code))
        if store is None:
            store = StockLocation(erp_code=code, name=name, city=city, kind=kind, latitude=Decimal(lat),
                                  longitude=Decimal(lon), max_quota=500, address=f"{name}, {city}",
                                  language="tr")  # Istanbul stores: their customers read Turkish
            session.add(store)
        stores[code] = store
    session.commit()
    return stores


def seed_users(session: Session) -> list[tuple[str, str, str]]:
    """Create the demo users (skipping existing ones); returns (username, password, role) to print."""
    created = []
    for username, password, role, stores, full_name in DEMO_USERS:
        if session.scalar(select(User).where(User.username == username)) is None:
            auth.create_user(session, username, password, role, stores, full_name=full_name)
        created.append((username, password, role))
    return created


def seed_packages(session: Session, count: int = 200, seed: int = 42) -> int:
    """Create packages across states; states reachable by commands are reached through the engine."""
    rng = random.Random(seed)
    stores = list(session.scalars(select(StockLocation).order_by(StockLocation.id)))
    system = session.scalar(select(User).where(User.role == Role.ADMIN.value).order_by(User.id))
    reason = session.scalar(select(DenialReason).where(DenialReason.is_active.is_(True)).order_by(DenialReason.id))
    if system is None or reason is None:
        raise RuntimeError("Seed the users first, and keep at least one active denial reason.")
    start = (session.scalar(select(func.max(Package.id))) or 0) + 1
    states = list(WEIGHTS)
    weights = [WEIGHTS[s] for s in states]
    now = utcnow()
    for n in range(start, start + count):
        target = rng.choices(states, weights)[0]
        click_collect = target in (State.READY_FOR_CUSTOMER_PICKUP, State.PACKED) or (
            target not in (State.SHIPPED,) and rng.random() < 0.45)
        store = stores[rng.randrange(2)] if rng.random() < 0.6 else rng.choice(stores)
        customer = Customer(first_name=rng.choice(FIRST), last_name=rng.choice(LAST),
                            phone=f"+90 5{rng.randrange(30, 60)} {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}")
        created = now - timedelta(minutes=rng.randrange(5, 60 * 24 * 9))
        package = Package(
            number=f"PK{n:07d}", order_number=f"ORD{100000 + n * 7}", stock_location=store, customer=customer,
            delivery_type=DeliveryType.IN_STORE if click_collect else DeliveryType.CARGO,
            delivery_from_store=click_collect, created_at=created, updated_at=created, state=State.WAITING)
        for i in range(rng.randrange(1, 5)):
            name, sku = rng.choice(PRODUCTS)
            # Every fifth line asks for 2 or 3 units (packing counts them up), without touching rng's sequence.
            quantity = 2 + n % 2 if (n + i) % 5 == 0 else 1
            package.items.append(PackageItem(order_item=n * 10 + i, sku=f"{sku}-{rng.randrange(100, 999)}",
                                             name=name, barcode=ean13(rng), quantity=quantity))
        if n % 4 == 0:
            _add_same_name_item(package, n)
        package.item_count = len(package.items)
        session.add(package)
        session.commit()
        _move(session, package, target, system, reason)
    return count


def _add_same_name_item(package: Package, n: int) -> None:
    """A second line with the first line's name but another size, SKU and barcode, as packing meets them."""
    first = package.items[0]
    other = random.Random(n)
    package.items.append(PackageItem(order_item=n * 10 + 9, sku=f"{first.sku.split('-')[0]}-{other.randrange(100, 999)}",
                                     name=first.name, barcode=ean13(other), quantity=1))


def _move(session: Session, package: Package, target: State, user: User, reason: DenialReason) -> None:
    """Bring a new package to the target state, through commands where a path exists."""
    path = PATHS[target]
    if path is None:
        session.add(PackageLog(package_id=package.id, from_state=State.WAITING, to_state=target,
                               command="demo-import", user_id=user.id, note="Imported in this state."))
        session.execute(update(Package).where(Package.id == package.id).values(state=target))
        session.commit()
        return
    for slug in path:
        params: dict[str, object] = {}
        if slug.startswith("complete-packaging-from"):
            params = {"barcodes": [{"order_item": i.order_item, "barcode": i.barcode} for i in package.items]}
        elif slug.startswith("refuse"):
            params = {"denial_reason": reason.id}
        commands.run_command(session, package.id, slug=slug, params=params, user_id=user.id, store_ids=None)


def seed_demo(session: Session, packages: int = 200) -> list[tuple[str, str, str]]:
    """Stores, users and packages for the demo; returns the logins to print."""
    seed_stores(session)
    logins = seed_users(session)
    if (session.scalar(select(func.count()).select_from(Package)) or 0) == 0:
        seed_packages(session, packages)
        quota.recount(session)  # the packages were created in Waiting directly, not planned by an import
        session.commit()
        send_seeded_sms(session)
    seed_omnitron_login(session)
    return logins


def send_seeded_sms(session: Session) -> int:
    """Send the SMS the seeded packages queued (pickup codes) now, through the configured provider.

    With the console provider they print here, where scripts/run-demo writes them to a file, instead of
    flooding the terminal when the worker starts. Returns how many were sent.
    """
    tried: set[int] = set()
    while batch := [m.id for m in outbox.pending_sms(session, limit=100) if m.id not in tried]:
        for message_id in batch:
            tried.add(message_id)  # one try each: a failed message waits for the worker's retry
            outbox.deliver_sms(session, message_id)
    return len(tried)


def seed_omnitron_login(session: Session) -> None:
    """Save the bundled sandbox's login in OMNITRON_CLIENT_SETTINGS, unless a login is already stored."""
    if session.scalar(select(ApplicationSetting.id).where(ApplicationSetting.key == settings.OMNITRON_CLIENT_SETTINGS)):
        return
    settings.set_value(session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": "oms.application", "password": "sandbox-password"}}, user_id=None)
