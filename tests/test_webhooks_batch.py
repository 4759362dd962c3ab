"""Webhooks delivered in batches (the worker's drain): one claim for many due messages, sent at once, every attempt
logged, one lease for the batch that runs out like any other when a worker dies mid-batch.

Receivers run in the test (tests/stubs/webhook_receivers.py) on 127.0.0.1; the job queue runs inline.
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.db_types import utcnow
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox import tasks
from portal.outbox.models import OutboxMessage
from portal.webhooks import delivery, events, service
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription


@pytest.fixture
def app_config():
    """The receivers listen on loopback."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


def subscribe(receiver, manager, event_type="*", retry=None):
    """Subscribe a receiver that verifies signatures."""
    subscription, secret = service.create_subscription(
        db.session, event_type=event_type, target_url=receiver.target_url, retry_countdown_config=retry,
        additional_headers=None, user_id=manager.id)
    receiver.secret = secret
    return subscription


def webhook_rows() -> list[OutboxMessage]:
    """The webhook messages as stored now, oldest first."""
    db.session.rollback()
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")
                                   .order_by(OutboxMessage.id)))


def write_events(count: int, event_type: str = "stock_location.updated") -> list[str]:
    """Record events and commit them without queueing anything (as if the worker were behind)."""
    uuids = [events.record_event(db.session, event_type, {"id": n}).uuid for n in range(count)]
    db.session.commit()
    db.session.info.clear()
    return uuids


def test_events_are_fanned_out_in_one_batch_once_and_only_to_subscriptions_that_existed(make, manager, receivers):
    early = subscribe(receivers("ok"), manager, "stock_location.updated")
    first, second = write_events(2)
    late = subscribe(receivers("ok"), manager, "*")  # made while the events waited for their fan-out

    assert outbox.fan_out_due(db.session, limit=10) == 2
    assert outbox.fan_out_due(db.session, limit=10) == 0  # once only, whoever comes second
    assert outbox.fan_out(db.session, first) == []

    rows = webhook_rows()
    assert sorted((row.event_uuid, row.subscription_id) for row in rows) == sorted(
        [(first, early.id), (second, early.id)])
    assert late.id not in {row.subscription_id for row in rows}
    pending_events = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                       .where(OutboxMessage.kind == "event", OutboxMessage.status == "pending"))
    assert pending_events == 0


def test_a_batch_claim_takes_each_due_message_once_under_one_lease_and_a_lapsed_batch_is_taken_again(
        app, make, manager, receivers):
    subscribe(receivers("ok"), manager, "stock_location.updated")
    write_events(5)
    outbox.fan_out_due(db.session, limit=10)
    ids = [row.id for row in webhook_rows()]
    now = utcnow()
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == ids[3])
                       .values(status="failed", next_attempt_at=now + timedelta(minutes=5)))  # waits for its retry
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == ids[4])
                       .values(status="sending", lease_until=now + timedelta(seconds=30)))  # another worker has it
    db.session.commit()

    lease, first = outbox.claim_batch(db.session, "webhook", limit=2, now=now)
    lease_2, second = outbox.claim_batch(db.session, "webhook", limit=2, now=now)
    _, third = outbox.claim_batch(db.session, "webhook", limit=2, now=now)

    assert lease == lease_2 == now + timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    assert sorted(c.id for c in first + second) == ids[:3] and len(first) == len(second) + 1 == 2 and third == []
    assert all(c.attempts == 1 and c.kind == "webhook" and c.payload["event"]["type"] == "stock_location.updated"
               for c in first + second)
    assert {row.id: (row.status, row.lease_until) for row in webhook_rows()}[first[0].id] == ("sending", lease)
    # The worker that holds them dies; once the lease has run out the next drain takes the same rows (same ids).
    again_lease, again = outbox.claim_batch(db.session, "webhook", limit=10, now=lease + timedelta(seconds=1))
    assert sorted(c.id for c in again) == ids[:3] + [ids[4]]
    retaken = {c.id: c for c in again}
    assert all(retaken[c.id].uuid == c.uuid and retaken[c.id].attempts == 2 for c in first + second)
    # The dead worker, should it come back, can no longer record an outcome for them.
    assert outbox.finish(db.session, ids[0], lease, status="sent") is False
    db.session.commit()
    assert outbox.claim_batch(db.session, "webhook", limit=10, ids=[ids[3]], now=again_lease)[1] == []


def test_a_drain_sends_a_batch_at_once_and_logs_every_attempt_with_its_own_outcome(app, make, manager, receivers):
    slow = [receivers("slow") for _ in range(4)]
    for receiver in slow:
        receiver.slow_seconds = 1.0
    subs = [subscribe(receiver, manager, "stock_location.updated") for receiver in slow]
    failing, gone = receivers("500"), receivers("410")
    failing_sub = subscribe(failing, manager, "stock_location.updated", retry={"type": "fixed", "interval": 60})
    gone_sub = subscribe(gone, manager, "stock_location.updated")
    [event_uuid] = write_events(1)

    started = time.monotonic()
    tasks.deliver_messages([], [event_uuid])
    took = time.monotonic() - started

    assert took < 3.5, f"4 answers of 1 s each took {took:.1f} s: the batch was not sent at once"
    assert all(len(receiver.requests) == 1 and receiver.requests[0].verified for receiver in slow)
    by_sub = {row.subscription_id: row for row in webhook_rows()}
    assert {by_sub[s.id].status for s in subs} == {"sent"}
    assert all(by_sub[s.id].lease_until is None and by_sub[s.id].attempts == 1 for s in subs)
    assert by_sub[failing_sub.id].status == "failed" and "500" in by_sub[failing_sub.id].last_error
    assert 55 <= (by_sub[failing_sub.id].next_attempt_at - utcnow()).total_seconds() <= 61
    assert by_sub[gone_sub.id].status == "dead"
    assert db.session.get(WebhookSubscription, gone_sub.id).is_active is False
    attempts = list(db.session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))
    assert len(attempts) == 6
    outcome = {a.subscription_id: (a.succeeded, a.status_code, a.attempt) for a in attempts}
    assert outcome == {**{s.id: (True, 200, 1) for s in subs}, failing_sub.id: (False, 500, 1),
                       gone_sub.id: (False, 410, 1)}
    assert all(a.duration_ms >= 900 for a in attempts if a.subscription_id in {s.id for s in subs})


def test_a_batch_whose_sender_breaks_is_failed_attempts_for_every_message_of_it(make, manager, receivers,
                                                                                monkeypatch):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.updated")
    write_events(3)

    def broken(session, batch, lease):
        raise RuntimeError("a bug in the batch sender")

    monkeypatch.setitem(outbox.CHANNELS.batch_senders, "webhook", broken)
    tasks.drain_outbox()

    rows = webhook_rows()
    assert len(rows) == 3 and {row.status for row in rows} == {"failed"}
    assert all("a bug in the batch sender" in row.last_error and row.lease_until is None for row in rows)
    assert receiver.requests == []


def test_a_task_that_finds_the_drains_busy_leaves_them_its_work_and_they_look_again():
    drainers = tasks.Drainers()
    assert drainers.enter(limit=1) is True
    seen = drainers.seen()
    assert drainers.enter(limit=1) is False  # a second task: the running drain must take its work
    assert drainers.leave(seen) is False  # so the drain makes one more pass...
    assert drainers.leave(drainers.seen()) is True  # ...and stops after a pass nobody asked to repeat
    assert drainers.active == 0 and drainers.enter(limit=1) is True


def test_a_busy_worker_leaves_the_new_event_to_its_running_drain(app, make, manager, receivers, monkeypatch):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.updated")
    [event_uuid] = write_events(1)
    monkeypatch.setattr(tasks, "DRAINERS", tasks.Drainers())
    tasks.DRAINERS.active = app.config.get("OUTBOX_DRAINERS", tasks.DEFAULT_DRAINERS)  # every drain slot of this process is busy

    tasks.deliver_messages([], [event_uuid])

    assert receiver.requests == [] and webhook_rows() == []  # nothing done by this task...
    seen_before = 0
    assert tasks.DRAINERS.leave(seen_before) is False  # ...but a running drain is told to look again
    tasks.DRAINERS.active = 0
    tasks.drain_outbox()  # that pass (here: the next drain)
    assert len(receiver.wait_for(1)) == 1 and [row.status for row in webhook_rows()] == ["sent"]


def test_the_sending_pool_keeps_one_connection_per_thread_and_receiver(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.updated")
    write_events(3)
    outbox.drain(db.session, batch=3, seconds=1)
    write_events(3)
    outbox.drain(db.session, batch=3, seconds=1)

    assert len(receiver.requests) == 6
    pool = delivery._pool(outbox.batch_size())
    assert pool is delivery._pool(outbox.batch_size())  # the same pool (and its sessions) from batch to batch
