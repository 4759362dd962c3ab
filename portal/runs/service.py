"""The one lifecycle of a background run, and the one queue task that carries runs out by kind.

A kind registers once: register(RunKind("order_import", OrderImportRun, step=...)). Then:

- its service records a run (status QUEUED, a fresh claim token from new_token()) and calls queue(),
  which puts it on the job queue, or ends it as failed with a clear message when the queue refuses it;
- the worker's task run_step(kind, run_id, token) calls the kind's step, which claim()s the run (a
  conditional update on the token, so two workers never run one run), does its work in slices and
  save_progress()es after each (counters, cursor and heartbeat in the slice's transaction), and ends
  with finish() or fail();
- a run whose worker went silent (is_stale) is taken over: take_over() ends it as failed and a new run
  carries on from its cursor, or requeue() gives it a new token and puts it back on the queue. The old
  worker, if it wakes up, finds its token gone at its next save (Superseded) and stops.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard, TypeVar, cast

from flask_babel import gettext as _
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.extensions import db
from portal.queue import app_context, huey
from portal.runs.models import RunMixin

log = logging.getLogger(__name__)

# A run whose worker has written nothing for this long is taken as dead (kinds may choose their own).
STALE_AFTER = timedelta(minutes=2)
# A queued run nobody has picked up for this long gets a hint that no worker may be running.
WORKER_HINT_AFTER = timedelta(seconds=15)
MAX_ERROR = 4000

R = TypeVar("R", bound=RunMixin)


class Superseded(Exception):
    """This worker's claim on the run is gone (taken over elsewhere, or ended): it must stop."""


@dataclass(frozen=True)
class RunKind:
    """A kind of background run: its model, the step that carries a run out, and what failing does."""

    name: str
    model: type[Any]  # a RunMixin model
    # step(session, run_id, token): claim the run and carry it to its end; failures end up on the run.
    step: Callable[[Session, int, str], Any]
    # on_fail(session, run, message): extra writes in fail()'s transaction (e.g. the wizard step's state).
    on_fail: Callable[[Session, Any, str], None] | None = None
    stale_after: timedelta = STALE_AFTER


_KINDS: dict[str, RunKind] = {}


def register(kind: RunKind) -> RunKind:
    """Make a kind known to the queue task (once per process; registering it again replaces it)."""
    _KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> RunKind:
    """A registered kind. Raises KeyError for an unknown one."""
    return _KINDS[name]


def kinds() -> list[str]:
    """The names of the registered kinds."""
    return sorted(_KINDS)


def new_token() -> str:
    """A fresh claim token for a run."""
    return uuid.uuid4().hex


# Reading a run's state ---------------------------------------------------------------------------------------


def is_live(run: R | None) -> TypeGuard[R]:
    """True while a run is queued or running (a stale one still counts: nothing has ended it yet)."""
    return run is not None and run.status in run.live_statuses()


def last_sign_of_life(run: RunMixin) -> datetime | None:
    """When the run last showed it was alive: its heartbeat, its start, or its creation."""
    return run.heartbeat_at or run.started_at or run.created_at


def is_stale(run: RunMixin | None, now: datetime | None = None, after: timedelta = STALE_AFTER) -> bool:
    """True when a live run's worker has shown no sign of life for `after` (it died or never came)."""
    if run is None or not is_live(run):
        return False
    last = last_sign_of_life(run)
    return last is None or (now or utcnow()) - last > after


def waiting_for_worker(run: RunMixin | None, now: datetime | None = None) -> bool:
    """True when a queued run has not been picked up for a while (is a worker running?)."""
    return (run is not None and run.status == run.QUEUED and run.created_at is not None
            and (now or utcnow()) - run.created_at > WORKER_HINT_AFTER)


def percent(run: RunMixin | None) -> int:
    """How far a run got, 0 to 100, from its progress {"done", "total"} (a done run is 100)."""
    if run is None:
        return 0
    if run.status == run.DONE:
        return 100
    progress = run.progress or {}
    done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
    if not total:
        return 0
    return max(0, min(99 if is_live(run) else 100, done * 100 // total))


@dataclass(frozen=True)
class PanelState:
    """What a run's status panel shows beyond the run itself (see templates/runs/_status.html)."""

    polling: bool  # the panel asks for itself again: the run is live and its worker has not gone silent
    stale: bool  # a running run whose worker went silent: offer to carry on
    waiting_for_worker: bool  # a queued run nobody has picked up for a while: is a worker running?
    percent: int


def panel_state(run: RunMixin | None, now: datetime | None = None, after: timedelta = STALE_AFTER) -> PanelState:
    """The status panel's view of a run (None: nothing has run yet).

    A queued run keeps the panel polling even when nobody has picked it up (a worker may yet start),
    with a hint; a running run whose worker went silent stops it and offers to carry on.
    """
    now = now or utcnow()
    stale = run is not None and run.status == run.RUNNING and is_stale(run, now, after)
    return PanelState(polling=is_live(run) and not stale, stale=stale,
                      waiting_for_worker=waiting_for_worker(run, now), percent=percent(run))


def stale_reason(run: RunMixin, after: timedelta = STALE_AFTER) -> str:
    """Why a stale run is being given up: never picked up, or its worker stopped."""
    minutes = max(1, int(after.total_seconds() // 60))
    if run.status == run.QUEUED:
        return _("No worker picked it up for over %(minutes)s minutes", minutes=minutes)
    return _("Its worker stopped (no progress for over %(minutes)s minutes)", minutes=minutes)


# Starting and queueing ---------------------------------------------------------------------------------------


def queue(session: Session, kind: str, run: R) -> R:
    """Put a recorded (committed) run on the job queue; returns it fresh (finished already in immediate mode).

    When the queue's storage refuses it, the run ends as failed with a message saying so, rather than
    waiting for a worker forever.
    """
    model = kind_of(kind).model
    run_id, token = run.id, run.task_id
    try:
        run_step(kind, run_id, token)
    except Exception as exc:  # the queue's storage failing must leave a failed run, not a queued one forever
        log.exception("could not queue %s run %s", kind, run_id)
        session.rollback()
        fail(session, kind, run_id, token, _(
            "The job queue did not take the run (%(error)s). Check that the queue's storage "
            "(HUEY_SQLITE_PATH or REDIS_URL) is reachable.", error=exc.__class__.__name__))
    return cast(R, session.get(model, run_id, populate_existing=True))


def take_over(run: RunMixin, message: str, now: datetime | None = None) -> None:
    """End a stale run as failed with a message (e.g. which run carries on); not committed.

    Its worker, should it wake up, finds the run ended at its next save and stops.
    """
    run.status = run.FAILED
    run.finished_at = now or utcnow()
    run.error = message[:MAX_ERROR]


def requeue(session: Session, kind: str, run: R) -> R:
    """Give a stale run a new claim token and put it back on the queue; its step carries on from its cursor.

    The old worker's token no longer matches, so it stops at its next save. Returns the run fresh.
    """
    model = kind_of(kind).model
    run.task_id = new_token()
    run.status = model.QUEUED
    run.heartbeat_at = None
    session.commit()
    return queue(session, kind, run)


def stale_runs(session: Session, kind: str, now: datetime | None = None) -> list:
    """The live runs of a kind whose workers went silent, oldest first."""
    spec = kind_of(kind)
    model = spec.model
    live: list[Any] = list(session.scalars(
        select(model).where(model.status.in_(model.live_statuses())).order_by(model.id)))
    return [run for run in live if is_stale(run, now, spec.stale_after)]


def sweep_stale(session: Session, kind: str, now: datetime | None = None) -> list[int]:
    """End every stale run of a kind as failed, saying why; returns their ids (for a periodic sweep)."""
    spec = kind_of(kind)
    ended = []
    for run in stale_runs(session, kind, now):
        if fail(session, kind, run.id, run.task_id, _("%(why)s; it was given up.",
                                                      why=stale_reason(run, spec.stale_after))):
            ended.append(run.id)
    return ended


# Running -----------------------------------------------------------------------------------------------------


def claim(session: Session, model: type[Any], run_id: int, token: str) -> bool:
    """Mark a queued run running under this token and commit; False when another worker has it, or it ended.

    Only a queued run can be claimed, so a task delivered twice (or two workers) never run one run twice:
    the conditional update lets exactly one of them through.
    """
    now = utcnow()
    claimed = cast(CursorResult, session.execute(
        update(model).where(model.id == run_id, model.task_id == token, model.status == model.QUEUED)
        .values(status=model.RUNNING, started_at=func.coalesce(model.started_at, now), heartbeat_at=now)
        .execution_options(synchronize_session=False))).rowcount
    session.commit()
    return claimed == 1


def save_progress(session: Session, model: type[Any], run_id: int, token: str, **values: Any) -> None:
    """Write the run's columns (counters, cursor, progress) and its heartbeat in the current transaction, and commit.

    The slice's own writes commit with it, so a resumed run never redoes or skips one. Raises
    Superseded (after rolling back) when this run no longer owns the record.
    """
    saved = cast(CursorResult, session.execute(
        update(model).where(model.id == run_id, model.task_id == token, model.status == model.RUNNING)
        .values(**values, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False))).rowcount
    if saved != 1:
        session.rollback()
        raise Superseded()
    session.commit()


def finish(session: Session, model: type[Any], run_id: int, token: str, **values: Any) -> None:
    """End the run as done with its last values, and commit. Raises Superseded like save_progress."""
    save_progress(session, model, run_id, token, **values, status=model.DONE, finished_at=utcnow())


def fail(session: Session, kind: str, run_id: int, token: str, message: str) -> bool:
    """End a live run as failed with a message an admin can act on, and commit; False when this token lost it.

    The kind's on_fail hook adds its own writes (it may extend run.error) in the same transaction.
    """
    spec = kind_of(kind)
    run = session.get(spec.model, run_id, populate_existing=True)
    if run is None or run.task_id != token or not is_live(run):
        session.rollback()
        return False
    run.status = run.FAILED
    run.error = message[:MAX_ERROR]
    run.finished_at = utcnow()
    if spec.on_fail is not None:
        spec.on_fail(session, run, message)
    session.commit()
    return True


@huey.task()
def run_step(kind: str, run_id: int, token: str) -> None:
    """Queue task: carry out one recorded run of a registered kind under its claim token."""
    with app_context():
        kind_of(kind).step(db.session, run_id, token)
