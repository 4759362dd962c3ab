"""Where a request's time goes: the per-request floor of the portal and what each piece on the way costs.

Usage (against the production profile's database and Redis, scripts/run-scale; or any DATABASE_URL):

    .venv/bin/python bench/request_floor.py --env RUN_DIR/env [--requests 400]

One app process, built as in production (PORTAL_ENV=production, the run's PostgreSQL and Redis; secrets made up
for this process: only GET requests are made, nothing secret is read). Requests go through Flask's test client
(no network, no gunicorn), each timed alone; figures are medians in microseconds. Measured:
  - the harness itself: a bare Flask app with one trivial route (what a request costs before the portal);
  - the portal's trivial request (GET /__floor__, a route added for this run: every app-wide hook, no view work),
    then the same with each piece switched off in turn: the security headers (Flask-Talisman), compression
    (Flask-Compress), rate limiting (Flask-Limiter), Flask-Login's hooks, CSRF, the private-pages hook;
  - GET /api/v1/oms/transitions/ with a token (gzip accepted, as clients send it), the same pieces switched off
    in turn, and its parts timed alone: the token lookup (portal.accounts.auth.token_owner), the rate limiter's
    Redis work (hit + window), the view's query, the JSON answer;
  - the database and Redis round trip (SELECT 1, PING) for scale;
  - CPU per request of this process (time.process_time) for GET transitions and the command API, and where a
    command's CPU goes: the WSGI call, the hooks before and after the view, the view, and inside it the token
    lookup, the lock, the writes, the events' outbox rows, the commit, queueing the delivery, the limiter's hit;
  - round trips per request (SQL statements, Redis calls), exact, with the statements of one request.
A piece is switched off by taking its functions out of the app's before/after-request lists for that series, so
every series runs in the same process, against the same database, in the same minute.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from runenv import read_env  # noqa: E402  (bench/ is not a package: its scripts import each other from their folder)

ROOT = Path(os.environ.get("PORTAL_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

# Hook functions of each piece, by the module they come from.
PIECES: dict[str, tuple[str, ...]] = {
    "security headers (Flask-Talisman)": ("flask_talisman",),
    "compression (Flask-Compress)": ("flask_compress",),
    "rate limiting (Flask-Limiter on Redis)": ("flask_limiter",),
    "CSRF (Flask-WTF)": ("flask_wtf",),
    "Flask-Login hooks": ("flask_login",),
    "private-pages hook (portal.web)": ("portal.web",),
}


def production_environment(env: dict[str, str]) -> None:
    """Set up this process as scripts/run-scale sets up the app processes (secrets made up for this run)."""
    from cryptography.fernet import Fernet

    os.environ.update({
        "PORTAL_ENV": "production", "DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"],
        "RATELIMIT_STORAGE_URI": env["REDIS_URL"], "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(), "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16), "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": env.get("STANDINS_URL", "http://127.0.0.1:9"),
        "FORCE_HTTPS": "0", "SESSION_COOKIE_SECURE": "0", "PROXY_COUNT": "1", "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT": "1000000 per minute",
    })


def median_us(call: Callable[[], object], n: int, warmup: int = 20) -> float:
    """Median wall time of call() in microseconds over n calls after a warm-up."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


class Hooks:
    """Take one piece's functions out of the app's request hooks, and put them back."""

    def __init__(self, app) -> None:
        """Remember the app's hook lists as they are."""
        self.app = app
        self.saved = {name: {key: list(funcs) for key, funcs in getattr(app, name).items()}
                      for name in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs")}

    def without(self, modules: tuple[str, ...]) -> int:
        """Drop every hook defined in one of these modules; returns how many were dropped."""
        dropped = 0
        for name, lists in self.saved.items():
            target = getattr(self.app, name)
            for key, funcs in lists.items():
                kept = [f for f in funcs if not _module_of(f).startswith(modules)]
                dropped += len(funcs) - len(kept)
                target[key] = kept
        return dropped

    def restore(self) -> None:
        """Put every hook back."""
        for name, lists in self.saved.items():
            target = getattr(self.app, name)
            for key, funcs in lists.items():
                target[key] = list(funcs)


def _module_of(func) -> str:
    """The module a hook comes from (bound methods: their object's class's module)."""
    owner = getattr(func, "__self__", None)
    return type(owner).__module__ if owner is not None else getattr(func, "__module__", "") or ""


class RoundTrips:
    """Counts the database statements (and pool pings) and the Redis round trips (a pipeline is one) from now on.

    Unlike times on a busy machine, these counts are exact: each is a wait on another process.
    """

    def __init__(self, engine) -> None:
        """Install the counters on the engine and on the redis client classes."""
        import redis.client
        from sqlalchemy import event

        self.sql = self.redis = 0
        self.statements: list[str] = []

        def on_sql(conn, cursor, statement, parameters, context, executemany):
            self.sql += 1
            self.statements.append(" ".join(statement.split())[:90])

        event.listen(engine, "before_cursor_execute", on_sql)
        counter = self

        def wrap(method):
            def counted(*args, **kwargs):
                counter.redis += 1
                return method(*args, **kwargs)
            return counted

        redis.client.Redis.execute_command = wrap(redis.client.Redis.execute_command)
        redis.client.Pipeline.execute = wrap(redis.client.Pipeline.execute)
        redis.client.Pipeline.execute_command = redis.client.Pipeline.pipeline_execute_command  # queued, not sent

    def measure(self, call: Callable[[], object], n: int = 10) -> tuple[float, float, list[str]]:
        """Average SQL statements and Redis round trips per call of call(), and the statements of the last call."""
        sql, redis_calls = self.sql, self.redis
        for _ in range(n - 1):
            call()
        before = len(self.statements)
        call()
        return (self.sql - sql) / n, (self.redis - redis_calls) / n, self.statements[before:]


def cpu_ms(call: Callable[[], object], n: int) -> float:
    """Mean CPU time of call() in this process, in milliseconds (the database's and Redis's own work not included)."""
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1000


# Where a command's CPU goes: (label, module, attribute) of the functions timed inside the request (each one's CPU
# includes what it calls). A name missing in the checkout measured (PORTAL_ROOT) is left out.
COMMAND_PIECES = (
    ("token lookup (auth.token_owner; the request's first statement: pool checkout, ping, BEGIN)",
     "portal.accounts.auth", "token_owner"),
    ("lock and checks (commands.checked_command)", "portal.packages.commands", "checked_command"),
    ("writes: move, audit, events (commands.apply_command)", "portal.packages.commands", "apply_command"),
    ("  of which the events' outbox rows (webhooks.events.record_events)", "portal.webhooks.events", "record_events"),
    ("commit (Session.commit)", "sqlalchemy.orm.session", "Session.commit"),
    ("queueing the delivery after the commit (outbox.deliver_after_commit)", "portal.outbox.service",
     "deliver_after_commit"),
    ("rate limiter's Redis hit (storage incr)", "portal.ratelimit", "PipelinedRedisStorage.incr"),
)


def command_pieces(app, command: Callable[[], object], n: int) -> list[tuple[str, float]]:
    """CPU per command of the whole WSGI call, the app's hooks, the view, and COMMAND_PIECES (ms, mean of n)."""
    import importlib

    spent: dict[str, float] = {}
    undo: list[tuple[object, str, object]] = []

    def timed(label: str, func):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - start
        return wrapper

    def patch(owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        undo.append((owner, name, original))
        setattr(owner, name, timed(label, original))

    for label, module_name, attribute in COMMAND_PIECES:
        owner: object = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, name):
            patch(owner, name, label)
    for label, name in (("app hooks before the view (preprocess_request: limiter, authentication)",
                         "preprocess_request"), ("the view (dispatch_request)", "dispatch_request"),
                        ("app hooks after the view (process_response)", "process_response"),
                        ("WSGI app, whole request (Flask, werkzeug, ProxyFix, teardown)", "wsgi_app")):
        undo.append((app, name, vars(app).get(name)))  # None: the class's method (ProxyFix is set on the app)
        setattr(app, name, timed(label, getattr(app, name)))
    try:
        for _ in range(10):
            command()
        spent.clear()
        for _ in range(n):
            command()
    finally:
        for owner, name, original in reversed(undo):
            if original is None:
                delattr(owner, name)  # the app's own attribute goes: the class's method shows again
            else:
                setattr(owner, name, original)
    return sorted(((label, value / n * 1000) for label, value in spent.items()), key=lambda item: -item[1])


def waiting_packages(dsn_url: str, count: int) -> list[int]:
    """Put `count` packages into Waiting for the command's figures (a throwaway database) and return them."""
    import psycopg

    with psycopg.connect(dsn_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM packages ORDER BY id LIMIT %s", (count,))]
        conn.execute("UPDATE packages SET state = 100, version = version + 1 WHERE id = ANY(%s)", (ids,))
        conn.commit()
    return ids


def main() -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", required=True, help="RUN_DIR/env written by scripts/run-scale")
    parser.add_argument("--requests", type=int, default=400, help="timed requests per figure")
    args = parser.parse_args()
    env = read_env(args.env)
    production_environment(env)

    from flask import Flask
    from sqlalchemy import text

    from portal import create_app
    from portal.accounts import auth
    from portal.extensions import db, limiter
    from portal.packages import flow_editor

    n = args.requests
    bare = Flask("bare")
    bare.add_url_rule("/__floor__", "floor", lambda: "ok")
    bare_client = bare.test_client()

    app = create_app()
    app.add_url_rule("/__floor__", "floor", lambda: "ok")
    client = app.test_client()
    token = env["API_TOKEN"]
    api_headers = {"Authorization": f"Token {token}", "Accept-Encoding": "gzip"}
    hooks = Hooks(app)

    def trivial():
        """The portal's trivial request."""
        assert client.get("/__floor__").status_code == 200

    def transitions():
        """The API's smallest list."""
        assert client.get("/api/v1/oms/transitions/", headers=api_headers).status_code == 200

    rows: list[tuple[str, float, float]] = []
    load_before = os.getloadavg()[0]
    harness = median_us(lambda: bare_client.get("/__floor__"), n)
    rows.append(("bare Flask app, trivial route (the harness)", harness, float("nan")))
    for label, request in (("portal, trivial request (GET /__floor__)", trivial),
                           ("GET /api/v1/oms/transitions/ (token, gzip accepted)", transitions)):
        full = median_us(request, n)
        rows.append((label + ": everything on", full, float("nan")))
        for piece, modules in PIECES.items():
            if not hooks.without(modules):
                hooks.restore()
                continue
            try:
                rows.append((f"  ... without {piece}", median_us(request, n), full))
            finally:
                hooks.restore()

    with app.test_request_context("/api/v1/oms/transitions/", headers=api_headers):
        # Before this bench's fixes the lookup was user_for_token (PORTAL_ROOT may point at such a checkout).
        lookup = getattr(auth, "token_owner", None) or auth.user_for_token
        rows.append((f"  part: token lookup alone ({lookup.__name__})",
                     median_us(lambda: (lookup(db.session, token), db.session.rollback()), n), float("nan")))
        rows.append(("  part: the view's query alone (list_transitions)",
                     median_us(lambda: (flow_editor.list_transitions(db.session), db.session.rollback()), n),
                     float("nan")))
        rows.append(("  part: database round trip (SELECT 1)",
                     median_us(lambda: (db.session.execute(text("SELECT 1")), db.session.rollback()), n), float("nan")))
        storage = limiter.storage
        rows.append(("  part: Redis round trip (PING)", median_us(storage.check, n), float("nan")))
        db.session.remove()

    with app.app_context():
        trips = RoundTrips(db.engine)
    package_ids = iter(waiting_packages(env["DATABASE_URL"], 3 * n + 100))

    def command():
        """The command API: a different Waiting package every time."""
        response = client.post(f"/api/v1/oms/packages/{next(package_ids)}/command/", headers=api_headers,
                               json={"slug": "deallocate-package-reservations"})
        assert response.status_code == 204, response.data

    counted = [(label, *trips.measure(request)) for label, request in (
        ("GET /api/v1/oms/transitions/", transitions),
        ("POST /api/v1/oms/packages/<id>/command/ (deallocate-package-reservations)", command))]
    command_us = median_us(command, n, warmup=10)
    cpu_rows = [("GET /api/v1/oms/transitions/", cpu_ms(transitions, n)),
                ("POST /api/v1/oms/packages/<id>/command/", cpu_ms(command, n))]
    pieces = command_pieces(app, command, n)
    load_after = os.getloadavg()[0]
    print(f"Per-request floor, {n} requests per figure (median, microseconds), one process, Flask test client; "
          f"{os.cpu_count()} CPUs, 1-minute load average {load_before:.1f} before, {load_after:.1f} after")
    print()
    print("| request / piece | median (µs) | the piece costs (µs) |")
    print("|---|---:|---:|")
    for label, value, full in rows:
        cost = "" if full != full else f"{full - value:,.0f}"
        print(f"| {label} | {value:,.0f} | {cost} |")
    print(f"| POST /api/v1/oms/packages/<id>/command/ (a different Waiting package each time) | {command_us:,.0f} | |")
    print()
    print("CPU per request in this process (ms, mean; Flask test client included, the database's and Redis's own "
          "work not):")
    print()
    print("| request | CPU (ms) |")
    print("|---|---:|")
    for label, value in cpu_rows:
        print(f"| {label} | {value:.2f} |")
    print()
    print("Where a command's CPU goes (ms per command, mean; each piece includes what it calls):")
    print()
    print("| piece | CPU (ms) |")
    print("|---|---:|")
    for label, value in pieces:
        print(f"| {label} | {value:.2f} |")
    print()
    print("Round trips per request (exact; the pool's pre-ping on checkout adds one database round trip per request "
          "on top):")
    print()
    print("| request | SQL statements | Redis round trips |")
    print("|---|---:|---:|")
    for label, sql, redis_calls, _statements in counted:
        print(f"| {label} | {sql:g} | {redis_calls:g} |")
    for label, _sql, _redis, statements in counted:
        print(f"\n{label}, its statements:")
        for statement in statements:
            print(f"  - {statement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
