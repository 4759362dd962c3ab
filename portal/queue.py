"""The job queue: Huey on a SQLite file by default, on Redis when REDIS_URL is set, immediate in tests.

Workers are separate processes: `huey_consumer portal.worker.huey -w 2 -k process`
(scripts/run-demo starts one). Tasks run inside a Flask app context: the caller's in immediate
mode (tests), otherwise one app per worker process built by create_app() from the environment.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

from flask import has_app_context
from huey import MemoryHuey, RedisHuey, SqliteHuey

_BASE = Path(__file__).resolve().parent.parent


def _make_huey():
    """Choose the queue's storage from the environment."""
    if os.environ.get("HUEY_IMMEDIATE", "").lower() in {"1", "true", "yes"}:
        return MemoryHuey("portal", immediate=True)
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return RedisHuey("portal", url=redis_url)
    path = os.environ.get("HUEY_SQLITE_PATH") or str(_BASE / "instance" / "huey.sqlite")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("portal", filename=path)


huey = _make_huey()
_worker_app = None


def app_context():
    """An app context for a task: the current one if any, else this worker process's own app."""
    global _worker_app
    if has_app_context():
        return nullcontext()
    if _worker_app is None:
        from portal import create_app

        _worker_app = create_app()
    return _worker_app.app_context()


def queue_description() -> str:
    """Which storage the queue uses, for the admin pages."""
    if huey.immediate:
        return "immediate (in the calling process)"
    return {"RedisHuey": "Redis", "SqliteHuey": "SQLite file", "MemoryHuey": "memory"}.get(
        type(huey).__name__, type(huey).__name__)
