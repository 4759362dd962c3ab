"""The webhook console: the built-in request inspector, sample payloads, the signature self-test, duplicate
warnings and the wording of a failed test event.

Deliveries to the inspector are real HTTP: the test's portal is also served on 127.0.0.1 and a free port, its
WEBHOOK_INSPECTOR_URL points at that server, and the delivery (run in the request, huey's immediate mode) posts
to it like the worker would. Private targets are NOT allowed here: only the inspector's exact URL gets through.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from html import unescape

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from portal import create_app
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages import event_samples, events
from portal.queue import huey
from portal.webhooks import catalogue, inspector, signing
from portal.webhooks import service as webhooks
from portal.webhooks.models import DeliveryAttempt, InspectedRequest, WebhookSubscription

HTMX = {"HX-Request": "true"}
INSPECTOR_PATH = "/webhooks/inspector/receive"


class QuietHandler(WSGIRequestHandler):
    """No access log line per request."""

    def log_request(self, *args, **kwargs):
        """Stay quiet."""


@pytest.fixture(autouse=True)
def immediate_queue():
    """Deliveries run at once, in the request (huey's immediate mode), restored afterwards."""
    before = huey.immediate
    huey.immediate = True
    yield
    huey.immediate = before


@pytest.fixture
def served(app):
    """The test's portal served over HTTP on 127.0.0.1; the inspector's URL is that server's receiving path."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.port}"
    app.config["WEBHOOK_INSPECTOR_URL"] = base + INSPECTOR_PATH
    yield base
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def manager(make, auth_actions):
    """A logged-in brand manager."""
    user = make.user("brandy", role="brand_manager")
    auth_actions.login("brandy")
    return user


def form(**overrides) -> dict:
    """What the subscription form posts, choosing the built-in inspector."""
    data = {"event_type": "*", "target_choice": "inspector", "target_url": "", "retry_type": "fixed",
            "retry_interval": "60", "max_attempts": "3", "is_active": "y"}
    data.update(overrides)
    return data


def received_rows() -> list[InspectedRequest]:
    """What the inspector kept, oldest first, read afresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(InspectedRequest).order_by(InspectedRequest.id)))


def page_text(response) -> str:
    """A page's HTML with entities decoded."""
    return unescape(response.get_data(as_text=True))


def create_to_inspector(client, **overrides) -> WebhookSubscription:
    """Create a subscription to the inspector through the form; returns it."""
    response = client.post("/webhooks/", data=form(**overrides))
    assert response.status_code == 201, response.get_data(as_text=True)
    return db.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id.desc())).first()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The inspector receives a real delivery


def test_a_test_event_to_the_inspector_is_delivered_and_shown_with_a_valid_signature(client, manager, served):
    new = page_text(client.get("/webhooks/new?target=inspector"))
    assert 'value="inspector" id="target-inspector" checked' in new

    subscription = create_to_inspector(client)
    assert subscription.target_url == served + INSPECTOR_PATH

    response = client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)

    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"].startswith("Test event delivered")
    [attempt] = db.session.scalars(select(DeliveryAttempt)).all()
    assert (attempt.status_code, attempt.succeeded) == (200, True)
    [row] = received_rows()
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")).one()
    assert (row.subscription_id, row.webhook_id, row.event_type, row.method) == (
        subscription.id, message.uuid, "webhook.test", "POST")
    assert row.verdict == signing.VALID
    assert "webhook.test" not in row.content_encrypted  # kept encrypted

    page = page_text(client.get(f"/webhooks/{subscription.id}"))
    assert "Received by the built-in inspector" in page
    panel = page.split('id="received-list"', 1)[1]
    assert "Valid signature" in panel and "Invalid signature" not in panel
    assert '"type": "webhook.test"' in panel  # the body, as indented JSON
    assert "webhook-signature" in panel and "v1," in panel and "application/json" in panel
    assert f'hx-get="/webhooks/inspector/requests?subscription={subscription.id}" hx-trigger="every 2s"' in page

    everything = page_text(client.get("/webhooks/inspector"))
    assert f"Sent by subscription {subscription.id}" in everything and "Valid signature" in everything
    refreshed = client.get(f"/webhooks/inspector/requests?subscription={subscription.id}", headers=HTMX)
    assert refreshed.get_data(as_text=True).lstrip().startswith('<div id="received-list"')


def test_a_tampered_delivery_shows_an_invalid_signature_and_why(client, manager, served):
    subscription = create_to_inspector(client)
    client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)
    [genuine] = inspector.received(db.session)
    headers = {name: value for name, value in genuine.headers if name.lower().startswith("webhook-")}
    headers["Content-Type"] = "application/json"
    url = served + INSPECTOR_PATH

    changed = genuine.body.replace("This is a test event", "This is a forged event")
    assert requests.post(url, data=changed.encode(), headers=headers, timeout=10).json()["signature"] == "no_match"
    stale_at = int(time.time()) - 3600
    old_headers = {**headers, **signing.headers(webhooks.secret_of(subscription), genuine.webhook_id, genuine.body,
                                                timestamp=stale_at)}
    assert requests.post(url, data=genuine.body.encode(), headers=old_headers,
                         timeout=10).json()["signature"] == "stale_timestamp"
    stranger = {**headers, "webhook-id": "not-a-delivery-of-ours"}
    assert requests.post(url, data=genuine.body.encode(), headers=stranger,
                         timeout=10).json()["signature"] == inspector.UNKNOWN_SENDER

    rows = received_rows()
    assert [r.verdict for r in rows] == ["valid", "no_match", "stale_timestamp", "unknown_sender"]
    page = page_text(client.get("/webhooks/inspector"))
    assert page.count("Invalid signature") == 3
    assert "Wrong secret, or the body was changed" in page and "This is a forged event" in page
    assert "Stale timestamp: the delivery is 36" in page  # 3600 s and a few
    assert "Not sent by a subscription of this portal" in page


def test_the_inspector_keeps_only_the_newest_requests(app):
    for n in range(inspector.KEEP + 3):
        inspector.receive(db.session, "POST", [("Content-Type", "application/json")], f'{{"n": {n}}}'.encode())

    rows = received_rows()
    assert len(rows) == inspector.KEEP
    assert json.loads(inspector.received(db.session, limit=1)[0].body) == {"n": inspector.KEEP + 2}
    assert {r.verdict for r in rows} == {signing.MISSING_HEADER}


# The SSRF guard: exactly the inspector's URL, never loopback in general


def test_the_inspector_url_is_allowed_while_other_loopback_urls_stay_refused(client, manager, served):
    port = served.rsplit(":", 1)[1]
    assert webhooks.validate_target(served + INSPECTOR_PATH) == served + INSPECTOR_PATH
    for other in (served + INSPECTOR_PATH + "?x=1", served + "/webhooks/inspector/receiveX", served + "/login",
                  f"http://localhost:{port}{INSPECTOR_PATH}", f"http://127.0.0.1:{free_port()}{INSPECTOR_PATH}",
                  "http://10.0.0.5/hook"):
        with pytest.raises(ValidationFailed) as refused:
            webhooks.validate_target(other)
        assert "webhooks only go to public internet addresses" in refused.value.message, other

    typed = client.post("/webhooks/", data=form(target_choice="url", target_url=served + "/login"), headers=HTMX)
    assert typed.status_code == 422 and "a loopback address" in page_text(typed)
    assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0

    # A subscription changed behind the form's back to another loopback URL is still refused on connection.
    subscription = create_to_inspector(client)
    subscription.target_url = served + "/login"
    db.session.commit()
    client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)
    [attempt] = db.session.scalars(select(DeliveryAttempt)).all()
    assert not attempt.succeeded and "Refused to connect" in attempt.error
    assert received_rows() == []


def test_in_production_the_inspector_is_off(database, served):
    app = create_app({"ENV_NAME": "production", "SQLALCHEMY_DATABASE_URI": database.url, "SECRET_KEY": "p" * 40,
                      "ENCRYPTION_KEYS": Fernet.generate_key().decode(), "WEBHOOK_INSPECTOR": True,
                      "WEBHOOK_INSPECTOR_URL": served + INSPECTOR_PATH, "RATELIMIT_ENABLED": False,
                      "FORCE_HTTPS": False, "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                      "TWILIO_AUTH_TOKEN": "t" * 32, "TWILIO_FROM_NUMBER": "+15005550006"})

    assert app.config["WEBHOOK_INSPECTOR"] is True  # even switched on by hand, production has no inspector
    assert not inspector.enabled(app.config) and inspector.url(app.config) is None
    assert app.test_client().post(INSPECTOR_PATH, json={"x": 1}).status_code == 404
    with app.app_context():
        with pytest.raises(ValidationFailed):
            webhooks.validate_target(served + INSPECTOR_PATH)
        db.session.remove()
        db.engine.dispose()
    from portal.config import ProductionConfig
    assert ProductionConfig.WEBHOOK_INSPECTOR is False


@pytest.mark.parametrize("app_config", [{"WEBHOOK_INSPECTOR": False}])
def test_switched_off_the_inspector_receives_nothing_and_is_not_offered(client, manager, app_config):
    assert client.post(INSPECTOR_PATH, json={"x": 1}).status_code == 404
    assert client.get("/webhooks/inspector").status_code == 404
    assert 'name="target_choice"' not in page_text(client.get("/webhooks/new"))
    assert "Try it without a server of your own" not in page_text(client.get("/webhooks/"))


# Samples


def test_send_a_sample_of_every_event_type_to_the_inspector(client, manager, served, make):
    subscription = create_to_inspector(client)
    types = [t for t in catalogue.EVENT_TYPES if t != catalogue.WEBHOOK_TEST]
    page = page_text(client.get(f"/webhooks/{subscription.id}"))
    assert page.count('id="send-sample-') == len(types)

    for event_type in types:
        response = client.post(f"/webhooks/{subscription.id}/samples/{event_type}", headers=HTMX)
        assert response.status_code == 200, event_type
        assert "delivered" in json.loads(response.headers["HX-Trigger"])["toast"]["message"]

    rows = inspector.received(db.session)
    assert len(rows) == len(types)
    by_type = {r.event_type: json.loads(r.body) for r in rows}
    assert sorted(by_type) == sorted(types)
    assert all(r.valid for r in rows)
    for event_type, body in by_type.items():
        assert body["event"]["type"] == event_type and body["payload"]["sample"] is True
    assert by_type[catalogue.READY_FOR_CUSTOMER_PICKUP]["event"]["name"] == (
        "PackageReadyForCustomerPickupWhispererEvent")
    # Built by the real builders: a sample package has the keys a real package's event has.
    real = events.package_payload(make.package())
    assert set(by_type[catalogue.PACKAGE_CREATED]["payload"]) == set(real) | {"sample"}
    assert by_type[catalogue.PACKAGE_TRANSITIONED]["payload"]["previous_status"]["value"] == "waiting"
    assert by_type[catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE]["payload"]["override"]["authorised_by"]["username"]
    # Samples are trials: one attempt each, none counted against the subscription.
    assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == len(types)
    db.session.refresh(subscription)
    assert subscription.consecutive_failures == 0


def test_a_subscription_gets_samples_only_of_its_own_event(client, manager, served):
    subscription = create_to_inspector(client, event_type=catalogue.PACKAGE_SHIPPED)
    page = page_text(client.get(f"/webhooks/{subscription.id}"))
    assert page.count('id="send-sample-') == 1 and "Package shipped" in page

    refused = client.post(f"/webhooks/{subscription.id}/samples/{catalogue.PACKAGE_CREATED}", headers=HTMX)
    assert refused.status_code == 422
    assert json.loads(refused.headers["HX-Trigger"])["toast"]["message"] == (
        "This subscription does not receive that event.")
    assert client.post(f"/webhooks/{subscription.id}/samples/no.such.event", headers=HTMX).status_code == 422
    assert received_rows() == []


def test_the_samples_page_shows_every_event_by_its_plain_name(client, manager):
    page = page_text(client.get("/webhooks/samples"))
    for event_type in catalogue.EVENT_TYPES:
        assert f'id="sample-{event_type.replace(".", "-")}"' in page
    assert "Package ready for pickup</span> <code" in page
    assert "PackageReadyForCustomerPickupWhispererEvent" in page
    assert '"order_number": "SAMPLE-ORD-0001"' in page and "Kadıköy" in page
    for event_type in catalogue.EVENT_TYPES:
        assert event_samples.sample_envelope(event_type)["event"]["type"] == event_type


# The signature self-test


def _signed(secret: str, body: str, timestamp: int | None = None) -> str:
    """The three headers of a delivery as pasted: name: value lines."""
    return "\n".join(f"{k}: {v}" for k, v in signing.headers(secret, "msg_1", body, timestamp).items())


@pytest.mark.parametrize(("case", "expected"), [
    ("valid", "Valid signature"),
    ("wrong secret", "Wrong secret, or the body was changed"),
    ("changed body", "Wrong secret, or the body was changed"),
    ("stale", "seconds old"),
    ("future", "seconds in the future"),
    ("no id", "Malformed headers: webhook-id is missing"),
    ("bad timestamp", "Malformed header: webhook-timestamp is not a number"),
    ("bad signature", "Malformed header: webhook-signature"),
    ("bad secret", "The secret is not a signing secret"),
])
def test_the_signature_self_test_says_valid_or_why_not(client, manager, case, expected):
    secret, other = signing.generate_secret(), signing.generate_secret()
    body = '{"event": {"type": "package.created"}, "payload": {"id": 7}}'
    now = int(time.time())
    posted = {"body": body, "headers": _signed(secret, body), "secret": secret}
    if case == "wrong secret":
        posted["secret"] = other
    elif case == "changed body":
        posted["body"] = body.replace("7", "8")
    elif case == "stale":
        posted["headers"] = _signed(secret, body, now - 600)
    elif case == "future":
        posted["headers"] = _signed(secret, body, now + 900)
    elif case == "no id":
        posted["headers"] = "\n".join(line for line in posted["headers"].splitlines()
                                      if not line.startswith("webhook-id"))
    elif case == "bad timestamp":
        posted["headers"] = re.sub(r"webhook-timestamp: \d+", "webhook-timestamp: yesterday", posted["headers"])
    elif case == "bad signature":
        posted["headers"] = re.sub(r"webhook-signature: .*", "webhook-signature: sha256=abc", posted["headers"])
    elif case == "bad secret":
        posted["secret"] = "my-password"

    response = client.post("/webhooks/signature-check", data=posted, headers=HTMX)

    html = page_text(response)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="check-result"')
    assert expected in html
    assert ("verdict-valid" in html) == (case == "valid")
    if case in ("stale", "future"):
        seconds = int(re.search(r"the delivery is (\d+) seconds", html).group(1))
        assert seconds - (600 if case == "stale" else 900) in (-1, 0, 1)


def test_the_self_test_opens_with_a_received_request_and_takes_json_headers(client, manager, served):
    subscription = create_to_inspector(client)
    client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)
    [row] = inspector.received(db.session)

    page = page_text(client.get(f"/webhooks/signature-check?request={row.id}"))
    assert row.body in page and f"webhook-id: {row.webhook_id}" in page

    headers = json.dumps({k: v for k, v in row.headers if k.lower().startswith("webhook-")})
    checked = client.post("/webhooks/signature-check", headers=HTMX,
                          data={"body": row.body, "headers": headers, "secret": webhooks.secret_of(subscription)})
    assert "Valid signature" in page_text(checked)


# Duplicates, the title, the copy button, plain names


def test_a_duplicate_subscription_is_not_created_silently(client, manager, served):
    first = create_to_inspector(client, event_type=catalogue.PACKAGE_CREATED)

    again = client.post("/webhooks/", data=form(event_type=catalogue.PACKAGE_CREATED), headers=HTMX)

    assert again.status_code == 422
    html = page_text(again)
    assert "This subscription already exists." in html
    assert f"Subscription {first.id} already sends this event to this URL" in html
    assert f'href="/webhooks/{first.id}" role="button" id="open-existing"' in html
    assert 'name="allow_duplicate" value="1"' in html
    assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 1
    # Another event to the same URL is no duplicate; "Create a second one anyway" is a yes.
    create_to_inspector(client, event_type=catalogue.PACKAGE_SHIPPED)
    create_to_inspector(client, event_type=catalogue.PACKAGE_CREATED, allow_duplicate="1")
    assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 3
    with pytest.raises(webhooks.DuplicateSubscription) as duplicate:
        webhooks.create_subscription(db.session, event_type=catalogue.PACKAGE_CREATED,
                                     target_url=first.target_url, user_id=None)
    assert duplicate.value.existing == first.id


def test_a_subscription_is_titled_by_its_event_and_url_with_a_copy_button_for_its_secret(client, manager, served):
    created = client.post("/webhooks/", data=form(event_type=catalogue.READY_FOR_CUSTOMER_PICKUP))
    html = page_text(created)
    assert 'data-copy="#secret-key"' in html and "/static/webhooks.js" in html
    assert 'id="send-first-test"' in html
    subscription = db.session.scalars(select(WebhookSubscription)).one()

    page = page_text(client.get(f"/webhooks/{subscription.id}"))
    assert "<title>Package ready for pickup to the built-in inspector" in page
    assert f"Subscription {subscription.id}" not in page.split("<main", 1)[1].split("Received by", 1)[0]
    assert "PackageReadyForCustomerPickupWhispererEvent" in page

    rotated = client.post(f"/webhooks/{subscription.id}/rotate-secret", headers=HTMX)
    assert 'data-copy="#secret-key"' in rotated.get_data(as_text=True)

    form_page = page_text(client.get("/webhooks/new"))
    assert "Package ready for pickup · PackageReadyForCustomerPickupWhispererEvent</option>" in form_page
    assert "Package changed state · package.status.transitioned</option>" in form_page


# A failed test event


@pytest.mark.parametrize("app_config", [{"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}])
def test_a_failed_test_event_says_nothing_will_be_retried(client, manager, app_config):
    url = f"http://127.0.0.1:{free_port()}/hook"
    subscription, _secret = webhooks.create_subscription(db.session, event_type="*", target_url=url, user_id=None)

    response = client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)

    toast = json.loads(response.headers["HX-Trigger"])["toast"]
    assert (toast["message"], toast["level"]) == ("Test failed: nothing will be retried. The log below says why.",
                                                  "error")
    html = page_text(client.get(f"/webhooks/{subscription.id}"))
    log = html.split('id="delivery-log"', 1)[1].split("</section>", 1)[0]
    assert "Test failed: nothing will be retried." in log
    assert "Nothing answered at this address: check the target URL and that the receiver is running." in log
    assert '<details class="tech-detail"><summary>Technical detail</summary>' in log
    assert "Dead-lettered" not in log and "attempt-error" not in log
    [attempt] = db.session.scalars(select(DeliveryAttempt)).all()
    assert attempt.error and attempt.error in log.split("<details", 1)[1]  # the raw text, behind the disclosure
    db.session.refresh(subscription)
    assert subscription.consecutive_failures == 0

    # A real event that used up its attempts is still called dead-lettered.
    webhooks.update_subscription(db.session, subscription.id, user_id=None,
                                 retry_countdown_config={"type": "fixed", "interval": 1, "max_attempts": 1})
    message = outbox.enqueue_webhook(db.session, subscription.id, catalogue.PACKAGE_CREATED, {"id": 1})
    db.session.commit()
    outbox.deliver_after_commit(db.session, [message.id])
    log = page_text(client.get(f"/webhooks/{subscription.id}")).split('id="delivery-log"', 1)[1]
    assert "Dead-lettered" in log.split("</section>", 1)[0]


def test_deleting_a_subscription_keeps_what_the_inspector_received_without_its_sender(client, manager, served):
    subscription = create_to_inspector(client)
    client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)

    assert client.post(f"/webhooks/{subscription.id}/delete").status_code == 302

    [row] = received_rows()
    assert (row.subscription_id, row.verdict) == (None, signing.VALID)
    page = page_text(client.get("/webhooks/inspector"))
    assert "Valid signature" in page and "Sent by subscription" not in page
