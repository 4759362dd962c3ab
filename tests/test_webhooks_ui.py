"""Brand managers manage webhook subscriptions in the browser: create (secret shown once), edit, rotate,
switch on and off, delete, send a test event, read the delivery log and redeliver. Deliveries go over
real HTTP to a receiver the test starts on 127.0.0.1 (private targets are allowed for it in these tests).
"""
from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from html import unescape
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import func, select
from stubs.http_stub import StubServer

from portal import crypto
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.queue import huey
from portal.settings.models import SettingChange
from portal.webhooks import service as webhooks
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

HTMX = {"HX-Request": "true"}
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request and answers with `status`."""

    def __init__(self):
        """Start serving on a free port."""
        self.status = 204
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            """Record the delivery and answer."""

            def do_POST(self):
                """Keep the headers and body, then answer with the receiver's status."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": json.loads(body)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                """Stay quiet."""

        self.server = StubServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/oms-events"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def app_config():
    """The receiver runs on 127.0.0.1: allow private targets (the SSRF test switches it off again)."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


@pytest.fixture(autouse=True)
def immediate_queue():
    """Deliveries run at once in this process (huey's immediate mode), restored afterwards."""
    before = huey.immediate
    huey.immediate = True
    yield
    huey.immediate = before


@pytest.fixture
def receiver():
    """A receiver started for the test."""
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def manager(make, auth_actions):
    """A logged-in brand manager."""
    user = make.user("brandy", role="brand_manager")
    auth_actions.login("brandy")
    return user


def form(url: str, **overrides) -> dict:
    """What the subscription form posts: every event, exponential retries, one header."""
    data = {"event_type": "*", "target_url": url, "retry_type": "exponential", "retry_base": "30",
            "retry_factor": "2", "retry_max_interval": "3600", "max_attempts": "5",
            "header_name": ["X-Brand-Token", ""], "header_value": ["abc123", ""], "is_active": "y"}
    data.update(overrides)
    return data


def subscriptions() -> list[WebhookSubscription]:
    """Every stored subscription, read afresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def make_subscription(url: str, **fields) -> tuple[WebhookSubscription, str]:
    """A subscription made through the service, as another screen would have."""
    values = {"event_type": "package.created", "target_url": url, "retry_countdown_config": None,
              "additional_headers": {}, "user_id": None}
    values.update(fields)
    return webhooks.create_subscription(db.session, **values)


def test_a_brand_manager_creates_a_subscription_and_sees_its_secret_only_once(client, manager, receiver):
    page = client.get("/webhooks/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<option value="*" selected>All events (*)</option>' in html
    assert 'name="retry_base"' in html and 'name="header_name"' in html

    response = client.post("/webhooks/", data=form(receiver.url))
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    secret = SECRET.search(html).group(0)
    assert "shown only this once" in html

    [stored] = subscriptions()
    assert (stored.event_type, stored.target_url, stored.is_active) == ("*", receiver.url, True)
    assert stored.retry_countdown_config == {"type": "exponential", "base": 30, "factor": 2, "max_interval": 3600,
                                             "max_attempts": 5}
    assert stored.additional_headers == {"X-Brand-Token": "abc123"}
    assert stored.created_by_id == manager.id
    # Only the encrypted secret is stored, and it opens to the one the page showed.
    assert secret not in stored.secret_encrypted
    assert crypto.decrypt(stored.secret_encrypted) == secret
    audit = db.session.scalar(select(SettingChange).where(SettingChange.area == "webhook_subscription"))
    assert (audit.key, audit.action, audit.user_id) == (f"subscription:{stored.id}", "create", manager.id)

    for url in (f"/webhooks/{stored.id}", "/webhooks/", f"/webhooks/{stored.id}/edit"):
        again = client.get(url)
        assert again.status_code == 200
        assert secret not in again.get_data(as_text=True)
        assert not SECRET.search(again.get_data(as_text=True))
    assert receiver.url in client.get("/webhooks/").get_data(as_text=True)


def test_creating_with_htmx_swaps_in_the_secret_and_points_the_address_at_the_subscription(client, manager, receiver):
    response = client.post("/webhooks/", data=form(receiver.url, event_type="package.created"), headers=HTMX)
    assert response.status_code == 201
    [stored] = subscriptions()
    assert response.headers["HX-Retarget"] == "#webhook-page"
    assert response.headers["HX-Push-Url"] == f"/webhooks/{stored.id}"
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers["Vary"]
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"].startswith("Subscription created")
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="webhook-page"' in html
    assert 'hx-history="false"' in html  # kept out of htmx's history cache in localStorage
    assert crypto.decrypt(stored.secret_encrypted) in html


def test_a_private_target_is_refused_beside_the_field_and_nothing_is_saved(app, client, manager):
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    for headers in ({}, HTMX):
        response = client.post("/webhooks/", data=form("http://127.0.0.1:8080/hook"), headers=headers)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert ('<small class="field-error" id="target_url-error" role="alert">127.0.0.1 is a loopback address; '
                "webhooks only go to public internet addresses.</small>") in html
        assert 'aria-invalid="true" aria-describedby="target_url-error target_url-help"' in html
        assert 'value="http://127.0.0.1:8080/hook"' in html  # what was typed stays
        assert ("<html" in html) is (headers == {})
    for url, words in (("http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
                       ("ftp://93.184.216.34/hook", "Only http:// and https:// target URLs are accepted."),
                       ("http://10.1.2.3/hook", "a private network address")):
        html = client.post("/webhooks/", data=form(url), headers=HTMX).get_data(as_text=True)
        assert words in html
    assert subscriptions() == []
    assert db.session.scalar(select(func.count()).select_from(SettingChange)) == 0


@pytest.mark.parametrize(("fields", "slot", "words"), [
    ({"retry_base": "soon"}, "retry_base", "First wait (seconds) must be a number."),
    ({"retry_base": "0"}, "retry_base", "base (seconds) must be from 1 to 86400."),
    ({"retry_base": "600", "retry_max_interval": "60"}, "retry_max_interval",
     "max_interval cannot be shorter than base."),
    ({"retry_type": "random", "retry_min": "90", "retry_max": "30"}, "retry_max", "max cannot be below min."),
    ({"max_attempts": "40"}, "max_attempts", "max_attempts must be from 1 to 25."),
    ({"header_name": ["Bad Header"], "header_value": ["x"]}, "headers", "'Bad Header' is not a valid header name."),
    ({"header_name": ["webhook-signature"], "header_value": ["x"]}, "headers",
     "The portal sets webhook-signature itself; it cannot be an additional header."),
    ({"header_name": [""], "header_value": ["lonely"]}, "headers", "The header with the value 'lonely' needs a name."),
    ({"event_type": "order.exploded"}, "event_type", "Choose an event type from the catalogue, or * for every event."),
])
def test_a_bad_retry_config_or_header_is_explained_beside_its_field(client, manager, fields, slot, words):
    response = client.post("/webhooks/", data=form("http://127.0.0.1:9/oms-events", **fields), headers=HTMX)
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert f'<small class="field-error" id="{slot}-error" role="alert">{words}</small>' in html
    assert subscriptions() == []


def test_changing_the_retry_type_swaps_in_its_own_fields(client, manager):
    response = client.get("/webhooks/retry-fields", query_string={"retry_type": "linear", "retry_interval": "45"},
                          headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="retry-params"')
    assert 'name="retry_interval"' in html and 'value="45"' in html
    assert 'name="retry_increment"' in html and 'name="retry_base"' not in html
    row = client.get("/webhooks/header-row", headers=HTMX).get_data(as_text=True)
    assert 'name="header_name"' in row and 'name="header_value"' in row


def test_store_staff_may_not_see_or_change_webhooks(client, make, auth_actions, receiver):
    subscription, _ = make_subscription(receiver.url)
    make.user("clerk")
    auth_actions.login("clerk")
    assert "Webhooks</a>" not in client.get("/packages").get_data(as_text=True)
    for method, url in (("get", "/webhooks/"), ("get", "/webhooks/new"), ("post", "/webhooks/"),
                        ("get", f"/webhooks/{subscription.id}"), ("post", f"/webhooks/{subscription.id}/test"),
                        ("post", f"/webhooks/{subscription.id}/rotate-secret"),
                        ("post", f"/webhooks/{subscription.id}/delete")):
        assert getattr(client, method)(url, data=form(receiver.url)).status_code == 403, url
    assert len(subscriptions()) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/webhooks/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admins_see_webhooks_and_the_outbox_by_kind(client, make, auth_actions, receiver):
    make_subscription(receiver.url)
    dead = outbox.enqueue_webhook(db.session, subscriptions()[0].id, "package.created", {"n": 1})
    dead.status = OutboxMessage.DEAD
    outbox.enqueue_sms(db.session, to="+905551112233", body="Your code is 123456", package_id=None)
    db.session.commit()
    make.user("root", role="admin")
    auth_actions.login("root")
    html = client.get("/webhooks/").get_data(as_text=True)
    assert 'href="/webhooks/"' in client.get("/packages").get_data(as_text=True)
    assert 'id="outbox-summary"' in html and 'href="/admin/outbox"' in html
    sms_row = re.search(r'<tr id="outbox-sms">(.*?)</tr>', html, re.S).group(1)
    webhook_row = re.search(r'<tr id="outbox-webhook">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', sms_row) == ["1", "0", "0"]
    assert re.findall(r'<td class="num">(\d+)</td>', webhook_row) == ["0", "0", "1"]


def test_brand_managers_do_not_get_the_outbox_overview(client, manager):
    html = client.get("/webhooks/").get_data(as_text=True)
    assert 'id="outbox-summary"' not in html
    assert "No subscription yet" in html


def test_rotating_the_secret_shows_the_new_one_once_and_the_old_one_stops_working(client, manager, receiver):
    subscription, old = make_subscription(receiver.url)
    page = client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)
    assert "hx-confirm=\"Make a new secret?" in page
    response = client.post(f"/webhooks/{subscription.id}/rotate-secret", headers=HTMX)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new = SECRET.search(response.get_data(as_text=True)).group(0)
    assert new != old
    assert "The old secret no longer works." in response.get_data(as_text=True)
    [stored] = subscriptions()
    assert crypto.decrypt(stored.secret_encrypted) == new
    assert new not in client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)

    # Without htmx the new secret gets a page of its own.
    plain = client.post(f"/webhooks/{subscription.id}/rotate-secret")
    assert plain.status_code == 200 and "<html" in plain.get_data(as_text=True)
    assert crypto.decrypt(subscriptions()[0].secret_encrypted) in plain.get_data(as_text=True)


def test_send_test_event_queues_a_signed_delivery_and_the_log_shows_it(client, manager, receiver):
    subscription, secret = make_subscription(receiver.url)
    response = client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)
    assert response.status_code == 200
    # Delivered in the request here (the queue's immediate mode): the toast already says how it went.
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"].startswith("Test event delivered")
    [message] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.subscription_id == subscription.id))
    assert (message.kind, message.event_type) == ("webhook", "webhook.test")
    db.session.refresh(message)
    assert message.status == "sent"
    [delivered] = receiver.requests
    assert delivered["headers"]["webhook-id"] == message.uuid
    assert delivered["body"]["event"]["type"] == "webhook.test"
    [attempt] = db.session.scalars(select(DeliveryAttempt))
    assert (attempt.attempt, attempt.status_code, attempt.succeeded) == (1, 204, True)
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="delivery-log"')
    assert f'id="attempt-{attempt.id}"' in html and '<code class="secondary-label">webhook.test</code>' in html
    assert ">Delivered</span>" in html and "HTTP 204 · " in html


def test_the_delivery_log_shows_local_time_and_polls_only_while_something_is_on_its_way(client, manager, receiver):
    subscription, _ = make_subscription(receiver.url)
    message = outbox.enqueue_webhook(db.session, subscription.id, "package.created", {"n": 1})
    db.session.flush()
    db.session.add(DeliveryAttempt(subscription_id=subscription.id, message_id=message.id, attempt=1,
                                   started_at=datetime(2026, 11, 22, 12, 5, tzinfo=UTC), status_code=500,
                                   duration_ms=87, response_excerpt="Internal error: database down",
                                   error="The receiver answered 500.", succeeded=False))
    message.status = OutboxMessage.FAILED
    db.session.commit()

    page = client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)
    assert "22 Nov 2026 15:05" in page  # 12:05 UTC in Istanbul
    assert "Internal error: database down" in page and "The receiver answered 500." in page
    assert "HTTP 500 · 87 ms · attempt 1" in page
    assert f'hx-get="/webhooks/{subscription.id}/deliveries" hx-trigger="every 2s"' in page
    assert "<strong>1</strong> event is on the way" in page

    message.status = OutboxMessage.SENT
    db.session.commit()
    fragment = client.get(f"/webhooks/{subscription.id}/deliveries", headers=HTMX)
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="delivery-log"') and "<html" not in html
    assert "hx-trigger" not in html.split(">", 1)[0]
    assert "Nothing is waiting to be delivered." in html


def test_redeliver_one_delivery_and_all_dead_lettered_ones(client, manager, receiver):
    subscription, _ = make_subscription(receiver.url)
    client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)
    [sent] = db.session.scalars(select(OutboxMessage))
    again = client.post(f"/webhooks/{subscription.id}/deliveries/{sent.id}/redeliver", headers=HTMX)
    assert again.status_code == 200
    assert "queued for delivery again" in json.loads(again.headers["HX-Trigger"])["toast"]["message"]
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [sent.uuid, sent.uuid]

    dead = []
    for n in range(2):
        message = outbox.enqueue_webhook(db.session, subscription.id, "package.created", {"n": n})
        message.status, message.attempts = OutboxMessage.DEAD, 8
        dead.append(message)
    db.session.commit()
    page = client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)
    assert "Redeliver all dead-lettered (2)" in page
    response = client.post(f"/webhooks/{subscription.id}/redeliver-dead", headers=HTMX)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"] == \
        "2 dead-lettered events queued for delivery again."
    db.session.expire_all()
    assert [m.status for m in dead] == ["sent", "sent"]
    assert {r["headers"]["webhook-id"] for r in receiver.requests[2:]} == {m.uuid for m in dead}
    assert "Redeliver all dead-lettered" not in response.get_data(as_text=True)

    # Without htmx: back to the subscription's page with a message.
    plain = client.post(f"/webhooks/{subscription.id}/redeliver-dead")
    assert plain.status_code == 302 and plain.headers["Location"] == f"/webhooks/{subscription.id}"
    assert "Nothing was dead-lettered." in client.get(plain.headers["Location"]).get_data(as_text=True)


def test_a_delivery_of_another_subscription_cannot_be_redelivered_from_here(client, manager, receiver):
    mine, _ = make_subscription(receiver.url)
    other, _ = make_subscription(receiver.url, event_type="package.status.shipped")
    message = outbox.enqueue_webhook(db.session, other.id, "package.status.shipped", {"n": 1})
    message.status = OutboxMessage.DEAD
    db.session.commit()
    response = client.post(f"/webhooks/{mine.id}/deliveries/{message.id}/redeliver", headers=HTMX)
    assert response.status_code == 404
    db.session.expire_all()
    assert message.status == "dead" and receiver.requests == []


def test_switching_off_shows_why_and_switching_on_clears_it(client, manager, receiver):
    subscription, _ = make_subscription(receiver.url)
    webhooks.disable(db.session, subscription.id, "The receiver answered 410 Gone, meaning it no longer accepts "
                                                  "these events.")
    db.session.commit()
    listing = client.get("/webhooks/").get_data(as_text=True)
    assert ">Disabled</span>" in listing
    assert '<small class="disabled-reason">The receiver answered 410 Gone' in listing
    page = client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)
    assert "Why it was disabled:</strong> The receiver answered 410 Gone" in page

    on = client.post(f"/webhooks/{subscription.id}/active", data={"active": "true"}, headers=HTMX)
    assert on.status_code == 200
    html = on.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="subscription-panel"')
    assert ">Active</span>" in html and "Why it was disabled" not in html
    [stored] = subscriptions()
    assert (stored.is_active, stored.disabled_reason, stored.consecutive_failures) == (True, "", 0)

    off = client.post(f"/webhooks/{subscription.id}/active", data={"active": "false"})
    assert off.status_code == 302
    [stored] = subscriptions()
    assert stored.is_active is False
    assert "Subscription deactivated" in client.get(off.headers["Location"]).get_data(as_text=True)


def test_editing_keeps_the_secret_and_a_bad_change_saves_nothing(app, client, manager, receiver):
    subscription, secret = make_subscription(receiver.url, additional_headers={"X-Old": "1"})
    page = client.get(f"/webhooks/{subscription.id}/edit").get_data(as_text=True)
    assert f'value="{receiver.url}"' in page and 'value="X-Old"' in page
    assert '<option value="package.created" selected>' in page

    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    refused = client.post(f"/webhooks/{subscription.id}", headers=HTMX,
                          data=form("http://192.168.1.20/hook", event_type="package.status.shipped"))
    assert refused.status_code == 422
    assert "a private network address" in refused.get_data(as_text=True)
    [stored] = subscriptions()
    assert (stored.event_type, stored.target_url) == ("package.created", receiver.url)

    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    saved = client.post(f"/webhooks/{subscription.id}", headers=HTMX,
                        data=form(receiver.url + "/v2", event_type="package.status.shipped", retry_type="fixed",
                                  retry_interval="120", header_name=["X-Old", "X-New"], header_value=["", "2"]))
    assert saved.status_code == 204
    assert saved.headers["HX-Redirect"] == f"/webhooks/{subscription.id}"
    [stored] = subscriptions()
    assert (stored.event_type, stored.target_url) == ("package.status.shipped", receiver.url + "/v2")
    assert stored.retry_countdown_config == {"type": "fixed", "interval": 120, "max_attempts": 5}
    assert stored.additional_headers == {"X-Old": "", "X-New": "2"}
    assert crypto.decrypt(stored.secret_encrypted) == secret
    assert "Subscription saved." in client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)


def test_deleting_removes_the_subscription_and_its_log(client, manager, receiver):
    subscription, _ = make_subscription(receiver.url)
    client.post(f"/webhooks/{subscription.id}/test", headers=HTMX)
    page = client.get(f"/webhooks/{subscription.id}").get_data(as_text=True)
    assert 'hx-confirm="Delete this subscription and its delivery log?' in page
    response = client.post(f"/webhooks/{subscription.id}/delete", headers=HTMX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/webhooks/"
    assert subscriptions() == []
    assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0
    assert "Subscription deleted" in client.get("/webhooks/").get_data(as_text=True)
    assert client.get(f"/webhooks/{subscription.id}").status_code == 404


@pytest.mark.parametrize("app_config", [{"WEBHOOK_ALLOW_PRIVATE_TARGETS": True, "WTF_CSRF_ENABLED": True}])
def test_with_csrf_on_only_requests_carrying_the_token_change_anything(client, make, receiver):
    make.user("brandy", role="brand_manager")
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    client.post("/login", data={"username": "brandy", "password": "correct-horse-1", "csrf_token": token})
    page = client.get("/webhooks/new").get_data(as_text=True)
    htmx_token = json.loads(re.search(r"hx-headers='([^']+)'", page).group(1))["X-CSRFToken"]

    assert client.post("/webhooks/", data=form(receiver.url), headers=HTMX).status_code == 400
    assert subscriptions() == []
    created = client.post("/webhooks/", data=form(receiver.url), headers={**HTMX, "X-CSRFToken": htmx_token})
    assert created.status_code == 201
    [subscription] = subscriptions()
    before = subscription.secret_encrypted
    for action in ("rotate-secret", "delete", "test"):
        assert client.post(f"/webhooks/{subscription.id}/{action}", headers=HTMX).status_code == 400
    [after] = subscriptions()
    assert after.secret_encrypted == before and receiver.requests == []
    rotated = client.post(f"/webhooks/{subscription.id}/rotate-secret", headers={**HTMX, "X-CSRFToken": htmx_token})
    assert rotated.status_code == 200
    assert subscriptions()[0].secret_encrypted != before
