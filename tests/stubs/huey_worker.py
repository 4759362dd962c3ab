"""A real job worker for crash tests: a private SQLite queue, `huey_consumer` processes, and polling."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from huey.storage import SqliteStorage

from portal.queue import huey

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONSUMER = Path(sys.executable).with_name("huey_consumer")


@pytest.fixture
def queue_file(app):
    """This test's own SQLite queue file: the test enqueues into it and huey_consumer processes read it.

    The app fixture runs tasks immediately; here they must go through a real queue to real workers.
    """
    with tempfile.TemporaryDirectory(prefix="portal-huey-") as folder:
        was_immediate, normal = huey.immediate, huey.storage
        huey.immediate = False
        huey.storage = SqliteStorage(name=huey.name, filename=os.path.join(folder, "huey.sqlite"))
        try:
            yield huey.storage.filename
        finally:
            huey.storage = normal
            huey.immediate = was_immediate


class Consumer:
    """`huey_consumer portal.worker.huey -w 2 -k process` in its own process group (workers are children)."""

    def __init__(self, app, queue_path: str, log_path: str, **env_overrides: str):
        env = {k: v for k, v in os.environ.items() if k not in ("HUEY_IMMEDIATE", "REDIS_URL")}
        env.update(HUEY_SQLITE_PATH=queue_path, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
                   SECRET_KEY=app.config["SECRET_KEY"], PORTAL_ENV="development", **env_overrides)
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([str(CONSUMER), "portal.worker.huey", "-w", "2", "-k", "process"],
                                        cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def kill(self) -> None:
        """kill -9 the consumer and its worker processes at once, as a crashed machine would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        """Stop gracefully (SIGINT lets huey finish), or kill after a few seconds."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def wait_for(condition, seconds: float, what: str):
    """Poll until condition() is truthy and return its value; fail the test with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")
