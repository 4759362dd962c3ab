"""Integrated software manages webhook subscriptions through /api/v1/whisperer/hooks/, the vendor's shape:
brand managers and admins with a token; secret_key only in the answers to create and rotate_secret.
"""
from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select

from portal import crypto
from portal.accounts import auth
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.queue import huey
from portal.settings.models import SettingChange
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

HOOKS = "/api/v1/whisperer/hooks/"
SHAPE = {"id", "event_type", "target_url", "retry_countdown_config", "additional_headers", "is_active",
         "disabled_reason", "created_at", "updated_at"}


@pytest.fixture
def app_config():
    """Targets on 127.0.0.1 are allowed here (the SSRF test switches this off)."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


@pytest.fixture(autouse=True)
def immediate_queue():
    """Deliveries run at once in this process (huey's immediate mode), restored afterwards."""
    before = huey.immediate
    huey.immediate = True
    yield
    huey.immediate = before


@pytest.fixture
def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: a delivery there fails at once with "connection refused"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def headers_for(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


@pytest.fixture
def manager(make) -> dict:
    """A brand manager's token header."""
    return headers_for(make.user("brandy", role="brand_manager"))


def stored() -> list[WebhookSubscription]:
    """Every stored subscription, read afresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def create(client, headers, url, **fields):
    """POST a subscription and return the response."""
    body = {"event_type": "package.status.transitioned", "target_url": url}
    body.update(fields)
    return client.post(HOOKS, headers=headers, json=body)


def test_create_answers_the_vendor_shape_with_the_secret_once(client, manager, closed_url):
    response = create(client, manager, closed_url,
                      retry_countdown_config={"type": "linear", "interval": 60, "increment": 30, "max_attempts": 6},
                      additional_headers={"X-Brand-Token": "abc123"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == SHAPE | {"secret_key"}
    assert body["secret_key"].startswith("whsec_")
    assert body["retry_countdown_config"] == {"type": "linear", "interval": 60, "increment": 30, "max_attempts": 6}
    assert (body["event_type"], body["target_url"], body["is_active"], body["disabled_reason"]) == \
        ("package.status.transitioned", closed_url, True, None)
    assert body["created_at"].endswith("Z")
    [row] = stored()
    assert row.id == body["id"] and body["secret_key"] not in row.secret_encrypted
    assert crypto.decrypt(row.secret_encrypted) == body["secret_key"]

    one = client.get(f"{HOOKS}{row.id}/", headers=manager)
    assert one.status_code == 200 and set(one.json) == SHAPE
    listed = client.get(HOOKS, headers=manager)
    assert listed.status_code == 200 and [set(h) for h in listed.json] == [SHAPE]
    assert body["secret_key"] not in one.get_data(as_text=True) + listed.get_data(as_text=True)


def test_no_token_is_401_and_store_staff_are_403(client, make, closed_url):
    anonymous = client.get(HOOKS)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Token"
    assert client.post(HOOKS, json={}, headers={"Authorization": "Token nope"}).status_code == 401
    staff = headers_for(make.user("clerk"))
    for method, url in (("get", HOOKS), ("post", HOOKS), ("get", f"{HOOKS}1/"), ("patch", f"{HOOKS}1/"),
                        ("delete", f"{HOOKS}1/"), ("post", f"{HOOKS}1/rotate_secret/"), ("post", f"{HOOKS}1/test/"),
                        ("get", f"{HOOKS}1/deliveries/"), ("post", f"{HOOKS}1/redeliver_dead/")):
        response = getattr(client, method)(url, headers=staff, json={"event_type": "*", "target_url": closed_url})
        assert response.status_code == 403, (method, url)
        assert response.json["code"] == "permission_denied"
    assert stored() == []


def test_admins_may_manage_hooks_too(client, make, closed_url):
    admin = headers_for(make.user("root", role="admin"))
    assert create(client, admin, closed_url, event_type="*").status_code == 201
    assert [h["event_type"] for h in client.get(HOOKS, headers=admin).json] == ["*"]


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"event_type": "order.exploded"}, "event_type", "Choose an event type from the catalogue"),
    ({"target_url": "gopher://93.184.216.34/"}, "target_url", "Only http:// and https://"),
    ({"retry_countdown_config": {"type": "fibonacci"}}, "type", "The retry type must be one of"),
    ({"retry_countdown_config": {"type": "fixed", "interval": 0}}, "interval", "must be from 1 to 86400"),
    ({"additional_headers": {"webhook-id": "x"}}, "additional_headers", "The portal sets webhook-id itself"),
    ({"is_active": "yes"}, "is_active", "is_active must be true or false."),
    ({"secret_key": "whsec_mine"}, "secret_key", "secret_key is made by the portal"),
    ({"colour": "red"}, "colour", "Unknown field 'colour'"),
])
def test_bad_input_is_400_naming_the_field_and_nothing_is_saved(client, manager, closed_url, body, field, words):
    response = create(client, manager, closed_url, **body)
    assert response.status_code == 400
    assert response.json["field"] == field and words in response.json["detail"]
    assert response.json["code"] == "validation_error"
    assert stored() == []


def test_a_private_target_is_refused(app, client, manager):
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    response = create(client, manager, "http://127.0.0.1:8080/hook")
    assert response.status_code == 400
    assert response.json == {"detail": "127.0.0.1 is a loopback address; webhooks only go to public internet "
                                       "addresses.", "code": "validation_error", "field": "target_url"}
    assert client.post(HOOKS, headers=manager, data="not json").status_code == 400
    assert stored() == []


def test_patch_changes_fields_and_reactivation_clears_the_reason(client, manager, closed_url):
    hook = create(client, manager, closed_url).json
    secret = hook["secret_key"]
    url = f"{HOOKS}{hook['id']}/"
    off = client.patch(url, headers=manager, json={"is_active": False})
    assert off.status_code == 200 and off.json["is_active"] is False and off.json["disabled_reason"]
    on = client.patch(url, headers=manager, json={**off.json, "is_active": True, "event_type": "*",
                                                  "additional_headers": {"X-New": "1"}})
    assert on.status_code == 200
    assert set(on.json) == SHAPE
    assert (on.json["is_active"], on.json["disabled_reason"], on.json["event_type"]) == (True, None, "*")
    [row] = stored()
    assert row.additional_headers == {"X-New": "1"} and crypto.decrypt(row.secret_encrypted) == secret
    empty = client.patch(url, headers=manager, json={})
    assert empty.status_code == 400 and "at least one field" in empty.json["detail"]
    bad = client.patch(url, headers=manager, json={"retry_countdown_config": {"type": "random", "min": 50, "max": 5}})
    assert bad.status_code == 400 and bad.json["field"] == "max"
    assert stored()[0].retry_countdown_config["type"] == "exponential"


def test_unknown_ids_are_404(client, manager):
    for method, suffix in (("get", ""), ("patch", ""), ("delete", ""), ("post", "rotate_secret/"), ("post", "test/"),
                           ("get", "deliveries/"), ("post", "redeliver_dead/")):
        response = getattr(client, method)(f"{HOOKS}999/{suffix}", headers=manager, json={"is_active": True})
        assert response.status_code == 404, (method, suffix)
        assert response.json == {"detail": "No such webhook subscription.", "code": "not_found"}


def test_rotate_secret_returns_a_new_secret_once(client, manager, closed_url):
    hook = create(client, manager, closed_url).json
    rotated = client.post(f"{HOOKS}{hook['id']}/rotate_secret/", headers=manager)
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    assert set(rotated.json) == SHAPE | {"secret_key"}
    assert rotated.json["secret_key"] != hook["secret_key"]
    assert crypto.decrypt(stored()[0].secret_encrypted) == rotated.json["secret_key"]
    actions = db.session.scalars(select(SettingChange.action).where(SettingChange.area == "webhook_subscription"))
    assert list(actions) == ["create", "rotate_secret"]


def test_test_event_is_queued_and_its_failed_attempt_is_in_the_deliveries(client, manager, closed_url):
    hook = create(client, manager, closed_url).json
    response = client.post(f"{HOOKS}{hook['id']}/test/", headers=manager)
    assert response.status_code == 202
    message = db.session.get(OutboxMessage, response.json["id"])
    assert (message.kind, message.event_type, message.subscription_id) == ("webhook", "webhook.test", hook["id"])
    assert response.json["webhook_id"] == message.uuid
    # Nobody listens there: one attempt, and a test gets no retries.
    assert response.json["status"] == "dead" and response.json["attempts"] == 1

    log = client.get(f"{HOOKS}{hook['id']}/deliveries/", headers=manager)
    assert log.status_code == 200
    [attempt] = log.json
    assert attempt["delivery"] == message.id and attempt["webhook_id"] == message.uuid
    assert (attempt["attempt"], attempt["status_code"], attempt["succeeded"]) == (1, None, False)
    assert attempt["error"].startswith("Could not connect")
    assert attempt["event_type"] == "webhook.test" and attempt["delivery_status"] == "dead"
    assert client.get(f"{HOOKS}{hook['id']}/deliveries/?limit=0", headers=manager).status_code == 400


def test_redeliver_dead_puts_every_dead_letter_back(client, manager, closed_url):
    hook = create(client, manager, closed_url).json
    for n in range(3):
        message = outbox.enqueue_webhook(db.session, hook["id"], "package.created", {"n": n})
        message.status = OutboxMessage.DEAD
    db.session.commit()
    response = client.post(f"{HOOKS}{hook['id']}/redeliver_dead/", headers=manager)
    assert response.status_code == 200 and response.json == {"redelivered": 3}
    # Tried again at once; nothing listens, so each waits for its next retry (same id every time).
    statuses = db.session.scalars(select(OutboxMessage.status).where(OutboxMessage.subscription_id == hook["id"]))
    assert sorted(statuses) == ["failed", "failed", "failed"]
    assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 3


def test_delete_removes_the_hook(client, manager, closed_url):
    hook = create(client, manager, closed_url).json
    response = client.delete(f"{HOOKS}{hook['id']}/", headers=manager)
    assert response.status_code == 204 and response.data == b""
    assert stored() == []
    assert client.get(f"{HOOKS}{hook['id']}/", headers=manager).status_code == 404
