"""Seed a benchmark database: N packages (default 1,000,000) across 500 stores, with customers and items.

Usage (from the repository root; the database must be new or hold no packages yet):

    DATABASE_URL=sqlite:////tmp/bench.sqlite .venv/bin/python bench/seed.py [--packages 1000000]
    DATABASE_URL=postgresql+psycopg://portal@127.0.0.1:5433/bench .venv/bin/python bench/seed.py

It runs `flask db upgrade` first (a no-op when the schema is current). Bulk rows go in with SQLAlchemy Core
executemany in big batches on SQLite, and with COPY on PostgreSQL; the secondary indexes of packages and
package_items are dropped during the load and rebuilt from the models afterwards (one sorted build is much
cheaper than a million random B-tree inserts), then ANALYZE runs. Users (1 admin, 1 staff user for each of
the first five stores, and one staff user of the two busiest stores) and the admin's API token go through
portal.accounts.auth, like the CLI.
"""
from __future__ import annotations

import argparse
import bisect
import io
import itertools
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from portal.packages.states import DeliveryType, State  # noqa: E402

ADMIN = ("bench-admin", "bench-admin-pass-1")
STAFF_PASSWORD = "bench-staff-pass-1"
FLOATER = "bench-floater"  # staff of the two busiest stores
STAFF_STORES = 5
BATCH = 50_000
DAYS = 365

CITIES = ["Istanbul", "Ankara", "Izmir", "Bursa", "Antalya", "Konya", "Adana", "Gaziantep", "Kayseri", "Eskisehir"]
FIRST = ["Ali", "Ayşe", "Mehmet", "Fatma", "Can", "Zeynep", "Emre", "Elif", "Burak", "Selin", "Deniz", "Ece",
         "Murat", "Esra", "Kerem", "Derya", "Onur", "Gizem", "Cem", "Merve"]
LAST = ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan", "Doğan",
        "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özdemir", "Polat", "Şimşek", "Erdoğan"]
PRODUCTS = [("Linen shirt", "SHIRT"), ("Denim jacket", "JACKET"), ("Leather belt", "BELT"), ("Sneakers", "SHOE"),
            ("Wool scarf", "SCARF"), ("Chino trousers", "CHINO"), ("Cotton T-shirt", "TEE"), ("Sunglasses", "SUN"),
            ("Knit sweater", "KNIT"), ("Rain coat", "COAT"), ("Canvas bag", "BAG"), ("Ankle socks", "SOCK")]

# The state mix depends on a package's age: the last two days are mostly work in progress, the last two
# weeks a mix, and older packages mostly finished (with a small stuck tail, as real stores have).
RECENT = {State.WAITING: 40, State.WAITING_REMOTE_ACTION: 2, State.PREPARING: 15, State.READY_FOR_PACKAGING: 8,
          State.PACKED: 10, State.READY_FOR_CUSTOMER_PICKUP: 10, State.SHIPPED: 10, State.BLOCKED: 1,
          State.NEEDS_RESCHEDULING: 2, State.OUT_OF_STOCK: 1, State.CANCELLATION_WAITING: 1}
WEEKS = {State.WAITING: 5, State.PREPARING: 3, State.PACKED: 3, State.READY_FOR_CUSTOMER_PICKUP: 12,
         State.SHIPPED: 20, State.ATTEMPTED_DELIVERY: 2, State.DELIVERY_FAILED: 1, State.DELIVERED: 45,
         State.BLOCKED: 1, State.NEEDS_RESCHEDULING: 2, State.CANCELLED: 4, State.OUT_OF_STOCK: 2}
OLD = {State.DELIVERED: 84, State.CANCELLED: 8, State.PACKED_FOR_REFUND: 2, State.DELIVERY_FAILED: 1,
       State.OUT_OF_STOCK: 2, State.NEEDS_RESCHEDULING: 1, State.BLOCKED: 0.3, State.WAITING: 0.5,
       State.SHIPPED: 1.2}
CLICK_COLLECT_ONLY = {State.READY_FOR_CUSTOMER_PICKUP}
CARGO_ONLY = {State.SHIPPED, State.ATTEMPTED_DELIVERY, State.DELIVERY_FAILED}

PACKAGE_COLUMNS = ("id", "number", "order_number", "stock_location_id", "customer_id", "state", "state_before_block",
                   "delivery_type", "delivery_from_store", "item_count", "denial_reason_id", "version",
                   "created_at", "updated_at")
ITEM_COLUMNS = ("id", "package_id", "order_item", "sku", "name", "barcode", "quantity")
CUSTOMER_COLUMNS = ("id", "first_name", "last_name", "phone", "email")


class Timer:
    """Prints how long each step of the seed took."""

    def __init__(self):
        """Start the clock."""
        self.start = self.last = time.perf_counter()

    def step(self, what: str) -> None:
        """Print the time since the previous step."""
        now = time.perf_counter()
        print(f"  {what:<46} {now - self.last:7.1f} s", flush=True)
        self.last = now

    def total(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start


def _table(name: str, columns: tuple[str, ...]) -> sa.TableClause:
    """A lightweight Core table without types, so executemany binds the prepared values as they are."""
    return sa.table(name, *(sa.column(c) for c in columns))


def _cumulative(weights: dict) -> tuple[list[int], list[float]]:
    """States and cumulative weights for bisect-based sampling."""
    states = [int(s) for s in weights]
    return states, list(itertools.accumulate(weights.values()))


def _check_tables() -> tuple[list[int], list[int]]:
    """Weighted digit sums of every 3-digit chunk, for EAN-13 check digits without a per-digit loop."""
    def weighted(n: int, w: tuple[int, int, int]) -> int:
        """Sum of the chunk's digits times the weights."""
        return (n // 100) * w[0] + (n // 10 % 10) * w[1] + (n % 10) * w[2]
    return [weighted(n, (3, 1, 3)) for n in range(1000)], [weighted(n, (1, 3, 1)) for n in range(1000)]


ODD_CHUNK, EVEN_CHUNK = _check_tables()
EAN_PREFIX = "868"  # weights 1,3,1 on 8,6,8: 34


def _ean13(serial: int) -> str:
    """A valid EAN-13 barcode: prefix 868, a 9-digit serial and the check digit."""
    total = 34 + ODD_CHUNK[serial // 1_000_000 % 1000] + EVEN_CHUNK[serial // 1000 % 1000] + ODD_CHUNK[serial % 1000]
    return f"{EAN_PREFIX}{serial:09d}{(10 - total % 10) % 10}"


def _store_weights(stores: int) -> list[float]:
    """Zipf-like store sizes: the first stores are the busiest (the staff users work there)."""
    return list(itertools.accumulate(1 / (rank ** 0.5) for rank in range(1, stores + 1)))


class Generator:
    """Produces the rows in batches, deterministically from a seed; dates are ready-formatted per dialect."""

    def __init__(self, packages: int, store_ids: list[int], customers: int, refuse_reason_id: int,
                 postgres: bool, seed: int):
        """Remember the sizes; ids start at 1 on a fresh database."""
        self.packages, self.store_ids, self.customers = packages, store_ids, customers
        self.refuse_reason_id = refuse_reason_id
        self.postgres = postgres
        self.rng = random.Random(seed)
        # Aware for PostgreSQL (timestamptz); naive UTC for SQLite, which is how UTCDateTime stores it there.
        now = datetime.now(UTC)
        self.now = now if postgres else now.replace(tzinfo=None)
        self.store_cum = _store_weights(len(store_ids))
        self.mixes = [_cumulative(RECENT), _cumulative(WEEKS), _cumulative(OLD)]
        self.item_id = 0

    def customer_batches(self):
        """Yield lists of customer tuples."""
        rng = self.rng
        for start in range(1, self.customers + 1, BATCH):
            rows = []
            for cid in range(start, min(start + BATCH, self.customers + 1)):
                phone = (f"+90 5{30 + int(rng.random() * 30)} {100 + int(rng.random() * 900)} "
                         f"{1000 + int(rng.random() * 9000)}")
                rows.append((cid, FIRST[int(rng.random() * len(FIRST))], LAST[int(rng.random() * len(LAST))], phone,
                             f"customer{cid}@example.com"))
            yield rows

    def package_batches(self):
        """Yield (package tuples, item tuples) per batch; ids grow with creation time, as in production."""
        rng, n = self.rng, self.packages
        span = timedelta(days=DAYS).total_seconds()
        yes, no = (True, False)
        for start in range(1, n + 1, BATCH):
            stop = min(start + BATCH, n + 1)
            stores = rng.choices(self.store_ids, cum_weights=self.store_cum, k=stop - start)
            packages, items = [], []
            for offset, pid in enumerate(range(start, stop)):
                age = (n - pid) / n * span + rng.random() * 60
                mix = self.mixes[0 if age < 2 * 86400 else 1 if age < 14 * 86400 else 2]
                state = mix[0][bisect.bisect(mix[1], rng.random() * mix[1][-1])]
                if state in CLICK_COLLECT_ONLY:
                    click_collect = yes
                elif state in CARGO_ONLY:
                    click_collect = no
                else:
                    click_collect = rng.random() < 0.4
                created = self.now - timedelta(seconds=age)
                updated = created + timedelta(seconds=60 + rng.random() * 3 * 86400) if age > 3 * 86400 else created
                count = 1 if rng.random() < 0.5 else 2 if rng.random() < 0.6 else 3
                packages.append((
                    pid, f"PK{pid:08d}", f"OR{pid * 3 + 10_000_000:09d}", stores[offset],
                    1 + int(rng.random() * self.customers), state,
                    int(State.WAITING) if state == State.BLOCKED else None,
                    DeliveryType.IN_STORE if click_collect else DeliveryType.CARGO, click_collect, count,
                    self.refuse_reason_id if state == State.NEEDS_RESCHEDULING else None,
                    1 if state == State.WAITING else 2 + int(rng.random() * 4),
                    created.isoformat(" "), updated.isoformat(" ")))
                for _ in range(count):
                    self.item_id += 1
                    name, sku = PRODUCTS[int(rng.random() * len(PRODUCTS))]
                    items.append((self.item_id, pid, 50_000_000 + self.item_id,
                                  f"{sku}-{100 + int(rng.random() * 900)}", name, _ean13(self.item_id), 1))
            yield packages, items


def _bulk_indexes():
    """The secondary indexes dropped during the load and rebuilt after it (as the models declare them)."""
    from portal.packages.models import Package, PackageItem

    return list(Package.__table__.indexes) + list(PackageItem.__table__.indexes)


def _load_sqlite(engine, gen: Generator, timer: Timer) -> None:
    """Core executemany in big batches, with synchronous=OFF and WAL during the load."""
    customers, packages, items = (_table("customers", CUSTOMER_COLUMNS), _table("packages", PACKAGE_COLUMNS),
                                  _table("package_items", ITEM_COLUMNS))
    with engine.connect() as conn:
        # These pragmas only apply outside a transaction, hence before the first statement that begins one.
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "foreign_keys=OFF", "cache_size=-1000000",
                       "temp_store=MEMORY"):
            conn.exec_driver_sql(f"PRAGMA {pragma}")
        for index in _bulk_indexes():
            index.drop(conn)
        conn.commit()
        timer.step("dropped secondary indexes")
        for rows in gen.customer_batches():
            conn.execute(customers.insert(), [dict(zip(CUSTOMER_COLUMNS, r, strict=True)) for r in rows])
        conn.commit()
        timer.step(f"{gen.customers:,} customers")
        for package_rows, item_rows in gen.package_batches():
            conn.execute(packages.insert(), [dict(zip(PACKAGE_COLUMNS, r, strict=True)) for r in package_rows])
            conn.execute(items.insert(), [dict(zip(ITEM_COLUMNS, r, strict=True)) for r in item_rows])
            conn.commit()
        timer.step(f"{gen.packages:,} packages, {gen.item_id:,} items")
        for index in _bulk_indexes():
            index.create(conn)
        conn.commit()
        timer.step("rebuilt secondary indexes")
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        timer.step("ANALYZE + WAL checkpoint")


def _copy_text(value) -> str:
    """One field in COPY text format (our generated values never hold tabs, newlines or backslashes)."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value)


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> None:
    """COPY rows into a table through psycopg, written as one text block per batch."""
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(map(_copy_text, row)))
        buffer.write("\n")
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def _load_postgres(engine, gen: Generator, timer: Timer) -> None:
    """COPY through psycopg; foreign-key triggers are skipped for the load (rows are consistent by construction)."""
    with engine.connect() as conn:
        for index in _bulk_indexes():
            index.drop(conn)
        conn.commit()
        timer.step("dropped secondary indexes")
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            superuser = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            if superuser:
                # replica mode skips the per-row foreign-key triggers, which would double the load time.
                cur.execute("SET session_replication_role = replica")
            cur.execute("SET maintenance_work_mem = '512MB'")
            for rows in gen.customer_batches():
                _copy(cur, "customers", CUSTOMER_COLUMNS, rows)
            raw.commit()
            timer.step(f"{gen.customers:,} customers")
            for package_rows, item_rows in gen.package_batches():
                _copy(cur, "packages", PACKAGE_COLUMNS, package_rows)
                _copy(cur, "package_items", ITEM_COLUMNS, item_rows)
            raw.commit()
            timer.step(f"{gen.packages:,} packages, {gen.item_id:,} items")
            if superuser:
                cur.execute("SET session_replication_role = origin")
            for table in ("customers", "packages", "package_items"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
            raw.commit()
        for index in _bulk_indexes():
            index.create(conn)
        conn.commit()
        timer.step("rebuilt secondary indexes")
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        timer.step("VACUUM ANALYZE")


def _create_stores(session, count: int) -> list[int]:
    """500 stores with ERP codes BS-001...; returns their ids, busiest first."""
    from portal.stores.models import StockLocation

    stores = [StockLocation(erp_code=f"BS-{i:03d}", name=f"Bench Store {i:03d}", city=CITIES[i % len(CITIES)],
                            address=f"Bench Street {i}", max_quota=500)
              for i in range(1, count + 1)]
    session.add_all(stores)
    session.commit()
    return [s.id for s in stores]


def _create_users(session) -> str:
    """The admin (with an API token) and one staff user for each of the first stores; returns the token."""
    from portal.accounts import auth

    admin = auth.create_user(session, ADMIN[0], ADMIN[1], "admin", full_name="Bench Admin")
    for i in range(1, STAFF_STORES + 1):
        auth.create_user(session, f"bench-staff-{i}", STAFF_PASSWORD, "staff", [f"BS-{i:03d}"],
                         full_name=f"Bench Staff {i}")
    auth.create_user(session, FLOATER, STAFF_PASSWORD, "staff", ["BS-001", "BS-002"], full_name="Bench Floater")
    return auth.create_api_token(session, admin)


def main(argv=None) -> int:
    """Upgrade the schema, then seed; prints the time of each step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--customers", type=int, default=None, help="default: 80%% of --packages")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL (the seed never writes into the default development database)")

    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.packages.models import DenialReason, Package

    timer = Timer()
    app = create_app()
    with app.app_context():
        upgrade()
        timer.step("flask db upgrade")
        existing = db.session.scalar(sa.select(sa.func.count()).select_from(Package))
        if existing:
            print(f"The database already holds {existing:,} packages; seed a fresh one.", file=sys.stderr)
            return 1
        store_ids = _create_stores(db.session, args.stores)
        token = _create_users(db.session)
        refuse_reason = db.session.scalar(
            sa.select(DenialReason.id).where(DenialReason.is_active.is_(True)).order_by(DenialReason.id))
        timer.step(f"{args.stores} stores, {STAFF_STORES + 2} users, API token")
        db.session.remove()
        postgres = db.engine.dialect.name == "postgresql"
        gen = Generator(args.packages, store_ids, args.customers or max(int(args.packages * 0.8), 1),
                        refuse_reason, postgres, args.seed)
        (_load_postgres if postgres else _load_sqlite)(db.engine, gen, timer)
    print(f"Seeded {args.packages:,} packages on {'postgresql' if postgres else 'sqlite'} in {timer.total():.1f} s.")
    print(f"Logins: {ADMIN[0]} / {ADMIN[1]} (admin); bench-staff-1..{STAFF_STORES} / {STAFF_PASSWORD} "
          f"(staff of BS-001..BS-{STAFF_STORES:03d}, the busiest stores); {FLOATER} / {STAFF_PASSWORD} "
          "(staff of BS-001 and BS-002)")
    print(f"API token of {ADMIN[0]}: {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
