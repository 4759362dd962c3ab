"""QR handover in the browser: the customer's page from the SMS link (a phone, and the tablet sizes), the staff's
scanner typing the customer's QR code into the scan box (handover opens with the code filled in, one tap
delivers), the same QR code replayed after delivery, and another package's QR code scanned into an open handover.

Both orientations, both databases; axe finds nothing, nothing scrolls sideways, the CSP is never violated.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.packages import customer_link
from portal.packages.states import State
from portal.sms import MemorySmsProvider
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_handover import assert_clean, tidy

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def linked(live_server):
    """SMS sent outside a request (the test's make_ready) carry the live server's link too."""
    live_server.app.config["CUSTOMER_LINK_BASE_URL"] = live_server.url


def sms_link(package: dict) -> tuple[str, str, str]:
    """The newest SMS's code, its customer page path and the QR code's content."""
    body = MemorySmsProvider.outbox[-1].body
    code = re.search(r" is (\d{6})\.", body).group(1)
    token = re.search(r"/c/([A-Z2-7]+)", body).group(1)
    return code, customer_link.PATH + token, customer_link.qr_payload(token)


def scan(page, content: str) -> None:
    """The scanner types a code and Enter into the focused field, as a keyboard would."""
    page.keyboard.type(content)
    page.keyboard.press("Enter")


def test_a_scanned_customer_qr_opens_the_handover_filled_in_and_one_tap_delivers(
        page, store, live_server, linked, log_in, ux, screenshot, csp_violations):
    with live_server.session() as session:
        from portal.stores.models import StockLocation

        session.get(StockLocation, store.store_id).opening_hours = "Mon-Sat 10:00-22:00"
        session.commit()
    package = store.make_ready(store.package(state=State.PACKED, items=2))
    code, _path, content = sms_link(package)
    log_in(page, store)

    # The home's scan box: the scanner types the QR code's content and Enter (no tap).
    scan(page, content)
    # The token opened the dialog and then left the address bar (and the tablet's history).
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#code-from-qr")).to_be_visible()
    expect(dialog.locator("#otp")).to_have_value(code)
    expect(dialog.locator(".otp-cell-filled")).to_have_count(6)
    assert_clean(ux, page, "handover from qr", "dialog[open]")
    screenshot(page, "qr-handover-filled", full_page=False)
    tidy(page)

    # One tap: Confirm delivery. The usual overlay, then back to the scan box.
    dialog.get_by_role("button", name="Confirm delivery").tap()
    expect(page.locator("#delivered-overlay")).to_be_visible()
    assert store.state_of(package["id"]) == State.DELIVERED
    page.wait_for_url(re.compile(r"/packages$"))
    expect(page.locator("#search")).to_be_focused()

    # The same QR code again: refused in the scan box, nothing opens.
    scan(page, content)
    expect(page.locator("#scan-error")).to_have_text(
        f"This QR code was already used: package {package['number']} was delivered.")
    assert re.search(r"/packages(\?.*)?$", page.url)
    assert_clean(ux, page, "qr replayed", "main")
    screenshot(page, "qr-replayed", full_page=False)
    tidy(page)

    # A forged one: refused too.
    page.locator("#search").fill("")
    scan(page, customer_link.QR_PREFIX + "A" * 37)
    expect(page.locator("#scan-error")).to_have_text("This QR code is not valid. Ask the customer for the code in "
                                                     "their SMS.")
    assert csp_violations == []


def test_another_packages_qr_in_an_open_handover_is_refused_then_the_right_one_fills_the_code(
        page, store, live_server, linked, log_in, ux, screenshot, csp_violations):
    first = store.make_ready(store.package(state=State.PACKED, items=1))
    code, _path, own = sms_link(first)
    second = store.make_ready(store.package(state=State.PACKED, items=1))
    _code2, _path2, other = sms_link(second)
    log_in(page, store)
    scan(page, first["order_number"])
    page.wait_for_url(re.compile(rf"/packages/{first['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#otp")).to_be_focused()

    # The scanner types the other package's QR code into the code field: its letters never reach the field,
    # and the dialog says whose it is; no try is spent.
    scan(page, other)
    expect(dialog.locator("#otp-error")).to_have_text(
        f"This QR code is for another package ({second['number']}), not this one.")
    expect(dialog.locator("#otp")).to_have_value("")
    expect(dialog.locator("#otp-tries")).to_have_text("5 tries left.")
    assert_clean(ux, page, "qr of another package", "dialog[open]")
    screenshot(page, "qr-other-package", full_page=False)
    tidy(page)

    # The customer's own QR code fills the code in; Confirm delivers.
    dialog.locator("#otp").focus()
    scan(page, own)
    expect(dialog.locator("#otp")).to_have_value(code)
    dialog.get_by_role("button", name="Confirm delivery").tap()
    expect(page.locator("#delivered-overlay")).to_be_visible()
    assert store.state_of(first["id"]) == State.DELIVERED
    assert store.state_of(second["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert csp_violations == []


def test_the_customer_page_on_a_phone_and_a_tablet_and_after_delivery(
        page, new_context, store, live_server, linked, ux, screenshot, csp_violations):
    with live_server.session() as session:
        from portal.stores.models import StockLocation

        location = session.get(StockLocation, store.store_id)
        location.address = "Caferağa Mah. Moda Cad. No: 12"
        location.opening_hours = "Mon-Sat 10:00-22:00\nSun 12:00-20:00"
        session.commit()
    package = store.make_ready(store.package(state=State.PACKED, items=2))
    code, path, _content = sms_link(package)

    phone = new_context(viewport=PHONE, has_touch=True, is_mobile=True, base_url=live_server.url,
                        locale="en-GB", timezone_id="Europe/Istanbul")
    phone.set_default_timeout(TIMEOUT_MS)
    for name, customer in (("phone", phone.new_page()), ("tablet", page)):
        customer.on("console", lambda msg: csp_violations.append(msg.text)
                    if "Content Security Policy" in msg.text else None)
        customer.goto(path)
        expect(customer.get_by_role("heading", name="Your pickup code")).to_be_visible()
        expect(customer.locator("#pickup-code")).to_have_text(re.compile(code[:3] + r"\s*" + code[3:]))
        expect(customer.get_by_role("img", name="QR code of your pickup code")).to_be_visible()
        expect(customer.locator("#store-name")).to_have_text("Kadıköy Store")
        expect(customer.locator("#store-address")).to_have_text("Caferağa Mah. Moda Cad. No: 12, Istanbul")
        expect(customer.locator("#opening-hours li")).to_have_text(["Mon-Sat 10:00-22:00", "Sun 12:00-20:00"])
        expect(customer.locator("#pick-up-by")).to_contain_text("Pick up by")
        body = customer.locator("body").inner_text()
        for private in (package["number"], package["order_number"], package["items"][0]["name"]):
            assert private not in body
        qr = customer.locator(".qr svg").bounding_box()
        assert qr["width"] >= 200 and qr["width"] <= customer.viewport_size["width"]
        figures = ux.check(customer, f"customer page {name}", "main")
        assert figures["axe_violations"] == [], figures["axe_violations"]
        assert figures["scroll_width"] <= figures["inner_width"], figures["sticking_out"]
        screenshot(customer, f"qr-customer-page-{name}")

    # Delivered: the link shows one plain page, nothing of the order.
    with live_server.session() as session:
        from portal.packages import commands

        commands.run_command(session, package["id"], slug="self-service-package-delivery", user_id=None,
                             store_ids=None, params={"otp": code})
    gone = phone.new_page()
    response = gone.goto(path)
    assert response.status == 410
    expect(gone.get_by_role("heading", name="This link is not valid any more")).to_be_visible()
    assert code not in gone.content() and "Kadıköy" not in gone.content()
    figures = ux.check(gone, "customer page gone", "main")
    assert figures["axe_violations"] == [], figures["axe_violations"]
    screenshot(gone, "qr-customer-page-gone")
    assert csp_violations == []
