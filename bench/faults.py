"""Faults in the middle of traffic, on a running production profile (scripts/run-scale), and the checks after.

    .venv/bin/python bench/faults.py --env RUN_DIR/env [--faults postgres,redis,worker,worker-send,app,sms,hooks]
        [--outage-seconds 10] [--sms-down-seconds 60] [--hooks-seconds 20] [--traffic-seconds 5]
        [--tablets 3] [--hook-retry-seconds 10] [--hang-seconds 3] [--drain-seconds 300] [--json FILE]

Traffic runs for the whole run: store tablets (staff users of BS-001...) log in with the HTML form and run
commands through the buttons' own forms (ready for pickup, then the handover with the code the SMS stand-in
received; a floater tablet hands over the first store's packages too, so two tablets race), and an integrator
moves Waiting packages on with the REST API. In the middle of it each fault happens in turn, with traffic
before and after it:

  postgres  PostgreSQL stopped (pg_ctl -m fast; --pg-mode immediate for a crash) and started again after
            --outage-seconds
  postgres-crash (not in the default list) the same with -m immediate: as a crash, recovered at start
  redis     Redis stopped (it keeps nothing on disk: the queued tasks are lost) and started again after
            --outage-seconds (by run-scale's supervisor)
  worker    the first huey worker (the one that runs the every-minute sweep) killed with SIGKILL, started again
            after --outage-seconds by run-scale's supervisor, as systemd's Restart=always would
  worker-send  a worker killed with SIGKILL in the middle of a send, made to happen: the stand-ins hold every SMS
            and webhook request (their hang mode, at most --hang-seconds, kept under the send timeouts) until a
            worker has requests in flight (its connections to the stand-ins, found in /proc), then that worker is
            killed and the requests released (the provider and the receiver got them; the worker recorded
            nothing); the supervisor starts it again after --outage-seconds. Once the claims' lease runs out
            (OUTBOX_LEASE_SECONDS) the sweep sends them again: each must arrive again under the same webhook id
            (the SMS from the same outbox message) and end delivered or dead-lettered
  app       the first gunicorn app process killed with SIGKILL (the other keeps serving on the shared port),
            started again after --outage-seconds by run-scale's supervisor
  sms       the SMS provider answers 503 for --sms-down-seconds
  hooks     the webhook receivers answer 503, then answer slowly (the stand-in's --slow-seconds), each for
            --hooks-seconds, then at once

Then the traffic stops, the outbox drains (every SMS and webhook message sent or dead-lettered) and the run is
checked: each committed transition's messages are delivered (the stand-ins received every id marked sent) or
visibly dead-lettered; no event reached a receiver under two webhook ids, and no event was fanned out twice;
no webhook id or SMS arrived twice (a redelivery of the same id is counted apart, and with --strict-duplicates
fails the run unless it is one of the messages the worker-send kill interrupted); every package the run moved
is in the state its last log row says, none delivered twice; and no request got a 5xx other than the outage's
503 page or JSON, or a stack trace. The figures are printed per fault (committed, delivered, dead-lettered,
duplicates; for worker-send also the requests in flight at the kill and how many of them came again under the
same id) and, with --json, written to a file. Exit status 1 on any failure.

Process faults need scripts/run-scale's supervisor (RUN_DIR/pids); PostgreSQL is stopped and started with its own
pg_ctl, as the postgres user when run as root.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runenv import read_env  # noqa: E402  (bench/ is not a package: its scripts import each other so)

FAULTS = ("postgres", "redis", "worker", "worker-send", "app", "sms", "hooks")
EXTRA_FAULTS = ("postgres-crash",)  # on request: PostgreSQL stopped with -m immediate (crash recovery at start)
STAFF_PASSWORD = "bench-staff-pass-1"
FLOATER = "bench-floater"  # staff of BS-001 and BS-002: races the first tablet for its handovers
ADMIN = ("bench-admin", "bench-admin-pass-1")
WAITING, PREPARING, PACKED, READY, DELIVERED = 100, 200, 500, 550, 800
API_COMMAND = "deallocate-package-reservations"  # Waiting -> Preparing, allowed to an admin token
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")
TRACE = ("Traceback (most recent call last)", "sqlalchemy.exc", "psycopg.", "redis.exceptions")


# --- traffic ---------------------------------------------------------------------------------------------------

class Tally:
    """What the traffic's requests got, counted by kind; thread-safe, with snapshots per phase."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []

    def answer(self, what: str, response: requests.Response | None, error: Exception | None = None) -> None:
        """Count one answer: ok, refused (4xx), unavailable (a proper 503), dropped (no answer) or error (5xx)."""
        with self.lock:
            if response is None:
                self.counts["dropped"] += 1
                return
            status = response.status_code
            if status < 400:
                self.counts["ok"] += 1
            elif status == 503:
                text = response.text
                proper = (response.headers.get("Retry-After") and not any(t in text for t in TRACE)
                          and ('"unavailable"' in text or "error-page" in text or "flash-error" in text))
                self.counts["unavailable" if proper else "error"] += 1
                if not proper:
                    self.problems.append(f"{what}: a 503 without the outage page: {text[:200]!r}")
            elif status >= 500:
                self.counts["error"] += 1
                self.problems.append(f"{what}: {status} {response.text[:200]!r}")
            else:
                self.counts["refused"] += 1

    def snapshot(self) -> Counter[str]:
        """The counts so far."""
        with self.lock:
            return Counter(self.counts)


def call(tally: Tally, what: str, method, *args, **kwargs) -> requests.Response | None:
    """One request, counted; None when the connection failed (an app process killed mid-request)."""
    try:
        response = method(*args, timeout=kwargs.pop("timeout", 30), **kwargs)
    except requests.RequestException as exc:
        tally.answer(what, None, exc)
        return None
    tally.answer(what, response)
    return response


class Tablet(threading.Thread):
    """A store tablet: logs in with the form, readies Packed packages and hands over those whose code arrived."""

    def __init__(self, run: Run, username: str, store_packages: list[int], handovers: list[int], pause: float,
                 password: str = STAFF_PASSWORD):
        super().__init__(name=f"tablet-{username}", daemon=True)
        self.run_ = run
        self.username = username
        self.password = password
        self.last_ready = 0.0
        self.todo = store_packages  # Packed packages to ready (this tablet's alone)
        self.handovers = handovers  # Ready packages to hand over (shared with a racing tablet)
        self.pause = pause
        self.http = requests.Session()
        self.logged_in = False

    def login(self) -> bool:
        """Log in through the form; False when the portal did not let us in (an outage): tried again later."""
        page = call(self.run_.tally, "GET /login", self.http.get, f"{self.run_.base}/login", timeout=10)
        token = CSRF.search(page.text) if page is not None and page.ok else None
        if token is None:
            return False
        answer = call(self.run_.tally, "POST /login", self.http.post, f"{self.run_.base}/login",
                      data={"username": self.username, "password": self.password, "csrf_token": token.group(1)},
                      allow_redirects=False, timeout=15)
        return answer is not None and answer.status_code == 302

    def command(self, package_id: int, slug: str, **fields) -> requests.Response | None:
        """Open the package page and post the command's form, as its button does."""
        page = call(self.run_.tally, "GET package", self.http.get, f"{self.run_.base}/packages/{package_id}")
        if page is None or not page.ok:
            return None
        token = CSRF.search(page.text)
        if token is None:  # logged out (the app lost our session?) : log in again next round
            self.logged_in = False
            return None
        return call(self.run_.tally, f"POST {slug}", self.http.post,
                    f"{self.run_.base}/packages/{package_id}/commands/{slug}",
                    data={"csrf_token": token.group(1), **fields}, allow_redirects=False)

    def run(self) -> None:
        """Work until the run stops."""
        while not self.run_.stopping.is_set():
            if not self.logged_in:
                self.logged_in = self.login()
                if not self.logged_in:
                    self.run_.stopping.wait(1)
                    continue
            if self.todo and time.monotonic() - self.last_ready >= self.run_.args.ready_every:
                self.last_ready = time.monotonic()
                package_id = self.todo.pop()
                answer = self.command(package_id, "ready-for-customer-pickup")
                if answer is not None and answer.status_code in (200, 302):
                    self.handovers.append(package_id)
            self.hand_over_one()
            self.run_.stopping.wait(self.pause)

    def hand_over_one(self) -> None:
        """Hand over the oldest Ready package whose code the SMS stand-in has received (if any)."""
        for package_id in list(self.handovers[:3]):
            code = self.run_.code_for(package_id)
            if code is None:
                continue
            answer = self.command(package_id, "self-service-package-delivery", otp=code)
            if answer is not None and answer.status_code < 500 and package_id in self.handovers:
                try:
                    self.handovers.remove(package_id)
                except ValueError:  # the racing tablet took it off first
                    pass
            return


class Integrator(threading.Thread):
    """An integrated system moving Waiting packages on with the REST API."""

    def __init__(self, run: Run, packages: list[int], pause: float):
        super().__init__(name="integrator", daemon=True)
        self.run_ = run
        self.packages = packages
        self.pause = pause
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {run.env['API_TOKEN']}"

    def run(self) -> None:
        """Work until the run stops."""
        while not self.run_.stopping.is_set() and self.packages:
            package_id = self.packages.pop()
            call(self.run_.tally, "API POST command", self.http.post,
                 f"{self.run_.base}/api/v1/oms/packages/{package_id}/command/", json={"slug": API_COMMAND})
            call(self.run_.tally, "API GET package", self.http.get,
                 f"{self.run_.base}/api/v1/oms/packages/{package_id}/")
            self.run_.stopping.wait(self.pause)


# --- who holds a connection ----------------------------------------------------------------------------------

def connections_to(port: int) -> dict[int, int]:
    """Established TCP connections from this machine to 127.0.0.1:port: the client's port -> its socket inode."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(remote.rsplit(":", 1)[1], 16) == port and inode:
                found[int(local.rsplit(":", 1)[1], 16)] = inode
    return found


def sockets_of(processes: dict[str, int]) -> dict[str, set[int]]:
    """The socket inodes each process holds open (its /proc/PID/fd links "socket:[inode]")."""
    held: dict[str, set[int]] = {}
    for name, pid in processes.items():
        inodes = set()
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except OSError:
            pass
        held[name] = inodes
    return held


# --- the run ---------------------------------------------------------------------------------------------------

@dataclass
class Kill:
    """A worker killed mid-send: which one, and the requests it had in flight at the stand-ins then."""

    worker: str
    pid: int
    flights: list[dict]
    waited: float  # seconds from the hang mode until the kill

    def webhook_ids(self) -> set[str]:
        """The webhook ids it was sending."""
        return {f["id"] for f in self.flights if f["kind"] == "webhook"}

    def sms_keys(self) -> set[str]:
        """The SMS it was sending (the stand-ins' keys: To and Body)."""
        return {f["id"] for f in self.flights if f["kind"] == "sms"}


@dataclass
class Mark:
    """Where the records stood at a moment: the newest package log and outbox message ids, and the traffic."""

    log_id: int
    outbox_id: int
    traffic: Counter[str]
    at: float


@dataclass
class Phase:
    """One fault: the marks before and after it, and what happened during it."""

    fault: str
    start: Mark | None = None
    end: Mark | None = None
    recovered_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    kill: Kill | None = None  # worker-send: what the kill interrupted


class Run:
    """The profile under test: its settings, the database, the stand-ins, the traffic."""

    def __init__(self, env: dict[str, str], args: argparse.Namespace):
        self.env = env
        self.args = args
        self.base = env["BASE_URL"]
        self.standins = env["STANDINS_URL"]
        self.engine = sa.create_engine(env["DATABASE_URL"], pool_pre_ping=True, pool_size=4)
        self.tally = Tally()
        self.stopping = threading.Event()
        self.pid_dir = Path(env.get("PID_DIR", ""))
        self.kills: list[Kill] = []  # what each worker-send kill interrupted

    # records

    def mark(self) -> Mark:
        """The newest ids now (waiting out a database outage)."""
        while True:
            try:
                with self.engine.connect() as conn:
                    log_id = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM package_logs"))
                    outbox_id = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM outbox_messages"))
                return Mark(log_id, outbox_id, self.tally.snapshot(), time.monotonic())
            except sa.exc.OperationalError:
                time.sleep(0.5)

    def code_for(self, package_id: int) -> str | None:
        """The pickup code the SMS stand-in received for the package's customer, if it did."""
        try:
            with self.engine.connect() as conn:
                payload = conn.scalar(sa.text(
                    "SELECT payload FROM outbox_messages WHERE kind = 'sms' AND package_id = :id AND status = 'sent' "
                    "ORDER BY id DESC LIMIT 1"), {"id": package_id})
            if not payload:
                return None
            answer = requests.get(f"{self.standins}/__sms__", params={"to": payload["to"]}, timeout=5)
        except (sa.exc.OperationalError, requests.RequestException):
            return None
        match = CODE.search(answer.json().get("body") or "") if answer.ok else None
        return match.group(1) if match else None

    def prepare(self, stores: list[str], per_store: int, waiting: int) -> tuple[dict[str, list[int]], list[int]]:
        """Packed click-and-collect packages per store for the tablets and Waiting ones elsewhere for the API.

        Stores are named by ERP code ranges: "BS-001" is one store; "BS-011:BS-250" the stores between (the
        head-office tablet's). Packages no command has moved yet are set up in those states first, as a fixture
        would: they have no log row of this run until a command moves them, so the state checks ignore the set-up.
        """
        packed: dict[str, list[int]] = {}
        untouched = "NOT EXISTS (SELECT 1 FROM package_logs l WHERE l.package_id = p.id)"
        with self.engine.begin() as conn:
            for store in stores:
                low, _, high = store.partition(":")
                where = (f"s.erp_code BETWEEN :low AND :high AND {untouched} AND p.delivery_from_store "
                         "AND p.state = :packed")
                bounds = {"low": low, "high": high or low, "packed": PACKED, "n": per_store}
                conn.execute(sa.text(
                    "UPDATE packages SET state = :packed, delivery_from_store = true, delivery_type = 'in_store' "
                    "WHERE id IN (SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
                    f"WHERE s.erp_code BETWEEN :low AND :high AND {untouched} AND p.state <> :packed "
                    "ORDER BY p.id DESC LIMIT :n)"), bounds)
                packed[store] = list(conn.scalars(sa.text(
                    "SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
                    f"WHERE {where} ORDER BY p.id LIMIT :n"), bounds))
            api_stores = {"low": "BS-251", "high": "BS-999", "waiting": WAITING, "n": waiting}
            conn.execute(sa.text(
                "UPDATE packages SET state = :waiting WHERE id IN (SELECT p.id FROM packages p "
                "JOIN stock_locations s ON s.id = p.stock_location_id WHERE s.erp_code BETWEEN :low AND :high "
                f"AND p.state <> :waiting AND {untouched} ORDER BY p.id DESC LIMIT :n)"), api_stores)
            api = list(conn.scalars(sa.text(
                "SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
                f"WHERE s.erp_code BETWEEN :low AND :high AND p.state = :waiting AND {untouched} "
                "ORDER BY p.id LIMIT :n"), api_stores))
            if self.args.hook_retry_seconds:
                # The run's subscription retries at a fixed interval, so the run drains in minutes, not hours.
                conn.execute(sa.text("UPDATE webhook_subscriptions SET retry_countdown_config = :config"),
                             {"config": json.dumps({"type": "fixed", "interval": self.args.hook_retry_seconds,
                                                    "max_attempts": 8})})
        return packed, api

    # faults

    def _as_postgres(self) -> list[str]:
        """runuser -u postgres -- when root (PostgreSQL refuses to run as root), else nothing."""
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _pid(self, name: str) -> int:
        """The pid of a supervised process now (RUN_DIR/pids/<name>, written by scripts/run-scale)."""
        path = self.pid_dir / name
        if not path.is_file():
            raise SystemExit(f"{path} is missing: start the profile with scripts/run-scale (its supervisor writes it)")
        return int(path.read_text().strip())

    def _down_for(self, name: str, sig: signal.Signals, seconds: float, after_kill=None) -> str:
        """Stop a supervised process with sig, keep it down for seconds, then let the supervisor start it again.

        after_kill, if given, runs right after the signal is sent (the process is gone by then for SIGKILL)."""
        hold = self.pid_dir / f"{name}.hold"
        hold.touch()
        old = self._pid(name)
        try:
            os.kill(old, sig)
            if after_kill is not None:
                after_kill()
            time.sleep(seconds)
        finally:
            hold.unlink(missing_ok=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                new = self._pid(name)
            except (SystemExit, ValueError):
                new = old
            if new != old:
                return f"{name}: pid {old} got {sig.name}, down {seconds:.0f} s, started again as pid {new}"
            time.sleep(0.2)
        raise SystemExit(f"{name} was not started again within 60 s (is scripts/run-scale's supervisor running?)")

    def fault_postgres(self, mode: str | None = None) -> str:
        """Stop PostgreSQL, keep it down, start it again."""
        mode = mode or self.args.pg_mode
        pg_ctl = [*self._as_postgres(), f"{self.env['PG_BIN']}/pg_ctl", "-D", self.env["PG_DIR"]]
        log = str(Path(self.env["PG_DIR"]).parent / "pg.log")
        subprocess.run([*pg_ctl, "-m", mode, "-w", "stop"], check=True, capture_output=True)
        time.sleep(self.args.outage_seconds)
        subprocess.run([*pg_ctl, "-l", log, "-w", "start"], check=True, capture_output=True)
        return f"postgresql: stopped (-m {mode}), down {self.args.outage_seconds:.0f} s, started"

    def fault_postgres_crash(self) -> str:
        """PostgreSQL stopped as by a crash (-m immediate); it recovers from its WAL at start."""
        return self.fault_postgres("immediate")

    def fault_redis(self) -> str:
        """Stop Redis (its queue is lost: nothing is kept on disk), keep it down, let the supervisor restart it."""
        return self._down_for("redis", signal.SIGTERM, self.args.outage_seconds)

    def fault_worker(self) -> str:
        """SIGKILL the first worker (the sweeping one) in the middle of the traffic; the supervisor restarts it."""
        with self.engine.connect() as conn:
            sending = conn.scalar(sa.text("SELECT count(*) FROM outbox_messages WHERE status = 'sending'"))
        done = self._down_for("worker-1", signal.SIGKILL, self.args.outage_seconds)
        return f"{done} ({sending} message(s) were being sent by the workers a moment before the kill)"

    def _workers(self) -> dict[str, int]:
        """The supervised workers now: name (worker-N) -> pid."""
        found = {}
        for path in sorted(self.pid_dir.glob("worker-*")):
            if path.suffix != ".hold":
                try:
                    found[path.name] = int(path.read_text().strip())
                except ValueError:
                    continue
        return found

    def _flights_by_worker(self) -> dict[str, list[dict]]:
        """The requests the stand-ins hold now, by the worker whose connection each came on (ports in /proc)."""
        flights = requests.get(f"{self.standins}/__inflight__", timeout=5).json()["in_flight"]
        if not flights:
            return {}
        owners = sockets_of(self._workers())
        port_of = connections_to(urlsplit(self.standins).port or 80)
        by_worker: dict[str, list[dict]] = {}
        for flight in flights:
            inode = port_of.get(flight["port"])
            owner = next((name for name, inodes in owners.items() if inode in inodes), None)
            if owner is not None:
                by_worker.setdefault(owner, []).append(flight)
        return by_worker

    def fault_worker_send(self) -> str:
        """SIGKILL a worker while the stand-ins hold SMS and webhook requests it sent; the supervisor restarts it.

        The stand-ins hold every request (hang mode, each at most --hang-seconds). As soon as a worker has a request
        in flight, up to a second more is given for it to have both an SMS and a webhook in flight; then the worker
        with the most is killed and the requests are released (answered to a closed connection).
        """
        hang = self.args.hang_seconds
        self._mode(hooks="hang", sms="hang", hang_seconds=str(hang))
        started = time.monotonic()
        released = False

        def release() -> None:
            """Let the held requests go and the stand-ins answer at once again."""
            nonlocal released
            if not released:
                self._mode(hooks="ok", sms="ok")
                released = True

        try:
            first_seen = None
            chosen: tuple[str, list[dict]] | None = None
            while time.monotonic() - started < self.args.in_flight_wait:
                by_worker = self._flights_by_worker()
                if by_worker:
                    first_seen = first_seen or time.monotonic()
                    name, flights = max(by_worker.items(), key=lambda item: (len({f["kind"] for f in item[1]}),
                                                                             len(item[1])))
                    # Only requests the hang will still hold when the kill lands count as interrupted.
                    flights = [f for f in flights if f["held"] < hang - 1.0]
                    both = len({f["kind"] for f in flights}) == 2
                    if flights and (both or time.monotonic() - first_seen >= min(1.0, hang / 3)):
                        chosen = (name, flights)
                        break
                time.sleep(0.05)
            if chosen is None:
                release()
                self.kills.append(Kill("worker-1", self._pid("worker-1"), [], round(time.monotonic() - started, 2)))
                done = self._down_for("worker-1", signal.SIGKILL, self.args.outage_seconds)
                return f"{done}; NO request was in flight within {self.args.in_flight_wait:.0f} s"
            name, flights = chosen
            kill = Kill(name, self._pid(name), flights, 0.0)
            kill.waited = round(time.monotonic() - started, 2)
            self.kills.append(kill)
            done = self._down_for(name, signal.SIGKILL, self.args.outage_seconds, after_kill=release)
        finally:
            release()
        return (f"{done}; {len(kill.flights)} request(s) in flight at the kill ({len(kill.sms_keys())} SMS, "
                f"{len(kill.webhook_ids())} webhook(s)), {kill.waited} s after the stand-ins began holding them")

    def fault_app(self) -> str:
        """SIGKILL the first app process; the other serves the port meanwhile; the supervisor restarts it."""
        return self._down_for("app-1", signal.SIGKILL, self.args.outage_seconds)

    def _mode(self, **modes: str) -> None:
        """Switch the stand-ins' modes."""
        requests.post(f"{self.standins}/__mode__", params=modes, timeout=5).raise_for_status()

    def fault_sms(self) -> str:
        """The SMS provider answers 503 for a while."""
        self._mode(sms="down")
        try:
            time.sleep(self.args.sms_down_seconds)
        finally:
            self._mode(sms="ok")
        return f"sms provider: 503 for {self.args.sms_down_seconds:.0f} s"

    def fault_hooks(self) -> str:
        """The webhook receivers are down, then slow, then back."""
        try:
            self._mode(hooks="down")
            time.sleep(self.args.hooks_seconds)
            self._mode(hooks="slow")
            time.sleep(self.args.hooks_seconds)
        finally:
            self._mode(hooks="ok")
        return f"webhook receivers: 503 for {self.args.hooks_seconds:.0f} s, slow for {self.args.hooks_seconds:.0f} s"

    def recovered_after(self, since: float, seconds: float = 120) -> float | None:
        """Seconds from since (the fault's end) until the API answers 200 again (None if not within seconds)."""
        headers = {"Authorization": f"Token {self.env['API_TOKEN']}"}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/api/v1/oms/transitions/", headers=headers, timeout=5).ok:
                    return round(time.monotonic() - since, 1)
            except requests.RequestException:
                pass
            time.sleep(0.2)
        return None

    # draining and checking

    def drain(self, seconds: float) -> dict[str, int]:
        """Wait until no SMS, webhook or event of the outbox is waiting; the counts by status."""
        deadline = time.monotonic() + seconds
        while True:
            with self.engine.connect() as conn:
                rows = dict(conn.execute(sa.text(
                    "SELECT kind || ' ' || status, count(*) FROM outbox_messages GROUP BY kind, status")).all())
            waiting = {key: n for key, n in rows.items()
                       if key.split()[1] in ("pending", "sending", "failed") and key.split()[0] != "event"
                       or key == "event pending"}
            if not waiting or time.monotonic() > deadline:
                return rows
            time.sleep(1)


def phase_figures(run: Run, phase: Phase, received: dict, sid_owner: dict[str, int]) -> dict:
    """The counts of one fault's window: transitions committed, their messages delivered / dead / undelivered, the
    traffic's answers, and any duplicate."""
    lo_log, hi_log = phase.start.log_id, phase.end.log_id
    lo, hi = phase.start.outbox_id, phase.end.outbox_id
    with run.engine.connect() as conn:
        committed = conn.scalar(sa.text("SELECT count(*) FROM package_logs WHERE id > :lo AND id <= :hi"),
                                {"lo": lo_log, "hi": hi_log})
        sms = conn.execute(sa.text(
            "SELECT id, status, provider_id FROM outbox_messages WHERE kind = 'sms' AND id > :lo AND id <= :hi"),
            {"lo": lo, "hi": hi}).all()
        hooks = conn.execute(sa.text(
            "SELECT w.id, w.status, w.uuid FROM outbox_messages w JOIN outbox_messages e ON e.uuid = w.event_uuid "
            "WHERE w.kind = 'webhook' AND e.kind = 'event' AND e.id > :lo AND e.id <= :hi"), {"lo": lo, "hi": hi}).all()
        events = conn.execute(sa.text(
            "SELECT uuid, status FROM outbox_messages WHERE kind = 'event' AND id > :lo AND id <= :hi"),
            {"lo": lo, "hi": hi}).all()
        fanned_twice = conn.scalar(sa.text(
            "SELECT count(*) FROM (SELECT w.event_uuid FROM outbox_messages w JOIN outbox_messages e "
            "ON e.uuid = w.event_uuid WHERE w.kind = 'webhook' AND e.id > :lo AND e.id <= :hi "
            "GROUP BY w.event_uuid, w.subscription_id HAVING count(*) > 1) twice"), {"lo": lo, "hi": hi})
    ids = received["webhook_ids"]
    sms_ids = {row.id for row in sms}
    hook_uuids = {row.uuid for row in hooks}
    event_uuids = {row.uuid for row in events}
    several = sum(1 for key, got in received["event_ids"].items()
                  if len(got) > 1 and key.split(" ", 1)[1] in event_uuids)
    # The same message again (at least once): a webhook id that arrived more than once, an SMS (its To and Body)
    # sent more than once; those a worker-send kill interrupted are expected to come again.
    hooks_again = {uuid: n - 1 for uuid, n in ids.items() if n > 1 and uuid in hook_uuids}
    sms_again = {key: len(sids) - 1 for key, sids in received["sms_keys"].items()
                 if len(sids) > 1 and any(sid_owner.get(sid) in sms_ids for sid in sids)}
    interrupted_hooks = {uuid for kill in run.kills for uuid in kill.webhook_ids()}
    interrupted_sms = {key for kill in run.kills for key in kill.sms_keys()}
    again_after_kill = (sum(n for uuid, n in hooks_again.items() if uuid in interrupted_hooks)
                        + sum(n for key, n in sms_again.items() if key in interrupted_sms))
    sent_sms = [row for row in sms if row.status == "sent"]
    sent_hooks = [row for row in hooks if row.status == "sent"]
    traffic = phase.end.traffic - phase.start.traffic
    return {
        "fault": phase.fault, "what": "; ".join(phase.notes), "recovered_seconds": phase.recovered_seconds,
        "committed": committed,
        "sms": len(sms), "sms_delivered": len(sent_sms), "sms_dead": sum(r.status == "dead" for r in sms),
        "webhooks": len(hooks), "webhooks_delivered": len(sent_hooks),
        "webhooks_dead": sum(r.status == "dead" for r in hooks),
        "undelivered": sum(r.status not in ("sent", "dead") for r in [*sms, *hooks])
        + sum(r.status == "pending" for r in events),
        "lost": sum(1 for r in sent_hooks if r.uuid not in ids)
        + sum(1 for r in sent_sms if sid_owner.get(r.provider_id) != r.id),
        "duplicates_other_id": several + fanned_twice,
        "redelivered_same_id": sum(hooks_again.values()) + sum(sms_again.values()),
        "redelivered_after_kill": again_after_kill,
        "requests": sum(traffic.values()), "answered_503": traffic["unavailable"], "dropped": traffic["dropped"],
        "errors_5xx": traffic["error"],
    }


def kill_figures(run: Run, kill: Kill, received: dict, sid_owner: dict[str, int]) -> dict:
    """What became of the requests a killed worker had in flight: each must have arrived again under the same id
    (the SMS from the same outbox message) and be delivered, or be dead-lettered."""
    webhook_ids = sorted(kill.webhook_ids())
    with run.engine.connect() as conn:
        hooks = {row.uuid: row for row in conn.execute(sa.text(
            "SELECT uuid, status, attempts FROM outbox_messages WHERE kind = 'webhook' AND uuid IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)), {"ids": webhook_ids or [""]})}
        owners = {sid_owner.get(sid) for key in kill.sms_keys() for sid in received["sms_keys"].get(key, [])}
        owners.discard(None)
        sms = {row.id: row for row in conn.execute(sa.text(
            "SELECT id, status, attempts, provider_id FROM outbox_messages WHERE kind = 'sms' AND id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)), {"ids": sorted(owners) or [0]})}
    again, dead, missing = 0, 0, []
    for uuid in webhook_ids:
        row = hooks.get(uuid)
        if row is not None and row.status == "dead":
            dead += 1
        elif row is not None and row.status == "sent" and received["webhook_ids"].get(uuid, 0) >= 2:
            again += 1
        else:
            missing.append(f"webhook {uuid}: {row.status if row else 'no outbox row'}, arrived "
                           f"{received['webhook_ids'].get(uuid, 0)} time(s)")
    for key in sorted(kill.sms_keys()):
        sids = received["sms_keys"].get(key, [])
        rows = [sms[sid_owner[sid]] for sid in sids if sid_owner.get(sid) in sms]
        if len(rows) > 1:
            missing.append(f"SMS {key}: its sends belong to {len(rows)} outbox messages (a different id)")
        elif rows and rows[0].status == "sent" and len(sids) >= 2:
            again += 1
        elif rows and rows[0].status == "dead":
            dead += 1
        else:
            missing.append(f"SMS {key}: sent {len(sids)} time(s), outbox {rows[0].status if rows else 'unknown'}")
    return {"worker_killed": kill.worker, "in_flight_at_kill": len(kill.flights),
            "in_flight_sms": len(kill.sms_keys()), "in_flight_webhooks": len(webhook_ids),
            "killed_redelivered_same_id": again, "killed_dead": dead, "killed_not_redelivered": missing,
            "seconds_to_kill": kill.waited}


def package_problems(run: Run, first_log_id: int) -> list[str]:
    """Packages the run moved that are not in the state their last log row says, or were delivered twice."""
    with run.engine.connect() as conn:
        wrong = conn.execute(sa.text(
            "SELECT p.id, p.state, l.to_state FROM packages p JOIN package_logs l ON l.package_id = p.id "
            "WHERE l.id = (SELECT max(id) FROM package_logs WHERE package_id = p.id) AND l.id > :first "
            "AND p.state <> l.to_state"), {"first": first_log_id}).all()
        twice = conn.execute(sa.text(
            "SELECT package_id, count(*) FROM package_logs WHERE id > :first AND to_state = :delivered "
            "GROUP BY package_id HAVING count(*) > 1"), {"first": first_log_id, "delivered": DELIVERED}).all()
    return ([f"package {r[0]} is in state {r[1]} but its last log row says {r[2]}" for r in wrong]
            + [f"package {r[0]} was delivered {r[1]} times" for r in twice])


def execute(env: dict[str, str], args: argparse.Namespace) -> int:
    """Run the traffic and the faults, drain, check; 0 when everything holds."""
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS + EXTRA_FAULTS]
    if unknown:
        raise SystemExit(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS + EXTRA_FAULTS)}")
    run = Run(env, args)
    stores = [f"BS-{i:03d}" for i in range(1, args.tablets + 1)]
    head_office = "BS-011:BS-250"
    packed, api = run.prepare([*stores, head_office], args.packages_per_tablet, args.api_packages)
    first = run.mark()
    handovers: dict[str, list[int]] = {store: [] for store in [*stores, head_office]}
    workers: list[threading.Thread] = [
        Tablet(run, f"bench-staff-{i + 1}", packed[store], handovers[store], args.pause)
        for i, store in enumerate(stores)]
    workers.append(Tablet(run, FLOATER, [], handovers[stores[0]], args.pause))  # races tablet 1's handovers
    # The head office's tablet (the admin sees every store): keeps ready-for-pickup SMS flowing on a small seed,
    # whose busiest stores have only a few dozen packages each.
    workers.append(Tablet(run, ADMIN[0], packed[head_office], handovers[head_office], args.pause, ADMIN[1]))
    workers.append(Integrator(run, api, args.pause))
    for worker in workers:
        worker.start()
    print(f"traffic: {args.tablets} store tablets, a floater and a head-office tablet on the forms, an integrator "
          "on the API; "
          f"{sum(map(len, packed.values()))} Packed and {len(api)} Waiting packages set aside", flush=True)

    phases: list[Phase] = []
    try:
        for fault in faults:
            phase = Phase(fault, start=run.mark())
            time.sleep(args.traffic_seconds)
            phase.notes.append(getattr(run, f"fault_{fault.replace('-', '_')}")())
            if fault == "worker-send":
                phase.kill = run.kills[-1]
            phase.recovered_seconds = run.recovered_after(time.monotonic())
            time.sleep(args.traffic_seconds)
            phase.end = run.mark()
            phases.append(phase)
            print(f"{fault:14} {phase.notes[-1]}; the API answered 200 {phase.recovered_seconds} s after it ended",
                  flush=True)
    finally:
        run.stopping.set()
        for worker in workers:
            worker.join(timeout=60)
    # What the traffic left behind belongs to the last fault's window.
    if phases:
        phases[-1].end = run.mark()

    statuses = run.drain(args.drain_seconds)
    received = requests.get(f"{run.standins}/__received__", timeout=30).json()
    stats = requests.get(f"{run.standins}/__stats__", timeout=10).json()
    with run.engine.connect() as conn:
        sid_owner = {sid: mid for mid, sid in conn.execute(sa.text(
            "SELECT id, provider_id FROM outbox_messages WHERE kind = 'sms' AND provider_id <> ''")).all()}
    figures = [phase_figures(run, phase, received, sid_owner) for phase in phases]
    for phase, row in zip(phases, figures, strict=True):
        if phase.kill is not None:
            row.update(kill_figures(run, phase.kill, received, sid_owner))

    failures: list[str] = []
    waiting = {k: n for k, n in statuses.items() if k.split()[1] in ("pending", "sending", "failed")
               and (k.split()[0] != "event" or k == "event pending")}
    if waiting:
        failures.append(f"the outbox did not drain within {args.drain_seconds:.0f} s: {waiting}")
    for row in figures:
        for key in ("undelivered", "lost", "duplicates_other_id", "errors_5xx"):
            if row[key]:
                failures.append(f"{row['fault']}: {key} = {row[key]}")
        if row["recovered_seconds"] is None:
            failures.append(f"{row['fault']}: the portal did not answer again")
        if not row["committed"]:
            failures.append(f"{row['fault']}: no transition was committed during the fault's window")
        if "in_flight_at_kill" in row:
            if not row["in_flight_at_kill"]:
                failures.append(f"{row['fault']}: the kill found no message in flight")
            failures += [f"{row['fault']}: interrupted by the kill and not redelivered under its id: {what}"
                         for what in row["killed_not_redelivered"]]
    if args.strict_duplicates:
        for row in figures:
            unexpected = row["redelivered_same_id"] - row["redelivered_after_kill"]
            if unexpected:
                failures.append(f"{row['fault']}: {unexpected} message(s) arrived twice (same id) without a kill "
                                "interrupting them")
    failures += package_problems(run, first.log_id)
    failures += run.tally.problems[:20]

    print()
    header = ("fault", "committed", "sms", "delivered", "dead", "webhooks", "delivered", "dead", "duplicates",
              "same-id again", "503s", "dropped", "5xx", "recovered s")
    print(" | ".join(header))
    for row in figures:
        print(" | ".join(str(v) for v in (
            row["fault"], row["committed"], row["sms"], row["sms_delivered"], row["sms_dead"], row["webhooks"],
            row["webhooks_delivered"], row["webhooks_dead"], row["duplicates_other_id"], row["redelivered_same_id"],
            row["answered_503"], row["dropped"], row["errors_5xx"], row["recovered_seconds"])))
    for row in figures:
        if "in_flight_at_kill" in row:
            print(f"\n{row['fault']}: {row['worker_killed']} killed {row['seconds_to_kill']} s into the hold with "
                  f"{row['in_flight_at_kill']} request(s) in flight ({row['in_flight_sms']} SMS, "
                  f"{row['in_flight_webhooks']} webhook(s)); redelivered under the same id: "
                  f"{row['killed_redelivered_same_id']}, dead-lettered: {row['killed_dead']}, not redelivered: "
                  f"{len(row['killed_not_redelivered'])}")
    print(f"\noutbox after the drain: {statuses}")
    print(f"stand-ins: {stats}")
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    print("faults check:", "passed" if not failures else f"{len(failures)} failure(s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"faults": figures, "outbox": statuses, "standins": stats,
                                               "failures": failures}, indent=2))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="the env file scripts/run-scale wrote")
    parser.add_argument("--faults", default=",".join(FAULTS), help="which faults, in order (default: all)")
    parser.add_argument("--outage-seconds", type=float, default=10,
                        help="how long PostgreSQL, Redis, the worker or the app process stays down")
    parser.add_argument("--pg-mode", choices=("fast", "immediate"), default="fast",
                        help="pg_ctl's stop mode (immediate: as a crash, recovered at start)")
    parser.add_argument("--sms-down-seconds", type=float, default=60)
    parser.add_argument("--hooks-seconds", type=float, default=20, help="receivers down for this, then slow for this")
    parser.add_argument("--traffic-seconds", type=float, default=5, help="traffic before and after each fault")
    parser.add_argument("--tablets", type=int, default=3, help="staff tablets (stores BS-001...; at most 5)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds each client waits between actions")
    parser.add_argument("--ready-every", type=float, default=1.0,
                        help="each tablet readies a package for pickup at most this often (seconds)")
    parser.add_argument("--packages-per-tablet", type=int, default=300)
    parser.add_argument("--api-packages", type=int, default=300)
    parser.add_argument("--hook-retry-seconds", type=float, default=10,
                        help="the run's webhook subscription retries at this fixed interval (0: leave it)")
    parser.add_argument("--hang-seconds", type=float, default=3,
                        help="worker-send: the stand-ins hold each request at most this long (keep it under "
                             "WEBHOOK_TIMEOUT_SECONDS and TWILIO_TIMEOUT_SECONDS, or the other worker's held sends "
                             "time out and are retried)")
    parser.add_argument("--in-flight-wait", type=float, default=30,
                        help="worker-send: how long to wait for a worker to have a request in flight")
    parser.add_argument("--drain-seconds", type=float, default=300)
    parser.add_argument("--strict-duplicates", action="store_true",
                        help="fail when a message arrived twice under the same id (at-least-once redelivery)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.tablets <= 5:
        parser.error("--tablets must be from 1 to 5 (the seed has staff users for BS-001..BS-005)")
    return execute(read_env(args.env), args)


if __name__ == "__main__":
    sys.exit(main())
