"""The production profile, short: scripts/run-scale --check starts PostgreSQL, Redis, two gunicorn app processes
and two huey workers with PORTAL_ENV=production, then a handover (and a two-tablet race) and the webhook
deliveries go through them; nothing may be delivered twice (bench/scale_check.py says what it checks)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def needs_postgresql_and_redis() -> None:
    """Skip (or fail, when REQUIRE_SCALE_TEST is set) without PostgreSQL and Redis installed."""
    missing = [tool for tool in ("redis-server",) if shutil.which(tool) is None]
    if missing or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("REQUIRE_SCALE_TEST"):
            pytest.fail("the production profile needs PostgreSQL and Redis installed")
        pytest.skip("PostgreSQL or Redis is not installed")


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.scale
def test_the_production_profile_hands_over_and_delivers_each_message_once():
    needs_postgresql_and_redis()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PORTAL_", "DATABASE_URL", "REDIS_URL"))}
    done = subprocess.run(
        ["scripts/run-scale", "--check", "--packages", "3000", "--apps", "2", "--app-workers", "2",
         "--job-workers", "2", "--threads", "4", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "scale check: passed" in done.stdout
    assert "0 duplicates" in done.stdout


@pytest.mark.scale
def test_the_profile_refuses_a_port_someone_already_listens_on():
    # The app processes bind with SO_REUSEPORT, which would share the port with another run listening there.
    needs_postgresql_and_redis()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PORTAL_", "DATABASE_URL"))}
        done = subprocess.run(["scripts/run-scale", "--packages", "10", "--port", str(port)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert f"Port {port} is in use" in done.stderr
    assert "postgresql" not in done.stdout  # refused before anything started
