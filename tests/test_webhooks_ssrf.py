"""SSRF: target URLs are checked when saved and the address is checked again on every connection.

Private targets are not allowed here (the production default). Where a public address is needed the
test answers name lookups itself by replacing socket.getaddrinfo (the standard library's resolver).
"""
from __future__ import annotations

import socket

import pytest
from sqlalchemy import select
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.errors import ValidationFailed
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.webhooks import events, service, ssrf
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def app_config():
    """The production rule: only public targets."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": False}


@pytest.fixture
def dns(monkeypatch):
    """Answer lookups of chosen names with chosen addresses; every other name goes to the real resolver."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        """The resolver with our names in front."""
        if host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port or 80))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def create(manager, url):
    """Try to save a subscription to url."""
    return service.create_subscription(db.session, event_type="*", target_url=url, retry_countdown_config=None,
                                       additional_headers=None, user_id=manager.id)


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
    ("http://10.1.2.3/hook", "10.1.2.3 is a private network address"),
    ("http://192.168.0.10/", "a private network address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "a cloud metadata address"),
    ("http://[::1]:5000/hook", "::1 is a loopback address"),
    ("http://localhost:5000/hook", "localhost (127.0.0.1) is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address (inside ::ffff:7f00:1)"),
    ("http://[2002:a00:1::]/", "a private network address (inside 2002:a00:1::)"),
    ("http://100.64.3.4/", "a carrier-grade NAT address"),
    ("http://0.0.0.0/", "an unspecified address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://169.254.10.10/", "a link-local address"),
    ("ftp://files.example.com/hook", "Only http:// and https://"),
    ("file:///etc/passwd", "Only http:// and https://"),
    ("https://user:secret@hooks.example.com/", "no user name or password"),
    ("https:///nohost", "needs a host name"),
    ("not a url", "cannot contain spaces"),
    ("", "Enter the target URL"),
])
def test_unsafe_targets_are_refused_when_saved(manager, url, message):
    with pytest.raises(ValidationFailed) as refused:
        create(manager, url)

    assert message in refused.value.message
    assert refused.value.field == "target_url"
    assert db.session.scalar(select(WebhookSubscription.id)) is None


def test_a_name_that_resolves_to_any_private_address_is_refused(manager, dns):
    dns["hooks.brand.example"] = "10.0.0.7"

    with pytest.raises(ValidationFailed, match=r"hooks.brand.example \(10.0.0.7\) is a private network address"):
        create(manager, "https://hooks.brand.example/oms")


def test_a_public_target_is_accepted(manager, dns):
    dns["hooks.brand.example"] = PUBLIC_IP

    subscription, _ = create(manager, "https://hooks.brand.example/oms")

    assert subscription.target_url == "https://hooks.brand.example/oms"


def test_a_name_that_moves_to_loopback_after_saving_is_refused_at_connect_time(app, manager, dns, receivers):
    receiver = receivers("ok")
    port = receiver.url.rsplit(":", 1)[1]
    dns["hooks.brand.example"] = PUBLIC_IP
    subscription, _ = create(manager, f"http://hooks.brand.example:{port}/hooks")
    dns["hooks.brand.example"] = "127.0.0.1"  # DNS rebinding: now it points at the portal's own machine

    events.record_event(db.session, "stock_location.updated", {"id": 1})
    db.session.commit()
    outbox.deliver_after_commit(db.session)

    assert receiver.requests == []
    attempt = db.session.scalar(select(DeliveryAttempt))
    assert attempt.status_code is None and not attempt.succeeded
    assert "Refused to connect to hooks.brand.example at 127.0.0.1: a loopback address" in attempt.error
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "webhook"))
    assert message.status == "failed"

    # The same delivery goes through where private targets are allowed (development): only the guard stopped it.
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    outbox.process_message(db.session, message.id, now=message.next_attempt_at)
    assert len(receiver.requests) == 1 and receiver.requests[0].headers["webhook-id"] == message.uuid
    assert receiver.requests[0].json["event"]["type"] == "stock_location.updated"
    assert db.session.get(WebhookSubscription, subscription.id).is_active


def test_the_connection_guard_checks_every_forbidden_kind_of_peer():
    for address in ("127.0.0.1", "10.0.0.1", "172.16.5.5", "169.254.169.254", "::1", "fe80::1", "fc00::1",
                    "::ffff:10.0.0.1", "64:ff9b::7f00:1", "100.100.100.200", "198.18.0.1"):
        assert ssrf.forbidden_reason(address), address
    for address in (PUBLIC_IP, "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"):
        assert ssrf.forbidden_reason(address) is None, address
