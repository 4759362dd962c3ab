"""The outbox worker shared by SMS and webhooks: claims, leases, the sweep, and a worker killed mid-delivery."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from stubs.huey_worker import Consumer, queue_file, wait_for  # noqa: F401
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.db_types import utcnow
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox import tasks
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from portal.packages.states import State
from portal.webhooks import events, service
from portal.webhooks.models import DeliveryAttempt


@pytest.fixture
def app_config():
    """The receivers listen on loopback."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


def subscribe(receiver, manager, event_type="*"):
    """Subscribe a receiver that verifies signatures."""
    subscription, secret = service.create_subscription(
        db.session, event_type=event_type, target_url=receiver.target_url, retry_countdown_config=None,
        additional_headers=None, user_id=manager.id)
    receiver.secret = secret
    return subscription


def message_now(message_id: int) -> OutboxMessage:
    """The message as the database has it now (other processes' commits included)."""
    db.session.rollback()
    return db.session.get(OutboxMessage, message_id, populate_existing=True)


def test_only_one_worker_can_hold_a_message_until_its_lease_runs_out(app, make):
    package = make.package()
    message = outbox.enqueue_sms(db.session, to="+905551112233", body="hello", package_id=package.id)
    db.session.commit()
    now = utcnow()

    lease = outbox.claim(db.session, message.id, now=now)

    assert lease == now + timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    assert outbox.claim(db.session, message.id, now=now + timedelta(seconds=1)) is None
    assert message_now(message.id).status == "sending"
    # The first worker died; once its lease has run out another worker takes the message over...
    later = outbox.claim(db.session, message.id, now=lease + timedelta(seconds=1))
    assert later is not None and message_now(message.id).attempts == 2
    # ...and the first worker, should it come back, can no longer record an outcome.
    assert outbox.finish(db.session, message.id, lease, status="sent") is False
    db.session.commit()
    assert message_now(message.id).status == "sending"


def test_the_sweep_picks_up_overdue_messages_and_lapsed_leases_only(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.updated")
    recorded = [events.record_event(db.session, "stock_location.updated", {"id": n}) for n in range(6)]
    db.session.commit()  # written but not queued: as if the process died between commit and enqueue
    ids = [i for event in recorded for i in outbox.fan_out(db.session, event.uuid)]
    assert len(ids) == 6
    now = utcnow()
    shapes = [
        dict(status="pending", next_attempt_at=now),  # fresh: its own task is on the way
        dict(status="pending", next_attempt_at=now - timedelta(minutes=2)),  # overdue: its task was lost
        dict(status="sending", lease_until=now - timedelta(seconds=5)),  # its worker died
        dict(status="sending", lease_until=now + timedelta(seconds=50)),  # being delivered right now
        dict(status="failed", next_attempt_at=now + timedelta(minutes=5)),  # waiting for its retry
        dict(status="sent"),
    ]
    for message_id, values in zip(ids, shapes, strict=True):
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))
    db.session.commit()

    assert outbox.due_message_ids(db.session) == [ids[1], ids[2]]

    assert tasks.sweep() == [ids[1], ids[2]]

    assert sorted(r.json["payload"]["id"] for r in receiver.requests) == [1, 2]
    assert [message_now(i).status for i in ids] == ["pending", "sent", "sent", "sending", "failed", "sent"]


def test_events_left_pending_are_fanned_out_once_by_the_sweep_after_the_grace_period(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "*")
    subscribe(receivers("ok"), manager, "stock_location.updated")
    lost = events.record_event(db.session, "stock_location.updated", {"id": 1})
    fresh = events.record_event(db.session, "stock_location.created", {"id": 2})
    db.session.commit()  # the process died before it queued the fan-out
    db.session.execute(update(OutboxMessage).where(OutboxMessage.uuid == lost.uuid)
                       .values(next_attempt_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()
    assert outbox.due_event_uuids(db.session) == [lost.uuid]

    queued = tasks.sweep()

    assert len(queued) == 2 and sorted(r.json["payload"]["id"] for r in receiver.requests) == [1]
    deliveries = db.session.execute(select(OutboxMessage.event_uuid, OutboxMessage.status)
                                    .where(OutboxMessage.kind == "webhook")).all()
    assert sorted(tuple(d) for d in deliveries) == [(lost.uuid, "sent"), (lost.uuid, "sent")]
    assert message_now(queued[0]).event_uuid == lost.uuid
    assert outbox.fan_out(db.session, lost.uuid) == []  # once only, whoever comes second
    states = dict(db.session.execute(select(OutboxMessage.uuid, OutboxMessage.status)
                                     .where(OutboxMessage.kind == "event")).all())
    assert states == {lost.uuid: "sent", fresh.uuid: "pending"}  # the fresh one's own task is on the way


def test_messages_of_a_rolled_back_transaction_are_never_sent(make, manager, receivers, sms):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.updated")
    package = make.package()
    outbox.enqueue_sms(db.session, to="+905551112233", body="never", package_id=package.id)
    events.record_event(db.session, "stock_location.updated", {"id": 1})
    db.session.rollback()

    outbox.deliver_after_commit(db.session)

    assert receiver.requests == [] and sms.outbox == []


def test_an_sms_the_provider_keeps_refusing_is_retried_then_dead_lettered_and_staff_can_still_retry(app, make, sms):
    app.config["OUTBOX_SMS_MAX_ATTEMPTS"] = 2
    sms.fail_with = "Provider is down (test)"
    package = make.package(state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "sms"))
    assert (message.status, message.attempts) == ("failed", 1)
    assert 29 <= (message.next_attempt_at - utcnow()).total_seconds() <= 31  # 15 s doubling

    outcome = outbox.process_message(db.session, message.id, now=message.next_attempt_at)

    assert outcome.status == "dead" and message_now(message.id).attempts == 2
    assert message_now(message.id).body_encrypted  # kept for the staff's Retry
    sms.fail_with = None
    retried = outbox.retry_sms(db.session, message.id)
    assert retried.status == "sent" and retried.body_encrypted is None
    assert len(sms.outbox) == 1 and sms.outbox[0].to == package.customer.phone


# The worker delivers to local receivers, slowly enough to be killed mid-delivery.
WORKER_ENV = {"SMS_PROVIDER": "console", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOK_TIMEOUT_SECONDS": "30",
              "OUTBOX_LEASE_SECONDS": "60"}

# --- A real worker killed mid-delivery -------------------------------------------------------------------


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_next_one_redelivers_with_the_same_id(
        app, make, manager, receivers, queue_file, tmp_path):
    receiver = receivers("ok")
    receiver.answers = ["slow"]  # the first request hangs until the worker is killed
    receiver.slow_seconds = 60
    subscribe(receiver, manager, "stock_location.updated")
    log_path = str(tmp_path / "consumer.log")
    first = Consumer(app, queue_file, log_path, **WORKER_ENV)
    try:
        events.record_event(db.session, "stock_location.updated", {"id": 42, "name": "Kadıköy"})
        db.session.commit()
        outbox.deliver_after_commit(db.session)  # onto the real queue, for the consumer
        receiver.wait_for(1, 60)  # the worker has fanned it out, sent it and waits for the answer...
        db.session.commit()  # a fresh read: the worker wrote the delivery after our commit
        message_id = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.kind == "webhook"))
    finally:
        first.kill()  # ...when it dies

    killed = message_now(message_id)
    assert (killed.status, killed.attempts) == ("sending", 1) and killed.lease_until > utcnow()
    assert db.session.scalar(select(DeliveryAttempt.id)) is None  # it never got to record its attempt
    # Its claim lasts OUTBOX_LEASE_SECONDS; move it back here rather than wait a minute.
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                       .values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    second = Consumer(app, queue_file, log_path, **WORKER_ENV)
    try:
        wait_for(lambda: message_now(message_id).status == "sent", 60, "the new worker to deliver the message")
    finally:
        second.kill()

    delivered = message_now(message_id)
    assert delivered.attempts == 2
    requests = receiver.requests
    assert len(requests) == 2, Path(log_path).read_text()
    assert {r.webhook_id for r in requests} == {delivered.uuid}
    assert all(r.verified for r in requests)
    assert requests[1].json == {"event": {"type": "stock_location.updated", "uuid": delivered.event_uuid},
                                "payload": {"id": 42, "name": "Kadıköy"}}
    [attempt] = db.session.scalars(select(DeliveryAttempt))
    assert attempt.succeeded and attempt.attempt == 2


@pytest.fixture
def unwired():
    """The outbox as a process that never ran portal.wiring.wire(); wired again afterwards."""
    saved = outbox.Channels(dict(outbox.CHANNELS.senders), outbox.CHANNELS.recipients, outbox.CHANNELS.dispatcher)
    outbox.CHANNELS.senders.clear()
    outbox.CHANNELS.recipients = outbox.CHANNELS.dispatcher = None
    yield outbox.CHANNELS
    outbox.CHANNELS.senders.update(saved.senders)
    outbox.CHANNELS.recipients, outbox.CHANNELS.dispatcher = saved.recipients, saved.dispatcher


def test_the_outbox_sends_through_the_channels_registered_at_start_up(app, make, unwired):
    package = make.package()
    message = outbox.enqueue_sms(db.session, to="+905551112233", body="hello", package_id=package.id)
    db.session.commit()

    with pytest.raises(outbox.NotWired, match="kind 'sms'"):
        outbox.process_message(db.session, message.id)
    with pytest.raises(outbox.NotWired, match="dispatcher"):
        outbox.deliver_after_commit(db.session, [message.id])

    sent = []

    def sender(session, claimed, lease):
        """A channel that records what it was given and marks it sent."""
        sent.append(claimed.payload["to"])
        outbox.finish(session, claimed.id, lease, status=OutboxMessage.SENT, sent_at=utcnow())
        session.commit()
        return outbox.Outcome(claimed.id, OutboxMessage.SENT)

    outbox.register_sender(outbox.SMS, sender)
    with pytest.raises(outbox.NotWired, match="kind 'webhook'"):
        outbox.process_message(db.session, message.id)
    outbox.register_sender(outbox.WEBHOOK, sender)
    outbox.register_dispatcher(lambda ids, events: [outbox.process_message(db.session, i) for i in ids])
    outbox.deliver_after_commit(db.session, [message.id])

    assert sent == ["+905551112233"]
    assert message_now(message.id).status == OutboxMessage.SENT
    with pytest.raises(ValueError, match="not a deliverable"):
        outbox.register_sender(outbox.EVENT, sender)


def test_an_event_is_fanned_out_to_the_recipients_the_registered_lookup_names(app, manager, receivers, unwired):
    subscription_id = subscribe(receivers(), manager, "package.created").id
    [recorded] = outbox.write_events(db.session, [outbox.NewEvent("package.created", {"id": 1},
                                                                  subscription_ids=[subscription_id])])
    db.session.commit()

    with pytest.raises(outbox.NotWired, match="recipients"):
        outbox.fan_out(db.session, recorded.uuid)
    asked = []

    def recipients(session, event_type, happened_at):
        """The lookup the webhooks register, reduced to its answer."""
        asked.append(event_type)
        return [subscription_id]

    outbox.register_recipients(recipients)
    [message_id] = outbox.fan_out(db.session, recorded.uuid)

    assert asked == ["package.created"]
    message = message_now(message_id)
    assert (message.kind, message.subscription_id, message.event_uuid) == ("webhook", subscription_id, recorded.uuid)
    assert message_now(db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.uuid == recorded.uuid))).status \
        == OutboxMessage.SENT
