"""The job queue: SQLite-backed by default, Redis when REDIS_URL is set; jobs wait in the store until a worker runs them."""
from __future__ import annotations

from portal import queue


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
