"""Faults survived, CI-sized: the production profile (scripts/run-scale: PostgreSQL, Redis, two gunicorn app
processes, two huey workers) on a small seed, and bench/faults.py in the middle of form and API traffic: PostgreSQL
stopped and started, Redis restarted (its queue lost), a worker and an app process killed with SIGKILL, a worker
killed with SIGKILL in the middle of sends (the stand-ins hold its SMS and webhook requests when it dies), the SMS
provider down for 15 s, the webhook receivers down then slow then back. Afterwards every committed transition's
SMS and webhook messages are delivered or dead-lettered, nothing arrived twice except what the mid-send kill
interrupted (that came again under the same id once the claim's lease ran out), no package is in an impossible
state, and no request got a 5xx other than the outage's 503 (bench/faults.py says what it checks)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.test_scale_profile import free_port

ROOT = Path(__file__).resolve().parent.parent


def _tracebacks(run_dir: Path) -> str:
    """What the app and worker processes logged from their first traceback on (the run's folder is removed after
    the test, so a failure must show it now)."""
    found = []
    for log_file in sorted(run_dir.glob("*.log")):
        text = log_file.read_text(errors="replace")
        if "Traceback" in text:
            start = max(0, text.index("Traceback") - 300)
            found.append(f"\n--- {log_file.name}, from its first traceback:\n" + text[start:start + 4000])
    return "".join(found)[-8000:]


@pytest.mark.scale
def test_the_production_profile_survives_each_fault_in_the_middle_of_traffic(tmp_path):
    if shutil.which("redis-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("REQUIRE_SCALE_TEST"):
            pytest.fail("the production profile needs PostgreSQL and Redis installed")
        pytest.skip("PostgreSQL or Redis is not installed")
    # Not under tmp_path: PostgreSQL runs as the postgres user when the tests run as root, and pytest's folders
    # are private to their owner.
    run_dir = Path(tempfile.mkdtemp(prefix="portal-faults-")) / "run"
    run_dir.parent.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PORTAL_", "DATABASE_URL", "REDIS_URL"))}
    # A killed worker's claim runs out after 15 s instead of a minute (it must exceed the webhook timeout).
    env.update(SCALE_DIR=str(run_dir), OUTBOX_LEASE_SECONDS="15", WEBHOOK_TIMEOUT_SECONDS="5")
    log = (tmp_path / "run-scale.log").open("w")
    profile = subprocess.Popen(
        ["scripts/run-scale", "--packages", "3000", "--apps", "2", "--app-workers", "2", "--job-workers", "2",
         "--threads", "4", "--port", str(free_port())],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "env").is_file():
            assert profile.poll() is None, (tmp_path / "run-scale.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the profile did not start within 5 minutes"
            time.sleep(0.5)
        figures = tmp_path / "faults.json"
        done = subprocess.run(
            [".venv/bin/python", "bench/faults.py", "--env", str(run_dir / "env"), "--outage-seconds", "4",
             "--sms-down-seconds", "15", "--hooks-seconds", "6", "--traffic-seconds", "3", "--hook-retry-seconds",
             "5", "--hang-seconds", "3", "--drain-seconds", "200", "--strict-duplicates", "--json", str(figures)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        print(done.stdout[-4000:], done.stderr[-4000:])
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + _tracebacks(run_dir)
        result = json.loads(figures.read_text())
    finally:
        profile.send_signal(signal.SIGTERM)
        try:
            profile.wait(timeout=60)
        except subprocess.TimeoutExpired:
            profile.kill()
        log.close()
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    rows = {row["fault"]: row for row in result["faults"]}
    assert set(rows) == {"postgres", "redis", "worker", "worker-send", "app", "sms", "hooks"}
    assert result["failures"] == []
    for row in rows.values():
        assert row["committed"] > 0 and row["webhooks"] > 0
        # Only what the mid-send kill interrupted arrived twice, and under its own id.
        assert row["duplicates_other_id"] == 0 and row["redelivered_same_id"] == row["redelivered_after_kill"]
        assert row["undelivered"] == 0 and row["lost"] == 0 and row["errors_5xx"] == 0
        assert row["sms_delivered"] + row["sms_dead"] == row["sms"]
        assert row["webhooks_delivered"] + row["webhooks_dead"] == row["webhooks"]
    assert rows["postgres"]["answered_503"] > 0  # the outage was seen, and answered with the 503 page or JSON
    assert rows["sms"]["sms"] > 0 and result["standins"]["sms_refused"] > 0
    assert result["standins"]["webhooks_refused"] > 0
    killed = rows["worker-send"]
    assert killed["in_flight_at_kill"] > 0 and killed["killed_not_redelivered"] == []
    assert killed["killed_redelivered_same_id"] + killed["killed_dead"] == killed["in_flight_at_kill"]
    again = sum(row["redelivered_after_kill"] for row in rows.values())
    assert again == killed["killed_redelivered_same_id"]
    assert result["standins"]["webhook_duplicates"] + result["standins"]["sms_duplicate_bodies"] == again
