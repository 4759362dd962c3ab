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
p50/p95 latency per side, the CPU each side cost per command in each group of processes (the app processes, the job
workers, PostgreSQL, Redis, and this bench's own client threads; read from /proc, so Linux only: a 2-core machine
runs at most 2,000 ms of CPU a second, which bounds commands/s whatever the latency), the answers' status codes,
and then checks in the database that no package moved twice
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
from runenv import read_env  # bench/ is not a package: its scripts import each other from their folder

SLUG = "deallocate-package-reservations"
WAITING, PREPARING = 100, 200
TARGET_RATIO = 0.60


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


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()
    except OSError:
        return None


def tree_cpu(root_pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes and every descendant, live or ended (an ended child's time
    is in its parent's cutime/cstime once reaped, as PostgreSQL's postmaster and gunicorn's arbiter reap them)."""
    if not root_pids:
        return 0.0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, list(root_pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen or (fields := _stat(pid)) is None:
            continue
        seen.add(pid)
        # utime, stime, cutime, cstime are fields 14-17 of stat; [0] here is field 3 (state).
        total += sum(int(value) for value in fields[11:15]) / tick
        todo += children.get(pid, [])
    return total


class CpuMeter:
    """CPU seconds spent per phase kind by the app processes, PostgreSQL and Redis (from /proc; Linux only)."""

    def __init__(self, env: dict[str, str]) -> None:
        """Find the processes from RUN_DIR/env: APP_PIDS, PG_DIR's postmaster.pid, REDIS_PORT's server."""
        self.groups: dict[str, list[int]] = {"app": [int(p) for p in env.get("APP_PIDS", "").split()],
                                             "job workers": [int(p) for p in env.get("WORKER_PIDS", "").split()]}
        try:
            with open(os.path.join(env["PG_DIR"], "postmaster.pid")) as handle:
                self.groups["postgresql"] = [int(handle.readline())]
        except (KeyError, OSError, ValueError):
            self.groups["postgresql"] = []
        self.groups["redis"] = self._redis(env.get("REDIS_PORT", ""))
        self.spent: dict[tuple[str, str], float] = {}

    @staticmethod
    def _redis(port: str) -> list[int]:
        """The redis-server listening on this port (by its command line), if any."""
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if port and argv and b"redis-server" in argv[0] and port.encode() in b" ".join(argv):
                found.append(int(entry))
        return found

    def snapshot(self) -> dict[str, float]:
        """CPU seconds so far per group, and this bench process's own (its client threads)."""
        values = {name: tree_cpu(pids) for name, pids in self.groups.items()}
        values["bench client"] = time.process_time()
        return values

    def add(self, side: str, before: dict[str, float], after: dict[str, float]) -> None:
        """Add one phase's CPU per group to the side's totals."""
        for name in before:
            self.spent[(side, name)] = self.spent.get((side, name), 0.0) + after[name] - before[name]


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
    meter = CpuMeter(env)
    for r in range(args.rounds):
        bare_feed = Feed(chunks[2 * r], args.seconds)
        before = meter.snapshot()
        bare_time += run_phase(bare_worker, lambda i, feed=bare_feed: (dsn, transition_id, user_id, feed, bare_lat),
                               args.clients)
        meter.add("bare", before, meter.snapshot())
        api_feed = Feed(chunks[2 * r + 1], args.seconds)
        api_ids += chunks[2 * r + 1]
        before = meter.snapshot()
        api_time += run_phase(api_worker, lambda i, feed=api_feed: (env["BASE_URL"], env["API_TOKEN"], feed, api_lat,
                                                                statuses, api_done), args.clients)
        meter.add("api", before, meter.snapshot())
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
    print("CPU per command (ms, from /proc: every process of each group during that side's phases; the job workers "
          "fan out and deliver the API's webhook events as they come):")
    print()
    print("| side | " + " | ".join(name for name in meter.snapshot()) + " |")
    print("|---|" + "---:|" * len(meter.snapshot()))
    for side, count in (("bare", len(bare_lat)), ("api", len(api_done))):
        cells = " | ".join(f"{meter.spent[(side, name)] * 1000 / count:.2f}" if count else "-"
                           for name in meter.snapshot())
        print(f"| {'bare transaction' if side == 'bare' else 'command API'} | {cells} |")
    print()
    print(f"API answers: {dict(sorted(statuses.items()))}")
    print(f"Ratio API / bare: {ratio:.0%} (target {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    print(f"Double transitions (packages with 2+ audit rows for {SLUG}): {doubles + bare_doubles}; "
          f"API 204s without exactly one audit row: {missing}")
    ok = doubles == 0 and bare_doubles == 0 and missing == 0 and set(statuses) <= {204}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
