"""A brand manager's first successful delivery, on a tablet at both orientations, with the built-in inspector:
no server of their own, no dev flag, and the SSRF guard on. The taps are counted from the login page (goal: at
most 8), and every screen of the webhook console is checked with axe-core (0 violations) and for overflow.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts import auth
from portal.webhooks import inspector
from portal.webhooks.models import DeliveryAttempt, InspectedRequest

PASSWORD = "brand-pass-1"
TAP_GOAL = 8


class Taps:
    """Taps a person makes, counted (typing into a field that was tapped counts once, with the tap)."""

    def __init__(self):
        self.count = 0

    def __call__(self, locator) -> None:
        """Tap the element and count it."""
        locator.tap()
        self.count += 1


@pytest.fixture
def inspecting(live_server):
    """The served portal's built-in inspector listens on the served portal itself; private targets stay refused."""
    live_server.app.config["WEBHOOK_INSPECTOR_URL"] = live_server.url + "/webhooks/inspector/receive"
    assert not live_server.app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"]
    return live_server.app.config["WEBHOOK_INSPECTOR_URL"]


def _clean(figures: dict) -> None:
    """No axe violation, and nothing wider than the screen."""
    assert figures["axe_violations"] == [], figures["axe_violations"]
    assert figures["scroll_width"] <= figures["inner_width"], figures["sticking_out"]


def test_a_brand_manager_sees_a_first_delivery_succeed_in_at_most_8_taps(
        page, live_server, inspecting, ux, screenshot, csp_violations, context, viewport):
    with live_server.session() as session:
        auth.create_user(session, "brandy", PASSWORD, "brand_manager", [], full_name="Banu Brand")
    tap = Taps()

    page.goto("/login")
    tap(page.get_by_label("Username"))
    page.get_by_label("Username").fill("brandy")
    tap(page.get_by_label("Password"))
    page.get_by_label("Password").fill(PASSWORD)
    tap(page.get_by_role("button", name="Log in"))
    tap(page.get_by_role("link", name="Webhooks"))
    page.wait_for_url(re.compile(r"/webhooks/$"))
    expect(page.locator("#try-inspector")).to_be_visible()
    _clean(ux.check(page, "webhooks list, empty"))

    tap(page.get_by_role("button", name="Subscribe the built-in inspector"))
    page.wait_for_url(re.compile(r"/webhooks/new\?target=inspector$"))
    expect(page.get_by_label("Use the built-in inspector")).to_be_checked()
    _clean(ux.check(page, "new subscription to the inspector"))
    screenshot(page, "webhook-console-form")

    tap(page.get_by_role("button", name="Create subscription"))
    expect(page.get_by_role("heading", name="Subscription created")).to_be_visible()
    _clean(ux.check(page, "secret with its copy button"))
    screenshot(page, "webhook-console-secret")

    tap(page.get_by_role("button", name="Send a test event now"))
    expect(page.locator("#delivery-log")).to_contain_text("Delivered")
    expect(page.locator("#inspector-panel")).to_contain_text("Valid signature")
    assert tap.count <= TAP_GOAL
    first_delivery_taps = tap.count
    with live_server.session() as session:
        [attempt] = session.scalars(select(DeliveryAttempt)).all()
        [received] = session.scalars(select(InspectedRequest)).all()
        assert (attempt.succeeded, attempt.status_code) == (True, 200)
        assert received.verdict == "valid" and received.subscription_id == attempt.subscription_id
    expect(page.get_by_role("heading", level=1)).to_contain_text("All events")
    expect(page.get_by_role("heading", level=1)).to_contain_text("the built-in inspector")
    figures = _clean_and_return(ux.check(page, "subscription with a delivery and the inspector"))
    screenshot(page, "webhook-console-delivered")

    # The headers are behind a disclosure; the body is shown as indented JSON.
    page.locator("#inspector-panel summary").first.tap()
    expect(page.locator("#inspector-panel .header-table").first).to_contain_text("webhook-signature")
    expect(page.locator("#inspector-panel .received-body").first).to_contain_text('"type": "webhook.test"')
    _clean(ux.check(page, "inspector headers open"))

    # A sample of another event, from the same page.
    page.get_by_role("button", name="Send a sample Package shipped").tap()
    expect(page.locator("#toasts")).to_contain_text("delivered")
    expect(page.locator("#inspector-panel")).to_contain_text("Package shipped", timeout=10_000)

    # The signature self-test, opened from the received request.
    page.get_by_role("link", name="Check this signature yourself").first.tap()
    page.wait_for_url(re.compile(r"/webhooks/signature-check\?request=\d+$"))
    page.get_by_label("Secret").fill("whsec_" + "A" * 32)
    page.get_by_role("button", name="Check the signature").tap()
    expect(page.locator("#verdict")).to_contain_text("Wrong secret, or the body was changed")
    _clean(ux.check(page, "signature self-test"))

    page.goto("/webhooks/samples")
    page.get_by_text("Package ready for pickup", exact=True).tap()
    expect(page.locator("#sample-package-ready_for_customer_pickup pre")).to_contain_text(
        "PackageReadyForCustomerPickupWhispererEvent")
    _clean(ux.check(page, "sample payloads"))

    page.goto("/webhooks/inspector")
    expect(page.locator(".received")).to_have_count(2)
    _clean(ux.check(page, "inspector"))
    assert csp_violations == []
    ux.figures["first delivery"] = {"taps_from_login": first_delivery_taps, "goal": TAP_GOAL,
                                    "min_target_height": figures["min_target_height"]}
    print(f"\n{viewport}: first successful delivery in {first_delivery_taps} taps from the login page")


def _clean_and_return(figures: dict) -> dict:
    """_clean, then the figures."""
    _clean(figures)
    return figures


def test_the_secret_copy_button_copies_and_a_duplicate_is_refused_with_a_way_to_the_existing_one(
        page, live_server, inspecting, ux, context, csp_violations):
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    with live_server.session() as session:
        auth.create_user(session, "brandy", PASSWORD, "brand_manager", [], full_name="Banu Brand")
    page.goto("/login")
    page.get_by_label("Username").fill("brandy")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").tap()
    page.wait_for_url(re.compile(r"/packages$"))

    page.goto("/webhooks/new?target=inspector")
    page.get_by_role("button", name="Create subscription").tap()
    secret = page.locator("#secret-key").input_value()
    page.get_by_role("button", name="Copy").tap()
    expect(page.locator("#secret-key-copy-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    subscription_url = page.url

    page.goto("/webhooks/new?target=inspector")
    page.get_by_role("button", name="Create subscription").tap()
    expect(page.locator("#duplicate-warning")).to_contain_text("This subscription already exists.")
    _clean(ux.check(page, "duplicate warning"))
    page.get_by_role("button", name="Open the existing subscription").tap()
    page.wait_for_url(subscription_url)
    assert inspector.KEEP > 0 and csp_violations == []
