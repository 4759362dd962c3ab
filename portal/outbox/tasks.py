"""Queue tasks of the outbox worker (every channel alike); imported by portal.worker for the workers.

portal.wiring registers queue_delivery as the outbox's dispatcher.

deliver_messages runs after each transaction that wrote messages or events: it drains the outbox (fans
out pending events, delivers due webhooks a batch at a time: one claim, concurrent sends, one
transaction for the outcomes), at most OUTBOX_DRAINERS threads per worker process at once; a task that
finds them all busy leaves its work to them. deliver_message delivers one message (an SMS, a test event,
a redelivery) right after its commit, and any message again at its retry time. sweep_outbox runs every
minute and queues whatever is due but was not queued (a crash between commit and enqueue) or whose
worker died mid-delivery (its lease ran out).

Worker setup for webhook throughput: thread workers (`huey_consumer portal.worker.huey -k thread -w 8`, as
scripts/run-scale starts them); each drain sends its batch on its own pool of OUTBOX_BATCH_SIZE threads, each
thread keeping a keep-alive connection to each receiver.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from flask import current_app
from huey import crontab

from portal.extensions import db
from portal.outbox import service as outbox
from portal.queue import app_context, huey

log = logging.getLogger(__name__)


@huey.task()
def deliver_message(message_id: int) -> None:
    """Queue task: claim and deliver one outbox message; schedule its retry when it failed.

    Returns nothing, so the queue stores no result (each stored result is one more write to it).
    """
    with app_context():
        try:
            outcome = outbox.process_message(db.session, message_id)
        except Exception:  # a bug or a database hiccup: the lease runs out and the sweep tries again
            db.session.rollback()
            log.exception("delivering outbox message %s failed", message_id)
            return
    if outcome is not None and outcome.retry_in is not None:
        deliver_message.schedule((message_id,), delay=outcome.retry_in)


# How long one task drains the outbox before it hands what is left to a fresh task (other tasks get a turn).
DRAIN_SECONDS = 5.0
# How many threads of a worker process drain at once (OUTBOX_DRAINERS); the other threads run other tasks.
DEFAULT_DRAINERS = 2
# When work was announced during a pass that found less than a batch, the drain waits this long before the next
# pass, so that the commits arriving meanwhile go out together (a batch) rather than one pass each.
GATHER_SECONDS = 0.02


class Drainers:
    """How many threads of this process drain the outbox now, at most `limit` (OUTBOX_DRAINERS, default 2).

    A task that finds the limit reached leaves its events and messages to the running drains and only asks them
    to look once more (request): a drain stops only after a pass that began after the last request, so nothing
    committed before a task ran waits for the sweep. Most tasks of a busy worker cost one enqueue and no query.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.requests = 0

    def enter(self, limit: int) -> bool:
        """Become a drain (True), or, at the limit, leave a request to the running ones (False)."""
        with self.lock:
            self.requests += 1
            if self.active >= max(1, limit):
                return False
            self.active += 1
            return True

    def seen(self) -> int:
        """The request count at the start of a pass."""
        with self.lock:
            return self.requests

    def leave(self, seen: int, force: bool = False) -> bool:
        """Stop draining (True) unless a task asked for another pass since `seen` (then go on: False)."""
        with self.lock:
            if self.requests != seen and not force:
                return False
            self.active -= 1
            return True


DRAINERS = Drainers()


def _call_for_help() -> None:
    """A drain found a full batch (a backlog): queue one more drain, which another thread or worker takes if it may
    drain (it calls for help in turn once it finds a full batch too); one that may not costs one enqueue."""
    try:
        drain_outbox()
    except Exception:  # the queue is down: this drain goes on alone
        log.warning("could not queue a helping drain", exc_info=True)


def _schedule_retries(outcomes: Sequence[outbox.Outcome]) -> None:
    """Queue each failed message's next attempt at its retry time."""
    for outcome in outcomes:
        if outcome.retry_in is not None:
            deliver_message.schedule((outcome.message_id,), delay=outcome.retry_in)


def _drain(message_ids: Sequence[int] = ()) -> list[int]:
    """Fan out pending events and deliver due messages in batches (outbox.drain) while tasks keep asking; returns
    the given ids no batch took (they are delivered alone). When this process already drains as much as it may,
    the running drains take the work and the ids come back untouched."""
    ids = list(message_ids)
    with app_context():
        if not DRAINERS.enter(int(current_app.config.get("OUTBOX_DRAINERS", DEFAULT_DRAINERS))):
            return ids
        taken: set[int] = set()
        started = time.monotonic()
        more = False
        try:
            while True:
                seen = DRAINERS.seen()
                done = outbox.drain(db.session, batch=outbox.batch_size(), seconds=DRAIN_SECONDS,
                                    ids=[i for i in ids if i not in taken], on_backlog=_call_for_help)
                taken.update(claimed.id for claimed in done.claimed)
                _schedule_retries(done.outcomes)
                more = done.more or time.monotonic() - started >= DRAIN_SECONDS
                if DRAINERS.leave(seen, force=more):
                    break
                time.sleep(GATHER_SECONDS)
        except Exception:  # a database hiccup: leases run out and pending events stay; the sweep catches up
            db.session.rollback()
            DRAINERS.leave(0, force=True)
            log.exception("draining the outbox failed")
            return [i for i in ids if i not in taken]
    if more:
        drain_outbox()  # a fresh task goes on, so other tasks get this thread in between
    return [i for i in ids if i not in taken]


@huey.task()
def drain_outbox() -> None:
    """Queue task: go on delivering due messages in batches (queued by a drain that ran out of time)."""
    _drain()


@huey.task()
def deliver_messages(message_ids: Sequence[int], event_uuids: Sequence[str] = ()) -> None:
    """Queue task: what one transaction wrote (messages, and events to fan out to their subscriptions).

    Drains the outbox: fans out the pending events (its own among them) and delivers the due messages of the
    kinds that have a batch sender (webhooks), a batch at a time, claimed with one UPDATE and recorded with one
    transaction each, so a worker that falls behind catches up in batches rather than one message per task. The
    messages it was given that have no batch sender (SMS) are queued first, one task each, for any worker, so
    they never wait behind a batch. The committing request pays for one enqueue however many messages there are.
    """
    alone: list[int] = []
    if message_ids:
        with app_context():
            alone = outbox.ids_sent_alone(db.session, message_ids)
            db.session.commit()  # end the read transaction
    # An SMS (a customer's pickup code) never waits behind a batch of webhooks to a slow receiver: it is queued
    # first, for any free worker thread, and the drain delivers the rest.
    for message_id in alone:
        deliver_message(message_id)
    skip = set(alone)
    batched = [i for i in message_ids if i not in skip]
    rest = _drain(batched) if (event_uuids or batched) else []
    for message_id in rest:
        deliver_message(message_id)


def queue_delivery(message_ids: Sequence[int], event_uuids: Sequence[str] = ()) -> None:
    """Queue the delivery of what a transaction committed: one task, whatever the number of messages."""
    if len(message_ids) == 1 and not event_uuids:
        deliver_message(message_ids[0])
    elif message_ids or event_uuids:
        deliver_messages(list(message_ids), list(event_uuids))


def sweep(limit: int = 500) -> list[int]:
    """Fan out events left pending, then queue every message that is overdue or whose lease ran out; their ids."""
    with app_context():
        fanned = []
        for event_uuid in outbox.due_event_uuids(db.session, limit=limit):
            fanned += outbox.fan_out(db.session, event_uuid)
        ids = list(dict.fromkeys(fanned + outbox.due_message_ids(db.session, limit=limit)))
        db.session.commit()  # end the read transaction before the deliveries start
    for message_id in ids:
        deliver_message(message_id)
    return ids


@huey.periodic_task(crontab(minute="*"))
def sweep_outbox() -> None:
    """Every minute: pick up outbox messages left behind by a crash or a lost task."""
    try:
        ids = sweep()
    except Exception:  # a database hiccup must not stop next minute's sweep
        log.exception("outbox sweep failed")
        return
    if ids:
        log.info("outbox sweep queued %s message(s)", len(ids))


@huey.on_startup()
def sweep_on_startup() -> None:
    """When a worker starts (say, after a crash), queue what is overdue now rather than at the next minute."""
    try:
        sweep()
    except Exception:  # the database may not be up yet; the every-minute sweep follows
        log.exception("outbox sweep at worker start failed")
