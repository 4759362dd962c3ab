"""Command API throughput against a bare transaction doing the same row lock, UPDATE and audit INSERT.

Usage (against a running production profile, scripts/run-scale; see below for the rate limit):

    API_RATE_LIMIT="1000000 per minute" scripts/run-scale --packages 20000 --apps 1 --app-workers 4 &
    .venv/bin/python bench/command_throughput.py --env RUN_DIR/env [--clients 16 --seconds 8 --rounds 2]

In one run, phases taking turns (bare, API, bare, API, ... so both see the same machine load):
  - API: --clients threads, each with its own keep-alive HTTP connection, POSTing
    /api/v1/oms/packages/<id>/command/ {"slug": "deallocate-package-reservations"} (Waiting -> Preparing), every
    request on a different package;
  - bare: --clients threads, each with its own psycopg connection, doing per package
    SELECT ... FOR UPDATE of the package row, UPDATE state/version/updated_at, INSERT the audit row into
    package_logs, COMMIT.
It prints both throughputs (commands/s), the ratio (target: the API at 60% or more of the bare transaction),
p50/p95 latency per side, the answers' status codes, and then checks in the database that no package moved twice
(package_logs rows for the command per package: at most one each, exactly one for every package the API answered
204 for).

The packages are taken from the seeded data: the bench puts enough of them into Waiting first (a throwaway
database: scripts/run-scale's). The API's per-token rate limit (API_RATE_LIMIT, 600 a minute by default) would
answer 429 long before the engine is the limit: start the profile with a higher limit to measure the engine, as
above (every request still goes through the limiter and its Redis counter).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import psycopg

SLUG = "deallocate-package-reservations"
WAITING, PREPARING = 100, 200
TARGET_RATIO = 0.60


def read_env(path: str) -> dict[str, str]:
    """The KEY=value lines scripts/run-scale writes."""
    values = {}
    with open(path) as handle:
        for line in handle:
            key, sep, value = line.strip().partition("=")
            if sep:
                values[key] = value
    return values


def plain_dsn(url: str) -> str:
    """A libpq URL from SQLAlchemy's postgresql+psycopg:// one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def prepare_packages(dsn: str, count: int) -> tuple[list[int], int, int, object]:
    """Put `count` packages into Waiting (the highest ids; earlier runs' packages are reused) and return them, the
    transition, a user and the database's clock before the run (audit rows after it are this run's)."""
    with psycopg.connect(dsn) as conn:
        transition_id = conn.execute("SELECT id FROM transitions WHERE slug = %s", (SLUG,)).fetchone()
        if transition_id is None:
            raise SystemExit(f"No transition {SLUG!r} in this database (seed it with bench/seed.py).")
        user_id = conn.execute("SELECT id FROM users WHERE role = 'admin' ORDER BY id LIMIT 1").fetchone()[0]
        ids = [row[0] for row in conn.execute("SELECT id FROM packages ORDER BY id DESC LIMIT %s", (count,))]
        if len(ids) < count:
            raise SystemExit(f"Only {len(ids)} packages available; seed more (--packages).")
        conn.execute("UPDATE packages SET state = %s, version = version + 1 WHERE id = ANY(%s)", (WAITING, ids))
        started = conn.execute("SELECT now()").fetchone()[0]
        conn.commit()
    return ids, transition_id[0], user_id, started


class Feed:
    """Hands out package ids to the threads of one phase until the phase's time is up."""

    def __init__(self, ids: list[int], seconds: float) -> None:
        """ids are used at most once; the phase ends after `seconds` or when they run out."""
        self.ids = iter(ids)
        self.lock = threading.Lock()
        self.deadline = time.perf_counter() + seconds

    def next(self) -> int | None:
        """The next package id, or None when the phase is over."""
        if time.perf_counter() >= self.deadline:
            return None
        with self.lock:
            return next(self.ids, None)


def api_worker(base_url: str, token: str, feed: Feed, out: list, statuses: Counter, done: list[int]) -> None:
    """POST the command for package after package on one keep-alive connection."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    body = json.dumps({"slug": SLUG}).encode()
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json",
               "X-Forwarded-For": f"10.9.{threading.get_ident() % 250}.1"}
    while (package_id := feed.next()) is not None:
        start = time.perf_counter()
        conn.request("POST", f"/api/v1/oms/packages/{package_id}/command/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        out.append(time.perf_counter() - start)
        statuses[response.status] += 1
        if response.status == 204:
            done.append(package_id)
    conn.close()


def bare_worker(dsn: str, transition_id: int, user_id: int, feed: Feed, out: list) -> None:
    """The same change by hand: lock the row, update it, write the audit row, commit."""
    with psycopg.connect(dsn) as conn:
        while (package_id := feed.next()) is not None:
            start = time.perf_counter()
            with conn.cursor() as cursor:
                cursor.execute("SELECT state, version FROM packages WHERE id = %s FOR UPDATE", (package_id,))
                state, version = cursor.fetchone()
                if state != WAITING:
                    raise SystemExit(f"package {package_id} is not Waiting")
                cursor.execute("UPDATE packages SET state = %s, version = version + 1, updated_at = now() "
                               "WHERE id = %s AND version = %s", (PREPARING, package_id, version))
                cursor.execute("INSERT INTO package_logs (package_id, from_state, to_state, transition_id, command, "
                               "user_id, note, created_at) VALUES (%s, %s, %s, %s, %s, %s, '', now())",
                               (package_id, WAITING, PREPARING, transition_id, SLUG, user_id))
            conn.commit()
            out.append(time.perf_counter() - start)


def run_phase(target, args_for, clients: int) -> float:
    """Start `clients` threads of target and return the phase's wall time."""
    threads = [threading.Thread(target=target, args=args_for(i)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    """The q-quantile of values in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def check_no_double(dsn: str, ids: list[int], api_done: list[int], started) -> tuple[int, int, int]:
    """(packages with more than one audit row for the command, API 204s without their row, packages changed)."""
    with psycopg.connect(dsn) as conn:
        rows = dict(conn.execute(
            "SELECT package_id, count(*) FROM package_logs WHERE command = %s AND package_id = ANY(%s) "
            "AND from_state = %s AND created_at >= %s GROUP BY package_id", (SLUG, ids, WAITING, started)).fetchall())
    doubles = sum(1 for n in rows.values() if n > 1)
    missing = sum(1 for package_id in api_done if rows.get(package_id) != 1)
    return doubles, missing, len(rows)


def main() -> int:
    """Run the phases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", required=True, help="RUN_DIR/env written by scripts/run-scale")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="bare/API phase pairs")
    parser.add_argument("--per-phase", type=int, default=6000, help="packages set aside per phase (upper bound)")
    args = parser.parse_args()
    env = read_env(args.env)
    dsn = plain_dsn(env["DATABASE_URL"])
    phases = args.rounds * 2
    ids, transition_id, user_id, started = prepare_packages(dsn, args.per_phase * phases)
    chunks = [ids[i * args.per_phase:(i + 1) * args.per_phase] for i in range(phases)]
    load_before = os.getloadavg()[0]
    api_lat: list[float] = []
    bare_lat: list[float] = []
    api_time = bare_time = 0.0
    statuses: Counter = Counter()
    api_done: list[int] = []
    api_ids: list[int] = []
    for r in range(args.rounds):
        bare_feed = Feed(chunks[2 * r], args.seconds)
        bare_time += run_phase(bare_worker, lambda i, feed=bare_feed: (dsn, transition_id, user_id, feed, bare_lat),
                               args.clients)
        api_feed = Feed(chunks[2 * r + 1], args.seconds)
        api_ids += chunks[2 * r + 1]
        api_time += run_phase(api_worker, lambda i, feed=api_feed: (env["BASE_URL"], env["API_TOKEN"], feed, api_lat,
                                                                statuses, api_done), args.clients)
    load_after = os.getloadavg()[0]
    bare_rate = len(bare_lat) / bare_time
    api_rate = len(api_done) / api_time
    doubles, missing, _changed = check_no_double(dsn, ids, api_done, started)
    bare_doubles, _m, _c = check_no_double(dsn, [i for c in chunks[0::2] for i in c], [], started)
    ratio = api_rate / bare_rate if bare_rate else 0.0
    print(f"{args.clients} concurrent clients, {args.rounds} x ({args.seconds:g} s bare + {args.seconds:g} s API), "
          f"{os.cpu_count()} CPUs, 1-minute load average {load_before:.1f} before, {load_after:.1f} after")
    print()
    print("| side | commands | commands/s | p50 (ms) | p95 (ms) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| bare transaction (psycopg: SELECT FOR UPDATE, UPDATE, INSERT audit, COMMIT) | {len(bare_lat)} | "
          f"{bare_rate:,.0f} | {pct(bare_lat, 0.5):.1f} | {pct(bare_lat, 0.95):.1f} |")
    print(f"| command API (POST .../command/ {SLUG}) | {len(api_done)} | {api_rate:,.0f} | "
          f"{pct(api_lat, 0.5):.1f} | {pct(api_lat, 0.95):.1f} |")
    print()
    print(f"API answers: {dict(sorted(statuses.items()))}")
    print(f"Ratio API / bare: {ratio:.0%} (target {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    print(f"Double transitions (packages with 2+ audit rows for {SLUG}): {doubles + bare_doubles}; "
          f"API 204s without exactly one audit row: {missing}")
    ok = doubles == 0 and bare_doubles == 0 and missing == 0 and set(statuses) <= {204}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
