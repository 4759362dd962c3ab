"""Webhook deliveries that go wrong in unexpected ways (issue 11's abuse cases): nothing stays "sending" for ever,
headers HTTP cannot carry are refused when saved, and an echoed pickup code is never stored in the delivery log."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select, text
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.errors import ValidationFailed
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from portal.packages.states import State
from portal.settings import service as settings
from portal.webhooks import events, service
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription


@pytest.fixture
def app_config():
    """The receivers listen on loopback."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


def subscribe(receiver, manager, event_type="*", retry=None, headers=None):
    """Subscribe a receiver."""
    subscription, secret = service.create_subscription(
        db.session, event_type=event_type, target_url=receiver.target_url, retry_countdown_config=retry,
        additional_headers=headers, user_id=manager.id)
    receiver.secret = secret
    return subscription


def messages() -> list[OutboxMessage]:
    """The webhook messages as stored now, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")
                                   .order_by(OutboxMessage.id)))


def record_event():
    """Record an event, commit, and queue its deliveries (the queue runs inline)."""
    events.record_event(db.session, "stock_location.updated", {"id": 7, "name": "Kadıköy"})
    db.session.commit()
    outbox.deliver_after_commit(db.session)


@pytest.mark.parametrize("value", ["İstanbul", "Kadıköy", "tab\x07bell", "emoji 🙂"])
def test_a_header_value_http_cannot_carry_is_refused_when_saved(make, manager, receivers, value):
    receiver = receivers("ok")
    with pytest.raises(ValidationFailed) as refused:
        subscribe(receiver, manager, headers={"X-City": value})
    assert refused.value.field == "additional_headers"
    assert "cannot carry" in refused.value.message
    assert db.session.scalar(select(WebhookSubscription)) is None


def test_a_stored_header_that_crashes_the_send_is_a_logged_failed_attempt_then_dead_lettered(
        make, manager, receivers):
    receiver = receivers("ok")
    subscription = subscribe(receiver, manager, retry={"type": "fixed", "interval": 30, "max_attempts": 2})
    # Saved before values were checked: the HTTP client cannot encode it.
    db.session.execute(text("UPDATE webhook_subscriptions SET additional_headers = :h WHERE id = :id"),
                       {"h": json.dumps({"X-City": "İstanbul"}), "id": subscription.id})
    db.session.commit()

    record_event()

    [message] = messages()
    assert message.status == OutboxMessage.FAILED  # not left "sending"
    [attempt] = db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id))
    assert not attempt.succeeded and "failed unexpectedly" in attempt.error
    for _ in range(5):
        if message.status == OutboxMessage.DEAD:
            break
        outbox.process_message(db.session, message.id, now=message.next_attempt_at)
        [message] = messages()
    assert message.status == OutboxMessage.DEAD
    assert receiver.requests == []


def test_a_sender_that_raises_leaves_a_failed_message_that_dies_after_its_attempts(make, manager, receivers,
                                                                                   monkeypatch):
    receiver = receivers("ok")
    subscribe(receiver, manager)

    def broken(session, message, lease):
        raise RuntimeError("a bug in the sender")

    # Both ways a webhook goes out: in a batch (the worker's drain, first) and alone (each retry below).
    monkeypatch.setitem(outbox.CHANNELS.batch_senders, "webhook", broken)
    monkeypatch.setitem(outbox.CHANNELS.senders, "webhook", broken)
    record_event()

    [message] = messages()
    assert message.status == OutboxMessage.FAILED and "a bug in the sender" in message.last_error
    while message.status != OutboxMessage.DEAD:
        assert message.attempts <= outbox.UNEXPECTED_MAX_ATTEMPTS
        outbox.process_message(db.session, message.id, now=message.next_attempt_at)
        [message] = messages()
    assert message.attempts == outbox.UNEXPECTED_MAX_ATTEMPTS


def test_an_echoed_pickup_code_is_not_stored_in_the_delivery_log(make, manager, receivers):
    settings.set_value(db.session, settings.PICKUP_CODE_DELIVERY, "extension_app", user_id=manager.id)
    receiver = receivers("echo")
    subscribe(receiver, manager, "package.ready_for_customer_pickup")
    package = make.package(state=State.PACKED)

    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)

    [request] = receiver.wait_for(1)
    code = request.json["payload"]["pickup_code"]
    assert re.fullmatch(r"\d{6}", code)
    [attempt] = db.session.scalars(select(DeliveryAttempt))
    assert attempt.succeeded and code not in attempt.response_excerpt
    assert "not kept" in attempt.response_excerpt
    everything = json.dumps([list(r) for r in db.session.execute(text("SELECT * FROM webhook_delivery_attempts"))],
                            default=str)
    assert code not in everything
