"""The job queue: SQLite-backed by default, Redis when REDIS_URL is set; jobs wait in the store until a worker runs them."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from portal import queue


def _free_port() -> int:
    """A free TCP port on the loopback address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url():
    """A throwaway redis-server on a free port (CI installs Debian's redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_default_queue_is_a_sqlite_file_that_keeps_jobs_until_a_worker_takes_them(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("HUEY_IMMEDIATE", raising=False)
    monkeypatch.setenv("HUEY_SQLITE_PATH", str(tmp_path / "queue.sqlite"))
    huey = queue._make_huey()

    @huey.task()
    def add(a, b):
        """Add two numbers."""
        return a + b

    add(2, 3)
    # A second queue object on the same file, as a restarted portal or another worker process would have.
    again = queue._make_huey()
    assert type(again).__name__ == "SqliteHuey"
    assert again.pending_count() == 1
    assert huey.execute(huey.dequeue()) == 5
    assert again.pending_count() == 0


def test_with_redis_url_the_queue_lives_in_redis(monkeypatch, redis_url):
    monkeypatch.delenv("HUEY_IMMEDIATE", raising=False)
    monkeypatch.setenv("REDIS_URL", redis_url)
    huey = queue._make_huey()
    assert type(huey).__name__ == "RedisHuey"
    huey.flush()

    @huey.task()
    def multiply(a, b):
        """Multiply two numbers."""
        return a * b

    result = multiply(6, 7)
    # The job waits in Redis: a separate client on the same URL (another machine's worker) sees it.
    other = queue._make_huey()
    assert other.pending_count() == 1
    assert huey.execute(huey.dequeue()) == 42
    assert other.pending_count() == 0
    assert result.get() == 42
    huey.flush()
