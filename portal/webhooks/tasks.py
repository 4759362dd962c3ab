"""Queue tasks of the outbox worker (SMS and webhooks alike); imported by portal.jobs.tasks for the workers.

deliver_message runs for each message right after the transaction that wrote it commits, and again
at each retry time. sweep_outbox runs every minute and queues whatever is due but was not queued
(a crash between commit and enqueue) or whose worker died mid-delivery (its lease ran out).
"""
from __future__ import annotations

import logging

from huey import crontab

from portal.extensions import db
from portal.jobs.queue import app_context, huey
from portal.outbox import service as outbox

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


@huey.task()
def deliver_messages(message_ids: list[int]) -> None:
    """Queue task: the messages one transaction wrote. Queue all but the first for any worker, deliver the first.

    The committing request pays for one enqueue however many subscriptions an event fans out to.
    """
    first, *rest = message_ids
    for message_id in rest:
        deliver_message(message_id)
    deliver_message.call_local(first)


def queue_delivery(message_ids: list[int]) -> None:
    """Queue the delivery of messages a transaction committed: one task, whatever their number."""
    if len(message_ids) == 1:
        deliver_message(message_ids[0])
    elif message_ids:
        deliver_messages(list(message_ids))


def sweep(limit: int = 500) -> list[int]:
    """Queue every message that is overdue or whose lease ran out; returns their ids."""
    with app_context():
        ids = outbox.due_message_ids(db.session, limit=limit)
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
