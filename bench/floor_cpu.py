"""CPU and SQL statements per request of a store tablet's four HTML requests, in one process.

Usage (from the repository root):

    .venv/bin/python bench/floor_cpu.py [--database-url URL] [--packages 20000] [--requests 100] [--profile 15]

The four request types of bench/locustfile.py's tablets, sent through Flask's test client (no network, no
gunicorn) by a logged-in staff user of the busiest store (bench/seed.py's bench-staff-1):
  - GET /packages?tab=ready with HX-Request (the list fragment htmx refreshes),
  - GET /packages/<id> of a Packed click & collect package,
  - POST its "ready for pickup" button's form (with the page's CSRF token),
  - POST the handover form with the code the customer's SMS carried.
Each request is timed alone with time.process_time (CPU of this process: app, ORM, driver, test client; the
database server's own work is not in it), so the figures hold on a loaded machine. The SMS of "ready for pickup"
is sent outside the timed request, as a worker does in production. Statements are counted exactly on the engine.

Without --database-url a new SQLite file under /tmp is seeded; with a PostgreSQL URL (an empty database, or
one this script seeded before: it is reused) bench/seed.py seeds it first. --profile N prints cProfile's top N
functions by cumulative time for each request type; --statements the SQL of each type's last request.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUEY_IMMEDIATE", "1")  # an in-memory queue: nothing leaves this process

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')
READY = "ready-for-customer-pickup"
HANDOVER = "self-service-package-delivery"
HX = {"HX-Request": "true"}


def seed(url: str, packages: int) -> None:
    """Seed the database with bench/seed.py (five stores, the first the busiest)."""
    subprocess.run([sys.executable, str(ROOT / "bench" / "seed.py"), "--packages", str(packages), "--stores", "5"],
                   env={**os.environ, "DATABASE_URL": url}, check=True, stdout=subprocess.DEVNULL)


def has_packages(url: str) -> bool:
    """Whether the database was seeded already."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(sa.text("SELECT count(*) FROM packages")))
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def csrf_token(page: str) -> str:
    """The CSRF token a page carries."""
    match = CSRF.search(page)
    if match is None:
        raise SystemExit("no CSRF token on the page")
    return match.group(1) or match.group(2)


class Meter:
    """CPU seconds and SQL statements of each timed request, by request type."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.statements = 0
        self.text: list[str] = []  # the statements of the request being timed
        self.last: dict[str, list[str]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.sql: dict[str, list[int]] = {}
        self.profiles: dict[str, cProfile.Profile] = {}
        self.profiling = False
        self.profiling_wanted = False
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, *_args) -> None:
        self.statements += 1
        self.text.append(" ".join(statement.split())[:160])

    def run(self, name: str, call: Callable[..., object], *args, **kwargs):
        """Call it once with the arguments, timed, counted (and profiled when asked); returns its answer."""
        profile = self.profiles.setdefault(name, cProfile.Profile(time.process_time)) if self.profiling else None
        before = self.statements
        self.text = []
        start = time.process_time()
        if profile is not None:
            profile.enable()
        answer = call(*args, **kwargs)
        if profile is not None:
            profile.disable()
        self.cpu.setdefault(name, []).append(time.process_time() - start)
        self.sql.setdefault(name, []).append(self.statements - before)
        self.last[name] = list(self.text)
        return answer


def packed_ids(store_code: str, limit: int) -> list[int]:
    """Packed click & collect packages of the store."""
    from sqlalchemy import select, update

    from portal.extensions import db
    from portal.packages.models import Package
    from portal.packages.states import DeliveryType, State
    from portal.stores.models import StockLocation

    store_id = db.session.scalar(select(StockLocation.id).where(StockLocation.erp_code == store_code))
    packed = (Package.stock_location_id == store_id, Package.delivery_type == DeliveryType.IN_STORE)
    ids = db.session.scalars(select(Package.id).where(*packed, Package.state == State.PACKED)
                             .order_by(Package.id).limit(limit)).all()
    if len(ids) < limit:
        # The seed's Packed packages are few (recent work only): take delivered ones back to Packed (items
        # carry no state), newest first, so each round has its own package to make ready and hand over.
        more = db.session.scalars(select(Package.id).where(*packed, Package.state == State.DELIVERED)
                                  .order_by(Package.id.desc()).limit(limit - len(ids))).all()
        db.session.execute(update(Package).where(Package.id.in_(more)).values(state=State.PACKED))
        db.session.commit()
        ids = [*ids, *more]
    db.session.remove()
    return list(ids)


def send_code(package_id: int) -> str:
    """Send the package's ready-for-pickup SMS (as the worker does) and return the code it carries."""
    from portal.extensions import db
    from portal.outbox import service
    from portal.sms import MemorySmsProvider

    message = service.latest_sms(db.session, package_id)
    service.deliver_sms(db.session, message.id)
    db.session.remove()
    return re.search(r" is (\d+)\.", MemorySmsProvider.outbox[-1].body).group(1)


def measure(app, meter: Meter, requests: int, warmup: int) -> None:
    """Log in, then send each request type; the first `warmup` rounds are not kept."""
    from bench.seed import STAFF_PASSWORD
    from portal.queue import huey

    huey.immediate = False  # queued, not run: the SMS goes out in send_code, outside the timed request
    client = app.test_client()
    with app.app_context():
        token = csrf_token(client.get("/login").get_data(as_text=True))
        answer = client.post("/login", data={"username": "bench-staff-1", "password": STAFF_PASSWORD,
                                             "csrf_token": token})
        if answer.status_code != 302:
            raise SystemExit(f"login answered {answer.status_code}")
        ids = packed_ids("BS-001", requests + warmup)
    if len(ids) < requests + warmup:
        raise SystemExit(f"only {len(ids)} click & collect packages to use: seed more (--packages)")
    for round_, package_id in enumerate(ids):
        keep = round_ >= warmup
        meter.profiling = keep and meter.profiling_wanted
        timed = meter.run if keep else (lambda _name, call, *args, **kwargs: call(*args, **kwargs))
        with app.app_context():
            listing = timed("GET /packages (fragment)", client.get, "/packages?tab=ready", headers=HX)
            assert listing.status_code == 200, listing.status_code
            page = timed("GET /packages/<id>", client.get, f"/packages/{package_id}")
            assert page.status_code == 200, page.status_code
            token = csrf_token(page.get_data(as_text=True))
            ready = timed("POST ready for pickup", client.post, f"/packages/{package_id}/commands/{READY}",
                          headers=HX, data={"csrf_token": token})
            assert ready.status_code == 200, ready.status_code
        with app.app_context():
            code = send_code(package_id)
        with app.app_context():
            done = timed("POST handover", client.post, f"/packages/{package_id}/commands/{HANDOVER}",
                         headers=HX, data={"csrf_token": token, "otp": code})
            assert done.status_code == 200, done.status_code


def report(meter: Meter, top: int, statements: bool) -> None:
    """The table, then the statements of each type's last request and the profiles (when asked)."""
    print(f"{'request':<28} {'n':>4} {'CPU ms median':>14} {'CPU ms p95':>11} {'SQL/request':>12}")
    for name, values in meter.cpu.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"{name:<28} {len(values):>4} {statistics.median(values) * 1000:>14.2f} {p95 * 1000:>11.2f} "
              f"{statistics.median(meter.sql[name]):>12g}")
    for name, texts in meter.last.items() if statements else ():
        print(f"\n=== {name}: the {len(texts)} statements of the last request ===")
        print("\n".join(texts))
    for name, profile in meter.profiles.items():
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
        print(f"\n=== {name}: top {top} by cumulative time ===")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip() and "function calls" not in line))


def main(argv=None) -> int:
    """Seed if needed, build the app, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="default: a new SQLite file under /tmp (e.g. postgresql+psycopg://portal@host:port/db)")
    parser.add_argument("--packages", type=int, default=20000, help="seed size when the database is empty")
    parser.add_argument("--requests", type=int, default=100, help="timed requests of each type")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's top N per type")
    parser.add_argument("--statements", action="store_true", help="print the SQL of each type's last request")
    args = parser.parse_args(argv)

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='floor-cpu-')}/bench.sqlite"
    if not has_packages(url):
        seed(url, args.packages)

    from portal import create_app
    from portal.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SMS_PROVIDER": "memory", "RATELIMIT_STORAGE_URI": "memory://",
                      "SESSION_COOKIE_SECURE": False, "FORCE_HTTPS": False, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        meter = Meter(db.engine)
    meter.profiling_wanted = bool(args.profile)
    measure(app, meter, args.requests, args.warmup)
    print(f"database: {url.split('@')[-1]}  (CPU of this process, time.process_time; statements exact)")
    report(meter, args.profile, args.statements)
    return 0


if __name__ == "__main__":
    sys.exit(main())
