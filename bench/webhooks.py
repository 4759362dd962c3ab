"""Benchmark webhooks through the outbox: deliveries per second, and the outbox's share of a command's latency.

Usage (from the repository root):

    .venv/bin/python bench/webhooks.py [--events 1000] [--repeat 3] [--kinds process:2,thread:2,thread:8]
                                       [--commands 600] [--block 1] [--database-url postgresql+psycopg://...]
                                       [--skip-throughput] [--no-write]
    .venv/bin/python bench/webhooks.py --cpu 2000 [--profile 25] [--database-url ...]
    .venv/bin/python bench/webhooks.py --env RUN_DIR/env [--events 3000] [--repeat 1] [--writers 8]

1. Deliveries per second to a local receiver (a keep-alive HTTP server in this process answering 200 at once),
   for each worker setup in --kinds ("process:2" is the default setup scripts/run-demo starts:
   `huey_consumer portal.worker.huey -w 2 -k process` on the SQLite queue). One subscription to "*".
   Each setup runs --repeat times and the median is shown (the machine may be busy with other work).
   - backlog: --events events are written with no worker running, then the consumer starts; the rate is
     events / (last delivery - first delivery), so the consumer's start-up is not counted;
   - live: the consumer runs while --events events are written one transaction each (as commands do);
     the rate is events / (last delivery - first write).
2. The outbox's share of a command's latency: READY_FOR_PICKUP on packed click & collect packages, both through
   run_command() and through the command API (POST /api/v1/oms/packages/{id}/command/ with a token, Flask's
   test client), p50/p95 of four variants: event recording switched off (OUTBOX_RECORD_EVENTS=False, benchmark
   only: the command still writes its SMS); events on with 0 subscriptions; 3 subscriptions to "*" (the worst
   case: every command writes 2 event rows + 6 webhook rows); 3 subscriptions to one event type each, one of
   which the command raises (2 event rows + 1 webhook row). No worker runs during the timing; each command's
   messages are queued on the SQLite queue as one task. The variants take turns (--block commands each) so
   that drift, WAL checkpoints and fsync stalls hit all of them alike. Share = (p50 with - p50 off) / p50 with;
   the target is under 10%.
3. --cpu N (only this, nothing written to RESULTS.md): the worker's delivery loop in this process, without the
   queue: N events are written (one subscription to "*"), then the tasks the committing transactions would have
   queued (deliver_messages, one per event, as the consumer runs them) are run one after another, and the CPU
   time of this process (all threads: the loop and its sending pool) is divided by the deliveries. The receiver
   runs in a child process so that its CPU is not counted. --profile K prints cProfile's top K functions.
4. --env RUN_DIR/env (only this, nothing written): deliveries/s on the production profile scripts/run-scale
   started (PostgreSQL, Redis, its huey workers, the stand-in receiver subscribed to every event), counted by the
   stand-ins' /__stats__: backlog (--events events written with nothing queued, then one task queued for all of
   them, as after a queue outage) and live (one transaction and one queued task per event, as commands do, from
   --writers threads), with the workers' CPU per delivery (from /proc).
The figures are printed and written to bench/RESULTS.md under "## Webhooks and the outbox (bench/webhooks.py,
<database>)" (only that section is replaced).
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Webhooks and the outbox (bench/webhooks.py, {database})"
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-webhooks-", dir=os.environ.get("BENCH_DIR") or None))
CONSUMER = ROOT / ".venv" / "bin" / "huey_consumer"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"
TARGET_SHARE = 0.10


class Server(ThreadingHTTPServer):
    """http.server with a listen backlog like a production server's (its default of 5 resets a burst of new
    keep-alive connections: a worker opens one per sending thread)."""

    request_queue_size = 1024
    daemon_threads = True


class Receiver:
    """A local receiver that counts POSTs and remembers when the first and the last arrived."""

    def __init__(self):
        """Start serving on a free local port."""
        self.count = 0
        self.first = self.last = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            """Answers 200 at once, keeping the connection open."""

            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer at once, as production servers do (no delayed-ACK stall)

            def do_POST(self):  # noqa: N802 (http.server's name)
                """Read the body, count it, answer."""
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                with receiver.lock:
                    receiver.count += 1
                    receiver.first = receiver.first or now
                    receiver.last = now
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format, *args):  # noqa: A002
                """Stay quiet."""

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        """Forget what was counted."""
        with self.lock:
            self.count, self.first, self.last = 0, 0.0, 0.0

    def wait_for(self, count: int, seconds: float) -> None:
        """Wait until `count` requests arrived."""
        deadline = time.monotonic() + seconds
        while self.count < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.count} of {count} deliveries arrived within {seconds:.0f} s")
            time.sleep(0.01)


def environment(database_url: str, queue_path: str) -> dict:
    """The environment of this process and of the consumers (same database, same queue, same keys)."""
    return {"DATABASE_URL": database_url, "HUEY_SQLITE_PATH": queue_path, "SECRET_KEY": SECRET_KEY,
            "PORTAL_ENV": "development", "SMS_PROVIDER": "memory", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
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


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def serve_receiver() -> int:
    """Run a Receiver in this process (the --cpu child): print its URL, serve until killed."""
    receiver = Receiver()
    print(receiver.url, flush=True)
    while True:
        time.sleep(3600)


def cpu_per_delivery(app, session, count: int, profile: int) -> int:
    """--cpu: the worker's loop in this process, timed by CPU; prints CPU per delivery and deliveries/s."""
    import cProfile
    import pstats

    from sqlalchemy import func, select

    from portal.outbox import tasks
    from portal.outbox.models import OutboxMessage
    from portal.webhooks import events, service

    child = subprocess.Popen([sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        service.create_subscription(session, event_type="*", target_url=url, retry_countdown_config=None,
                                    additional_headers=None, user_id=None)
        uuids = []
        for n in range(count):
            uuids.append(events.record_event(session, "stock_location.updated", {"id": n, "name": f"Store {n}"}).uuid)
            session.commit()
            session.info.clear()  # nothing queued: the loop below runs the tasks
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for event_uuid in uuids:  # what the consumer runs: one task per committed transaction
            tasks.deliver_messages.call_local([], [event_uuid])
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        sent = session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.kind == "webhook", OutboxMessage.status == "sent"))
        print(f"{sent} of {count} deliveries sent; worker CPU {cpu * 1000 / max(sent, 1):.2f} ms per delivery "
              f"({cpu:.2f} s CPU in {wall:.2f} s: {sent / wall:,.0f} deliveries/s with one task at a time"
              f"{', under cProfile' if profiler else ''}); 1-minute load average {os.getloadavg()[0]:.1f}")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
        return 0 if sent == count else 1
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def received(standins: str) -> tuple[int, int]:
    """(webhooks received, distinct webhook ids) so far, from the stand-ins' counters."""
    import requests

    stats = requests.get(f"{standins}/__stats__", timeout=10).json()
    return stats["webhooks_received"], stats["webhook_ids"]


def wait_received(standins: str, target: int, seconds: float = 900) -> float:
    """Poll the stand-ins until `target` webhooks arrived; when that happened (perf_counter)."""
    deadline = time.monotonic() + seconds
    while received(standins)[0] < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {received(standins)[0]} of {target} webhooks arrived within {seconds:.0f} s")
        time.sleep(0.05)
    return time.perf_counter()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (their threads included), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def write_live(app, numbers: range) -> None:
    """One writer: an event per transaction, its delivery queued after the commit (as a command does)."""
    from portal.extensions import db
    from portal.outbox import service as outbox
    from portal.webhooks import events

    with app.app_context():
        for i in numbers:
            events.record_event(db.session, "stock_location.updated", {"id": i})
            db.session.commit()
            outbox.deliver_after_commit(db.session)
        db.session.remove()


def production_profile(env_file: str, count: int, repeat: int, writers: int) -> int:
    """--env: deliveries/s through a running scripts/run-scale (its workers, Redis, PostgreSQL, stand-ins)."""
    pairs = (line.split("=", 1) for line in Path(env_file).read_text().splitlines() if "=" in line)
    run = dict(pairs)
    os.environ.update({"DATABASE_URL": run["DATABASE_URL"], "REDIS_URL": run["REDIS_URL"],
                       "SECRET_KEY": SECRET_KEY, "PORTAL_ENV": "development", "LOG_LEVEL": "WARNING"})
    from portal import create_app
    from portal.extensions import db
    from portal.outbox import service as outbox
    from portal.webhooks import events

    app = create_app({"RATELIMIT_ENABLED": False})
    standins = run["STANDINS_URL"]
    print(f"Production profile {env_file}: workers {run.get('WORKER_PIDS', '?').strip()}; {count} events per run, "
          f"one delivery each; live: {writers} writer threads; 1-minute load average {os.getloadavg()[0]:.1f} at the start")
    print()
    print("| run | backlog: deliveries/s | backlog: worker CPU ms per delivery | live: deliveries/s | "
          "live: writes/s | live: worker CPU ms per delivery | duplicates |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    pid_dir = Path(run["PID_DIR"]) if run.get("PID_DIR") else None

    def workers() -> list[int]:
        """The workers' pids now (the supervisor restarts them) and their children (process workers)."""
        names = sorted(pid_dir.glob("worker-*")) if pid_dir else []
        pids = [int(p.read_text()) for p in names if p.name.split("-")[-1].isdigit() and p.read_text().strip()]
        pids = pids or [int(p) for p in run.get("WORKER_PIDS", "").split()]
        children = []
        for pid in pids:
            try:
                children += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                pass
        return pids + children

    with app.app_context():
        session = db.session
        for n in range(repeat):
            base, ids_before = received(standins)
            duplicates_before = base - ids_before
            uuids = []
            for i in range(count):
                uuids.append(events.record_event(session, "stock_location.updated", {"id": i}).uuid)
                session.commit()
                session.info.clear()  # not queued: the backlog waits for the one task below
            cpu = cpu_seconds(workers())
            started = time.perf_counter()
            outbox.CHANNELS.dispatcher([], uuids)  # type: ignore[misc]
            backlog = count / (wait_received(standins, base + count) - started)
            backlog_cpu = (cpu_seconds(workers()) - cpu) * 1000 / count
            base = received(standins)[0]
            cpu = cpu_seconds(workers())
            started = time.perf_counter()
            threads = [threading.Thread(target=write_live, args=(app, range(w, count, writers)))
                       for w in range(writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            writes = count / (time.perf_counter() - started)
            live = count / (wait_received(standins, base + count) - started)
            live_cpu = (cpu_seconds(workers()) - cpu) * 1000 / count
            total, ids = received(standins)
            print(f"| {n + 1} | {backlog:,.0f} | {backlog_cpu:.2f} | {live:,.0f} | {writes:,.0f} | {live_cpu:.2f} | "
                  f"{total - ids - duplicates_before} |", flush=True)
    return 0


def main() -> int:
    """Run both measurements and write the figures."""
    if sys.argv[1:] == ["--serve-receiver"]:
        return serve_receiver()
    if "--env" in sys.argv:
        quick = argparse.ArgumentParser()
        quick.add_argument("--env", required=True)
        quick.add_argument("--events", type=int, default=3000)
        quick.add_argument("--repeat", type=int, default=1)
        quick.add_argument("--writers", type=int, default=8, help="threads writing the live events")
        known, _ = quick.parse_known_args()
        return production_profile(known.env, known.events, known.repeat, known.writers)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=600, help="commands per latency variant")
    parser.add_argument("--block", type=int, default=1,
                        help="commands in a row per variant before switching (1: the variants take turns)")
    parser.add_argument("--kinds", default="process:2,thread:2,thread:8")
    parser.add_argument("--repeat", type=int, default=3, help="runs per worker setup (the median is shown)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--cpu", type=int, default=0, help="only measure the worker's CPU per delivery (N events)")
    parser.add_argument("--profile", type=int, default=0, help="with --cpu: print cProfile's top N functions")
    parser.add_argument("--skip-throughput", dest="throughput", action="store_false",
                        help="skip the deliveries-per-second part")
    args = parser.parse_args()

    database_url = args.database_url or f"sqlite:///{WORK / 'portal.sqlite'}"
    env = environment(database_url, str(WORK / "huey-latency.sqlite"))
    os.environ.update(env)  # before the portal is imported: its config and queue read the environment

    from flask_migrate import upgrade
    from huey.storage import SqliteStorage
    from sqlalchemy import delete, select, text, update

    from portal import create_app
    from portal.accounts import auth
    from portal.extensions import db
    from portal.outbox import service as outbox
    from portal.outbox.models import OutboxMessage
    from portal.packages import commands
    from portal.packages.models import Customer, Package
    from portal.packages.states import DeliveryType, State
    from portal.queue import huey
    from portal.stores.models import StockLocation
    from portal.webhooks import events, service
    from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

    app = create_app({"RATELIMIT_ENABLED": False})  # the API's rate limit would stop the latency runs
    receiver = Receiver()
    lines: list[str] = []

    def say(line: str = "") -> None:
        """Print a line and keep it for the results file."""
        print(line, flush=True)
        lines.append(line)

    with app.app_context():
        if database_url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        session = db.session
        if args.cpu:
            return cpu_per_delivery(app, session, args.cpu, args.profile)
        subscription, _ = service.create_subscription(
            session, event_type="*", target_url=receiver.url, retry_countdown_config=None,
            additional_headers=None, user_id=None)

        def write_events(count: int) -> None:
            """One transaction per event, queued after its commit, as commands do."""
            for n in range(count):
                events.record_event(session, "stock_location.updated", {"id": n, "name": f"Store {n}"})
                session.commit()
                outbox.deliver_after_commit(session)

        def clear_outbox() -> None:
            """Start each run from an empty outbox."""
            session.execute(delete(DeliveryAttempt))
            session.execute(delete(OutboxMessage))
            session.commit()

        say(f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
            f"database {'PostgreSQL' if database_url.startswith('postgresql') else 'SQLite'}; "
            f"queue SqliteHuey; {args.events} events per run, {args.repeat} runs per setup (median); "
            "receiver in this process; 1-minute load average "
            f"{os.getloadavg()[0]:.1f} at the start")
        if args.throughput:
            say()
            say("| worker setup | backlog: deliveries/s | live: deliveries/s | live: writes/s |")
            say("|---|---:|---:|---:|")
        rates = {}
        for spec in args.kinds.split(",") if args.throughput else []:
            kind, workers = spec.split(":")
            queue = str(WORK / f"huey-{kind}-{workers}.sqlite")
            huey.storage = SqliteStorage(name=huey.name, filename=queue)
            worker_env = environment(database_url, queue)

            backlogs, lives, writes = [], [], []
            for _ in range(args.repeat):
                clear_outbox()
                receiver.reset()
                write_events(args.events)  # the backlog, with no worker running
                consumer = Consumer(kind, int(workers), worker_env)
                try:
                    receiver.wait_for(args.events, 600)
                    backlogs.append(args.events / max(receiver.last - receiver.first, 1e-9))
                    clear_outbox()
                    receiver.reset()
                    started = time.perf_counter()
                    write_events(args.events)
                    writes.append(args.events / (time.perf_counter() - started))
                    receiver.wait_for(args.events, 600)
                    lives.append(args.events / (receiver.last - started))
                finally:
                    consumer.stop()
            backlog, live, written = (statistics.median(v) for v in (backlogs, lives, writes))
            rates[spec] = (backlog, live)
            default = " (default, scripts/run-demo)" if spec == "process:2" else ""
            say(f"| -k {kind} -w {workers}{default} | {backlog:,.0f} | {live:,.0f} | {written:,.0f} |")
        if rates:
            best = max(rates, key=lambda s: rates[s][1])
            say()
            say(f"Fastest live setup: {best}.")

        # --- the outbox's share of a command's latency ---
        huey.storage = SqliteStorage(name=huey.name, filename=str(WORK / "huey-latency.sqlite"))
        clear_outbox()
        session.execute(update(WebhookSubscription).values(is_active=False))
        session.commit()
        # Each to its own path of the receiver: the portal refuses a second subscription of a type to one URL.
        extra = [service.create_subscription(session, event_type="*", target_url=f"{receiver.url}/all-{n}",
                                             retry_countdown_config=None, additional_headers=None,
                                             user_id=None)[0].id for n in range(3)]
        typed = [service.create_subscription(session, event_type=event_type,
                                             target_url=f"{receiver.url}/typed-{event_type}",
                                             retry_countdown_config=None, additional_headers=None,
                                             user_id=None)[0].id
                 for event_type in ("package.ready_for_customer_pickup", "package.status.shipped",
                                    "stock_location.updated")]
        store = StockLocation(erp_code="BENCH-1", name="Bench store", city="Istanbul")
        session.add(store)
        session.commit()
        admin = auth.create_user(session, "bench-webhooks-admin", "bench-admin-pass-1", "admin")
        api_key = auth.create_api_token(session, admin)
        session.commit()
        variants = ["events off", "0 subscriptions", "3 subscriptions to *", "3 subscriptions, 1 type each"]
        paths = ["run_command()", "command API"]
        warmup, block = 30, args.block
        total = (warmup + args.commands * len(variants)) * len(paths)
        for n in range(total):
            session.add(Package(number=f"BW{n:07d}", order_number=f"BWO{n:06d}", stock_location_id=store.id,
                                state=State.PACKED, delivery_type=DeliveryType.IN_STORE, delivery_from_store=True,
                                item_count=1, customer=Customer(first_name="Ada", last_name=f"C{n}",
                                                                phone="+905551112233")))
        session.commit()
        package_ids = list(session.scalars(select(Package.id).where(Package.stock_location_id == store.id)
                                           .order_by(Package.id)))
        timings: dict[tuple[str, str], list[float]] = {(p, v): [] for p in paths for v in variants}
        client = app.test_client()
        headers = {"Authorization": f"Token {api_key}"}

        def configure(variant: str) -> None:
            """Switch event recording and the three subscriptions for a variant."""
            app.config["OUTBOX_RECORD_EVENTS"] = variant != "events off"
            session.execute(update(WebhookSubscription).where(WebhookSubscription.id.in_(extra))
                            .values(is_active=variant == "3 subscriptions to *"))
            session.execute(update(WebhookSubscription).where(WebhookSubscription.id.in_(typed))
                            .values(is_active=variant == "3 subscriptions, 1 type each"))
            session.commit()

        def command(path: str, package_id: int) -> float:
            """One READY_FOR_PICKUP, directly or through the API, timed in milliseconds."""
            started = time.perf_counter()
            if path == "run_command()":
                commands.run_command(session, package_id, slug="ready-for-customer-pickup", user_id=None,
                                     store_ids=None)
            else:
                response = client.post(f"/api/v1/oms/packages/{package_id}/command/", headers=headers,
                                       json={"slug": "ready-for-customer-pickup",
                                             "input_parameters": {"package": package_id}})
                if response.status_code != 204:
                    raise SystemExit(f"command API answered {response.status_code}: {response.get_data(True)}")
            elapsed = (time.perf_counter() - started) * 1000
            session.expunge_all()  # keep the identity map as small as in a request
            return elapsed

        ids = iter(package_ids)
        configure("3 subscriptions to *")
        for path in paths:
            for _ in range(warmup):
                command(path, next(ids))
        rounds = args.commands // block
        for r in range(rounds):
            for variant in variants[r % len(variants):] + variants[:r % len(variants)]:
                configure(variant)
                for path in paths:
                    timings[path, variant].extend(command(path, next(ids)) for _ in range(block))
        app.config["OUTBOX_RECORD_EVENTS"] = True
        rows = session.execute(select(OutboxMessage.kind, text("count(*)")).group_by(OutboxMessage.kind)).all()

    shares = {}
    for path in paths:
        off = statistics.median(timings[path, "events off"])
        say()
        say(f"READY_FOR_PICKUP through {path}, {rounds * block} commands per variant, the variants taking turns "
            f"{block} at a time (milliseconds; the command also writes its SMS and the OTP in every variant):")
        say()
        say("| variant | p50 | p95 | mean | outbox share of p50 |")
        say("|---|---:|---:|---:|---:|")
        for variant in variants:
            values = timings[path, variant]
            p50 = statistics.median(values)
            share = (p50 - off) / p50 if variant != "events off" else 0.0
            shares[path, variant] = share
            say(f"| {variant} | {p50:.2f} | {percentile(values, 0.95):.2f} | {statistics.fmean(values):.2f} | "
                f"{'-' if variant == 'events off' else f'{share:.1%}'} |")
    say()
    say("Outbox rows written during the latency runs: " + ", ".join(f"{k} {n}" for k, n in rows) + " (a command "
        "writes one row per event; the worker fans events out into their webhook rows after the commit, and no "
        "worker runs during these runs).")
    say()
    met = True
    for path in paths:
        for variant in variants[1:]:
            ok = shares[path, variant] < TARGET_SHARE
            met = met and ok
        say(f"Target (the outbox adds under {TARGET_SHARE:.0%}) through {path}: " + "; ".join(
            f"{variant} {shares[path, variant]:.1%} {'met' if shares[path, variant] < TARGET_SHARE else 'MISSED'}"
            for variant in variants[1:]) + ".")
    if not args.no_write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        heading = HEADING.format(database="PostgreSQL" if database_url.startswith("postgresql") else "SQLite")
        section = f"{heading}\n\nRun {stamp}: `.venv/bin/python bench/webhooks.py " + " ".join(sys.argv[1:]) + "`\n\n"
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
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
