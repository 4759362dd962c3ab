"""Fixtures: an app per test on each configured database (SQLite and PostgreSQL), clients, and factories.

The schema comes from the real migrations, run once per database per session; between tests every
table is emptied and the reference rows the migrations installed (transitions, denial reasons,
settings) are put back, so each test starts from a freshly migrated database.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest
from flask import g
from flask_migrate import upgrade
from sqlalchemy import insert, select, text

from portal import create_app
from portal.accounts import auth
from portal.extensions import babel, db
from portal.packages.models import Customer, Package, PackageItem
from portal.packages.states import DeliveryType, State
from portal.sms import MemorySmsProvider
from portal.stores.models import StockLocation

REFERENCE_TABLES = ("transitions", "denial_reasons", "application_settings")
# The SSRF guard of outbound URLs (portal/outbound.py) outside a test app: clients built without an app and the
# worker processes the tests start reach the local stubs (base_config says the same for the test apps).
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_TARGETS", "1")
_TMP = tempfile.mkdtemp(prefix="portal-tests-")


def _database_urls() -> dict[str, str]:
    """The databases to run on, from TEST_DATABASES (default: sqlite only)."""
    names = [n.strip() for n in os.environ.get("TEST_DATABASES", "sqlite").split(",") if n.strip()]
    urls = {}
    for name in names:
        if name == "sqlite":
            urls[name] = f"sqlite:///{_TMP}/test.sqlite"
        elif name == "postgresql":
            url = os.environ.get("TEST_DATABASE_URL")
            if not url:
                raise RuntimeError("TEST_DATABASES includes postgresql but TEST_DATABASE_URL is not set.")
            urls[name] = url
        else:
            raise RuntimeError(f"Unknown test database {name!r}.")
    return urls


DATABASES = _database_urls()


def base_config(url: str) -> dict:
    """Settings of a test app on the given database."""
    return {
        "ENV_NAME": "testing", "TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-secret-key",
        "WTF_CSRF_ENABLED": False, "SMS_PROVIDER": "memory", "RATELIMIT_ENABLED": False,
        "SERVER_NAME": None,
        # The stubs of Omnitron, geocoding, stock engines and cargo listen on 127.0.0.1: let the SSRF guard of
        # outbound URLs through (production keeps it strict; tests/test_outbound_ssrf.py turns it back on).
        "OUTBOUND_ALLOW_PRIVATE_TARGETS": True,
    }


@dataclass
class Database:
    """A migrated database and the reference rows to restore before each test."""

    name: str
    url: str
    reference: dict[str, list[dict]]

    def reset(self) -> None:
        """Bring the database back to freshly migrated (inside an app context on it; tests/browser uses this too)."""
        reset_database(self)


_MIGRATED: dict[str, Database] = {}


def _migrated(name: str) -> Database:
    """Run the migrations on a database once per session and remember the reference rows."""
    if name not in _MIGRATED:
        url = DATABASES[name]
        app = create_app(base_config(url))
        with app.app_context():
            if name == "postgresql":
                with db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            upgrade()
            reference = {}
            for table_name in REFERENCE_TABLES:
                table = db.metadata.tables[table_name]
                reference[table_name] = [dict(r._mapping) for r in db.session.execute(select(table))]
            db.session.remove()
            db.engine.dispose()
        _MIGRATED[name] = Database(name, url, reference)
    return _MIGRATED[name]


def reset_database(database: Database) -> None:
    """Empty every table and restore the reference rows (inside an app context)."""
    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if database.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
        for table_name, rows in database.reference.items():
            if rows:
                conn.execute(insert(db.metadata.tables[table_name]), rows)
            if database.name == "postgresql":
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), "
                    f"GREATEST((SELECT MAX(id) FROM {table_name}), 1))"))


@pytest.fixture(params=list(DATABASES), scope="session")
def database(request) -> Database:
    """Each configured database, migrated once."""
    return _migrated(request.param)


@pytest.fixture
def manager(make):
    """A brand manager (webhook subscriptions); a test file that means someone else defines its own."""
    return make.user("brand", role="brand_manager")


@pytest.fixture
def app_config() -> dict:
    """Extra settings a test module may override."""
    return {}


def _forget_cached_user() -> None:
    """Drop the user Flask-Login cached in `g` during an earlier request of the same test."""
    g.pop("_login_user", None)


@pytest.fixture
def app(database, app_config):
    """A portal app on a freshly reset database."""
    app = create_app({**base_config(database.url), **app_config})
    # Requests reuse the test's pushed app context, so Flask-Login's user cached in `g` would pass from
    # one client to the next; every request must find its user from its own session cookie, as in production.
    app.before_request_funcs.setdefault(None, []).insert(0, _forget_cached_user)
    MemorySmsProvider.reset()
    from portal.queue import huey

    # The outbox queues each SMS and webhook on the job queue after commit; in tests they run inline.
    was_immediate, huey.immediate = huey.immediate, True
    try:
        with app.app_context():
            # Flask-Babel keeps loaded catalogues in one cache for the whole process (its Domain is global): a test
            # adding a made-up catalogue must not see the real one loaded earlier, nor leave its own to later tests.
            babel.domain_instance.cache.clear()
            reset_database(database)
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        huey.immediate = was_immediate
    MemorySmsProvider.reset()


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def sms():
    """The in-memory SMS provider's outbox."""
    return MemorySmsProvider


class Factory:
    """Builds stores, users and packages for tests."""

    def __init__(self):
        self.counter = 0

    def _next(self) -> int:
        """A number unique within the test."""
        self.counter += 1
        return self.counter

    def store(self, code: str | None = None, name: str | None = None) -> StockLocation:
        """A store."""
        n = self._next()
        store = StockLocation(erp_code=code or f"STORE-{n}", name=name or f"Store {n}", city="Istanbul")
        db.session.add(store)
        db.session.commit()
        return store

    def user(self, username: str | None = None, role: str = "staff", stores: list[StockLocation] | None = None,
             password: str = "correct-horse-1"):
        """A user; staff get a new store unless stores are given."""
        if role == "staff" and not stores:
            stores = [self.store()]
        return auth.create_user(db.session, username or f"user{self._next()}", password, role,
                                [s.erp_code for s in stores or []])

    def package(self, store: StockLocation | None = None, state: int = State.WAITING, click_collect: bool = True,
                items: int = 2, phone: str = "+905551112233") -> Package:
        """A package with items and a customer."""
        n = self._next()
        store = store or self.store()
        package = Package(
            number=f"PK{n:07d}", order_number=f"ORD{n:06d}", stock_location=store, state=state,
            customer=Customer(first_name="Ada", last_name=f"Customer{n}", phone=phone),
            delivery_type=DeliveryType.IN_STORE if click_collect else DeliveryType.CARGO,
            delivery_from_store=click_collect, item_count=items)
        for i in range(items):
            package.items.append(PackageItem(order_item=n * 100 + i, sku=f"SKU-{n}-{i}", name=f"Item {i + 1}",
                                             barcode=f"8680000{n:03d}{i:03d}"))
        db.session.add(package)
        db.session.commit()
        return package


@pytest.fixture
def make(app) -> Factory:
    """Factories for test data."""
    return Factory()


class AuthActions:
    """Logs a test client in and out, as the login form does."""

    def __init__(self, client):
        self._client = client

    def login(self, username: str, password: str = "correct-horse-1"):
        """Post the login form."""
        return self._client.post("/login", data={"username": username, "password": password})

    def logout(self):
        """Post the logout form."""
        return self._client.post("/logout")


@pytest.fixture
def auth_actions(client) -> AuthActions:
    """Login helper bound to the test client."""
    return AuthActions(client)


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL-only tests on SQLite runs (they are collected once per database)."""
    for item in items:
        if item.get_closest_marker("postgres_only"):
            callspec = getattr(item, "callspec", None)
            if callspec and callspec.params.get("database") != "postgresql":
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL"))


@pytest.fixture
def immediate_queue(app):
    """The job queue, running tasks at once in this process: every test's app already does (see app)."""
    from portal.queue import huey

    assert huey.immediate
    return huey


@pytest.fixture
def store(make):
    """The store Zeynep works in (the store-floor tests; browser tests have their own)."""
    return make.store("IST-KDK", "Kadıköy Store")


@pytest.fixture
def zeynep(make, store, auth_actions):
    """Staff of the Kadıköy store, logged in."""
    user = make.user("zeynep", stores=[store])
    assert auth_actions.login("zeynep").status_code == 302
    return user


@pytest.fixture
def redis_url():
    """A throwaway redis-server on a free port (CI installs Debian's redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
