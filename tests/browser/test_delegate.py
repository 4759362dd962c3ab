"""Delegate collector on the tablet: the customer calls, staff name a delegate in the handover dialog (the delegate
is texted a code of their own), the Ready tab's card and the package page say who collects, and the delegate's
code hands the package over. Both orientations, both databases, axe 0, no horizontal scroll, 44 px targets."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.packages.delegate_models import PackageDelegate
from portal.packages.states import State
from portal.sms import MemorySmsProvider
from tests.browser.test_handover import Interactions, assert_clean, tidy

DELEGATE_PHONE = "+905329876543"


def code_texted_to(phone: str) -> str:
    """The code in the newest SMS to this number that carries one."""
    for message in reversed(MemorySmsProvider.outbox):
        match = re.search(r"(?:code is|is) (\d{6})\.", message.body) if message.to == phone else None
        if match:
            return match.group(1)
    raise AssertionError(f"no code was texted to {phone}")


def delegates_of(store, package_id: int) -> list[tuple[str, str]]:
    """The package's delegates as stored: (name, status), oldest first."""
    with store.live.session() as session:
        return [(row.name, row.status) for row in session.query(PackageDelegate)
                .filter(PackageDelegate.package_id == package_id).order_by(PackageDelegate.id)]


def test_name_a_delegate_in_the_handover_then_their_code_delivers(
        page, store, log_in, ux, screenshot, csp_violations):
    package = store.make_ready(store.package(state=State.PACKED))
    log_in(page, store)

    # From the home screen: the order number scanned opens the handover; "Someone else collects" unfolds the form
    # with the cursor in the name; Enter moves to the phone; the confirmation and "Send them a code".
    staff = Interactions(page)
    staff.scan(package["order_number"])
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#otp")).to_be_focused()
    staff.tap(dialog.locator("#delegate-toggle"))
    expect(dialog.locator("#delegate-name")).to_be_focused()
    assert_clean(ux, page, "delegate form", "dialog[open]")
    screenshot(page, "delegate-form", full_page=False)
    tidy(page)
    staff.type("Deniz Yılmaz")
    staff.press_enter()
    expect(dialog.locator("#delegate-phone")).to_be_focused()
    staff.type("+90 532 987 65 43")
    staff.tap(dialog.locator("label.delegate-check"))
    staff.tap(dialog.locator("#delegate-submit"))
    expect(dialog.locator("#delegate-who")).to_contain_text("Deniz Yılmaz")
    expect(dialog.locator("#delegate-who")).to_contain_text("+90********43")
    expect(dialog.locator(".otp-label")).to_have_text("Code from the customer's or the delegate's SMS")
    assert staff.count == 7  # scan 1 + unfold 1 + name and Enter 2 + phone 1 + confirm 1 + send 1
    assert delegates_of(store, package["id"]) == [("Deniz Yılmaz", PackageDelegate.ACTIVE)]
    assert_clean(ux, page, "handover with a delegate", "dialog[open]")
    screenshot(page, "delegate-handover", full_page=False)
    tidy(page)

    # The delegate arrives: their own code, typed and confirmed, delivers; the overlay names them.
    staff = Interactions(page)
    dialog.locator("#otp").focus()
    staff.type(code_texted_to(DELEGATE_PHONE))
    staff.press_enter()
    expect(page.locator("#delivered-overlay")).to_contain_text("Delivered to Deniz Yılmaz")
    page.wait_for_url(re.compile(r"/packages$"))
    assert store.state_of(package["id"]) == State.DELIVERED
    assert delegates_of(store, package["id"]) == [("Deniz Yılmaz", PackageDelegate.COLLECTED)]
    assert csp_violations == []


def test_the_ready_tab_and_the_package_page_show_the_delegate_and_a_removal_kills_the_code(
        page, store, log_in, ux, screenshot, csp_violations):
    package = store.make_ready(store.package(state=State.PACKED))
    log_in(page, store)

    # The package page's box opens the handover dialog with the form unfolded; a refusal keeps what was typed.
    page.goto(f"/packages/{package['id']}")
    page.locator("#delegate-open").tap()
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#delegate-name")).to_be_focused()
    page.keyboard.type("Ece Kaya")
    dialog.locator("#delegate-phone").fill("+90 530 111 22 99")
    dialog.locator("#delegate-submit").tap()
    expect(dialog.locator("#delegate-error")).to_contain_text("Confirm")
    expect(dialog.locator("#delegate-name")).to_have_value("Ece Kaya")
    assert_clean(ux, page, "delegate form refused", "dialog[open]")
    screenshot(page, "delegate-refused", full_page=False)
    tidy(page)
    dialog.locator("label.delegate-check").tap()
    dialog.locator("#delegate-submit").tap()
    expect(dialog.locator("#delegate-who")).to_contain_text("Ece Kaya")
    dialog.locator("[data-close-modal]").first.tap()
    expect(page.locator("#delegate-box")).to_contain_text("Ece Kaya")
    assert_clean(ux, page, "package page with a delegate", "main, header")
    screenshot(page, "delegate-package-page")
    tidy(page)

    # The Ready tab's card says who collects.
    page.goto("/packages?tab=pickup")
    card = page.locator(f"#package-row-{package['id']}")
    expect(card.locator(".queue-delegate")).to_have_text("Collects: Ece Kaya")
    assert_clean(ux, page, "pickup tab with a delegate", "main, header")
    screenshot(page, "delegate-queue-card")
    tidy(page)

    # Removing the delegate in the handover kills their code; the customer's still works.
    delegate_code = code_texted_to("+905301112299")
    card.locator(".queue-card-link").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog.locator("#delegate-remove").tap()
    expect(dialog.locator("#delegate-who")).to_have_count(0)
    assert delegates_of(store, package["id"]) == [("Ece Kaya", PackageDelegate.REMOVED)]
    dialog.locator("#otp").focus()
    page.keyboard.type(delegate_code)
    page.keyboard.press("Enter")
    expect(dialog.locator("#otp-error")).to_be_visible()
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert csp_violations == []
