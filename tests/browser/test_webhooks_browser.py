"""A brand manager on a laptop-sized screen subscribes the brand's ERP to an event, copies the secret
(shown once), and sends a test event that a real receiver on 127.0.0.1 gets, signed.
"""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from stubs.http_stub import StubServer

from portal import crypto
from portal.accounts import auth
from portal.queue import huey
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

PASSWORD = "brand-pass-1"


@pytest.fixture
def viewport() -> str:
    """Brand managers work on laptops: the landscape 1024x768 screen only."""
    return "landscape"


@pytest.fixture
def receiver():
    """The brand's ERP endpoint on 127.0.0.1: records the webhook headers of each delivery, answers 204."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        """Record and answer."""

        def do_POST(self):
            """Keep the headers, read the body, answer 204."""
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            """Stay quiet."""

    server = StubServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/erp/oms-events", seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def delivering(live_server):
    """The served portal may send to 127.0.0.1, and delivers in the request (huey's immediate mode)."""
    live_server.app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    before = huey.immediate
    huey.immediate = True
    yield
    huey.immediate = before


def test_a_brand_manager_subscribes_copies_the_secret_once_and_sends_a_test_event(
        page, live_server, receiver, delivering, ux, screenshot, csp_violations):
    url, seen = receiver
    with live_server.session() as session:
        auth.create_user(session, "brandy", PASSWORD, "brand_manager", [], full_name="Banu Brand")

    page.goto("/login")
    page.get_by_label("Username").fill("brandy")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Webhooks").click()
    page.wait_for_url(re.compile(r"/webhooks/$"))
    expect(page.get_by_text("No subscription yet")).to_be_visible()

    page.get_by_role("button", name="New subscription").click()
    page.wait_for_url(re.compile(r"/webhooks/new$"))
    page.get_by_label("Event", exact=True).select_option("package.status.transitioned")
    page.get_by_label("Target URL").fill(url)
    # Choosing another countdown swaps in its own fields (htmx).
    page.get_by_label("How the wait between attempts grows").select_option("linear")
    expect(page.get_by_label("Added to each next wait (seconds)")).to_be_visible()
    expect(page.get_by_label("Multiplied by")).to_have_count(0)
    page.get_by_label("First wait (seconds)").fill("45")
    page.get_by_label("Attempts before giving up").fill("6")
    page.get_by_label("Header name").first.fill("X-Brand-Token")
    page.get_by_label("Value", exact=True).first.fill("erp-123")
    figures = ux.check(page, "webhook form")
    assert figures["axe_violations"] == []
    assert figures["scroll_width"] <= figures["inner_width"]
    screenshot(page, "webhook-form")

    page.get_by_role("button", name="Create subscription").click()
    expect(page.get_by_role("heading", name="Subscription created")).to_be_visible()
    expect(page.locator("#toasts")).to_contain_text("Subscription created")
    secret = page.locator("#secret-key").input_value()
    assert secret.startswith("whsec_")
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    with live_server.session() as session:
        [subscription] = session.scalars(select(WebhookSubscription)).all()
        assert (subscription.event_type, subscription.target_url) == ("package.status.transitioned", url)
        assert subscription.retry_countdown_config == {"type": "linear", "interval": 45, "increment": 60,
                                                       "max_attempts": 6}
        assert subscription.additional_headers == {"X-Brand-Token": "erp-123"}
        assert secret not in subscription.secret_encrypted and crypto.decrypt(subscription.secret_encrypted) == secret
        subscription_id = subscription.id
    # The address already names the subscription: reloading shows it without the secret.
    page.wait_for_url(re.compile(rf"/webhooks/{subscription_id}$"))
    figures = ux.check(page, "secret shown once")
    assert figures["axe_violations"] == []
    screenshot(page, "webhook-secret-once")
    page.reload()
    # Titled by its event and URL, not by its number.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Package changed state")
    expect(page.get_by_role("heading", level=1)).to_contain_text(url)
    assert secret not in page.content()
    expect(page.locator("#secret-key")).to_have_count(0)

    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#toasts")).to_contain_text("Test event delivered")
    expect(page.locator("#delivery-log")).to_contain_text("Delivered")
    expect(page.locator("#delivery-log")).to_contain_text("Test event")
    expect(page.locator("#delivery-log")).to_contain_text("webhook.test")
    [headers] = seen
    assert headers["x-brand-token"] == "erp-123"
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-id"]
    with live_server.session() as session:
        [attempt] = session.scalars(select(DeliveryAttempt)).all()
        assert (attempt.subscription_id, attempt.status_code, attempt.succeeded) == (subscription_id, 204, True)
    figures = ux.check(page, "subscription with its delivery log")
    assert figures["axe_violations"] == []
    assert figures["scroll_width"] <= figures["inner_width"]
    screenshot(page, "webhook-delivery-log")

    page.get_by_role("link", name="← Webhooks").click()
    row = page.locator(f"#subscription-{subscription_id}")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("HTTP 204")
    figures = ux.check(page, "subscription list")
    assert figures["axe_violations"] == []
    assert csp_violations == []
