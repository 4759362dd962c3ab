"""The background-run core: claiming, progress, failing, stale takeover and resuming from the cursor.

The tests register a small kind of their own, "counting", that works through ten items in slices and
stores the next item in its cursor; its rows live in sync_jobs (any table with the run columns would do).
"""
from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from huey.storage import RedisStorage
from sqlalchemy import update

from portal.db_types import utcnow
from portal.extensions import db
from portal.queue import huey
from portal.runs import service as runs
from portal.sync.models import SyncJob

ITEMS = 10


class WorkerDied(Exception):
    """Stands for a worker process killed midway: it writes nothing more."""


class Counter:
    """The "counting" kind's step and what it saw: the items it processed, and where it should die."""

    def __init__(self):
        self.processed: list[int] = []
        self.die_at: int | None = None
        self.failed_with: list[str] = []

    def step(self, session, run_id: int, token: str) -> None:
        """Claim the run, process the items from its cursor on, one committed slice each, then finish."""
        if not runs.claim(session, SyncJob, run_id, token):
            return
        run = session.get(SyncJob, run_id, populate_existing=True)
        for item in range(int((run.cursor or {}).get("next", 0)), ITEMS):
            if item == self.die_at:
                raise WorkerDied()
            self.processed.append(item)
            runs.save_progress(session, SyncJob, run_id, token, cursor={"next": item + 1},
                               progress={"done": item + 1, "total": ITEMS})
        runs.finish(session, SyncJob, run_id, token)

    def on_fail(self, session, run, message: str) -> None:
        """Remember the failure (a kind's hook writes in fail()'s transaction)."""
        self.failed_with.append(message)
        run.error = f"{message} (noted by the kind)"


@pytest.fixture
def counter(app):
    """The "counting" kind, registered for this test."""
    counting = Counter()
    runs.register(runs.RunKind("counting", SyncJob, step=counting.step, on_fail=counting.on_fail))
    yield counting
    runs._KINDS.pop("counting", None)


def new_run(**values) -> SyncJob:
    """A recorded, committed, queued run of the counting kind."""
    run = SyncJob(kind="channels", status=SyncJob.QUEUED, task_id=runs.new_token(), cursor={}, progress={},
                  error="", **values)
    db.session.add(run)
    db.session.commit()
    return run


def fresh(run_id: int) -> SyncJob:
    """The run as stored now."""
    return db.session.get(SyncJob, run_id, populate_existing=True)


def test_a_queued_run_is_carried_out_by_its_kinds_step_through_the_queue(counter, immediate_queue):
    run = new_run()
    assert runs.is_live(run) and runs.percent(run) == 0

    done = runs.queue(db.session, "counting", run)

    assert done.status == SyncJob.DONE and done.finished_at is not None and done.started_at is not None
    assert counter.processed == list(range(ITEMS))
    assert done.cursor == {"next": ITEMS} and done.progress == {"done": ITEMS, "total": ITEMS}
    assert not runs.is_live(done) and runs.percent(done) == 100


def test_progress_is_saved_with_a_heartbeat_and_shown_as_a_percentage(counter):
    run = new_run()
    assert runs.claim(db.session, SyncJob, run.id, run.task_id)
    before = fresh(run.id).heartbeat_at

    runs.save_progress(db.session, SyncJob, run.id, run.task_id, cursor={"next": 3}, progress={"done": 3, "total": 4})

    saved = fresh(run.id)
    assert saved.status == SyncJob.RUNNING and saved.cursor == {"next": 3} and saved.heartbeat_at >= before
    assert runs.percent(saved) == 75
    saved.progress = {"done": 9, "total": 4}  # the total moved under it: never shown as more than 99% while live
    assert runs.percent(saved) == 99


def test_two_workers_claiming_one_run_at_the_same_moment_one_gets_it(app, counter):
    run = new_run()
    run_id, token = run.id, run.task_id  # read here: the threads must not touch this session's objects
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def worker(i: int) -> None:
        """One worker's claim, in its own app context and database session."""
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcomes[i] = runs.claim(db.session, SyncJob, run_id, token)
            except Exception as exc:  # the test looks at both outcomes
                outcomes[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes, key=repr) == [False, True], outcomes
    assert fresh(run.id).status == SyncJob.RUNNING
    # A task delivered again later finds the run taken as well, and a wrong token never gets it.
    assert runs.claim(db.session, SyncJob, run.id, run.task_id) is False
    assert runs.claim(db.session, SyncJob, new_run().id, "not-the-token") is False


def test_fail_ends_a_live_run_with_its_message_and_the_kinds_hook(counter):
    run = new_run()
    assert runs.claim(db.session, SyncJob, run.id, run.task_id)

    assert runs.fail(db.session, "counting", run.id, "stolen-token", "Nope.") is False
    assert fresh(run.id).status == SyncJob.RUNNING
    assert runs.fail(db.session, "counting", run.id, run.task_id, "Omnitron is down.") is True

    failed = fresh(run.id)
    assert (failed.status, failed.error) == (SyncJob.FAILED, "Omnitron is down. (noted by the kind)")
    assert failed.finished_at is not None and counter.failed_with == ["Omnitron is down."]
    # An ended run cannot be failed again, nor written to by its worker.
    assert runs.fail(db.session, "counting", run.id, run.task_id, "Again.") is False
    with pytest.raises(runs.Superseded):
        runs.save_progress(db.session, SyncJob, run.id, run.task_id, cursor={"next": 1})


def test_a_queue_that_refuses_the_task_fails_the_run_saying_so(counter, monkeypatch):
    # The queue's storage is a Redis server that is not there (a port nothing listens on).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(huey, "immediate", False)
    monkeypatch.setattr(huey, "storage", RedisStorage("portal", url=f"redis://127.0.0.1:{port}/0"))

    run = runs.queue(db.session, "counting", new_run())

    assert run.status == SyncJob.FAILED
    assert run.error.startswith("The job queue did not take the run (ConnectionError).")
    assert "HUEY_SQLITE_PATH or REDIS_URL" in run.error and counter.processed == []


def test_a_stale_run_is_requeued_and_carries_on_from_its_cursor_while_the_old_worker_stops(counter):
    run = new_run()
    old_token = run.task_id
    counter.die_at = 4
    with pytest.raises(WorkerDied):
        counter.step(db.session, run.id, old_token)
    assert counter.processed == [0, 1, 2, 3] and fresh(run.id).status == SyncJob.RUNNING
    assert not runs.is_stale(fresh(run.id))  # it wrote a moment ago: still taken as alive

    db.session.execute(update(SyncJob).where(SyncJob.id == run.id)
                       .values(heartbeat_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    assert runs.is_stale(fresh(run.id)) and [r.id for r in runs.stale_runs(db.session, "counting")] == [run.id]
    assert runs.stale_reason(fresh(run.id)) == "Its worker stopped (no progress for over 2 minutes)"

    counter.die_at = None
    resumed = runs.requeue(db.session, "counting", fresh(run.id))

    assert resumed.status == SyncJob.DONE and resumed.task_id != old_token
    assert counter.processed == list(range(ITEMS))  # every item once: carried on from item 4
    # The old worker wakes up: its claim is gone, so it can write nothing.
    with pytest.raises(runs.Superseded):
        runs.save_progress(db.session, SyncJob, run.id, old_token, cursor={"next": 5})
    assert fresh(run.id).cursor == {"next": ITEMS}


def test_take_over_ends_a_stale_run_and_the_sweep_gives_up_silent_ones(counter):
    lost = new_run(created_at=utcnow() - timedelta(minutes=5))
    recent = new_run()
    assert runs.is_stale(lost) and not runs.is_stale(recent)
    assert runs.stale_reason(lost) == "No worker picked it up for over 2 minutes"
    assert runs.waiting_for_worker(lost) and not runs.waiting_for_worker(recent)

    assert runs.sweep_stale(db.session, "counting") == [lost.id]

    swept = fresh(lost.id)
    assert swept.status == SyncJob.FAILED
    assert swept.error == "No worker picked it up for over 2 minutes; it was given up. (noted by the kind)"
    assert fresh(recent.id).status == SyncJob.QUEUED
    other = new_run()
    runs.take_over(other, "Replaced by run #99.")
    db.session.commit()
    assert (fresh(other.id).status, fresh(other.id).error) == (SyncJob.FAILED, "Replaced by run #99.")


def test_every_kind_of_the_portal_is_registered_by_its_module():
    import portal.worker  # noqa: F401  (what a worker process imports)

    assert {"sync", "order_import", "scheduled_job"} <= set(runs.kinds())
    with pytest.raises(KeyError):
        runs.kind_of("no_such_kind")


def test_the_status_panel_polls_a_live_run_until_it_ends_or_its_worker_goes_silent(counter):
    assert runs.panel_state(None) == runs.PanelState(polling=False, stale=False, waiting_for_worker=False, percent=0)
    queued_long_ago = new_run(created_at=utcnow() - timedelta(minutes=5))
    assert runs.panel_state(queued_long_ago) == runs.PanelState(True, False, True, 0)  # keeps asking, with a hint

    run = new_run()
    assert runs.claim(db.session, SyncJob, run.id, run.task_id)
    runs.save_progress(db.session, SyncJob, run.id, run.task_id, progress={"done": 1, "total": 4})
    assert runs.panel_state(fresh(run.id)) == runs.PanelState(True, False, False, 25)
    later = utcnow() + timedelta(minutes=3)
    assert runs.panel_state(fresh(run.id), later) == runs.PanelState(False, True, False, 25)
    runs.finish(db.session, SyncJob, run.id, run.task_id)
    assert runs.panel_state(fresh(run.id), later) == runs.PanelState(False, False, False, 100)
