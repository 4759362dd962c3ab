"""The job queue: Huey on a SQLite file by default, on Redis when REDIS_URL is set, immediate in tests.

Workers are separate processes: `huey_consumer portal.worker.huey -w 2 -k process`
(scripts/run-demo starts one). Tasks run inside a Flask app context: the caller's in immediate
mode (tests), otherwise one app per worker process, built by the factory the worker entry point
(portal.worker) registers with set_app_factory(): the queue is infrastructure and does not import the app.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from flask import Flask, has_app_context
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
_worker_app: Flask | None = None
_app_factory: Callable[[], Flask] | None = None


def set_app_factory(factory: Callable[[], Flask]) -> None:
    """Build this process's app with factory (portal.create_app) when a task runs outside any app context."""
    global _app_factory
    _app_factory = factory


def app_context():
    """An app context for a task: the current one if any, else this worker process's own app.

    Raises RuntimeError outside an app context when no factory was registered (portal.worker does it).
    """
    global _worker_app
    if has_app_context():
        return nullcontext()
    if _worker_app is None:
        if _app_factory is None:
            raise RuntimeError("no app factory registered for the job queue: start workers on portal.worker.huey")
        _worker_app = _app_factory()
    return _worker_app.app_context()


def queue_description() -> str:
    """Which storage the queue uses, for the admin pages."""
    if huey.immediate:
        return "immediate (in the calling process)"
    return {"RedisHuey": "Redis", "SqliteHuey": "SQLite file", "MemoryHuey": "memory"}.get(
        type(huey).__name__, type(huey).__name__)
