"""The check of the production profile (scripts/run-scale --check, run by CI through tests/test_scale_profile.py).

    .venv/bin/python bench/scale_check.py --env RUN_DIR/env       check a running profile
    .venv/bin/python bench/scale_check.py --subscribe URL         (run-scale) subscribe URL to every event

The check goes through the running app processes and workers as a tablet does: a staff user logs in with the
HTML form, marks a Packed package ready for pickup with the button's own form, reads the code from the SMS the
worker sent to the Twilio stand-in, and hands the package over with the handover form. Two tablets then submit
the right code for a second package at the same moment (one may win). Then it waits for the outbox to drain and
checks: each committed transition's SMS and webhook messages were delivered (or are visibly dead-lettered),
the receivers saw every webhook id once, no SMS arrived twice, and the packages are in the states the commands
left them in. It prints the figures and exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path

import requests
import sqlalchemy as sa
from runenv import read_env  # bench/ is not a package: its scripts import each other from their folder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAFF = ("bench-staff-1", "bench-staff-pass-1")
PACKED, READY, DELIVERED = 500, 550, 800
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def subscribe(url: str) -> None:
    """Subscribe url to every event as the seeded admin (run by scripts/run-scale before the apps start)."""
    from portal import create_app
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.webhooks import service

    app = create_app()
    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.username == "bench-admin"))
        service.create_subscription(db.session, event_type="*", target_url=url, retry_countdown_config=None,
                                    additional_headers=None, user_id=admin.id if admin else None)


class Tablet:
    """One logged-in browser: a requests session with the portal's cookie and CSRF token."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.http = requests.Session()
        page = self.http.get(f"{base}/login", timeout=10)
        token = CSRF.search(page.text).group(1)
        answer = self.http.post(f"{base}/login", data={"username": username, "password": password,
                                                       "csrf_token": token}, allow_redirects=False, timeout=10)
        if answer.status_code != 302:
            raise SystemExit(f"login of {username} answered {answer.status_code}")

    def command(self, package_id: int, slug: str, **fields) -> requests.Response:
        """Post a command's form from the package page, as its button does."""
        page = self.http.get(f"{self.base}/packages/{package_id}", timeout=10)
        token = CSRF.search(page.text).group(1)
        return self.http.post(f"{self.base}/packages/{package_id}/commands/{slug}",
                              data={"csrf_token": token, **fields}, allow_redirects=False, timeout=30)


def packed_packages(engine, count: int) -> list[int]:
    """Packed click-and-collect packages of the staff user's store (BS-001).

    A small seed may have none (the seed spreads states over a year and 500 stores): then the newest packages
    of the store are set up as packed click-and-collect ones first, as a test fixture would.
    """
    query = ("SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
             "WHERE s.erp_code = 'BS-001' AND p.state = :packed AND p.delivery_from_store ORDER BY p.id DESC LIMIT :n")
    with engine.begin() as conn:
        found = list(conn.scalars(sa.text(query), {"packed": PACKED, "n": count}))
        if len(found) < count:
            conn.execute(sa.text(
                "UPDATE packages SET state = :packed, delivery_from_store = true, delivery_type = 'in_store' "
                "WHERE id IN (SELECT p.id FROM packages p JOIN stock_locations s ON s.id = p.stock_location_id "
                "WHERE s.erp_code = 'BS-001' AND p.state NOT IN (:packed) ORDER BY p.id DESC LIMIT :n)"),
                {"packed": PACKED, "n": count - len(found)})
            found = list(conn.scalars(sa.text(query), {"packed": PACKED, "n": count}))
    return found


def code_sent_for(engine, standins: str, package_id: int, seconds: float = 60) -> str:
    """The pickup code in the newest SMS the stand-in received for the package's customer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            to = conn.scalar(sa.text("SELECT payload FROM outbox_messages WHERE kind = 'sms' AND package_id = :id "
                                     "ORDER BY id DESC LIMIT 1"), {"id": package_id})
        if to:
            answer = requests.get(f"{standins}/__sms__", params={"to": to["to"]}, timeout=5)
            if answer.ok and (match := re.search(r"\b(\d{6})\b", answer.json()["body"])):
                return match.group(1)
        time.sleep(0.2)
    raise SystemExit(f"no SMS with a code reached the stand-in for package {package_id} within {seconds:.0f} s")


def state_of(engine, package_id: int) -> int:
    """The package's state now."""
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT state FROM packages WHERE id = :id"), {"id": package_id})


def drain(engine, seconds: float = 120) -> dict[str, int]:
    """Wait until no SMS or webhook message is pending, sending or failed; return the counts by status."""
    deadline = time.monotonic() + seconds
    while True:
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text(
                "SELECT status, count(*) FROM outbox_messages WHERE kind IN ('sms', 'webhook') GROUP BY status")).all())
        if not any(rows.get(s) for s in ("pending", "sending", "failed")) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def check(env: dict[str, str]) -> int:
    """Run the journey and the checks; 0 when everything holds."""
    engine = sa.create_engine(env["DATABASE_URL"])
    base, standins = env["BASE_URL"], env["STANDINS_URL"]
    failures: list[str] = []
    first, second = packed_packages(engine, 2)

    tablet = Tablet(base, *STAFF)
    ready = tablet.command(first, "ready-for-customer-pickup")
    if ready.status_code not in (200, 302) or state_of(engine, first) != READY:
        failures.append(f"ready for pickup answered {ready.status_code}; state {state_of(engine, first)}")
    code = code_sent_for(engine, standins, first)
    handed = tablet.command(first, "self-service-package-delivery", otp=code)
    if state_of(engine, first) != DELIVERED:
        failures.append(f"the handover answered {handed.status_code}; state {state_of(engine, first)}")

    # Two tablets, one code, the same moment: one delivery, the other told the package changed; never a 5xx.
    tablet.command(second, "ready-for-customer-pickup")
    code = code_sent_for(engine, standins, second)
    other = Tablet(base, *STAFF)
    barrier, answers = threading.Barrier(2), []

    def hand_over(client: Tablet) -> None:
        page = client.http.get(f"{base}/packages/{second}", timeout=10)
        token = CSRF.search(page.text).group(1)
        barrier.wait()
        answers.append(client.http.post(f"{base}/packages/{second}/commands/self-service-package-delivery",
                                        data={"csrf_token": token, "otp": code}, allow_redirects=False,
                                        timeout=30).status_code)

    threads = [threading.Thread(target=hand_over, args=(t,)) for t in (tablet, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(status >= 500 for status in answers) or state_of(engine, second) != DELIVERED:
        failures.append(f"two tablets answered {answers}; state {state_of(engine, second)}")
    with engine.connect() as conn:
        deliveries = conn.scalar(sa.text("SELECT count(*) FROM package_logs WHERE package_id = :id AND to_state = :d"),
                                 {"id": second, "d": DELIVERED})
    if deliveries != 1:
        failures.append(f"package {second} was delivered {deliveries} times")

    statuses = drain(engine)
    stats = requests.get(f"{standins}/__stats__", timeout=5).json()
    with engine.connect() as conn:
        sent_hooks = conn.scalar(sa.text("SELECT count(*) FROM outbox_messages WHERE kind = 'webhook' AND status = 'sent'"))
        sent_sms = conn.scalar(sa.text("SELECT count(*) FROM outbox_messages WHERE kind = 'sms' AND status = 'sent'"))
    print(f"outbox: {statuses}; webhooks sent {sent_hooks}, received {stats['webhooks_received']} "
          f"({stats['webhook_ids']} ids, {stats['webhook_duplicates']} duplicates); SMS sent {sent_sms}, received "
          f"{stats['sms_received']} ({stats['sms_duplicate_bodies']} duplicates)")
    if any(statuses.get(s) for s in ("pending", "sending", "failed")):
        failures.append(f"the outbox did not drain: {statuses}")
    if stats["webhook_duplicates"] or stats["sms_duplicate_bodies"]:
        failures.append("something was delivered twice")
    if sent_hooks == 0 or stats["webhook_ids"] != sent_hooks:
        failures.append(f"{sent_hooks} webhooks marked sent but {stats['webhook_ids']} distinct ids received")
    if stats["sms_received"] != sent_sms:
        failures.append(f"{sent_sms} SMS marked sent but {stats['sms_received']} received")
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    print("scale check:", "passed" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Subscribe, or check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="the env file scripts/run-scale wrote")
    parser.add_argument("--subscribe", help="subscribe this URL to every event and exit")
    args = parser.parse_args(argv)
    if args.subscribe:
        subscribe(args.subscribe)
        return 0
    if not args.env:
        parser.error("--env or --subscribe is required")
    return check(read_env(args.env))


if __name__ == "__main__":
    os.environ.setdefault("FLASK_APP", "wsgi")
    sys.exit(main())
