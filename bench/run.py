"""Benchmark the store floor against a database seeded by bench/seed.py, and write the figures as markdown.

Usage (from the repository root):

    DATABASE_URL=sqlite:////tmp/bench.sqlite .venv/bin/python bench/run.py [--iterations 200] [--warmup 20]

In one run it measures, each with many iterations after a warm-up, p50 and p95 in milliseconds of:
  - the staff package list filtered by store and status (GET /packages?status=100 as bench-staff-1, the busiest
    store), as a full page and as the htmx fragment (HX-Request: true);
  - the staff home of a member of two stores (bench-floater), no filter: the list across both stores;
  - the admin list across all stores: the first page and page 10,000 (25 rows a page, reached through the
    keyset cursor `after`, found once with an OFFSET query outside the timing);
  - the command API (POST /api/v1/oms/packages/{id}/command/ with a token; every iteration moves a different
    Waiting package to Preparing), or commands.run_command() directly when the route does not exist.
Server time is the time around the Flask test client's call, in process (no network, no gzip: the client sends
no Accept-Encoding). Each list is also timed as the domain query alone (queries.list_packages) and as the raw
SQL that fetches the same rows through the DBAPI connection; portal time / raw SQL time is the yardstick.
Every statement each page issues is EXPLAINed (PostgreSQL: EXPLAIN (ANALYZE, BUFFERS); SQLite: EXPLAIN QUERY
PLAN plus the VM steps it takes), and a plan that scans a large table fails the check.
The markdown goes to bench/results/<database>.md (gitignored) for the lead to paste.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select, text  # noqa: E402

PAGE = 25
DEEP_PAGE = 10_000
STAFF_USER, STAFF_PASSWORD = "bench-staff-1", "bench-staff-pass-1"
FLOATER_USER = "bench-floater"  # staff of the two busiest stores
SLOW_MS, SLOW_ITERATIONS = 50.0, 20  # a figure slower than this per call gets fewer iterations
MAX_ROWS_READ = 10_000  # a statement reading more rows than this (or ~100k SQLite VM steps) fails the plan check
ADMIN_USER, ADMIN_PASSWORD = "bench-admin", "bench-admin-pass-1"
COMMAND_SLUG = "deallocate-package-reservations"
LIST_TARGET_MS = 50.0
DEEP_RATIO_TARGET = 1.5
# Tables whose size grows with the business; a full scan of any of them fails the plan check.
LARGE_TABLES = ("packages", "customers", "package_items", "package_logs", "outbox_messages", "pickup_codes",
                "otp_attempts", "idempotency_records")

LIST_COLUMNS = "p.*, s.*, c.*"
LIST_FROM = ("FROM packages p LEFT OUTER JOIN stock_locations s ON s.id = p.stock_location_id "
             "LEFT OUTER JOIN customers c ON c.id = p.customer_id")


def wait_for_quiet(threshold: float, timeout: float) -> str:
    """Wait (up to timeout seconds) until the 1-minute load average falls below threshold; say what we saw.

    The machine may be shared (test suites, browsers): measuring while it is busy inflates every p95.
    """
    deadline = time.monotonic() + timeout
    load = os.getloadavg()[0]
    while load >= threshold and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return f"{load:.2f}" + ("" if load < threshold else f" (still above {threshold} after waiting {timeout:.0f} s)")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a list of numbers."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


@dataclass
class Timing:
    """Samples of one measurement, in milliseconds, and the full garbage collections that ran meanwhile."""

    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    full_gcs: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        """Median."""
        return percentile(self.samples, 50)

    @property
    def p95(self) -> float:
        """95th percentile."""
        return percentile(self.samples, 95)

    @property
    def cpu_p95(self) -> float:
        """95th percentile of this process's CPU time: unlike wall time, barely moved by other busy processes."""
        return percentile(self.cpu, 95)


def timed(fn, iterations: int, warmup: int, after=None) -> Timing:
    """Call fn warmup + iterations times; time each call; `after` runs between calls, outside the timing."""
    return timed_together([fn], iterations, warmup, after)[0]


def timed_together(fns: list, iterations: int, warmup: int, after=None) -> list[Timing]:
    """Time several calls interleaved (in turn, the order rotating each round), so that each sees the same
    conditions: a comparison between them (first page / deep page) is not skewed by load that comes and goes."""
    timings = [Timing() for _ in fns]
    running = [0]
    gc_started = [0.0]

    def watch_gc(phase, info):
        """Time the full (generation 2) collections: each one stalls the request it lands in."""
        if info["generation"] != 2:
            return
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            timings[running[0]].full_gcs.append((time.perf_counter() - gc_started[0]) * 1000)
    for i in range(warmup + iterations):
        if i == warmup:
            gc.callbacks.append(watch_gc)
        for turn in range(len(fns)):
            k = (i + turn) % len(fns)
            running[0] = k
            start, cpu_start = time.perf_counter(), time.thread_time()
            fns[k](i)
            elapsed, cpu = (time.perf_counter() - start) * 1000, (time.thread_time() - cpu_start) * 1000
            if i >= warmup:
                timings[k].samples.append(elapsed)
                timings[k].cpu.append(cpu)
            if after is not None:
                after()
    gc.callbacks.remove(watch_gc)
    return timings


@dataclass
class Row:
    """One line of the figures table."""

    name: str
    portal: Timing
    query: Timing | None
    raw: Timing

    def ratio(self, pct: str) -> float:
        """Portal time / raw SQL time at a percentile."""
        return getattr(self.portal, pct) / max(getattr(self.raw, pct), 1e-9)


@dataclass
class Plan:
    """The plan of one statement a page issues, and whether it reads a bounded number of rows."""

    scenario: str
    statement: str
    lines: list[str]
    work: str
    ok: bool
    why: str


class Capture:
    """Records the SQL statements an engine runs while the block is open."""

    def __init__(self, engine):
        """Remember the engine."""
        self.engine, self.statements = engine, []

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        """Keep the statement and its parameters."""
        self.statements.append((statement, parameters))

    def __enter__(self):
        """Start listening."""
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        """Stop listening."""
        event.remove(self.engine, "before_cursor_execute", self._record)


class Bench:
    """Holds the app, the database handles and the results of one run."""

    def __init__(self, iterations: int, warmup: int):
        """Create the app the way production does, with an API rate limit the benchmark cannot reach."""
        from portal import create_app
        from portal.extensions import db

        # The default API limit (600 a minute) would throttle the command loop; everything else is as deployed.
        self.app = create_app({"API_RATE_LIMIT": "1000000 per minute"})
        self.db = db
        self.iterations, self.warmup = iterations, warmup
        with self.app.app_context():
            self.engine = db.engine
        self.dialect = self.engine.dialect.name
        self.postgres = self.dialect == "postgresql"
        self.rows: list[Row] = []
        self.plans: list[Plan] = []
        self.notes: list[str] = []
        self.facts: dict[str, str] = {}

    def sql(self, statement: str) -> str:
        """Our raw SQL is written with ? placeholders; psycopg wants %s."""
        return statement.replace("?", "%s") if self.postgres else statement

    def login(self, username: str, password: str):
        """A test client logged in through the real login form (with its CSRF token)."""
        client = self.app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page)
        response = client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": token.group(1) if token else ""})
        if response.status_code != 302:
            raise SystemExit(f"Login of {username} failed ({response.status_code}); was the database seeded?")
        return client

    def prepare(self) -> None:
        """Find the users, the deep-page cursor, the Waiting packages to command, and make an API token."""
        from portal.accounts import auth
        from portal.accounts.models import User
        from portal.packages.models import Package
        from portal.packages.states import State

        db = self.db
        with self.app.app_context():
            self.staff = db.session.scalar(select(User).where(User.username == STAFF_USER))
            self.admin = db.session.scalar(select(User).where(User.username == ADMIN_USER))
            if self.staff is None or self.admin is None:
                raise SystemExit("The benchmark users are missing: run bench/seed.py first.")
            self.staff_store = self.staff.store_ids[0]
            floater = db.session.scalar(select(User).where(User.username == FLOATER_USER))
            self.floater_stores = sorted(floater.store_ids) if floater is not None else None
            self.staff_id, self.admin_id = self.staff.id, self.admin.id
            self.api_key = auth.create_api_token(db.session, self.admin)
            total = db.session.scalar(select(text("count(*)")).select_from(Package))
            deep_offset = (DEEP_PAGE - 1) * PAGE - 1
            self.deep_after = db.session.execute(
                text("SELECT id FROM packages ORDER BY id DESC LIMIT 1 OFFSET :o"), {"o": deep_offset}).scalar()
            if self.deep_after is None:
                raise SystemExit(f"Only {total:,} packages: page {DEEP_PAGE:,} does not exist.")
            staff_matches = db.session.scalar(
                select(text("count(*)")).select_from(Package)
                .where(Package.stock_location_id == self.staff_store, Package.state == State.WAITING))
            waiting = list(db.session.scalars(select(Package.id).where(Package.state == State.WAITING)))
            db.session.remove()
        per_loop = self.warmup + self.iterations
        needed = 3 * per_loop + 1
        if len(waiting) < needed:
            raise SystemExit(f"Only {len(waiting)} Waiting packages; the command loops need {needed}.")
        random.Random(7).shuffle(waiting)
        self.waiting = [waiting[i * per_loop:(i + 1) * per_loop] for i in range(3)]
        self.explain_id = waiting[3 * per_loop]
        self.facts.update({
            "packages": f"{total:,}",
            "staff filter": f"store {self.staff_store} (the busiest), status 100 Waiting: {staff_matches:,} rows",
            "deep page": f"page {DEEP_PAGE:,} = after id {self.deep_after:,} (rows {deep_offset + 2:,}-"
                         f"{deep_offset + 1 + PAGE:,} newest first)",
        })

    def raw_connection(self):
        """A DBAPI connection from the portal's own engine (same pragmas/settings as the app uses)."""
        return self.engine.raw_connection()

    def raw_select(self, statement: str, params: tuple, iterations: int | None = None) -> Timing:
        """Time a raw SELECT (execute + fetchall) through the DBAPI; a fresh transaction each time, as the ORM."""
        return self.raw_selects([(statement, params)], iterations)[0]

    def raw_selects(self, statements: list[tuple[str, tuple]], iterations: int | None = None) -> list[Timing]:
        """Time raw SELECTs interleaved, each through the DBAPI connection in a fresh transaction."""
        conn = self.raw_connection()

        def runner(statement: str, params: tuple):
            """A call that executes and fetches one statement."""
            sql = self.sql(statement)

            def run(_):
                """Execute and fetch."""
                cursor = conn.cursor()
                cursor.execute(sql, params)
                rows = cursor.fetchall()
                cursor.close()
                if not rows:
                    raise SystemExit(f"raw SQL found no rows: {statement}")
            return run
        try:
            return timed_together([runner(st, pa) for st, pa in statements], iterations or self.iterations,
                                  self.warmup, after=conn.rollback)
        finally:
            conn.close()

    def probe_ms(self, statement: str, params: tuple) -> float:
        """One run of a raw SELECT, in ms: decides how many iterations a slow figure gets."""
        conn = self.raw_connection()
        try:
            start = time.perf_counter()
            self._fetch(conn, statement, params)
            return (time.perf_counter() - start) * 1000
        finally:
            conn.rollback()
            conn.close()

    def _fetch(self, conn, statement: str, params: tuple) -> None:
        """Execute and fetch through a DBAPI cursor."""
        cursor = conn.cursor()
        cursor.execute(self.sql(statement), params)
        cursor.fetchall()
        cursor.close()

    def query_list(self, filters_args: dict, store_ids, iterations: int | None = None) -> Timing:
        """Time queries.list_packages alone, in a fresh session each time (as a request has)."""
        return self.query_lists([(filters_args, store_ids)], iterations)[0]

    def query_lists(self, specs: list[tuple[dict, list | None]], iterations: int | None = None) -> list[Timing]:
        """Time several list_packages calls interleaved, each in a fresh session."""
        from portal.packages import queries

        def runner(filters_args: dict, store_ids):
            """A call that fetches one page through the domain function."""
            filters = queries.PackageFilters.from_args(filters_args)

            def run(_):
                """One page."""
                page = queries.list_packages(self.db.session, filters, store_ids, limit=PAGE)
                if len(page.packages) != PAGE:
                    raise SystemExit(f"list_packages returned {len(page.packages)} rows for {filters_args}")
            return run
        with self.app.app_context():
            return timed_together([runner(f, ids) for f, ids in specs], iterations or self.iterations, self.warmup,
                                  after=self.db.session.remove)

    def http_get(self, client, url: str, fragment: bool, iterations: int | None = None) -> Timing:
        """Time GET url through the test client; checks the answer once before timing."""
        return self.http_gets(client, [url], fragment, iterations)[0]

    def http_gets(self, client, urls: list[str], fragment: bool, iterations: int | None = None) -> list[Timing]:
        """Time GETs interleaved through one logged-in test client; checks each answer once before timing."""
        def runner(url: str):
            """A call that requests one URL (as htmx does when fragment is true)."""
            headers = {"HX-Request": "true", "HX-Target": "package-table",
                       "HX-Current-URL": "http://localhost" + url} if fragment else {}
            first = client.get(url, headers=headers)
            body = first.get_data(as_text=True)
            rows = body.count('id="package-row-')
            if first.status_code != 200 or rows != PAGE or (fragment and "<html" in body):
                raise SystemExit(f"GET {url} (fragment={fragment}) answered {first.status_code} with {rows} rows")

            def run(_):
                """One request."""
                response = client.get(url, headers=headers)
                response.get_data()
                if response.status_code != 200:
                    raise SystemExit(f"GET {url} answered {response.status_code}")
            return run
        return timed_together([runner(u) for u in urls], iterations or self.iterations, self.warmup)

    def measure_lists(self) -> None:
        """The staff list and the admin list (first and deep page): HTTP page, fragment, query, raw SQL."""
        staff, admin = self.login(STAFF_USER, STAFF_PASSWORD), self.login(ADMIN_USER, ADMIN_PASSWORD)
        staff_raw = self.raw_select(
            f"SELECT {LIST_COLUMNS} {LIST_FROM} WHERE p.stock_location_id = ? AND p.state = ? "
            f"ORDER BY p.id DESC LIMIT {PAGE + 1}", (self.staff_store, 100))
        staff_query = self.query_list({"status": "100"}, [self.staff_store])
        for fragment in (False, True):
            kind = "htmx fragment" if fragment else "full page"
            self.rows.append(Row(f"Staff list, store + status, first page ({kind})",
                                 self.http_get(staff, "/packages?status=100", fragment), staff_query, staff_raw))
        # The first and the deep page are timed in turn, so that both see the same machine.
        first_raw, deep_raw = self.raw_selects([
            (f"SELECT {LIST_COLUMNS} {LIST_FROM} ORDER BY p.id DESC LIMIT {PAGE + 1}", ()),
            (f"SELECT {LIST_COLUMNS} {LIST_FROM} WHERE p.id < ? ORDER BY p.id DESC LIMIT {PAGE + 1}",
             (self.deep_after,))])
        first_query, deep_query = self.query_lists([({}, None), ({"after": str(self.deep_after)}, None)])
        for fragment in (False, True):
            kind = "htmx fragment" if fragment else "full page"
            first, deep = self.http_gets(admin, ["/packages", f"/packages?after={self.deep_after}"], fragment)
            self.rows.append(Row(f"Admin list, all stores, first page ({kind})", first, first_query, first_raw))
            self.rows.append(Row(f"Admin list, all stores, page {DEEP_PAGE:,} ({kind})", deep, deep_query,
                                 deep_raw))
        self.clients = (staff, admin)
        self.measure_floater()

    def measure_floater(self) -> None:
        """A staff member of two stores, home page without filters: `stock_location_id IN (a, b)`, newest first."""
        if self.floater_stores is None:
            self.notes.append(f"No {FLOATER_USER} user in this database (seeded by an older bench/seed.py): the "
                              "two-store staff list was not measured.")
            return
        floater = self.login(FLOATER_USER, STAFF_PASSWORD)
        probes = []
        for _ in range(3):
            start = time.perf_counter()
            floater.get("/packages")
            probes.append((time.perf_counter() - start) * 1000)
        slow = min(probes) > SLOW_MS
        n = SLOW_ITERATIONS if slow else self.iterations
        suffix = f", n={n}" if slow else ""
        a, b = self.floater_stores
        # The yardstick is the SQL that fetches these rows cheaply: one keyset range per store, merged.
        branch = (f"SELECT id FROM (SELECT id FROM packages WHERE stock_location_id = ? ORDER BY id DESC "
                  f"LIMIT {PAGE + 1}) AS newest")
        raw = self.raw_select(f"SELECT {LIST_COLUMNS} {LIST_FROM} WHERE p.id IN ({branch} UNION ALL {branch}) "
                              f"ORDER BY p.id DESC LIMIT {PAGE + 1}", (a, b))
        query = self.query_list({}, [a, b], n)
        for fragment in (False, True):
            kind = "htmx fragment" if fragment else "full page"
            self.rows.append(Row(f"Staff list, 2 stores, all statuses, first page ({kind}{suffix})",
                                 self.http_get(floater, "/packages", fragment, n), query, raw))
        in_sql = (f"SELECT {LIST_COLUMNS} {LIST_FROM} WHERE p.stock_location_id IN (?, ?) "
                  f"ORDER BY p.id DESC LIMIT {PAGE + 1}")
        n_in = SLOW_ITERATIONS if min(self.probe_ms(in_sql, (a, b)) for _ in range(3)) > SLOW_MS \
            else self.iterations
        in_list = self.raw_select(in_sql, (a, b), n_in)
        self.notes.append(f"Two-store staff list: the raw SQL yardstick is one keyset range per store, merged "
                          f"(the shape the multi-store change gives list_packages). The same rows "
                          f"through `stock_location_id IN (a, b) ORDER BY id DESC LIMIT 26` (the shape of the "
                          f"current query) take p50 {in_list.p50:.2f} / p95 {in_list.p95:.2f} ms (n={n_in}).")
        self.floater_client = floater

    def has_command_route(self) -> bool:
        """True when the API's command endpoint is registered."""
        return any(rule.rule.startswith("/api/") and rule.rule.endswith("/command/")
                   for rule in self.app.url_map.iter_rules())

    def measure_command(self) -> None:
        """The command API (or run_command directly), and the raw SQL transaction doing the same work."""
        from portal.packages import commands
        from portal.packages.models import Transition

        with self.app.app_context():
            transition = self.db.session.scalar(select(Transition).where(Transition.slug == COMMAND_SLUG))
            transition_id = transition.id
            self.db.session.remove()
        api_ids, direct_ids, raw_ids = self.waiting

        def direct(i):
            """run_command() on the next Waiting package, in a fresh session."""
            result = commands.run_command(self.db.session, direct_ids[i], slug=COMMAND_SLUG, user_id=self.admin_id,
                                          store_ids=None, visibility="OMS_WEB")
            if result.to_state != 200:
                raise SystemExit("run_command did not move the package to Preparing")
        with self.app.app_context():
            direct_timing = timed(direct, self.iterations, self.warmup, after=self.db.session.remove)

        raw_timing = self.raw_command(raw_ids, transition_id)
        if self.has_command_route():
            client = self.app.test_client()
            headers = {"Authorization": f"Token {self.api_key}"}

            def api(i):
                """POST the command for the next Waiting package."""
                package_id = api_ids[i]
                response = client.post(f"/api/v1/oms/packages/{package_id}/command/", headers=headers,
                                       json={"slug": COMMAND_SLUG, "input_parameters": {"package": package_id}})
                if response.status_code != 204:
                    raise SystemExit(f"command API answered {response.status_code}: {response.get_data(True)}")
            api_timing = timed(api, self.iterations, self.warmup)
            self.rows.append(Row(f"Command API, POST .../command/ ({COMMAND_SLUG})", api_timing, direct_timing,
                                 raw_timing))
        else:
            self.notes.append("The command API route did not exist when this ran: the command row times "
                              "commands.run_command() directly (the domain call the route makes).")
            self.rows.append(Row(f"Command, run_command() direct ({COMMAND_SLUG})", direct_timing, None, raw_timing))

    def raw_command(self, package_ids: list[int], transition_id: int) -> Timing:
        """The same work by hand: lock, read package + store + customer, check transition, update, audit, commit."""
        conn = self.raw_connection()
        lock = self.sql("UPDATE packages SET version = version WHERE id = ?")
        read = self.sql(f"SELECT p.version, {LIST_COLUMNS} {LIST_FROM} WHERE p.id = ?")
        transition = self.sql("SELECT * FROM transitions WHERE slug = ?")
        move = self.sql("UPDATE packages SET state = ?, version = version + 1, updated_at = ? "
                        "WHERE id = ? AND state = ? AND version = ?")
        audit = self.sql("INSERT INTO package_logs (package_id, from_state, to_state, transition_id, command, "
                         "user_id, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        from portal.db_types import utcnow

        def run(i):
            """One command transaction."""
            package_id = package_ids[i]
            cursor = conn.cursor()
            cursor.execute(lock, (package_id,))
            cursor.execute(read, (package_id,))
            package = cursor.fetchone()
            cursor.execute(transition, (COMMAND_SLUG,))
            cursor.fetchone()
            now = utcnow()
            stamp = now if self.postgres else now.strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor.execute(move, (200, stamp, package_id, 100, package[0]))
            if cursor.rowcount != 1:
                raise SystemExit(f"raw command did not move package {package_id}")
            cursor.execute(audit, (package_id, 100, 200, transition_id, COMMAND_SLUG, self.admin_id, "", stamp))
            conn.commit()
            cursor.close()
        try:
            return timed(run, self.iterations, self.warmup)
        finally:
            conn.close()

    def explain_all(self) -> None:
        """EXPLAIN every statement each measured request issues."""
        staff, admin = self.clients
        scenarios = [
            ("Staff list (GET /packages?status=100)", lambda: staff.get("/packages?status=100")),
            ("Admin list, first page (GET /packages)", lambda: admin.get("/packages")),
            (f"Admin list, page {DEEP_PAGE:,} (GET /packages?after={self.deep_after})",
             lambda: admin.get(f"/packages?after={self.deep_after}")),
        ]
        if getattr(self, "floater_client", None) is not None:
            scenarios.append(("Staff list, 2 stores, all statuses (GET /packages as a staff member of 2 stores)",
                              lambda: self.floater_client.get("/packages")))
        if self.has_command_route():
            client = self.app.test_client()
            scenarios.append(("Command API (POST .../command/)", lambda: client.post(
                f"/api/v1/oms/packages/{self.explain_id}/command/", headers={"Authorization": f"Token {self.api_key}"},
                json={"slug": COMMAND_SLUG, "input_parameters": {"package": self.explain_id}})))
        for name, call in scenarios:
            with Capture(self.engine) as capture:
                call()
            seen = set()
            for statement, params in capture.statements:
                key = (statement, repr(params))
                if key in seen or not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE")):
                    continue
                seen.add(key)
                self.plans.append(self.explain(name, statement, params))

    def explain(self, scenario: str, statement: str, params) -> Plan:
        """One statement's plan, the work it did, and the verdict."""
        conn = self.raw_connection()
        try:
            cursor = conn.cursor()
            is_select = statement.lstrip().upper().startswith("SELECT")
            if self.postgres:
                # EXPLAIN ANALYZE really runs the statement (undone below); an INSERT would run twice and may
                # break a unique key, and its plan is trivial anyway: plain EXPLAIN for those.
                analyze = "(ANALYZE, BUFFERS) " if not statement.lstrip().upper().startswith("INSERT") else ""
                cursor.execute(f"EXPLAIN {analyze}" + statement, params)
                lines = [r[0] for r in cursor.fetchall()]
                conn.rollback()
                buffers = next((ln.strip() for ln in lines if "Buffers:" in ln), "Buffers: none")
                executed = next((ln.strip() for ln in lines if ln.startswith("Execution Time")), "")
                work = f"{buffers}; {executed}"
                ok, why = postgres_verdict(lines)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
                lines = [r[3] for r in cursor.fetchall()]
                steps = "not run (writes)"
                vm_steps = None
                if is_select:
                    counter = [0]

                    def tick():
                        """Count VM instructions, 100 at a time."""
                        counter[0] += 100
                        return 0
                    raw = conn.driver_connection
                    raw.set_progress_handler(tick, 100)
                    cursor.execute(statement, params)
                    cursor.fetchall()
                    raw.set_progress_handler(None, 0)
                    vm_steps = counter[0]
                    steps = f"~{vm_steps:,} VM steps"
                conn.rollback()
                work = steps
                ok, why = sqlite_verdict(statement, lines, vm_steps)
            return Plan(scenario, statement, lines, work, ok, why)
        finally:
            conn.close()

    def environment(self) -> dict[str, str]:
        """Machine and versions."""
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor())
        mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal"))
        info = {"code": code_version(), "cores (nproc)": str(os.cpu_count()),
                "RAM": f"{mem_kb / 1024 / 1024:.1f} GiB", "CPU": cpu,
                "Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
        if self.postgres:
            with self.engine.connect() as conn:
                info["PostgreSQL"] = conn.exec_driver_sql("SHOW server_version").scalar()
                settings = conn.exec_driver_sql(
                    "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings "
                    "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'work_mem')"
                ).scalar()
                info["PostgreSQL settings"] = settings
        else:
            info["SQLite file"] = self.engine.url.database
        packages = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
        info["Flask / SQLAlchemy"] = ", ".join(ln for ln in packages.splitlines()
                                               if ln.lower().startswith(("flask==", "sqlalchemy==", "psycopg==")))
        return info


def code_version() -> str:
    """The commit measured: BENCH_COMMIT when set (a snapshot has no .git), else the checkout's HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + (" with uncommitted changes" if dirty else "")


def postgres_verdict(lines: list[str]) -> tuple[bool, str]:
    """Judge a PostgreSQL plan: no Seq Scan of a large table, and no scan node of one that reads many rows."""
    large = "|".join(LARGE_TABLES)
    if any(re.search(rf"Seq Scan on ({large})\b", ln) for ln in lines):
        return False, "sequential scan of a large table"
    read = 0
    for line in lines:
        if re.search(rf"Scan .*on ({large})\b", line):
            rows = re.search(r"actual time=\S+ rows=(\d+) loops=(\d+)", line)
            read = max(read, int(rows.group(1)) * int(rows.group(2)) if rows else 0)
        removed = re.search(r"Rows Removed by Filter: (\d+)", line)
        if removed:
            read = max(read, int(removed.group(1)))
    if read > MAX_ROWS_READ:
        return False, f"reads {read:,} rows of a large table"
    return True, "no sequential scan of a large table; reads few rows"


def sqlite_verdict(statement: str, lines: list[str], vm_steps: int | None) -> tuple[bool, str]:
    """Judge an SQLite plan: SEARCH (index/rowid range) is fine; SCAN of a large table is not, unless it walks
    the primary key in ORDER BY order and stops at LIMIT (no temp B-tree); the VM step count confirms either."""
    large = "|".join(LARGE_TABLES)
    scans = [ln for ln in lines if re.match(rf"SCAN ({large})(_\d+)?\b", ln) and "INDEX" not in ln]
    sorts = [ln for ln in lines if "TEMP B-TREE" in ln]
    heavy = vm_steps is not None and vm_steps >= 10 * MAX_ROWS_READ
    if heavy:
        return False, "does a lot of work for one page" + (" (sorts every matching row)" if sorts else "")
    if not scans:
        return True, "no scan of a large table" + ("" if not sorts else " (sorts a few rows)")
    if re.search(r"ORDER BY packages\.id DESC\s+LIMIT", statement) and not sorts:
        return True, "walks the primary key newest-first and stops at LIMIT (bounded, see VM steps)"
    return False, "full scan of a large table"


def markdown(bench: Bench, env: dict[str, str]) -> str:
    """The figures, checks, plans and environment as markdown."""
    freeze = " (with gc.freeze())" if bench.facts.get("gc.freeze() after start-up", "").startswith("yes") else ""
    out = [f"### {bench.dialect}{freeze}: {bench.facts['packages']} packages, {bench.iterations} iterations "
           f"(after {bench.warmup} warm-up) per figure", ""]
    out += ["| Measurement | server p50 | server p95 | query p50 | query p95 | raw SQL p50 | raw SQL p95 "
            "| ratio p50 | ratio p95 | server CPU p95 | full GCs in server loop |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in bench.rows:
        query = (f"{row.query.p50:.2f} | {row.query.p95:.2f}" if row.query else "– | –")
        out.append(f"| {row.name} | {row.portal.p50:.2f} | {row.portal.p95:.2f} | {query} | {row.raw.p50:.2f} | "
                   f"{row.raw.p95:.2f} | {row.ratio('p50'):.1f}x | {row.ratio('p95'):.1f}x | "
                   f"{row.portal.cpu_p95:.2f} | {gc_summary(row.portal)} |")
    out += ["", "Times in ms. *server*: around the Flask test client call, in process (routing, login session, "
            "queries, template, no gzip). *query*: `queries.list_packages()` alone (for the command row: "
            "`commands.run_command()` alone). *raw SQL*: the hand-written SQL fetching the same rows (the same "
            "joins, LIMIT 26) or doing the same writes, through the DBAPI connection. *ratio*: server / raw SQL. "
            "*server CPU p95*: CPU time of the benchmark process in the server call (excludes the PostgreSQL "
            "server's own work; shows what other load on the machine added to wall time). *full GCs*: "
            "generation-2 garbage collections that ran inside the timed server calls (count, longest); each stalls "
            "the request it lands in.", ""]
    out += ["| Check | Result | |", "|---|---|---|"]
    for check, passed, detail in checks(bench):
        out.append(f"| {check} | {'PASS' if passed else 'FAIL'} | {detail} |")
    out += ["", "Facts: " + "; ".join(f"{k}: {v}" for k, v in bench.facts.items()), ""]
    for note in bench.notes:
        out += [f"Note: {note}", ""]
    out += ["<details><summary>Query plans of every statement the measured requests issue</summary>", ""]
    current = None
    for plan in bench.plans:
        if plan.scenario != current:
            out += [f"#### {plan.scenario}", ""]
            current = plan.scenario
        statement = " ".join(plan.statement.split())
        out += [f"- **{'OK' if plan.ok else 'SCANS'}** ({plan.why}; {plan.work}): `{statement[:300]}`", "",
                "  ```", *("  " + ln for ln in plan.lines), "  ```", ""]
    out += ["</details>", "", "Machine: " + "; ".join(f"{k}: {v}" for k, v in env.items()), ""]
    return "\n".join(out)


def gc_summary(timing: Timing) -> str:
    """How many full collections ran during a loop, and the longest."""
    if not timing.full_gcs:
        return "0"
    return f"{len(timing.full_gcs)} (max {max(timing.full_gcs):.0f} ms)"


def deep_page_check(kind: str, first: Timing, deep: Timing) -> tuple[str, bool, str]:
    """Page 10,000 against the first page, at p50 and at p95."""
    p50, p95 = deep.p50 / first.p50, deep.p95 / first.p95
    return (f"page {DEEP_PAGE:,} within {DEEP_RATIO_TARGET}x of the first, p50 and p95 ({kind})",
            p50 <= DEEP_RATIO_TARGET and p95 <= DEEP_RATIO_TARGET,
            f"p50 {deep.p50:.2f} / {first.p50:.2f} ms = {p50:.2f}x; "
            f"p95 {deep.p95:.2f} / {first.p95:.2f} ms = {p95:.2f}x")


def checks(bench: Bench) -> list[tuple[str, bool, str]]:
    """The issue's targets, evaluated on this run."""
    lists = [r for r in bench.rows if "list" in r.name]
    worst = max(lists, key=lambda r: r.portal.p95)
    result = [(f"list p95 < {LIST_TARGET_MS:.0f} ms server time", worst.portal.p95 < LIST_TARGET_MS,
               f"worst: {worst.name} at {worst.portal.p95:.2f} ms")]
    for kind in ("full page", "htmx fragment"):
        first = next(r for r in lists if r.name.startswith("Admin") and "first" in r.name and kind in r.name)
        deep = next(r for r in lists
                    if r.name.startswith("Admin") and f"{DEEP_PAGE:,}" in r.name and kind in r.name)
        result.append(deep_page_check(kind, first.portal, deep.portal))
    first_q = next(r for r in lists if r.name.startswith("Admin") and "first" in r.name).query
    deep_q = next(r for r in lists if r.name.startswith("Admin") and f"{DEEP_PAGE:,}" in r.name).query
    result.append(deep_page_check("query alone", first_q, deep_q))
    bad = [p for p in bench.plans if not p.ok]
    list_work = "; ".join(f"{p.scenario.split(' (')[0]}: {p.work}" for p in bench.plans
                          if p.statement.lstrip().startswith("SELECT packages.id") and "list" in p.scenario)
    result.append(("no plan scans a large table (cost independent of table size)", not bad,
                   f"{len(bench.plans)} statements explained; the list query's work: {list_work}" + (
                       "; scanning: " + "; ".join(f"{p.scenario}: {' '.join(p.statement.split())[:80]}" for p in bad)
                       if bad else "")))
    return result


def print_table(bench: Bench) -> None:
    """The figures on the terminal."""
    print(f"\n{bench.dialect}: {bench.facts['packages']} packages; ms, p50 / p95")
    print(f"{'measurement':<66} {'server':>15} {'query':>15} {'raw SQL':>15} {'ratio':>13} {'CPU p95':>7}  full GCs")
    for row in bench.rows:
        query = f"{row.query.p50:6.2f} /{row.query.p95:6.2f}" if row.query else f"{'–':>15}"
        print(f"{row.name:<66} {row.portal.p50:6.2f} /{row.portal.p95:6.2f} {query} "
              f"{row.raw.p50:6.2f} /{row.raw.p95:6.2f} {row.ratio('p50'):5.1f}/{row.ratio('p95'):5.1f}x "
              f"{row.portal.cpu_p95:7.2f}  {gc_summary(row.portal)}")
    print()
    for check, passed, detail in checks(bench):
        print(f"{'PASS' if passed else 'FAIL'}  {check}: {detail}")


def main(argv=None) -> int:
    """Measure, print, write the markdown; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", help="markdown file (default bench/results/<database>.md)")
    parser.add_argument("--show-plans", action="store_true", help="print every plan on the terminal too")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="call gc.freeze() after start-up, as a WSGI entry point could (not done by default)")
    parser.add_argument("--quiet-load", type=float, default=1.0,
                        help="wait until the 1-minute load average is below this before measuring (default 1.0)")
    parser.add_argument("--quiet-timeout", type=float, default=180, help="longest wait for a quiet machine, s")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to the seeded benchmark database")

    bench = Bench(args.iterations, args.warmup)
    started = time.perf_counter()
    bench.prepare()
    if args.gc_freeze:
        # What `gc.collect(); gc.freeze()` after create_app() in wsgi.py would do: start-up objects leave the
        # generations the collector scans, so a full collection no longer walks them.
        gc.collect()
        gc.freeze()
    bench.facts["gc.freeze() after start-up"] = "yes" if args.gc_freeze else "no (as deployed)"
    bench.facts["load average before"] = wait_for_quiet(args.quiet_load, args.quiet_timeout)
    bench.measure_lists()
    bench.measure_command()
    bench.facts["load average after"] = f"{os.getloadavg()[0]:.2f}"
    bench.explain_all()
    env = bench.environment()
    print_table(bench)
    for note in bench.notes:
        print("Note:", note)
    for plan in bench.plans:
        if args.show_plans or not plan.ok:
            print(f"\n[{'OK' if plan.ok else 'SCANS'}] {plan.scenario}: {' '.join(plan.statement.split())[:200]}")
            print("   " + "\n   ".join(plan.lines))
            print(f"   -> {plan.why}; {plan.work}")
    suffix = "-gc-freeze" if args.gc_freeze else ""
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{bench.dialect}{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(bench, env))
    print(f"\nMarkdown written to {out} ({time.perf_counter() - started:.0f} s)")
    return 0 if all(passed for _, passed, _ in checks(bench)) else 1


if __name__ == "__main__":
    sys.exit(main())
