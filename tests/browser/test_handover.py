"""The counter-grade handover and one primary action per state, at both orientations on both databases."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.packages.states import State
from portal.sms import MemorySmsProvider

# Whatever the orientation, these are the screens people see: no axe finding, no horizontal scroll, 44 px targets.


class Interactions:
    """Counts what the member of staff does: each scan, typed code, key press or tap is one interaction."""

    def __init__(self, page):
        self.page = page
        self.count = 0

    def scan(self, text: str) -> None:
        """A hardware scanner types fast into the focused field and presses Enter: one interaction."""
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")
        self.count += 1

    def type(self, text: str) -> None:
        """Type into whatever has focus."""
        self.page.keyboard.type(text)
        self.count += 1

    def press_enter(self) -> None:
        """Press Enter."""
        self.page.keyboard.press("Enter")
        self.count += 1

    def tap(self, locator) -> None:
        """Tap with a finger."""
        locator.tap()
        self.count += 1


def last_code() -> str:
    """The code in the newest SMS the customer got."""
    return re.search(r"\b(\d{6})\b", MemorySmsProvider.outbox[-1].body).group(1)


def wrong(code: str) -> str:
    """A code of the same length that is certainly not this one."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


COUNT_TOASTS_JS = """
() => {
  if (window.toastsShown) { return; }
  window.toastsShown = [];
  new MutationObserver(changes => changes.forEach(change => change.addedNodes.forEach(node => {
    if (node.classList && node.classList.contains('toast')) { window.toastsShown.push(node.textContent); }
  }))).observe(document.getElementById('toasts'), {childList: true});
}
"""


def toasts_shown(page) -> list[str]:
    """Every toast the page has shown since COUNT_TOASTS_JS ran (toasts leave after a few seconds)."""
    return page.evaluate("window.toastsShown")


def assert_clean(ux, page, name: str, scope: str) -> None:
    """No axe violation, no horizontal scroll, no small or crowded target on this screen."""
    page.wait_for_timeout(400)  # Pico's colour transitions (a focused button) settle before axe reads colours
    figures = ux.check(page, name, scope)
    assert figures["axe_violations"] == [], figures["axe_violations"]
    assert figures["scroll_width"] <= figures["inner_width"], figures["sticking_out"]
    assert (figures["small_targets"], figures["crowded_commands"]) == ([], [])
    tidy(page)


def tidy(page) -> None:
    """Take away the empty style="" that axe and Playwright's screenshots leave on elements they looked at.

    htmx's settle copies an old element's style onto the swapped-in element of the same id, and the CSP
    (rightly) refuses an inline style: the page would report a violation the portal never caused.
    """
    page.evaluate("document.querySelectorAll('[style]').forEach(e => { if (!e.getAttribute('style')) "
                  "e.removeAttribute('style'); })")


def test_handover_with_a_wrong_code_a_lock_resends_and_delivery_back_to_the_scan_box(
        page, store, live_server, log_in, ux, screenshot, wait_until, csp_violations):
    live_server.app.config["OTP_RESEND_LIMIT"] = 20  # this test resends often; the limit has its own tests
    package = store.make_ready(store.package(state=State.PACKED, items=2))
    code = last_code()
    log_in(page, store)

    # From the home: the scanned order number opens the package straight on the handover.
    staff = Interactions(page)
    staff.scan(package["order_number"])
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    field = dialog.locator("#otp")
    expect(field).to_be_focused()
    name = dialog.locator(".handover-name")
    expect(name).to_be_visible()
    customer = name.inner_text()
    assert float(name.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 28
    for item in package["items"]:
        expect(dialog.locator(".handover-items")).to_contain_text(f"1 × {item['name']}")
    expect(dialog.locator(".otp-cell")).to_have_count(6)
    expect(dialog.locator("#otp-tries")).to_have_text("5 tries left.")
    assert_clean(ux, page, "handover dialog", "dialog[open]")
    screenshot(page, "handover-dialog", full_page=False)
    tidy(page)

    # A wrong code: the field clears, the tries left show, the package is unchanged.
    page.keyboard.type(wrong(code))
    expect(dialog.locator(".otp-cell").first).to_have_text(wrong(code)[0])
    page.keyboard.press("Enter")
    expect(dialog.locator("#otp-error")).to_have_text("Wrong code. 4 tries left.")
    expect(field).to_have_value("")
    expect(field).to_be_focused()
    expect(dialog.locator("#otp-tries")).to_have_text("4 tries left.")
    expect(dialog.locator(".otp-cell-filled")).to_have_count(0)
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP

    # Resend in the dialog, several times in a row: every answer shows a toast and a new "Code sent at".
    page.evaluate(COUNT_TOASTS_JS)
    for attempt in range(1, 4):
        before = dialog.locator("#dialog-code-sent-at").get_attribute("data-code-id")
        dialog.locator("#dialog-resend").tap()
        expect(dialog.locator("#dialog-code-sent-at")).not_to_have_attribute("data-code-id", before)
        wait_until(page, f"window.toastsShown.length === {attempt}")
        assert "A new code was sent" in toasts_shown(page)[-1]
        expect(page.locator("#toasts .toast").last).to_be_visible()
        expect(dialog).to_be_visible()
        code_id = dialog.locator("#dialog-code-sent-at").get_attribute("data-code-id")
        # The page behind the dialog has the same new line.
        expect(page.locator("#code-sent-at")).to_have_attribute("data-code-id", code_id)
        assert len(MemorySmsProvider.outbox) == 1 + attempt
    code = last_code()
    expect(dialog.locator("#otp-tries")).to_have_text("5 tries left.")

    # Five wrong codes lock it: "Send a new code" becomes the primary action, confirming is disabled.
    for _ in range(5):
        field.fill(wrong(code))
        field.press("Enter")
        expect(field).to_have_value("")
    expect(dialog.locator("#otp-error")).to_have_text("Wrong code. The code is now locked; send the customer a new code.")
    expect(dialog.get_by_role("button", name="Confirm delivery")).to_be_disabled()
    resend = dialog.locator("#dialog-resend")
    expect(resend).to_have_class(re.compile(r"\bresend-primary\b"))
    expect(resend).to_be_focused()
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert_clean(ux, page, "handover locked", "dialog[open]")
    screenshot(page, "handover-locked", full_page=False)
    tidy(page)

    # A new code unlocks it.
    resend.tap()
    expect(dialog.locator("#otp-error")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Confirm delivery")).to_be_enabled()
    code = last_code()

    # Close the dialog; resend on the page, several times in a row: a toast and a new line every time.
    dialog.get_by_role("button", name="Cancel").tap()
    expect(dialog).to_be_hidden()
    page.evaluate(COUNT_TOASTS_JS)  # still counting since the dialog's resends (same page)
    base = len(toasts_shown(page))
    for attempt in range(1, 4):
        before = page.locator("#code-sent-at").get_attribute("data-code-id")
        page.locator("#resend-code").tap()
        expect(page.locator("#code-sent-at")).not_to_have_attribute("data-code-id", before)
        wait_until(page, f"window.toastsShown.length === {base + attempt}")
        assert "A new code was sent" in toasts_shown(page)[-1]
    code = last_code()
    assert_clean(ux, page, "package ready for pickup", "main, header")
    screenshot(page, "handover-page")
    tidy(page)
    # However fast staff resend, the page's resends above stacked no second toast of the same text.
    assert page.locator("#toasts .toast", has_text="A new code was sent").count() <= 1
    # A repeated message counts on its one toast; three toasts at most, the oldest go first.
    page.evaluate("""() => ["One", "Two", "Three"].concat(Array(7).fill("Same")).forEach(message =>
      document.body.dispatchEvent(new CustomEvent("toast", {bubbles: true, detail: {message: message}})))""")
    expect(page.locator("#toasts .toast")).to_have_text(["Two", "Three", "Same (\u00d77)"])
    page.evaluate("document.getElementById('toasts').replaceChildren()")

    # Hand over: the primary action, the code as a scanner types it, Enter.
    page.locator("#primary-action").tap()
    expect(field).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    overlay = page.locator("#delivered-overlay")
    expect(overlay).to_be_visible()
    expect(overlay).to_contain_text(f"Delivered to {customer}")
    screenshot(page, "handover-delivered", full_page=False)
    tidy(page)
    assert store.state_of(package["id"]) == State.DELIVERED

    # A moment later: the home, with the cursor in the scan box for the next customer.
    page.wait_for_url(re.compile(r"/packages$"))
    expect(page.locator("#search")).to_be_focused()
    assert csp_violations == []


def test_hand_over_with_the_right_code_from_the_home_screen_is_three_interactions(page, store, log_in):
    package = store.make_ready(store.package(state=State.PACKED))
    code = last_code()
    log_in(page, store)

    staff = Interactions(page)
    staff.scan(package["order_number"])
    expect(page.locator("dialog#modal #otp")).to_be_focused()
    staff.type(code)
    staff.press_enter()
    expect(page.locator("#delivered-overlay")).to_be_visible()
    page.wait_for_url(re.compile(r"/packages$"))
    expect(page.locator("#search")).to_be_focused()
    assert staff.count == 3
    assert store.state_of(package["id"]) == State.DELIVERED


def test_one_primary_action_per_state_and_a_confirmation_that_names_the_consequence(
        page, store, log_in, ux, screenshot, csp_violations):
    waiting = store.package(state=State.WAITING)
    packed = store.package(state=State.PACKED)
    log_in(page, store)

    expected = {waiting["id"]: ("Pack", "Complete Packaging", 3), packed["id"]: ("Ready for pickup", None, 0)}
    for package_id, (label, vendor, more) in expected.items():
        page.goto(f"/packages/{package_id}")
        primary = page.locator("#primary-action")
        expect(primary).to_have_count(1)
        expect(primary.locator(".command-label")).to_have_text(label)
        if vendor:
            expect(primary.locator(".command-vendor")).to_have_text(vendor)
        expect(page.locator("#more-actions .command")).to_have_count(more)
        expect(page.locator("#package-actions .command:visible")).to_have_count(1)  # "More" starts closed

    # Waiting: the side commands are under "More"; packing without scanning asks first and says why.
    page.goto(f"/packages/{waiting['id']}")
    page.locator("#more-actions > summary").tap()
    expect(page.locator("#more-actions .command")).to_have_count(3)
    assert_clean(ux, page, "waiting with More open", "main, header")
    screenshot(page, "actions-more")
    tidy(page)
    page.locator("#more-actions .command", has_text="Pack without scanning").tap()
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#consequence")).to_contain_text("without checking a single item")
    assert_clean(ux, page, "confirm pack without scanning", "dialog[open]")
    screenshot(page, "actions-confirm", full_page=False)
    tidy(page)
    dialog.get_by_role("button", name="Cancel").tap()
    expect(dialog).to_be_hidden()
    assert store.state_of(waiting["id"]) == State.WAITING

    # Packed: "Ready for pickup" is one tap.
    page.goto(f"/packages/{packed['id']}")
    staff = Interactions(page)
    staff.tap(page.locator("#primary-action"))
    expect(page.locator("#package-status")).to_contain_text("Ready for Customer Pickup")
    assert staff.count == 1
    expect(page.locator("#primary-action .command-label")).to_have_text("Hand over")
    assert store.state_of(packed["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert csp_violations == []
