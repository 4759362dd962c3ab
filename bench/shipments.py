"""Benchmark creating cargo shipments against the demo cargo service with the default worker setup: shipments/s.

Usage (from the repository root):

    .venv/bin/python bench/shipments.py [--shipments 500] [--repeat 3] [--kinds process:2]
                                        [--database-url postgresql+psycopg://...] [--no-write]

The sandbox (`python -m sandbox`, which serves the demo cargo service under /cargo/v1/) runs as its own process
on a free port, as scripts/run-demo starts it; the worker is `huey_consumer portal.worker.huey -w 2 -k process`
on the SQLite queue (scripts/run-demo's setup, "process:2"). A demo cargo company (DemoShippingClient) carries
the shipments. For each worker setup in --kinds, --repeat times (the median is shown):

- backlog: --shipments packed cargo packages are shipped ("Ship The Package", through run_command, one
  transaction each) with no worker running, then the consumer starts; the rate is shipments / (last shipment
  created - first shipment created), so the consumer's start-up is not counted;
- live: the consumer runs while the packages are shipped; the rate is shipments / (last created - first command).

Each shipment is one create call and one label download (the PDF is kept on the shipment), as in production.
The figures are printed and written to bench/RESULTS.md under "## Cargo shipments (bench/shipments.py,
<database>)" (only that section is replaced).
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Cargo shipments (bench/shipments.py, {database})"
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-shipments-", dir=os.environ.get("BENCH_DIR") or None))
CONSUMER = ROOT / ".venv" / "bin" / "huey_consumer"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"


def free_port() -> int:
    """A local port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sandbox:
    """`python -m sandbox` on a free port with tracking states that move only on demand."""

    def __init__(self):
        """Start it and wait for its health endpoint."""
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(WORK / "sandbox.log", "ab")
        env = {**os.environ, "SANDBOX_CARGO_STEP_SECONDS": "0"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", self.url.rsplit(":", 1)[1], "--address-count", "30",
             "--store-count", "3", "--order-count", "3"], cwd=ROOT, env=env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/api/v1/health/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("the sandbox did not start; see " + str(WORK / "sandbox.log"))

    def count(self) -> int:
        """Shipments the cargo service made."""
        return len(requests.get(f"{self.url}/__sandbox__/cargo/shipments", timeout=30).json())

    def stop(self) -> None:
        """Stop the process."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.log.close()


def environment(database_url: str, queue_path: str, cargo_url: str) -> dict:
    """The environment of this process and of the consumers (same database, queue, keys and cargo service)."""
    return {"DATABASE_URL": database_url, "HUEY_SQLITE_PATH": queue_path, "SECRET_KEY": SECRET_KEY,
            "PORTAL_ENV": "development", "SMS_PROVIDER": "memory", "CARGO_SERVICE_URL": cargo_url,
            "LOG_LEVEL": "WARNING"}


class Consumer:
    """huey_consumer with the given worker type and count, in its own process group."""

    def __init__(self, kind: str, workers: int, env: dict):
        """Start the consumer."""
        full = {k: v for k, v in os.environ.items() if k not in ("HUEY_IMMEDIATE", "REDIS_URL")}
        full.update(env)
        self.log = open(WORK / "consumer.log", "ab")
        self.process = subprocess.Popen([str(CONSUMER), "portal.worker.huey", "-w", str(workers), "-k", kind],
                                        cwd=ROOT, env=full, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def stop(self) -> None:
        """Stop gracefully, or kill after a few seconds."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def main() -> int:
    """Run the measurements and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shipments", type=int, default=500)
    parser.add_argument("--kinds", default="process:2")
    parser.add_argument("--repeat", type=int, default=3, help="runs per worker setup (the median is shown)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    sandbox = Sandbox()
    database_url = args.database_url or f"sqlite:///{WORK / 'portal.sqlite'}"
    env = environment(database_url, str(WORK / "huey.sqlite"), sandbox.url)
    os.environ.update(env)  # before the portal is imported: its config and queue read the environment

    from flask_migrate import upgrade
    from huey.storage import SqliteStorage
    from sqlalchemy import delete, func, select, text

    from portal import create_app
    from portal.cargo import service as cargo
    from portal.cargo.companies import demo_client_klass
    from portal.extensions import db
    from portal.packages import commands
    from portal.packages.models import Customer, Package, PackageItem, PackageLog
    from portal.packages.shipment_models import Shipment
    from portal.packages.states import DeliveryType, State
    from portal.queue import huey
    from portal.stores.models import StockLocation

    app = create_app({"RATELIMIT_ENABLED": False})
    lines: list[str] = []

    def say(line: str = "") -> None:
        """Print a line and keep it for the results file."""
        print(line, flush=True)
        lines.append(line)

    try:
        with app.app_context():
            if database_url.startswith("postgresql"):
                with db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            upgrade()
            session = db.session
            store = StockLocation(erp_code="BENCH", name="Kadıköy Store", city="İstanbul", address="Moda Cd. 1")
            session.add(store)
            cargo.save_company(session, name="Demo Cargo", erp_code="DEMO", is_managed_by_oms=True,
                               is_demo_client=True, shipping_company="yurtici",
                               conf={"klass": demo_client_klass("DemoShippingClient")}, user_id=None)
            counter = [0]

            def packed_packages(count: int) -> list[int]:
                """Packed cargo packages, ready to ship."""
                ids = []
                for _ in range(count):
                    counter[0] += 1
                    n = counter[0]
                    package = Package(number=f"BN{n:08d}", order_number=f"BO{n:08d}", stock_location_id=store.id,
                                      state=State.PACKED, delivery_type=DeliveryType.CARGO, delivery_from_store=False,
                                      item_count=1, customer=Customer(first_name="Ayşe", last_name=f"Yılmaz {n}",
                                                                      phone="+90 532 000 0000"))
                    package.items.append(PackageItem(order_item=n, sku=f"SKU-{n}", name="Linen shirt",
                                                     barcode=f"868{n:010d}"))
                    session.add(package)
                    session.flush()
                    ids.append(package.id)
                session.commit()
                return ids

            def ship(ids: list[int]) -> float:
                """Ship each package (one command, one transaction each); returns when the first one started."""
                started = time.time()
                for package_id in ids:
                    commands.run_command(session, package_id, slug="ship-the-package", user_id=None, store_ids=None)
                return started

            def wait_created(count: int, seconds: float = 900) -> tuple[float, float]:
                """Wait until `count` shipments are created; (first created, last created) as epoch seconds."""
                deadline = time.monotonic() + seconds
                while True:
                    session.rollback()
                    done = session.scalar(select(func.count(Shipment.id)).where(Shipment.status == Shipment.CREATED))
                    if done >= count:
                        break
                    if time.monotonic() > deadline:
                        failed = session.scalar(select(Shipment.last_error).where(Shipment.status == Shipment.FAILED)
                                                .limit(1))
                        raise SystemExit(f"only {done} of {count} shipments were created within {seconds:.0f} s"
                                         + (f"; one failed with: {failed}" if failed else ""))
                    time.sleep(0.05)
                first, last = session.execute(select(func.min(Shipment.updated_at), func.max(Shipment.updated_at))
                                              .where(Shipment.status == Shipment.CREATED)).one()
                session.rollback()
                return first.timestamp(), last.timestamp()

            def clear() -> None:
                """Start each run from no packages and no shipments."""
                session.execute(delete(Shipment))
                session.execute(delete(PackageLog))
                session.execute(delete(PackageItem))
                session.execute(delete(Package))
                session.commit()

            say(f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
                f"database {'PostgreSQL' if database_url.startswith('postgresql') else 'SQLite'}; queue SqliteHuey; "
                f"demo cargo service in its own process (python -m sandbox); {args.shipments} shipments per run, "
                f"{args.repeat} runs per setup (median); 1-minute load average {os.getloadavg()[0]:.1f} at the start")
            say()
            say("| worker setup | backlog: shipments/s | live: shipments/s | live: commands/s |")
            say("|---|---:|---:|---:|")
            for spec in args.kinds.split(","):
                kind, workers = spec.split(":")
                queue = str(WORK / f"huey-{kind}-{workers}.sqlite")
                huey.storage = SqliteStorage(name=huey.name, filename=queue)
                worker_env = environment(database_url, queue, sandbox.url)
                backlogs, lives, commands_rates = [], [], []
                for _ in range(args.repeat):
                    clear()
                    ship(packed_packages(args.shipments))  # the backlog, with no worker running
                    consumer = Consumer(kind, int(workers), worker_env)
                    try:
                        first, last = wait_created(args.shipments)
                        backlogs.append(args.shipments / max(last - first, 1e-9))
                        clear()
                        ids = packed_packages(args.shipments)
                        started = ship(ids)
                        commands_rates.append(args.shipments / (time.time() - started))
                        _first, last = wait_created(args.shipments)
                        lives.append(args.shipments / max(last - started, 1e-9))
                    finally:
                        consumer.stop()
                backlog, live, rate = (statistics.median(v) for v in (backlogs, lives, commands_rates))
                default = " (default, scripts/run-demo)" if spec == "process:2" else ""
                say(f"| -k {kind} -w {workers}{default} | {backlog:,.0f} | {live:,.0f} | {rate:,.0f} |")
            made = sandbox.count()
            say()
            say(f"The cargo service made {made:,} shipments for {args.shipments * 2 * args.repeat * len(args.kinds.split(',')):,}"
                " packages shipped: one per package.")
    finally:
        sandbox.stop()
    if not args.no_write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        heading = HEADING.format(database="PostgreSQL" if database_url.startswith("postgresql") else "SQLite")
        section = f"{heading}\n\nRun {stamp}: `.venv/bin/python bench/shipments.py " + " ".join(sys.argv[1:]) + "`\n\n"
        section += "\n".join(lines) + "\n"
        text_ = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        start = text_.find(heading)
        if start == -1:
            text_ = text_.rstrip("\n") + "\n\n" + section
        else:
            following = text_.find("\n## ", start + len(heading))
            text_ = text_[:start] + section + ("\n" + text_[following + 1:] if following != -1 else "")
        RESULTS.write_text(text_)
        print(f"\nWritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
