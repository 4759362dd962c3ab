"""What a login costs, and Argon2id checks arriving at once with and without taking turns (the shift-start storm).

    .venv/bin/python bench/login_storm.py [--env RUN_DIR/env] [--logins 22] [--burst 12]

With --env (the file scripts/run-scale wrote), logs in through the HTML form in this process (Flask's test client,
PORTAL_ENV=production, the run's PostgreSQL and Redis) and prints per login: CPU and wall time of GET /login and
POST /login, and the database statements, transactions and commits a POST /login costs. Then, without a database,
--burst checks at OWASP's Argon2id cost start together on as many threads (as a gthread worker's threads would),
once with ARGON2_CONCURRENCY=--burst (all at once) and once with 1 (taking turns), twice each, and prints the wait
plus check time (p50, max) and the CPU the checks took. Wall times need an idle machine; CPU and counts do not.

With --storm N (and --env), N tablets (threads, each with its own address and cookies) log in at once over HTTP
through the run's gunicorn, with the stores' shared staff accounts, twice: as new tablets (no device cookie: each
password is checked with Argon2id), then, after logging out, as the same tablets at the next shift start (their
device cookies from the first login: a keyed HMAC instead, see LOGIN_DEVICE_DAYS). Prints p50, p95 and max of
POST /login for each. --spread S starts the tablets' POSTs evenly over S seconds instead of at one instant.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runenv import read_env  # noqa: E402  (bench/ is not a package: its scripts import each other so)

CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def login_cost(env_file: str, logins: int) -> None:
    """Log in `logins` times through the form against the run's database; print the medians and the counts."""
    env = read_env(env_file)
    from cryptography.fernet import Fernet

    os.environ.update(PORTAL_ENV="production", SECRET_KEY=secrets.token_urlsafe(48), DATABASE_URL=env["DATABASE_URL"],
                      REDIS_URL=env["REDIS_URL"], RATELIMIT_STORAGE_URI=env["REDIS_URL"], SMS_PROVIDER="twilio",
                      TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="unused", FORCE_HTTPS="0",
                      TWILIO_FROM_NUMBER="+15005550006", SESSION_COOKIE_SECURE="0", LOG_LEVEL="WARNING", PROXY_COUNT="1",
                      ENCRYPTION_KEYS=Fernet.generate_key().decode())
    from sqlalchemy import event

    from portal import create_app
    from portal.extensions import db

    app = create_app()
    counts = {"statements": 0, "transactions": 0, "commits": 0}

    def counter(name: str):
        """An event listener adding one to counts[name]."""
        return lambda *_args: counts.__setitem__(name, counts[name] + 1)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", counter("statements"))
        event.listen(db.engine, "begin", counter("transactions"))
        event.listen(db.engine, "commit", counter("commits"))
    rows = []
    for i in range(logins):
        client = app.test_client()
        headers = {"X-Forwarded-For": f"10.201.{i // 250 % 250}.{i % 250}"}
        cpu, wall = time.process_time(), time.perf_counter()
        page = client.get("/login", headers=headers)
        get_cpu, get_wall = time.process_time() - cpu, time.perf_counter() - wall
        before = dict(counts)
        token = CSRF.search(page.get_data(as_text=True))
        cpu, wall = time.process_time(), time.perf_counter()
        answer = client.post("/login", headers=headers, data={
            "username": f"bench-staff-{1 + i % 5}", "password": "bench-staff-pass-1",
            "csrf_token": token.group(1) if token else ""})
        post_cpu, post_wall = time.process_time() - cpu, time.perf_counter() - wall
        if answer.status_code != 302:
            sys.exit(f"login {i} answered {answer.status_code}")
        rows.append((get_cpu, get_wall, post_cpu, post_wall, {k: counts[k] - before[k] for k in counts}))
    rows = rows[2:]  # the first logins build the hasher and its dummy hash

    def median_ms(column: int) -> float:
        """The median of one column, in ms."""
        return 1000 * statistics.median(row[column] for row in rows)

    print(f"{len(rows)} logins through the form (production config, the run's PostgreSQL and Redis):")
    print(f"  GET /login   CPU {median_ms(0):.1f} ms, wall {median_ms(1):.1f} ms (p50)")
    print(f"  POST /login  CPU {median_ms(2):.1f} ms, wall {median_ms(3):.1f} ms (p50); each: "
          + ", ".join(f"{value} {name}" for name, value in rows[-1][4].items()))


def storm(env_file: str, tablets: int, spread: float = 0.0) -> None:
    """`tablets` tablets log in at once as new tablets, log out, then log in at once again with their device
    cookies; print POST /login's wall times for both."""
    import requests

    base = read_env(env_file)["BASE_URL"]
    sessions = []
    for number in range(tablets):
        session = requests.Session()
        session.headers["X-Forwarded-For"] = f"10.202.{number // 250 % 250}.{number % 250}"
        sessions.append(session)

    def wave(name: str) -> None:
        """Every tablet GETs the form, then all POST it together; each logs out afterwards."""
        times: list[float] = [0.0] * tablets
        failures: list[str] = []
        tokens = []
        for session in sessions:
            match = CSRF.search(session.get(f"{base}/login", timeout=30).text)
            tokens.append(match.group(1) if match else "")
        start = threading.Barrier(tablets)

        def one(index: int) -> None:
            """One tablet's login, timed from the common start."""
            start.wait()
            time.sleep(spread * index / tablets)
            began = time.perf_counter()
            answer = sessions[index].post(f"{base}/login", allow_redirects=False, timeout=60, data={
                "username": f"bench-staff-{1 + index % 5}", "password": "bench-staff-pass-1",
                "csrf_token": tokens[index]})
            times[index] = time.perf_counter() - began
            if answer.status_code != 302:
                failures.append(str(answer.status_code))

        threads = [threading.Thread(target=one, args=(index,)) for index in range(tablets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
        print(f"  {name:<36} p50 {1000 * statistics.median(ordered):5.0f} ms, p95 {1000 * p95:5.0f} ms, "
              f"max {1000 * ordered[-1]:5.0f} ms; refused: {len(failures)} {sorted(set(failures))}")
        for session in sessions:  # the end of the shift (the logout form's CSRF token is on any page)
            page = session.get(f"{base}/packages", timeout=30).text
            match = CSRF.search(page)
            session.post(f"{base}/logout", data={"csrf_token": match.group(1) if match else ""}, timeout=30)

    when = f"within {spread:g} s" if spread else "at once"
    print(f"{tablets} tablets logging in {when} through {base} (5 shared store accounts):")
    wave("new tablets (Argon2id)")
    remembered = sum(1 for session in sessions if session.cookies.get("portal_device"))
    wave(f"next shift ({remembered} remembered)")
    print(f"  load average now: {open('/proc/loadavg').read().split()[0]} (on {os.cpu_count()} cores)")


def burst(checks: int) -> None:
    """`checks` Argon2id checks released together on as many threads, all at once and taking turns."""
    from flask import Flask

    from portal.accounts import auth
    from portal.config import Config

    app = Flask("login_storm")
    app.config.update(ARGON2_TIME_COST=Config.ARGON2_TIME_COST, ARGON2_MEMORY_COST=Config.ARGON2_MEMORY_COST,
                      ARGON2_PARALLELISM=Config.ARGON2_PARALLELISM)
    with app.app_context():
        stored = auth.hash_password("bench-password")
    print(f"{checks} Argon2id checks (m={Config.ARGON2_MEMORY_COST}, t={Config.ARGON2_TIME_COST}, "
          f"p={Config.ARGON2_PARALLELISM}) released together on {checks} threads of one process:")
    for limit in (checks, 1, checks, 1):
        app.config["ARGON2_CONCURRENCY"] = limit
        waits: list[float] = []
        start = threading.Barrier(checks)

        def one(start: threading.Barrier, waits: list[float]) -> None:
            """One login's check: wait for the others, then check (taking a turn when limited)."""
            with app.app_context():
                start.wait()
                began = time.perf_counter()
                auth.verify_password(stored, "bench-password")
                waits.append(time.perf_counter() - began)

        cpu = time.process_time()
        threads = [threading.Thread(target=one, args=(start, waits)) for _ in range(checks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu = time.process_time() - cpu
        print(f"  ARGON2_CONCURRENCY={limit:<3} wait + check p50 {1000 * statistics.median(waits):5.0f} ms, "
              f"max {1000 * max(waits):5.0f} ms; CPU {1000 * cpu:4.0f} ms ({1000 * cpu / checks:.1f} ms a check)")
    print(f"  load average now: {open('/proc/loadavg').read().split()[0]} (on {os.cpu_count()} cores)")


def main() -> None:
    """Parse the options and run the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", help="RUN_DIR/env of a running scripts/run-scale (for the per-login cost)")
    parser.add_argument("--logins", type=int, default=22)
    parser.add_argument("--burst", type=int, default=12)
    parser.add_argument("--storm", type=int, default=0, help="tablets logging in at once over HTTP (needs --env)")
    parser.add_argument("--spread", type=float, default=0.0, help="with --storm: seconds the logins are spread over")
    args = parser.parse_args()
    if args.storm:
        if not args.env:
            parser.error("--storm needs --env")
        storm(args.env, args.storm, args.spread)
        return
    if args.env:
        login_cost(args.env, args.logins)
    burst(args.burst)


if __name__ == "__main__":
    main()
