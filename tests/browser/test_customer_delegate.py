"""The customer names a delegate from the customer page, in the browser: a phone and the tablet's two orientations,
real CSRF, the CSP. The delegate's SMS link opens a page with their own code; removing them ends it.

Taps from the customer page (the SMS link opened): "Someone else collects for me" 1, name field 2, phone field 3,
the confirmation box 4, "Send them a code" 5; removing is 1 tap. Axe finds nothing, nothing scrolls sideways,
every target is 44 px at least.
"""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.packages.states import State
from portal.sms import MemorySmsProvider
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_qr_handover import PHONE, linked, sms_link  # noqa: F401 (linked is a fixture)


def assert_clean(ux, screen, name: str) -> None:
    """No axe violation, no sideways scroll, no target under 44 px."""
    figures = ux.check(screen, name, "main")
    assert figures["axe_violations"] == [], figures["axe_violations"]
    assert figures["scroll_width"] <= figures["inner_width"], figures["sticking_out"]
    assert figures["min_target_height"] >= 44 or not figures["targets"], figures["small_targets"]


def test_the_customer_names_a_delegate_who_gets_their_own_page_then_removes_them(
        page, new_context, store, live_server, linked, ux, screenshot, csp_violations):  # noqa: F811
    package = store.make_ready(store.package(state=State.PACKED, items=1))
    code, path, _content = sms_link(package)
    phone = new_context(viewport=PHONE, has_touch=True, is_mobile=True, base_url=live_server.url, locale="en-GB")
    phone.set_default_timeout(TIMEOUT_MS)
    for name, customer in (("phone", phone.new_page()), ("tablet", page)):
        customer.on("console", lambda msg: csp_violations.append(msg.text)
                    if "Content Security Policy" in msg.text else None)
        customer.goto(path)
        expect(customer.locator("#collector-now")).to_have_text("Only you, with the code above.")
        customer.get_by_text("Someone else collects for me").tap()  # 1
        # Forgetting the confirmation: a plain message at the box, nothing sent.
        sent = len(MemorySmsProvider.outbox)
        customer.get_by_label("Their name").fill("Ayse Yilmaz")
        customer.get_by_label("Their mobile number").fill("+90 532 777 88 99")
        customer.get_by_role("button", name="Send them a code").tap()
        expect(customer.locator("#delegate-confirm-error")).to_have_text(
            "Tick the box to confirm this person may collect your order.")
        assert len(MemorySmsProvider.outbox) == sent
        assert_clean(ux, customer, f"customer delegate error {name}")
        screenshot(customer, f"customer-delegate-error-{name}")
        customer.get_by_label("I allow this person to collect my order.").tap()  # 4 (name and phone kept: 2, 3)
        customer.get_by_role("button", name="Send them a code").tap()  # 5
        expect(customer.locator("#collector-done")).to_contain_text("They were sent an SMS with a code of their own.")
        expect(customer.locator("#collector-now")).to_have_text(
            "You, or Ayse Y. (+90********99) with a code of their own.")
        assert_clean(ux, customer, f"customer delegate named {name}")
        screenshot(customer, f"customer-delegate-named-{name}")

        message = MemorySmsProvider.outbox[-1]
        assert message.to == "+905327778899"
        their_code = re.search(r"Your pickup code is (\d+)\.", message.body).group(1)
        their_path = re.search(r"(/c/[A-Z2-7]+)", message.body).group(1)
        assert their_code != code
        delegate_page = phone.new_page()
        delegate_page.goto(their_path)
        expect(delegate_page.locator("#pickup-code")).to_have_text(
            re.compile(their_code[:3] + r"\s*" + their_code[3:]))
        expect(delegate_page.locator("#for-delegate")).to_be_visible()
        expect(delegate_page.locator("#collector")).to_have_count(0)
        assert_clean(ux, delegate_page, f"delegate page {name}")
        screenshot(delegate_page, f"customer-delegate-own-page-{name}")

        customer.get_by_role("button", name="Ayse Y. no longer collects").tap()  # removing: 1 tap
        expect(customer.locator("#collector-done")).to_contain_text("They can no longer collect your order")
        expect(customer.locator("#collector-now")).to_have_text("Only you, with the code above.")
        assert delegate_page.goto(their_path).status == 410
        delegate_page.close()
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert csp_violations == []
