"""Benchmark the address sync (setup step 4): copy 10,000 / 50,000 / 100,000 districts from the Omnitron sandbox.

Usage (from the repository root):

    .venv/bin/python bench/sync_addresses.py [--sizes 10000,50000,100000] [--page-size 1000]
                                              [--pg-url postgresql+psycopg://...] [--no-write]

For each size the sandbox runs as its own process (`python -m sandbox --address-count N`), so its memory and CPU
are not counted here. For each database (a fresh SQLite file; PostgreSQL too when --pg-url or TEST_DATABASE_URL
is given, its public schema dropped and re-created) a fresh child process migrates the database and runs the sync
in-process, exactly as a worker does (sync.start_job + sync.sync_kind), three times on fresh data:

  1. timed: records per second of the first copy (every record inserted), and the growth of the process's peak
     resident memory (ru_maxrss after the copy minus before it: the app is built and logged in beforehand);
  2. a second copy of the same data (every record unchanged: no writes), records per second;
  3. on a fresh database again, the first copy under tracemalloc: the peak of Python allocations during it.

Memory must stay flat as the count grows (the sync streams pages and keeps no record between them): the check
fails when the largest size's tracemalloc peak exceeds the smallest's by more than 50% plus 2 MB.
The table is printed and written to bench/RESULTS.md under the heading "Address sync" (the rest of the file is
left alone; an earlier "Address sync" section is replaced).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Address sync (bench/sync_addresses.py)"
USERNAME, PASSWORD = "oms.application", "sandbox-password"
FLAT_RATIO, FLAT_SLACK_MB = 1.5, 2.0


def free_port() -> int:
    """A local port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sandbox:
    """`python -m sandbox --address-count N` on a free port, stopped on leaving the with block."""

    def __init__(self, districts: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.districts = districts
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Sandbox:
        """Start the sandbox and wait for its health endpoint."""
        env = {**os.environ, "SANDBOX_USERNAME": USERNAME, "SANDBOX_PASSWORD": PASSWORD, "SANDBOX_SEED": "2024"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(self.port), "--address-count", str(self.districts)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.url}/api/v1/health/", timeout=1)
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"The sandbox did not start on {self.url}.")

    def __exit__(self, *exc_info) -> None:
        """Stop the sandbox."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def fresh_database(url: str) -> None:
    """Empty the database: delete a SQLite file, or drop and re-create PostgreSQL's public schema."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if url.startswith("postgresql://") else url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def copy_once(url: str, omnitron_url: str, page_size: int, *, trace: bool) -> dict:
    """In this process: migrate a fresh database, save the login, then copy the addresses once (or twice).

    Returns seconds, records and memory figures. With trace, only the tracemalloc peak of one copy is measured.
    """
    import logging

    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.settings import service as settings
    from portal.sync import service as sync
    from portal.sync.models import SyncJob

    fresh_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "OMNITRON_URL": omnitron_url, "SYNC_PAGE_SIZE": page_size,
                      "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": False})
    logging.getLogger().setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
        logging.getLogger().setLevel(logging.WARNING)
        settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                           {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=None)
        # Log in and touch every code path once before measuring, so imports and the login are outside it.
        assert sync.check_required(db.session, "addresses").required
        result: dict = {}
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if trace:
            tracemalloc.start()
        job = sync.start_job(db.session, "addresses", user_id=None)
        started = time.perf_counter()
        job = sync.sync_kind(db.session, job.id)
        seconds = time.perf_counter() - started
        if trace:
            result["trace_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if job.status != SyncJob.DONE or job.failed or job.created != job.processed:
            raise RuntimeError(f"the copy did not finish cleanly: {sync.job_json(job, 'addresses')}")
        result.update(records=job.processed, seconds=seconds, rss_delta_kb=rss_after - rss_before)
        if not trace:
            again = sync.start_job(db.session, "addresses", user_id=None)
            started = time.perf_counter()
            again = sync.sync_kind(db.session, again.id)
            result["resync_seconds"] = time.perf_counter() - started
            if again.unchanged != again.processed:
                raise RuntimeError(f"the second copy changed records: {sync.job_json(again, 'addresses')}")
            started = time.perf_counter()
            check = sync.check_required(db.session, "addresses")
            result["check_ms"] = (time.perf_counter() - started) * 1000
            if check.required:
                raise RuntimeError(f"is_required is still true after copying: {check.reason}")
        db.session.remove()
        db.engine.dispose()
    return result


def child(args: argparse.Namespace) -> None:
    """Entry point of a measuring child process: print one JSON object."""
    result = copy_once(args.db_url, args.omnitron_url, args.page_size, trace=args.trace)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(db_url: str, omnitron_url: str, page_size: int, trace: bool) -> dict:
    """Measure in a fresh process, so ru_maxrss starts from a clean slate each time."""
    command = [sys.executable, __file__, "--child", "--db-url", db_url, "--omnitron-url", omnitron_url,
               "--page-size", str(page_size)] + (["--trace"] if trace else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    found = re.search(r"^RESULT (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"measuring failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(found.group(1))


def measure(sizes: list[int], databases: dict[str, str], page_size: int) -> list[dict]:
    """Every size on every database; rows for the table."""
    rows = []
    for size in sizes:
        with Sandbox(size) as sandbox:
            for name, url in databases.items():
                print(f"  {name}: {size:,} districts ...", flush=True)
                timed = run_child(url, sandbox.url, page_size, trace=False)
                traced = run_child(url, sandbox.url, page_size, trace=True)
                rows.append({
                    "database": name, "districts": size, "records": timed["records"],
                    "seconds": timed["seconds"], "rate": timed["records"] / timed["seconds"],
                    "resync_rate": timed["records"] / timed["resync_seconds"], "check_ms": timed["check_ms"],
                    "trace_peak_mb": traced["trace_peak"] / 1e6,
                    "rss_delta_mb": timed["rss_delta_kb"] / 1024,
                })
    return rows


def flat_verdicts(rows: list[dict]) -> list[str]:
    """Per database: does the tracemalloc peak stay flat from the smallest size to the largest?"""
    verdicts = []
    for name in dict.fromkeys(r["database"] for r in rows):
        mine = sorted((r for r in rows if r["database"] == name), key=lambda r: r["districts"])
        small, large = mine[0], mine[-1]
        ok = large["trace_peak_mb"] <= small["trace_peak_mb"] * FLAT_RATIO + FLAT_SLACK_MB
        verdicts.append(f"{name}: tracemalloc peak {small['trace_peak_mb']:.1f} MB at {small['districts']:,} "
                        f"districts, {large['trace_peak_mb']:.1f} MB at {large['districts']:,}: "
                        f"{'flat (PASS)' if ok else 'grows with the count (FAIL)'}")
    return verdicts


def table(rows: list[dict]) -> str:
    """The figures as a markdown table."""
    lines = ["| database | districts | records copied | first copy (s) | records/s | re-copy, all unchanged "
             "(records/s) | is_required (ms) | tracemalloc peak (MB) | ru_maxrss growth (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['database']} | {r['districts']:,} | {r['records']:,} | {r['seconds']:.1f} | "
                     f"{r['rate']:,.0f} | {r['resync_rate']:,.0f} | {r['check_ms']:.0f} | {r['trace_peak_mb']:.1f} | "
                     f"{r['rss_delta_mb']:.1f} |")
    return "\n".join(lines)


def write_results(section: str) -> None:
    """Put the section into bench/RESULTS.md, replacing only an earlier section of this benchmark."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = text.find(HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[following + 1:] if following != -1 else "")
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")


def main() -> int:
    """Parse arguments, measure, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="district counts, comma-separated")
    parser.add_argument("--page-size", type=int, default=1000, help="records per Omnitron page (SYNC_PAGE_SIZE)")
    parser.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL", ""),
                        help="also measure on this PostgreSQL database (its public schema is dropped!)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--omnitron-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="portal-bench-sync-") as folder:
        databases = {"SQLite": f"sqlite:///{folder}/bench.sqlite"}
        if args.pg_url:
            databases["PostgreSQL"] = args.pg_url
        print(f"Address sync benchmark: {', '.join(f'{s:,}' for s in sizes)} districts, "
              f"{args.page_size} records a page, on {', '.join(databases)}", flush=True)
        rows = measure(sizes, databases, args.page_size)
    verdicts = flat_verdicts(rows)
    body = table(rows)
    print()
    print(body)
    print()
    print("\n".join(verdicts))
    load = os.getloadavg()[0]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        HEADING, "",
        f"Measured {when} on {os.cpu_count()} CPUs (1-minute load average {load_before:.1f} before, {load:.1f} "
        f"after: other work on the machine slows the figures), Python {platform.python_version()}, "
        f"{args.page_size} records a page. is_required is the check after the first copy (4 count requests and "
        "4 modified-since requests to Omnitron, one grouped query here). The sandbox runs in its own process; "
        "each figure comes from a fresh process on a fresh database. "
        "Records copied count every level (1 country, 81 cities, the townships and the districts). The first copy "
        "inserts every record; the re-copy reads the same data and writes nothing. tracemalloc measures a third "
        "copy on a fresh database (tracing slows it down, so it is not timed); ru_maxrss growth is the rise of the "
        "process's peak resident memory during the timed copy.", "",
        body, "", *[f"- {v}" for v in verdicts], "",
    ])
    if not args.no_write:
        write_results(section)
        print(f"\nWritten to {RESULTS.relative_to(ROOT)}")
    return 0 if all("PASS" in v for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
