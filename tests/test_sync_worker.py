"""A sync on the real job queue: a huey_consumer process is killed midway, a new one finishes the job."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update
from stubs.huey_worker import Consumer, queue_file, wait_for  # noqa: F401
from stubs.omnitron_server import PASSWORD, USERNAME, SandboxProcess

from portal.db_types import utcnow
from portal.extensions import db
from portal.settings import service as settings
from portal.sync import service as sync
from portal.sync.models import AddressNode, SyncJob

PAGE_SIZE = 500


@pytest.fixture
def sandbox():
    """The sandbox as its own process (3,000 districts: six pages of 500)."""
    with SandboxProcess("--address-count", "3000") as running:
        yield running


@pytest.fixture
def app_config(sandbox):
    """The test app uses the same Omnitron as the workers."""
    return {"OMNITRON_URL": sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "SYNC_PAGE_SIZE": PAGE_SIZE}


def worker_env(app) -> dict[str, str]:
    """The workers copy from this test's sandbox, quickly, page by small page."""
    return {"OMNITRON_URL": app.config["OMNITRON_URL"], "OMNITRON_BACKOFF_SECONDS": "0.01",
            "SYNC_PAGE_SIZE": str(PAGE_SIZE)}


def fresh_job(job_id: int) -> SyncJob:
    """The job as the workers left it (a new transaction sees their commits)."""
    db.session.rollback()
    return db.session.get(SyncJob, job_id, populate_existing=True)


def test_a_worker_killed_midway_leaves_a_job_that_a_new_worker_finishes(app, make, sandbox, queue_file, tmp_path):
    admin = make.user("ayse", role="admin")
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=admin.id)
    # Districts page 4 answers only after a minute: the worker will be waiting for it when it is killed.
    requests.post(f"{sandbox.url}/__sandbox__/faults", json={"path": "/api/v1/districts/", "page": 4, "delay": 60},
                  timeout=5).raise_for_status()
    log_path = str(tmp_path / "consumer.log")
    first_worker = Consumer(app, queue_file, log_path, **worker_env(app))
    try:
        job = sync.execute(db.session, "addresses", user_id=admin.id)
        assert job.status == SyncJob.QUEUED
        wait_for(lambda: fresh_job(job.id).cursor.get("page") == 3 and fresh_job(job.id).cursor["resource"] ==
                 "district", 60, "districts page 3 to be committed")
        wait_for(lambda: requests.get(f"{sandbox.url}/__sandbox__/faults", timeout=5).json()[0]["hits"] == 1, 30,
                 "the worker to ask for districts page 4")
    finally:
        first_worker.kill()

    killed = fresh_job(job.id)
    assert killed.status == SyncJob.RUNNING and killed.cursor["page"] == 3
    copied = db.session.scalar(select(func.count()).select_from(AddressNode).where(AddressNode.level == "district"))
    assert copied == 3 * PAGE_SIZE
    # Right after the crash the job still looks alive, so a second copy is refused...
    with pytest.raises(sync.SyncAlreadyRunning):
        sync.execute(db.session, "addresses", user_id=admin.id)
    # ...until its heartbeat is older than two minutes (moved back here rather than waited for).
    db.session.execute(update(SyncJob).where(SyncJob.id == job.id)
                       .values(heartbeat_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()

    second_worker = Consumer(app, queue_file, log_path, **worker_env(app))
    try:
        resumed = sync.execute(db.session, "addresses", user_id=admin.id)
        finished = wait_for(lambda: (lambda j: j if j.status in (SyncJob.DONE, SyncJob.FAILED) else None)(
            fresh_job(resumed.id)), 60, "the resumed job to finish")
    finally:
        second_worker.stop()

    log = Path(log_path).read_text(errors="replace")
    assert finished.status == SyncJob.DONE, f"{finished.error}\n{log[-3000:]}"
    assert finished.cursor["resumed_from"] == job.id
    assert fresh_job(job.id).status == SyncJob.FAILED
    with requests.Session() as http:
        http.headers["Authorization"] = "Token " + http.post(
            f"{sandbox.url}/api/v1/auth/login/", json={"username": USERNAME, "password": PASSWORD}, timeout=5
        ).json()["key"]
        remote = {level: http.get(f"{sandbox.url}/api/v1/{name}/", params={"limit": 1}, timeout=5).json()["count"]
                  for level, name in (("country", "countries"), ("city", "cities"), ("township", "townships"),
                                      ("district", "districts"))}
    local = dict(db.session.execute(select(AddressNode.level, func.count()).group_by(AddressNode.level)).tuples().all())
    assert local == remote
    distinct_keys = db.session.scalar(
        select(func.count()).select_from(select(AddressNode.level, AddressNode.omnitron_id).distinct().subquery()))
    assert distinct_keys == sum(remote.values())
    total = sum(remote.values())
    assert (finished.processed, finished.total, finished.created, finished.updated, finished.failed) == (
        total, total, total, 0, 0)
