"""Manager override at the counter: the handover dialog's "Hand over without a code (manager)" path.

Both orientations, both databases: staff cannot do it alone, a wrong manager password is refused in the
dialog, a manager's login on the tablet hands the package over; axe finds nothing, nothing scrolls sideways.
"""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.accounts import auth
from portal.packages.states import State
from tests.browser.test_handover import assert_clean, tidy

MANAGER_PASSWORD = "manager-horse-9"


def test_staff_hand_over_without_a_code_with_a_managers_login(page, store, live_server, log_in, ux, screenshot,
                                                              csp_violations):
    with live_server.session() as session:
        auth.create_user(session, "mert", MANAGER_PASSWORD, "brand_manager", full_name="Mert Demir")
    package = store.make_ready(store.package(state=State.PACKED, items=1))
    log_in(page, store)
    page.keyboard.type(package["order_number"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#otp")).to_be_focused()

    # The secondary path, closed at first; opened it asks for a reason, the ID check and a manager's login.
    toggle = dialog.get_by_role("button", name="Hand over without a code (manager)")
    expect(toggle).to_be_visible()
    expect(dialog.locator("#override-form")).to_be_hidden()
    toggle.tap()
    form = dialog.locator("#override-form")
    expect(form).to_be_visible()
    assert_clean(ux, page, "override open", "dialog[open]")

    # Without a manager: refused in the dialog, nothing changes.
    form.get_by_label("Customer lost the SMS").check()
    form.get_by_label(re.compile("I checked the customer's ID")).check()
    form.get_by_role("button", name="Hand over without a code").tap()
    expect(dialog.locator("#override-error")).to_contain_text("Only a manager can hand over without a code")
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP

    # A wrong manager password: refused, still in the dialog with the override open.
    form = dialog.locator("#override-form")
    expect(form).to_be_visible()
    form.get_by_label("Customer lost the SMS").check()
    form.get_by_label(re.compile("I checked the customer's ID")).check()
    form.get_by_label("Manager's username").fill("mert")
    form.get_by_label("Manager's password").fill("not-the-password")
    form.get_by_role("button", name="Hand over without a code").tap()
    expect(dialog.locator("#override-error")).to_have_text("Wrong manager username or password.")
    expect(dialog.locator("#override-error")).to_be_focused()  # not the code field: the answer is read out
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert_clean(ux, page, "override refused", "dialog[open]")
    screenshot(page, "override-refused", full_page=False)
    tidy(page)

    # The manager types their login: delivered, the overlay, then back to the scan box.
    form = dialog.locator("#override-form")
    form.get_by_label("Phone out of battery").check()
    form.get_by_label(re.compile("I checked the customer's ID")).check()
    form.get_by_label("Manager's username").fill("mert")
    form.get_by_label("Manager's password").fill(MANAGER_PASSWORD)
    form.get_by_role("button", name="Hand over without a code").tap()
    expect(page.locator("#delivered-overlay")).to_be_visible()
    assert store.state_of(package["id"]) == State.DELIVERED
    page.wait_for_url(re.compile(r"/packages$"))
    assert csp_violations == []


def test_a_store_that_switched_it_off_shows_no_override(page, store, live_server, log_in):
    with live_server.session() as session:
        from portal.packages import override
        override.set_store_allowed(session, store.store_id, False)
    package = store.make_ready(store.package(state=State.PACKED, items=1))
    log_in(page, store)
    page.goto(f"/packages/{package['id']}?handover=1")
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#otp")).to_be_visible()
    expect(dialog.locator("#override")).to_have_count(0)
