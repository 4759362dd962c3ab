"""Webhook delivery, end to end: a brand manager subscribes a real HTTP receiver and package commands reach it.

Receivers run in the test (tests/stubs/webhook_receivers.py) on 127.0.0.1, so these tests allow
private targets; the SSRF rules themselves are in test_webhooks_ssrf.py. The job queue runs inline.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.errors import CommandRejected, InvalidOtp, NotFound, ValidationFailed
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from portal.packages.models import Package
from portal.packages.states import State
from portal.settings import service as settings
from portal.settings.models import SettingChange
from portal.webhooks import events, service
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription


@pytest.fixture
def app_config():
    """The receivers listen on loopback."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


def subscribe(receiver, manager, event_type="*", retry=None, headers=None):
    """Subscribe a receiver; the receiver learns the secret so it can verify what it gets."""
    subscription, secret = service.create_subscription(
        db.session, event_type=event_type, target_url=receiver.target_url, retry_countdown_config=retry,
        additional_headers=headers, user_id=manager.id)
    receiver.secret = secret
    return subscription, secret


def run(package, slug, params=None):
    """Run a package command as the system."""
    return commands.run_command(db.session, package.id, slug=slug, params=params or {}, user_id=None, store_ids=None)


def webhook_messages(subscription=None) -> list[OutboxMessage]:
    """Webhook rows (of one subscription), oldest first, as the database has them now."""
    db.session.expire_all()
    stmt = select(OutboxMessage).where(OutboxMessage.kind == "webhook").order_by(OutboxMessage.id)
    if subscription is not None:
        stmt = stmt.where(OutboxMessage.subscription_id == subscription.id)
    return list(db.session.scalars(stmt))


def attempts_of(message) -> list[DeliveryAttempt]:
    """A message's delivery attempts, oldest first."""
    return list(db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id)
                                   .order_by(DeliveryAttempt.id)))


def fresh(subscription) -> WebhookSubscription:
    """The subscription as stored now."""
    db.session.expire_all()
    return db.session.get(WebhookSubscription, subscription.id)


def record(event_type="stock_location.updated", payload=None):
    """Record an event the way the domain does (in a transaction), commit, and queue its deliveries."""
    event = events.record_event(db.session, event_type, payload or {"id": 7, "name": "Kadıköy"})
    db.session.commit()
    outbox.deliver_after_commit(db.session)
    return event


def test_a_packed_package_reaches_the_subscriber_signed_and_in_the_vendor_envelope(make, manager, receivers):
    receiver = receivers("ok")
    subscription, secret = subscribe(receiver, manager, "package.status.packed")
    package = make.package(state=State.WAITING)

    run(package, "complete-packaging-without-shipment")

    [request] = receiver.wait_for(1)
    assert request.verified, request.verify_error  # the receiver's own check with signing.verify
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.webhook_id}.{request.headers['webhook-timestamp']}.".encode() + request.body
    assert request.headers["webhook-signature"] == "v1," + base64.b64encode(
        hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("OMS-Portal-Webhooks/")
    body = request.json
    [event] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "package.status.packed",
                                                             OutboxMessage.kind == "event"))
    assert body["event"] == {"type": "package.status.packed", "uuid": event.uuid}
    assert body["payload"]["number"] == package.number
    assert body["payload"]["status"] == {"code": 500, "value": "packed", "label": "Packed All Items"}
    [message] = webhook_messages(subscription)
    assert request.webhook_id == message.uuid and message.event_uuid == event.uuid
    assert (message.status, message.attempts, message.lease_until) == ("sent", 1, None)
    [attempt] = attempts_of(message)
    assert (attempt.succeeded, attempt.status_code, attempt.attempt) == (True, 200, 1)
    assert attempt.response_excerpt == '{"received": true}' and attempt.duration_ms >= 0


def test_a_wildcard_subscriber_gets_the_transition_and_the_state_event_with_their_own_ids(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "*")
    other = receivers("ok")
    subscribe(other, manager, "package.status.shipped")  # not raised by packing: gets nothing
    package = make.package(state=State.WAITING)

    run(package, "complete-packaging-without-shipment")

    requests = receiver.wait_for(2)
    by_type = {r.json["event"]["type"]: r for r in requests}
    assert set(by_type) == {"package.status.transitioned", "package.status.packed"}
    transitioned = by_type["package.status.transitioned"].json["payload"]
    assert transitioned["previous_status"]["value"] == "waiting"
    assert transitioned["status"]["value"] == "packed"
    assert transitioned["transition"]["slug"] == "complete-packaging-without-shipment"
    assert len({r.webhook_id for r in requests}) == 2
    assert all(r.verified for r in requests)
    assert other.requests == []


def test_additional_headers_are_sent_but_cannot_replace_the_signature_headers(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.updated",
              headers=[{"name": "Authorization", "value": "Bearer brand-token"}, {"name": "X-Brand", "value": "7"}])

    record()

    [request] = receiver.wait_for(1)
    assert request.headers["authorization"] == "Bearer brand-token"
    assert request.headers["x-brand"] == "7"
    for reserved in ("webhook-signature", "Content-Type", "webhook-id"):
        with pytest.raises(ValidationFailed, match="sets .* itself"):
            subscribe(receiver, manager, headers={reserved: "mine"})
    with pytest.raises(ValidationFailed, match="one line"):
        subscribe(receiver, manager, headers={"X-Evil": "a\r\nHost: elsewhere"})


@pytest.mark.parametrize("config, expected", [
    ({"type": "fixed", "interval": 40, "max_attempts": 4}, [40, 40, 40]),
    ({"type": "linear", "interval": 10, "increment": 25, "max_attempts": 4}, [10, 35, 60]),
    ({"type": "exponential", "base": 20, "factor": 3, "max_interval": 100, "max_attempts": 4}, [20, 60, 100]),
    ({"type": "random", "min": 30, "max": 90, "max_attempts": 4}, [(30, 90)] * 3),
])
def test_retries_follow_the_subscriptions_countdown_then_the_delivery_is_dead_lettered(
        make, manager, receivers, config, expected):
    receiver = receivers("500")
    subscription, _ = subscribe(receiver, manager, "stock_location.updated", retry=config)

    record()

    [message] = webhook_messages()
    for attempt_number, delay in enumerate(expected, start=1):
        assert message.status == "failed" and message.attempts == attempt_number
        last = attempts_of(message)[-1]
        waited = (message.next_attempt_at - last.started_at).total_seconds() - last.duration_ms / 1000
        low, high = delay if isinstance(delay, tuple) else (delay, delay)
        assert low - 0.5 <= waited <= high + 0.5, (attempt_number, waited)
        # Not due a second early; due at its time (the worker is driven with a chosen clock).
        early = message.next_attempt_at - timedelta(seconds=1)
        assert outbox.process_message(db.session, message.id, now=early) is None
        outcome = outbox.process_message(db.session, message.id, now=message.next_attempt_at)
        [message] = webhook_messages()
    assert outcome.status == "dead" and outcome.retry_in is None
    assert (message.status, message.attempts) == ("dead", 4)
    assert message.last_error == "The receiver answered 500."
    assert len(receiver.requests) == 4 and len({r.webhook_id for r in receiver.requests}) == 1
    assert [a.attempt for a in attempts_of(message)] == [1, 2, 3, 4]
    assert [a.status_code for a in attempts_of(message)] == [500] * 4
    assert "the receiver broke" in attempts_of(message)[0].response_excerpt
    assert fresh(subscription).consecutive_failures == 1 and fresh(subscription).is_active
    assert [m.id for m in service.dead_messages(db.session, subscription.id)] == [message.id]


def test_a_410_switches_the_subscription_off_at_once_and_says_why(make, manager, receivers):
    receiver = receivers("410")
    subscription, _ = subscribe(receiver, manager, "stock_location.updated")

    record()

    [message] = webhook_messages()
    assert message.status == "dead" and message.attempts == 1
    stored = fresh(subscription)
    assert not stored.is_active and stored.disabled_at is not None
    assert "410 Gone" in stored.disabled_reason
    record()  # a later event is not even queued for it
    assert len(webhook_messages()) == 1 and len(receiver.requests) == 1

    service.set_active(db.session, subscription.id, True, user_id=manager.id)

    stored = fresh(subscription)
    assert stored.is_active and stored.disabled_reason == "" and stored.consecutive_failures == 0


def test_a_subscription_whose_deliveries_keep_dying_is_switched_off_with_a_reason(app, make, manager, receivers):
    app.config["WEBHOOK_DISABLE_AFTER_FAILURES"] = 3
    receiver = receivers("500")
    subscription, _ = subscribe(receiver, manager, "stock_location.updated", retry={"type": "fixed", "interval": 5,
                                                                                     "max_attempts": 1})
    record()
    record()
    assert fresh(subscription).consecutive_failures == 2 and fresh(subscription).is_active
    receiver.mode = "ok"
    record()  # one success resets the count
    assert fresh(subscription).consecutive_failures == 0
    receiver.mode = "500"

    for _ in range(3):
        record()

    stored = fresh(subscription)
    assert not stored.is_active and stored.consecutive_failures == 3
    assert "after 3 deliveries in a row failed every attempt" in stored.disabled_reason
    assert "The receiver answered 500." in stored.disabled_reason
    assert [m.status for m in webhook_messages()] == ["dead", "dead", "sent", "dead", "dead", "dead"]


def test_a_slow_receiver_times_out_and_the_delivery_is_retried(app, make, manager, receivers):
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 0.5
    receiver = receivers("slow")
    receiver.slow_seconds = 5
    subscribe(receiver, manager, "stock_location.updated")

    record()

    [message] = webhook_messages()
    [attempt] = attempts_of(message)
    assert message.status == "failed"
    assert attempt.status_code is None and attempt.error == "No answer within 0.5 s (timeout)."
    assert 500 <= attempt.duration_ms < 3000


def test_redirects_are_not_followed(make, manager, receivers):
    receiver = receivers("redirect")
    subscribe(receiver, manager, "stock_location.updated")

    record()

    [message] = webhook_messages()
    [attempt] = attempts_of(message)
    assert [r.path for r in receiver.requests] == ["/hooks"]  # never /internal, where it pointed
    assert message.status == "failed" and attempt.status_code == 302
    assert "redirects are not followed" in attempt.error and f"{receiver.url}/internal" in attempt.error


def test_send_test_event_reaches_only_that_subscription_once(make, manager, receivers):
    receiver, bystander = receivers("ok"), receivers("ok")
    subscription, _ = subscribe(receiver, manager, "package.status.packed")
    subscribe(bystander, manager, "*")

    message = service.send_test_event(db.session, subscription.id, user_id=manager.id)

    assert message.status == "sent" and message.event_type == "webhook.test"
    [request] = receiver.requests
    assert request.verified and request.json["event"]["type"] == "webhook.test"
    assert request.json["payload"]["subscription"]["id"] == subscription.id
    assert bystander.requests == []
    receiver.mode = "500"
    failed = service.send_test_event(db.session, subscription.id, user_id=manager.id)
    assert failed.status == "dead" and failed.attempts == 1  # a test gets one attempt, no retries
    assert fresh(subscription).consecutive_failures == 0  # and does not count against the subscription
    assert [a.status_code for a in service.delivery_log(db.session, subscription.id)] == [500, 200]


def test_redeliver_sends_the_same_webhook_id_again_and_redeliver_dead_revives_every_dead_one(
        make, manager, receivers):
    receiver = receivers("ok")
    subscription, _ = subscribe(receiver, manager, "stock_location.updated", retry={"type": "fixed", "interval": 5,
                                                                                     "max_attempts": 1})
    record()
    [sent] = webhook_messages()

    again = service.redeliver(db.session, sent.id, user_id=manager.id)

    assert again.status == "sent" and again.uuid == sent.uuid
    assert [r.webhook_id for r in receiver.requests] == [sent.uuid, sent.uuid]

    receiver.mode = "500"
    record()
    record()
    assert len(service.dead_messages(db.session, subscription.id)) == 2
    receiver.mode = "ok"

    assert service.redeliver_dead(db.session, subscription.id, user_id=manager.id) == 2

    assert [m.status for m in webhook_messages()] == ["sent", "sent", "sent"]
    assert service.dead_messages(db.session, subscription.id) == []
    assert len(receiver.requests) == 2 + 2 + 2
    assert service.outbox_summary(db.session) == {"event": {"sent": 3}, "webhook": {"sent": 3}}
    with pytest.raises(NotFound):
        service.redeliver(db.session, 999_999, user_id=manager.id)


def test_subscriptions_are_validated_audited_and_never_store_the_secret_in_clear(make, manager, receivers):
    receiver = receivers("ok")
    subscription, secret = subscribe(receiver, manager, "package.created")

    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret)
    stored = fresh(subscription)
    assert secret not in stored.secret_encrypted and service.secret_of(stored) == secret
    assert stored.retry_countdown_config["type"] == "exponential" and stored.created_by_id == manager.id
    new_secret = service.rotate_secret(db.session, subscription.id, user_id=manager.id)
    assert new_secret != secret and service.secret_of(fresh(subscription)) == new_secret
    service.update_subscription(db.session, subscription.id, user_id=manager.id, event_type="*",
                                retry_countdown_config={"type": "fixed", "interval": 9})
    assert fresh(subscription).event_type == "*"
    assert fresh(subscription).retry_countdown_config == {"type": "fixed", "interval": 9, "max_attempts": 8}
    with pytest.raises(ValidationFailed, match="event type from the catalogue") as refused:
        service.update_subscription(db.session, subscription.id, user_id=manager.id, event_type="package.eaten")
    assert refused.value.field == "event_type"
    with pytest.raises(ValidationFailed):
        service.update_subscription(db.session, subscription.id, user_id=manager.id, secret_encrypted="x")
    service.set_active(db.session, subscription.id, False, user_id=manager.id)
    assert fresh(subscription).disabled_reason == "Switched off by a user."
    service.delete_subscription(db.session, subscription.id, user_id=manager.id)
    with pytest.raises(NotFound):
        service.get_subscription(db.session, subscription.id)

    actions = db.session.scalars(select(SettingChange.action).where(SettingChange.area == "webhook_subscription")
                                 .order_by(SettingChange.id)).all()
    assert actions == ["create", "rotate_secret", "update", "disable", "delete"]
    audit_text = json.dumps([list(r) for r in db.session.execute(text("SELECT * FROM setting_changes"))],
                            default=str)
    assert secret not in audit_text and new_secret not in audit_text


def test_by_default_the_portal_texts_the_code_and_the_ready_event_carries_none(make, manager, receivers, sms):
    receiver = receivers("ok")
    subscribe(receiver, manager, "package.ready_for_customer_pickup")
    package = make.package(state=State.PACKED)

    run(package, "ready-for-customer-pickup")

    [text_message] = sms.outbox
    code = re.search(r" is (\d+)\.", text_message.body).group(1)
    [request] = receiver.requests
    assert request.json["event"]["name"] == "PackageReadyForCustomerPickupWhispererEvent"
    assert "pickup_code" not in request.json["payload"] and code not in request.body.decode()


def test_in_extension_mode_the_event_carries_the_code_encrypted_until_delivered_and_no_sms_is_sent(
        make, manager, receivers, sms):
    settings.set_value(db.session, settings.PICKUP_CODE_DELIVERY, "extension_app", user_id=manager.id)
    receiver = receivers("ok")
    receiver.answers = ["500"]  # the Extension application is down for the first attempt
    subscription, _ = subscribe(receiver, manager, "package.ready_for_customer_pickup",
                                retry={"type": "fixed", "interval": 30})
    package = make.package(state=State.PACKED)

    result = run(package, "ready-for-customer-pickup")

    assert result.to_state == State.READY_FOR_CUSTOMER_PICKUP and "Extension application" in result.message
    assert sms.outbox == [] and db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                                  .where(OutboxMessage.kind == "sms")) == 0
    code = receiver.requests[0].json["payload"]["pickup_code"]
    assert re.fullmatch(r"\d{6}", code)
    [message] = webhook_messages(subscription)
    assert message.status == "failed" and message.body_encrypted
    everything = json.dumps([list(r) for r in db.session.execute(text("SELECT * FROM outbox_messages"))], default=str)
    assert code not in everything  # only inside the Fernet token, never in plaintext

    outbox.process_message(db.session, message.id, now=message.next_attempt_at)

    [message] = webhook_messages(subscription)
    assert message.status == "sent" and message.body_encrypted is None  # wiped once the receiver has it
    assert receiver.requests[1].json["payload"]["pickup_code"] == code and receiver.requests[1].verified
    assert receiver.requests[1].webhook_id == receiver.requests[0].webhook_id
    assert "pickup_code" not in message.payload["payload"]
    run(package, "self-service-package-delivery", {"otp": code})  # the code the Extension application got works
    db.session.expire_all()
    assert db.session.get(Package, package.id).state == State.DELIVERED


def test_in_extension_mode_a_resent_code_goes_to_the_extension_application(make, manager, receivers, sms):
    settings.set_value(db.session, settings.PICKUP_CODE_DELIVERY, "extension_app", user_id=manager.id)
    receiver = receivers("ok")
    subscribe(receiver, manager, "package.ready_for_customer_pickup")
    package = make.package(state=State.PACKED)
    run(package, "ready-for-customer-pickup")

    result = commands.resend_pickup_code(db.session, package.id, user_id=None, store_ids=None)

    first, second = receiver.wait_for(2)
    old_code, new_code = first.json["payload"]["pickup_code"], second.json["payload"]["pickup_code"]
    assert second.json["payload"]["resent"] is True and second.verified
    assert result.sms_ids == [] and sms.outbox == []
    with pytest.raises(InvalidOtp):
        run(package, "self-service-package-delivery", {"otp": old_code})  # replaced by the new one
    run(package, "self-service-package-delivery", {"otp": new_code})


def test_pickup_code_delivery_accepts_only_its_two_modes(make, manager):
    with pytest.raises(ValidationFailed, match="portal_sms or extension_app"):
        settings.set_value(db.session, settings.PICKUP_CODE_DELIVERY, "carrier_pigeon", user_id=manager.id)
    assert settings.pickup_code_delivery(db.session) == "portal_sms"


def test_an_event_is_written_in_the_callers_transaction_and_fanned_out_after_its_commit(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "*")
    subscribe(receivers("ok"), manager, "stock_location.updated")
    subscribe(receivers("ok"), manager, "package.created")  # another type: no delivery

    events.record_event(db.session, "stock_location.updated", {"id": 1})
    db.session.flush()
    with db.engine.connect() as other:  # another connection sees nothing before the commit
        assert other.scalar(text("SELECT count(*) FROM outbox_messages")) == 0
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    event = events.record_event(db.session, "stock_location.updated", {"id": 1})
    db.session.commit()
    # The command's transaction wrote the event alone, waiting for its fan-out.
    rows = db.session.execute(select(OutboxMessage.kind, OutboxMessage.status)).all()
    assert [tuple(r) for r in rows] == [("event", "pending")]

    outbox.deliver_after_commit(db.session)

    rows = db.session.execute(select(OutboxMessage.kind, OutboxMessage.event_uuid, OutboxMessage.status)
                              .order_by(OutboxMessage.id)).all()
    assert [tuple(r) for r in rows] == [("event", event.uuid, "sent"), ("webhook", event.uuid, "sent"),
                                        ("webhook", event.uuid, "sent")]
    assert len(receiver.requests) == 1


def test_an_event_nobody_subscribes_to_is_stored_done_and_queues_nothing(make, manager, receivers):
    subscribe(receivers("ok"), manager, "package.created")
    events.record_event(db.session, "stock_location.updated", {"id": 1})
    db.session.commit()

    assert outbox.written_ids(db.session) == ([], [])
    rows = db.session.execute(select(OutboxMessage.kind, OutboxMessage.status)).all()
    assert [tuple(r) for r in rows] == [("event", "sent")]


def test_a_subscription_made_after_the_event_does_not_receive_it(make, manager, receivers):
    early = receivers("ok")
    subscribe(early, manager, "stock_location.updated")
    event = events.record_event(db.session, "stock_location.updated", {"id": 3})
    db.session.commit()
    late = receivers("ok")
    subscribe(late, manager, "*")  # made while the event waited for its fan-out (a slow queue)

    outbox.deliver_after_commit(db.session)

    assert len(early.requests) == 1 and late.requests == []
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.event_uuid == event.uuid, OutboxMessage.kind == "webhook")) == 1


def test_a_command_that_fails_writes_no_event(make, manager, receivers, sms):
    receiver = receivers("ok")
    subscribe(receiver, manager, "*")
    package = make.package(state=State.PACKED)
    run(package, "ready-for-customer-pickup")
    code = re.search(r" is (\d+)\.", sms.outbox[0].body).group(1)
    before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    requests_before = len(receiver.requests)

    with pytest.raises(InvalidOtp):  # the wrong code's attempt is committed, but no event with it
        run(package, "self-service-package-delivery", {"otp": f"{(int(code) + 1) % 10 ** 6:06d}"})
    with pytest.raises(CommandRejected):
        run(package, "complete-packaging-without-shipment")

    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == before
    assert len(receiver.requests) == requests_before


def test_stock_location_hooks_record_created_and_updated_events(make, manager, receivers):
    receiver = receivers("ok")
    subscribe(receiver, manager, "stock_location.created")
    store = make.store(code="IST-KDK", name="Kadıköy")

    events.stock_location_created(db.session, store)
    db.session.commit()
    outbox.deliver_after_commit(db.session)

    [request] = receiver.requests
    assert request.json["payload"]["erp_code"] == "IST-KDK" and request.json["payload"]["name"] == "Kadıköy"
