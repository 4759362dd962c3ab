"""Load on the production profile: store tablets and integrators at once (run as its own command, never in pytest).

    scripts/run-scale --packages 100000 &           # then, with the env file it prints:
    bench/load --env RUN_DIR/env [--tablets 50] [--integrators 5] [--minutes 5]

Tablets (TabletUser) log in through the HTML login form (each with its own X-Forwarded-For, as each tablet has
its own address behind the load balancer; the profile runs with PROXY_COUNT=1), then loop: refresh the list
fragment (htmx), open a package, and run commands through the buttons' own forms: Ready for pickup on a Packed
package, then the handover with the code the SMS stand-in received. Several tablets share each store, so they
race for the same packages: a race is answered 409/422 (the package changed, or not in that state any more),
never 5xx. Integrators (IntegratorUser) call the REST API with the admin's token: the transitions list, one
package, and commands on Waiting packages of other stores.
Before the run, a working set is prepared in the database (as a fixture would): Packed click-and-collect
packages in the tablets' stores and Waiting ones in the integrators' stores, so every command has work.

Tablets share their store's one staff account (bench-staff-1..5, ~10 tablets each), as the seed has it; with
LOAD_OWN_ACCOUNTS=1 (bench/load --own-accounts) each tablet logs in with an account of its own (bench-tablet-N,
made before the run with its store's staff password and stores). More than LOGIN_MAX_FAILURES logins of one
account in flight at once lock it (the lockout counts an attempt before its check), which slow logins on a busy
machine reach with shared accounts.

Both user classes are FastHttpUsers (geventhttpclient, keep-alive connections): python-requests' HttpUser cost the
generator ~3.6 ms of CPU per request, which on a 2-core machine is CPU taken from the portal being measured
(bench/load prints the generator's CPU beside the portal's, so a run shows which one the cores went to).
"""
from __future__ import annotations

import itertools
import os
import random
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote

import gevent
import gevent.event
import sqlalchemy as sa
from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import FastResponse, LocustUserAgent

CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
PACKAGE_LINK = re.compile(r'href="/packages/(\d+)"')
STAFF_PASSWORD = "bench-staff-pass-1"
TABLET_STORES = 5
PACKED, WAITING, READY = 500, 100, 550
API_COMMAND = "deallocate-package-reservations"  # Waiting -> Preparing, allowed to an admin token
RACE_ANSWERS = (400, 409, 422)  # another client got there first (or the package moved on): not a failure

_ENV: dict[str, str] = {}
_ENGINE = None
_addresses = itertools.count(1)
_tablets = itertools.count(1)
_waiting: list[int] = []
_waiting_lock = threading.Lock()


def _env() -> dict[str, str]:
    """The run's settings (LOAD_ENV names the env file scripts/run-scale wrote)."""
    if not _ENV:
        path = Path(os.environ["LOAD_ENV"])
        _ENV.update(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return _ENV


def _engine():
    """One small pool for the load generator's own lookups (the phone an SMS went to)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = sa.create_engine(_env()["DATABASE_URL"], pool_size=4, max_overflow=4)
    return _ENGINE


@events.test_start.add_listener
def prepare_working_set(environment, **_kwargs) -> None:
    """Packed click-and-collect packages for the tablets' stores, Waiting ones for the integrators."""
    per_store = int(os.environ.get("LOAD_PACKED_PER_STORE", "400"))
    waiting = int(os.environ.get("LOAD_WAITING", "20000"))
    with _engine().begin() as conn:
        for store in range(1, TABLET_STORES + 1):
            conn.execute(sa.text(
                "UPDATE packages SET state = :packed, delivery_from_store = true, delivery_type = 'in_store' "
                "WHERE id IN (SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
                "WHERE s.erp_code = :code AND p.state NOT IN (:packed) ORDER BY p.id DESC LIMIT :n)"),
                {"packed": PACKED, "code": f"BS-{store:03d}", "n": per_store})
        conn.execute(sa.text(
            "UPDATE packages SET state = :waiting, state_before_block = NULL WHERE id IN (SELECT p.id FROM packages p "
            "JOIN stock_locations s ON s.id = p.stock_location_id WHERE s.erp_code > 'BS-010' "
            "ORDER BY p.id DESC LIMIT :n)"), {"waiting": WAITING, "n": waiting})
        ids = list(conn.scalars(sa.text(
            "SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
            "WHERE s.erp_code > 'BS-010' AND p.state = :waiting ORDER BY p.id DESC LIMIT :n"),
            {"waiting": WAITING, "n": waiting}))
        if os.environ.get("LOAD_OWN_ACCOUNTS") == "1":
            _make_tablet_accounts(conn, int(os.environ.get("LOAD_TABLETS", "50")))
    random.shuffle(ids)
    _waiting[:] = ids


def _tablet_account(number: int) -> tuple[str, int]:
    """The username tablet `number` logs in with, and its store (1..TABLET_STORES)."""
    store = (number - 1) % TABLET_STORES + 1
    own = os.environ.get("LOAD_OWN_ACCOUNTS") == "1"
    return (f"bench-tablet-{number}" if own else f"bench-staff-{store}"), store


def _make_tablet_accounts(conn, tablets: int) -> None:
    """bench-tablet-1..N: copies of their store's staff account (password hash and stores), one per tablet."""
    for number in range(1, tablets + 1):
        name, store = _tablet_account(number)
        params = {"name": name, "staff": f"bench-staff-{store}"}
        conn.execute(sa.text(
            "INSERT INTO users (username, full_name, password_hash, role, active, created_at, language) "
            "SELECT :name, full_name, password_hash, role, active, created_at, language FROM users "
            "WHERE username = :staff ON CONFLICT DO NOTHING"), params)
        conn.execute(sa.text(
            "INSERT INTO user_stock_locations (user_id, stock_location_id) SELECT tablet.id, link.stock_location_id "
            "FROM users tablet, users staff JOIN user_stock_locations link ON link.user_id = staff.id "
            "WHERE tablet.username = :name AND staff.username = :staff ON CONFLICT DO NOTHING"), params)


def _address(first: str, last: int) -> str:
    """A client address of its own (the profile trusts one proxy's X-Forwarded-For: PROXY_COUNT=1)."""
    number = next(_addresses)
    return f"{first}.{number // 250 % 250}.{number % 250}.{last}"


class _Answer(FastResponse):
    """A response whose 204/304 has no body to decode. The portal's 204 answers (a command API call that worked)
    carry Content-Encoding: br with an empty body, which geventhttpclient would try to decode and fail, killing the
    task before the request is recorded."""

    def _content(self) -> bytes:
        """The body, decoded; none for 204 and 304, whatever Content-Encoding says."""
        if self.status_code in (204, 304):
            self.release()
            return b""
        return super()._content()


class _Agent(LocustUserAgent):
    """Locust's HTTP agent, answering with _Answer."""

    response_type = _Answer


def _use_agent(user) -> None:
    """Give the user's session the agent above (FastHttpSession builds its own LocustUserAgent)."""
    user.client.client.__class__ = _Agent


def _count_race(answer) -> None:
    """5xx is a failure; a race's answer (400/409/422) is the expected outcome, so a success."""
    if answer.status_code >= 500 or answer.status_code == 0:
        answer.failure(f"{answer.status_code or 'no answer'}")
    elif answer.status_code in RACE_ANSWERS:
        answer.success()


# bench/load --remembered: how many tablets have had their first login, and the start of the shift (all of them).
_warmed = [0]
_shift_starts = gevent.event.Event()
SHIFT_SPREAD_SECONDS = 5.0


class TabletUser(FastHttpUser):
    """A store tablet: logs in with the form, refreshes its list, opens packages and runs commands."""

    wait_time = between(1, 3)

    def __init__(self, environment) -> None:
        """Each tablet sends every request from its own address (FastHttpUser takes headers at creation)."""
        self.default_headers = {"X-Forwarded-For": _address("10", 7)}
        super().__init__(environment)
        _use_agent(self)

    def on_start(self) -> None:
        """Log in as one of the stores' staff through the HTML form: GET the form (its CSRF token), POST it.

        With LOAD_REMEMBERED=1 (bench/load --remembered) the tablet is one the user logged in on before: it logs
        in once as a new tablet (named apart), logs out, and then logs in for the shift with its device cookie.
        """
        username, self.store = _tablet_account(next(_tablets))
        if os.environ.get("LOAD_REMEMBERED") == "1":
            self._login(username, "POST /login (first time on this tablet)")
            page = self.client.get("/packages", name="GET /packages (before logging out)")
            token = CSRF.search(page.text or "")
            self.client.post("/logout", name="POST /logout", allow_redirects=False,
                             data={"csrf_token": token.group(1) if token else ""})
            # The shift starts once every tablet has logged in and out (the days before): then each logs in within
            # SHIFT_SPREAD_SECONDS, as the 45 tablets within 5 s.
            _warmed[0] += 1
            if _warmed[0] >= int(os.environ.get("LOAD_TABLETS", "50")):
                _shift_starts.set()
            _shift_starts.wait(timeout=120)
            gevent.sleep(random.uniform(0, SHIFT_SPREAD_SECONDS))
        self._login(username, "POST /login")

    def _login(self, username: str, name: str) -> None:
        """GET the login form (its CSRF token), POST it; anything but the redirect is a failure."""
        page = self.client.get("/login", name="GET /login")
        token = CSRF.search(page.text or "")
        with self.client.post("/login", name=name, allow_redirects=False, catch_response=True,
                              data={"username": username, "password": STAFF_PASSWORD,
                                    "csrf_token": token.group(1) if token else ""}) as answer:
            if answer.status_code != 302:
                answer.failure(f"login answered {answer.status_code}")

    def _form(self, package_id: int, slug: str, name: str, **fields):
        """Open the package page (as a tap does), then post the command's form from it."""
        page = self.client.get(f"/packages/{package_id}", name="GET /packages/<id>")
        match = CSRF.search(page.text or "")
        if match is None:
            return None
        with self.client.post(f"/packages/{package_id}/commands/{slug}", name=name, allow_redirects=False,
                              catch_response=True, headers={"HX-Request": "true"},
                              data={"csrf_token": match.group(1), **fields}) as answer:
            _count_race(answer)  # another tablet got there first: the expected answer to a race
            return answer

    @task(6)
    def refresh_list(self) -> None:
        """The list fragment htmx refreshes every 30 s (and after each command)."""
        self.client.get("/packages?tab=ready", name="GET /packages (fragment)", headers={"HX-Request": "true"})

    @task(3)
    def ready_and_hand_over(self) -> None:
        """Ready for pickup on a Packed package of the store, then the handover with the SMS's code."""
        listing = self.client.get("/packages?status=500", name="GET /packages?status=500 (fragment)",
                                  headers={"HX-Request": "true"})
        ids = PACKAGE_LINK.findall(listing.text or "")
        if not ids:
            return
        package_id = int(random.choice(ids[:10]))
        ready = self._form(package_id, "ready-for-customer-pickup", "POST ready for pickup")
        if ready is None or ready.status_code != 200:
            return
        code = self._code_for(package_id)
        if code:
            self._form(package_id, "self-service-package-delivery", "POST handover", otp=code)

    def _code_for(self, package_id: int) -> str | None:
        """The code in the SMS the worker sent for the package (read back from the Twilio stand-in)."""
        with _engine().connect() as conn:
            payload = conn.scalar(sa.text("SELECT payload FROM outbox_messages WHERE kind = 'sms' AND "
                                          "package_id = :id ORDER BY id DESC LIMIT 1"), {"id": package_id})
        if not payload:
            return None
        for _ in range(20):
            with self.client.get(f"{_env()['STANDINS_URL']}/__sms__?to={quote(payload['to'])}",
                                 name="(stand-in) read SMS", catch_response=True) as answer:
                answer.success()  # 404: the worker has not sent it yet
                if answer.status_code == 200 and (match := re.search(r"\b(\d{6})\b", answer.json().get("body") or "")):
                    return match.group(1)
            time.sleep(0.25)
        return None


class IntegratorUser(FastHttpUser):
    """An integrated system on the REST API with a token."""

    fixed_count = int(os.environ.get("LOAD_INTEGRATORS", "5"))  # the other users are tablets
    wait_time = between(0.5, 1.5)

    def __init__(self, environment) -> None:
        """Authenticate with the admin's token, from the integrator's own address."""
        self.default_headers = {"Authorization": f"Token {_env()['API_TOKEN']}", "X-Forwarded-For": _address("172", 9)}
        super().__init__(environment)
        _use_agent(self)

    @task(2)
    def transitions(self) -> None:
        """The command catalogue."""
        self.client.get("/api/v1/oms/transitions/", name="API GET transitions")

    @task(3)
    def command(self) -> None:
        """Move a Waiting package of another store on."""
        with _waiting_lock:
            package_id = _waiting.pop() if _waiting else None
        if package_id is None:
            return
        with self.client.post(f"/api/v1/oms/packages/{package_id}/command/", name="API POST command",
                              json={"slug": API_COMMAND}, catch_response=True) as answer:
            _count_race(answer)

    @task(2)
    def one_package(self) -> None:
        """One package, as an integrator polls it."""
        with _waiting_lock:
            package_id = random.choice(_waiting) if _waiting else 1
        self.client.get(f"/api/v1/oms/packages/{package_id}/", name="API GET package")
