"""Browser tests: a real portal on 127.0.0.1, driven by Debian's Chromium through Playwright.

Every test gets its own server thread on a freshly reset database, so the browser sees exactly what
a store's tablet would: real CSRF, real sessions, htmx, the CSP. Like the rest of the suite, each test
runs on every database in TEST_DATABASES (SQLite and PostgreSQL under scripts/test): the `database`
fixture of tests/conftest.py migrates each once per session with the real migrations, and
Database.reset() empties it before each test, keeping the rows the migrations installed. The SMS
provider is the in-memory one, so a test reads the pickup code the customer would have received.
Each test runs at 1024x768 (landscape tablet) and 768x1024 (portrait), with touch enabled: ids read
like [sqlite-landscape-chromium] and [postgresql-portrait-chromium].
"""
from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from portal import create_app
from portal.accounts import auth
from portal.accounts.models import User
from portal.db_types import utcnow
from portal.extensions import db
from portal.packages import commands
from portal.packages.models import Customer, Package, PackageItem
from portal.packages.states import DeliveryType, State
from portal.queue import huey
from portal.sms import MemorySmsProvider
from portal.stores.models import StockLocation

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENS = ROOT / "test-artifacts" / "screens"
VIEWPORTS = {"landscape": {"width": 1024, "height": 768}, "portrait": {"width": 768, "height": 1024}}
STAFF_PASSWORD = "counter-pass-1"
# Generous for a loaded 2-core machine; a passing run never waits this long.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(config, items):
    """Every test here is a browser test; skip them all when Chromium is missing."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
            if not os.path.exists(CHROMIUM):
                item.add_marker(pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}"))


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """Debian's Chromium, not a Playwright download (none can be downloaded here)."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args():
    """No plugin-wide context options: each context is made for its tablet below.

    (This also keeps pytest-playwright's fallback base_url fixture, a method-style session fixture
    that pytest 9 deprecates, out of the run.)
    """
    return {}


def _config(url: str) -> dict:
    """A test portal as a user meets it: real CSRF, memory SMS, no rate limits to trip over."""
    return {
        "ENV_NAME": "testing", "TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "browser-test-secret",
        "WTF_CSRF_ENABLED": True, "SMS_PROVIDER": "memory", "RATELIMIT_ENABLED": False, "SERVER_NAME": None,
        "PAGE_SIZE": 10, "LOG_LEVEL": "WARNING", "OUTBOUND_ALLOW_PRIVATE_TARGETS": True,
    }


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without a log line per request."""

    def log_request(self, *args, **kwargs):
        """Stay quiet: pytest shows failures, not access logs."""


@dataclass
class LiveServer:
    """A portal served over HTTP in a background thread."""

    app: object
    url: str
    database: str

    @contextmanager
    def session(self):
        """A database session in an app context of the served app, as the server sees the data."""
        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()


@pytest.fixture
def live_server(database):
    """A real portal on 127.0.0.1 and a free port, on a freshly reset database (each of TEST_DATABASES).

    The server is threaded, as in production: the app's engine gives PostgreSQL a pool (DB_POOL_SIZE,
    10 plus overflow) and SQLite a busy timeout, so concurrent requests each get their own connection.
    """
    app = create_app(_config(database.url))
    with app.app_context():
        database.reset()
    MemorySmsProvider.reset()
    # The outbox hands each SMS to the job queue after commit; here the queue runs it inline, in the
    # request, so the code is in the memory provider's outbox when the page answers (as tests/conftest.py).
    was_immediate, huey.immediate = huey.immediate, True
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    # A short poll: shutdown() waits up to one interval, and the default 0.5 s adds up over the suite.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-portal",
                              daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.port}", database=database.name)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        # Joins the request threads too (socketserver's block_on_close), so every connection is back in
        # the pool before it is disposed: none is left open, or holding a lock the next reset would wait on.
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        huey.immediate = was_immediate
        MemorySmsProvider.reset()


FIRST = ["Ayşe", "Mehmet", "Zeynep", "Can", "Elif", "Emre", "Selin", "Burak", "Deniz", "Ece", "Ali", "Fatma"]
LAST = ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan", "Doğan"]
PRODUCTS = ["Linen shirt", "Denim jacket", "Leather belt", "Sneakers", "Wool scarf", "Chino trousers"]


class Store:
    """Test data for one store's floor: the store, a staff login and packages."""

    def __init__(self, live: LiveServer):
        self.live = live
        self.counter = 0
        with live.session() as session:
            store = StockLocation(erp_code="IST-KDK", name="Kadıköy Store", city="Istanbul")
            session.add(store)
            session.commit()
            self.store_id = store.id
            auth.create_user(session, "zeynep", STAFF_PASSWORD, "staff", ["IST-KDK"], full_name="Zeynep Kaya")
        self.username, self.password = "zeynep", STAFF_PASSWORD

    def package(self, state: int = State.WAITING, click_collect: bool = True, items: int = 2,
                age: timedelta = timedelta(hours=2)) -> dict:
        """A package of this store with items and a customer; returns its plain values."""
        self.counter += 1
        n = self.counter
        with self.live.session() as session:
            created = utcnow() - age
            package = Package(
                number=f"PK{1040 + n:07d}", order_number=f"ORD{700100 + n * 7}", stock_location_id=self.store_id,
                state=state, delivery_type=DeliveryType.IN_STORE if click_collect else DeliveryType.CARGO,
                delivery_from_store=click_collect, item_count=items, created_at=created, updated_at=created,
                customer=Customer(first_name=FIRST[n % len(FIRST)], last_name=LAST[n % len(LAST)],
                                  phone=f"+90 532 {100 + n:03d} {4000 + n:04d}"))
            for i in range(items):
                package.items.append(PackageItem(
                    order_item=n * 10 + i, sku=f"SKU-{n}-{i}", name=PRODUCTS[(n + i) % len(PRODUCTS)],
                    barcode=f"868{n:05d}{i:05d}"))
            session.add(package)
            session.commit()
            return {"id": package.id, "number": package.number, "order_number": package.order_number,
                    "items": [{"id": it.id, "order_item": it.order_item, "name": it.name, "barcode": it.barcode}
                              for it in package.items]}

    def make_ready(self, package: dict) -> dict:
        """Run "Ready For Customer Pickup" through the command engine, as the staff user: a real code is sent."""
        with self.live.session() as session:
            user = session.scalar(select(User).where(User.username == self.username))
            commands.run_command(session, package["id"], slug="ready-for-customer-pickup", user_id=user.id,
                                 store_ids=[self.store_id])
        return package

    def state_of(self, package_id: int) -> int:
        """The package's state as stored now."""
        with self.live.session() as session:
            return session.get(Package, package_id).state


@pytest.fixture
def store(live_server) -> Store:
    """A store with a staff user and no packages yet."""
    return Store(live_server)


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    """The tablet's orientation: landscape 1024x768 and portrait 768x1024."""
    return request.param


@pytest.fixture
def viewport_size(viewport) -> dict:
    """The tablet's screen in CSS pixels, for the orientation."""
    return VIEWPORTS[viewport]


@pytest.fixture
def context(live_server, viewport_size, new_context):
    """A touch tablet's browser, in the store's language and time zone, pointed at the live portal.

    The server is set up first so that it is torn down last, after the browser has let go of it.
    """
    context = new_context(viewport=viewport_size, has_touch=True, base_url=live_server.url,
                          locale="en-GB", timezone_id="Europe/Istanbul")
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def page(context, csp_violations):
    """A page that records Content-Security-Policy violations and page errors (tests assert none)."""
    page = context.new_page()
    page.on("console", lambda msg: csp_violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda error: csp_violations.append(f"page error: {error}"))
    return page


def _wait_until(page, expression: str, timeout: float = 5.0) -> None:
    """Poll `expression` in the page from Python until it is truthy.

    Playwright's own wait_for_function re-evaluates its predicate with eval() on the page's
    timers, which the portal's CSP (no 'unsafe-eval') rightly refuses once the first check fails.
    page.evaluate goes through the DevTools protocol instead, which the CSP does not govern.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression!r} still false after {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def wait_until():
    """Wait for a page expression to become truthy without breaking the CSP (see _wait_until)."""
    return _wait_until


@pytest.fixture
def csp_violations() -> list[str]:
    """Console messages about the CSP and uncaught script errors, which a finished page never has."""
    return []


def _suffix(request, viewport: str) -> str:
    """The orientation and database for file names, so the runs on each database keep their own files."""
    database = getattr(request.node, "callspec", None) and request.node.callspec.params.get("database")
    return f"{viewport}-{database}" if database else viewport


@pytest.fixture
def screenshot(request, viewport):
    """Save a screenshot to test-artifacts/screens/<name>-<orientation>-<database>.png (git-ignored), for people."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(request, viewport)

    def take(page, name: str, full_page: bool = True) -> Path:
        """Screenshot the page (or just the screen, for a modal) as the tablet shows it."""
        path = SCREENS / f"{name}-{suffix}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return take


@pytest.fixture
def log_in():
    """Log in through the login form, as staff do at the start of a shift."""
    def log_in(page, store: Store) -> None:
        """Fill the login form and land on the package list."""
        page.goto("/login")
        page.get_by_label("Username").fill(store.username)
        page.get_by_label("Password").fill(store.password)
        page.get_by_role("button", name="Log in").tap()
        page.wait_for_url(re.compile(r"/packages$"))
        # The browser focuses [autofocus] on a rendering update that may come after "load": a scan typed
        # before it would lose its first characters (seen on a loaded machine), so wait as staff would.
        expect(page.locator("#search")).to_be_focused()
    return log_in


# Interactive things a finger can hit. Hidden inputs and anything not rendered are left out in JS.
TARGETS_JS = """
(scopeSelector) => {
  const describe = (e) => {
    const text = (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().replace(/\\s+/g, ' ');
    return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (text ? ' "' + text.slice(0, 40) + '"' : '');
  };
  const seen = new Set();
  const out = [];
  for (const scope of document.querySelectorAll(scopeSelector)) {
    for (const e of scope.querySelectorAll(
        'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], [tabindex]')) {
      if (seen.has(e) || !e.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
      seen.add(e);
      const r = e.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      out.push({what: describe(e), command: e.matches('button, [role=button], input[type=submit]'),
                width: r.width, height: r.height, left: r.left, right: r.right, top: r.top, bottom: r.bottom});
    }
  }
  return out;
}
"""

# Anything that sticks out past the right edge of the viewport, and the document's own scroll width.
OVERFLOW_JS = """
() => {
  const width = window.innerWidth;
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!e.checkVisibility()) continue;
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 0.5) {
      out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined ?
               '.' + String(e.className).split(' ').join('.') : '') + ' right=' + Math.round(r.right));
    }
  }
  return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: width, sticking_out: out.slice(0, 10)};
}
"""

AXE_RUN_JS = """
() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})
  .then(result => result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + n.failureSummary.replace(/\\s+/g, ' '))})))
"""


class Ux:
    """Measures the store floor's UX targets (sizes, touch, accessibility) on a page, and keeps the figures."""

    MIN_TARGET = 44
    MIN_GAP = 8

    def __init__(self, viewport: str):
        self.viewport = viewport
        self.figures: dict[str, dict] = {}

    def overflow(self, page) -> dict:
        """The document's scroll width against the viewport, and elements past the right edge."""
        return page.evaluate(OVERFLOW_JS)

    def targets(self, page, scope: str) -> list[dict]:
        """Every visible interactive element inside the scope (e.g. "main" or "dialog[open]")."""
        return page.evaluate(TARGETS_JS, scope)

    def small_targets(self, targets: list[dict]) -> list[str]:
        """Targets smaller than 44x44 CSS px, described for a human."""
        return [f"{t['what']}: {t['width']:.0f}x{t['height']:.0f}" for t in targets
                if t["width"] < self.MIN_TARGET - 0.5 or t["height"] < self.MIN_TARGET - 0.5]

    def crowded_commands(self, targets: list[dict]) -> list[str]:
        """Pairs of command buttons closer than 8 px to each other."""
        commands = [t for t in targets if t["command"]]
        crowded = []
        for i, a in enumerate(commands):
            for b in commands[i + 1:]:
                dx = max(b["left"] - a["right"], a["left"] - b["right"], 0)
                dy = max(b["top"] - a["bottom"], a["top"] - b["bottom"], 0)
                if max(dx, dy) < self.MIN_GAP - 0.5:
                    crowded.append(f"{a['what']} <-> {b['what']}: {max(dx, dy):.0f} px")
        return crowded

    def axe(self, page) -> list[dict]:
        """axe-core's WCAG 2.2 AA violations on the page.

        The portal's CSP allows scripts only from 'self', which blocks page.add_script_tag (an inline
        script). page.evaluate runs through the DevTools protocol, which the CSP does not govern, so
        axe is injected that way and the page keeps its real CSP.
        """
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(axe_source() + "\n;0")
        return page.evaluate(AXE_RUN_JS)

    def check(self, page, name: str, scope: str = "main, header") -> dict:
        """Measure one screen: overflow, touch targets, spacing, axe. Records and returns the figures."""
        # A scope that matches nothing (a modal that never opened) would measure nothing and pass.
        expect(page.locator(scope).first).to_be_visible()
        overflow = self.overflow(page)
        targets = self.targets(page, scope)
        figures = {
            "scroll_width": overflow["scrollWidth"], "inner_width": overflow["innerWidth"],
            "sticking_out": overflow["sticking_out"],
            "targets": len(targets),
            "min_target_width": round(min((t["width"] for t in targets), default=0), 1),
            "min_target_height": round(min((t["height"] for t in targets), default=0), 1),
            "small_targets": self.small_targets(targets),
            "crowded_commands": self.crowded_commands(targets),
            "axe_violations": self.axe(page),
        }
        self.figures[name] = figures
        return figures


@functools.cache
def axe_source() -> str:
    """axe-core's script, read once from node_modules (pinned in package.json)."""
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture
def ux(request, viewport):
    """UX measurements for this orientation, saved to test-artifacts/ux/<test>-<orientation>[-<database>].json."""
    measurements = Ux(viewport)
    yield measurements
    if measurements.figures:
        folder = ROOT / "test-artifacts" / "ux"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{request.node.originalname}-{_suffix(request, viewport)}.json"
        path.write_text(json.dumps(measurements.figures, indent=2, ensure_ascii=False), encoding="utf-8")

