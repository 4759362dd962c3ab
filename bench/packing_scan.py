"""The packing screen's scan: server time for one scan's answer on a seeded benchmark database.

Usage (from the repository root, on a database seeded by bench/seed.py, e.g. through bench/run-all):

    DATABASE_URL=sqlite:////tmp/portal-bench/bench-1000000.sqlite .venv/bin/python bench/packing_scan.py
    DATABASE_URL=postgresql+psycopg://portal@127.0.0.1:5433/portal_bench .venv/bin/python bench/packing_scan.py

The staff user of the busiest store opens the packing screen of its Waiting packages (the screen creates
the rows that keep the ticks) and scans every item in reverse list order, then one barcode the package does
not have. Each scan is the real htmx request through the Flask app (routing, login, CSRF, the domain call,
the conditional UPDATE, the fragment), timed in process: the server's time, no network. Target: p95 of a
tick under 20 ms. The ticks are removed afterwards, so the database can be measured again.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, event, func, select  # noqa: E402

STAFF_USER, STAFF_PASSWORD = "bench-staff-1", "bench-staff-pass-1"
ADMIN_USER, ADMIN_PASSWORD = "bench-admin", "bench-admin-pass-1"
TARGET_P95_MS = 20.0
HX = {"HX-Request": "true"}


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def login(app, username: str, password: str):
    """A test client logged in through the login form, with its CSRF token."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token.group(1) if token else ""})
    if response.status_code != 302:
        raise SystemExit(f"Login of {username} failed ({response.status_code}); was the database seeded?")
    return client


def main(argv=None) -> int:
    """Measure, print and write bench/results/packing_scan-<database>.md; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=600, help="timed ticks (default 600)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed scans first (default 30)")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to the seeded benchmark database")

    from portal import create_app
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.packages.models import Package, PackageItem, PackingScan
    from portal.packages.states import State

    app = create_app()
    with app.app_context():
        dialect = db.engine.dialect.name
        staff = db.session.scalar(select(User).where(User.username == STAFF_USER))
        if staff is None:
            raise SystemExit("The benchmark users are missing: run bench/seed.py first.")
        store = staff.store_ids[0]
        total = db.session.scalar(select(func.count()).select_from(Package))
        wanted = args.scans + args.warmup
        packable = (State.WAITING, State.PREPARING, State.READY_FOR_PACKAGING)
        package_ids = list(db.session.scalars(
            select(Package.id).where(Package.stock_location_id == store, Package.state.in_(packable))
            .order_by(Package.id.desc()).limit(wanted)))
        user, password, scope = STAFF_USER, STAFF_PASSWORD, f"staff of store {store} (the busiest)"
        if len(package_ids) < 100:  # a small database: the admin packs in every store
            package_ids = list(db.session.scalars(select(Package.id).where(Package.state.in_(packable))
                                                  .order_by(Package.id.desc()).limit(wanted)))
            user, password, scope = ADMIN_USER, ADMIN_PASSWORD, "the admin, every store"
        items = {pid: [] for pid in package_ids}
        for package_id, barcode, quantity in db.session.execute(
                select(PackageItem.package_id, PackageItem.barcode, PackageItem.quantity)
                .where(PackageItem.package_id.in_(package_ids)).order_by(PackageItem.id)):
            items[package_id].extend([barcode] * quantity)
        db.session.remove()

        statements: list[str] = []
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        client = login(app, user, password)
        ticks: list[float] = []
        refusals: list[float] = []
        opens: list[float] = []
        per_tick: list[int] = []
        tick_cpu: list[float] = []  # this process's CPU time: what other work on a shared machine cannot inflate
        done = 0
        for package_id in package_ids:
            if len(ticks) >= args.scans:
                break
            started = time.perf_counter()
            page = client.get(f"/packages/{package_id}/pack")
            opens.append((time.perf_counter() - started) * 1000)
            if page.status_code != 200:
                raise SystemExit(f"The packing screen of package {package_id} answered {page.status_code}.")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
            headers = {**HX, "X-CSRFToken": token}
            for barcode in reversed(items[package_id]):  # out of list order, as the shelf gives them
                before = len(statements)
                started, cpu_started = time.perf_counter(), time.thread_time()
                response = client.post(f"/packages/{package_id}/pack/scan", data={"barcode": barcode},
                                       headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                cpu = (time.thread_time() - cpu_started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"A scan answered {response.status_code}: {response.get_data(as_text=True)}")
                done += 1
                if done > args.warmup:
                    ticks.append(elapsed)
                    tick_cpu.append(cpu)
                    per_tick.append(len(statements) - before)
            started = time.perf_counter()
            wrong = client.post(f"/packages/{package_id}/pack/scan", data={"barcode": "0000000000000"},
                                headers=headers)
            if done > args.warmup:
                refusals.append((time.perf_counter() - started) * 1000)
            if wrong.status_code != 422:
                raise SystemExit(f"A wrong barcode answered {wrong.status_code}.")
        db.session.execute(delete(PackingScan).where(PackingScan.package_id.in_(package_ids)))
        db.session.commit()

    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(dialect, dialect)
    load = os.getloadavg()[0]
    p95 = percentile(ticks, 95)
    rows = [("tick (scan of an item in the package)", ticks), ("refused (barcode not in the package)", refusals),
            ("open the packing screen (full page)", opens)]
    lines = [
        f"## Packing screen scan (bench/packing_scan.py, {name})",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"{total:,} packages; scanning as {scope}, {len(package_ids)} packages waiting to be packed; 1-minute load "
        f"average {load:.1f} at the end (the machine is shared: other work slows the figures). "
        f"SQL statements per tick: {min(per_tick, default=0)}-{max(per_tick, default=0)}.",
        "",
        "| answer | n | p50 (ms) | p95 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|",
        *[f"| {what} | {len(values)} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} | "
          f"{max(values, default=float('nan')):.2f} |" for what, values in rows],
        "",
        f"Target: a tick's p95 under {TARGET_P95_MS:.0f} ms: {p95:.2f} ms, "
        f"{'met' if p95 < TARGET_P95_MS else 'MISSED'}. The app's own CPU time for a tick (the database "
        f"server's time not included on PostgreSQL): p50 {percentile(tick_cpu, 50):.2f} ms, "
        f"p95 {percentile(tick_cpu, 95):.2f} ms.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"packing_scan-{dialect}.md").write_text(report, encoding="utf-8")
    return 0 if p95 < TARGET_P95_MS else 1


if __name__ == "__main__":
    sys.exit(main())
