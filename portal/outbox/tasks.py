"""Queue tasks of the outbox worker (every channel alike); imported by portal.worker for the workers.

portal.wiring registers queue_delivery as the outbox's dispatcher.

deliver_message runs for each message right after the transaction that wrote it commits, and again
at each retry time. sweep_outbox runs every minute and queues whatever is due but was not queued
(a crash between commit and enqueue) or whose worker died mid-delivery (its lease ran out).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

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


@huey.task()
def deliver_messages(message_ids: Sequence[int], event_uuids: Sequence[str] = ()) -> None:
    """Queue task: what one transaction wrote (messages, and events to fan out to their subscriptions).

    Fans the events out here (their webhook messages are written now, after the command's commit, so
    the command does not pay for them), queues all messages but one for any worker and delivers that
    one here: the committing request pays for one enqueue however many subscriptions there are.
    """
    ids = list(message_ids)
    if event_uuids:
        with app_context():
            for event_uuid in event_uuids:
                try:
                    ids += outbox.fan_out(db.session, event_uuid)
                except Exception:  # a database hiccup: the event stays pending and the sweep fans it out
                    db.session.rollback()
                    log.exception("fanning out event %s failed", event_uuid)
    if not ids:
        return
    first, *rest = ids
    for message_id in rest:
        deliver_message(message_id)
    deliver_message.call_local(first)


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
