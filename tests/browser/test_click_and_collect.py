"""Click & collect at the counter: make a packed order ready, then hand it over against the SMS code."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from playwright.sync_api import expect
from sqlalchemy import select

from portal.otp.models import PickupCode
from portal.packages.models import PackageLog
from portal.packages.states import State
from portal.sms import MemorySmsProvider


class Interactions:
    """Counts what the member of staff does: each scan, typed code, key press or tap is one interaction."""

    def __init__(self, page):
        self.page = page
        self.count = 0

    def scan(self, text: str) -> None:
        """A hardware scanner types into the focused field and presses Enter: one interaction."""
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")
        self.count += 1

    def type(self, text: str) -> None:
        """Type into whatever has focus, without tapping a field first."""
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


def test_staff_readies_a_package_and_hands_it_over_against_the_code(
        page, store, live_server, log_in, ux, screenshot, csp_violations):
    package = store.package(state=State.PACKED, items=2)
    other = store.package(state=State.WAITING)  # the list holds more than the one package

    # Start of the shift: the list opens with the search box ready for the scanner.
    log_in(page, store)
    expect(page.locator("#search")).to_be_focused()
    expect(page.locator(f"#package-row-{other['id']}")).to_be_visible()

    # Scan the order number: the packed package opens.
    staff = Interactions(page)
    staff.scan(package["order_number"])
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    expect(page.get_by_role("heading", name=f"Package {package['number']}")).to_be_visible()
    expect(page.locator("#package-status")).to_contain_text("Packed All Items")

    # One tap makes it ready: a toast, the chip changes in place, and the customer gets an SMS.
    page.evaluate("window.sameDocument = true")
    with page.expect_response(re.compile(r"/commands/ready-for-customer-pickup$")) as answer:
        staff.tap(page.get_by_role("button", name="Ready For Customer Pickup"))
    expect(page.locator("#toasts")).to_contain_text(f"Package {package['number']} is ready for pickup")
    # Only the package panel came back and was swapped in: no page, no reload.
    panel = answer.value.text()
    assert panel.lstrip().startswith('<section id="package-panel"') and "<html" not in panel
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator("#package-status")).to_contain_text("Ready for Customer Pickup")
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    assert len(MemorySmsProvider.outbox) == 1
    sms = MemorySmsProvider.outbox[0]
    assert package["order_number"] in sms.body and "Kadıköy Store" in sms.body
    code = re.search(r"\b(\d{6})\b", sms.body).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert staff.count == 2
    figures = ux.check(page, "detail after a command, with its toast")
    assert (figures["axe_violations"], figures["small_targets"], figures["crowded_commands"]) == ([], [], [])
    screenshot(page, "detail-ready")

    # The customer arrives. Back at the list, the whole handover is scan + Enter, the code, Enter.
    page.get_by_role("link", name="Packages", exact=True).first.tap()
    expect(page.locator("#search")).to_be_focused()
    form_loads = []
    page.on("request", lambda request: form_loads.append(request.url)
            if request.method == "GET" and "/commands/self-service-package-delivery" in request.url else None)
    handover = Interactions(page)
    handover.scan(package["order_number"])
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    expect(dialog).to_be_visible()
    code_field = dialog.get_by_label("Code from the customer's SMS")
    expect(code_field).to_be_focused()
    expect(code_field).to_have_attribute("inputmode", "numeric")
    expect(code_field).to_have_attribute("autocomplete", "one-time-code")

    # A wrong code: the error sits beside the field, the modal stays, nothing changes.
    handover.type(wrong)
    handover.press_enter()
    error = dialog.locator("#otp-error")
    expect(error).to_have_text("Wrong code. 4 tries left.")
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(code_field).to_have_attribute("aria-describedby", "otp-tries otp-error")
    expect(dialog).to_be_visible()
    assert handover.count == 3
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    with live_server.session() as session:
        pickup = session.scalar(select(PickupCode).where(PickupCode.package_id == package["id"]))
        assert (pickup.status, pickup.failed_attempts) == (PickupCode.ACTIVE, 1)
    screenshot(page, "modal-error", full_page=False)

    # The right code, typed straight into the still-focused field: delivered.
    expect(code_field).to_be_focused()
    handover.type(code)
    handover.press_enter()
    expect(dialog).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text(f"Package {package['number']} delivered.")
    # "Delivered to <name>" over the whole screen for a moment, then the home's scan box, focused.
    expect(page.locator("#delivered-overlay")).to_contain_text("Delivered to ")
    page.wait_for_url(re.compile(r"/packages$"))
    expect(page.locator("#search")).to_be_focused()
    assert handover.count == 5  # the three of a handover, plus two for the customer's mistyped code
    assert len(form_loads) == 1  # the modal's form was fetched once, not swapped again while the code was typed
    assert store.state_of(package["id"]) == State.DELIVERED

    # The history gained a row: from, to, command, who, and when in the store's time.
    with live_server.session() as session:
        log = session.scalars(select(PackageLog).where(PackageLog.package_id == package["id"])
                              .order_by(PackageLog.id.desc())).first()
        assert (log.from_state, log.to_state) == (State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED)
        when = log.created_at.astimezone(ZoneInfo("Europe/Istanbul")).strftime("%d %b %Y %H:%M")
        pickup = session.scalar(select(PickupCode).where(PickupCode.package_id == package["id"]))
        assert pickup.status == PickupCode.USED
    page.goto(f"/packages/{package['id']}")
    expect(page.locator("#package-status")).to_contain_text("Delivered")
    newest = page.locator("#package-history tbody tr").first
    expect(newest).to_contain_text("Ready for Customer Pickup")
    expect(newest).to_contain_text("Delivered")
    expect(newest).to_contain_text("Self Service Package Delivery")
    expect(newest).to_contain_text(store.username)
    expect(newest).to_contain_text(when)
    expect(page.locator("#package-history tbody tr")).to_have_count(2)
    screenshot(page, "detail-delivered")
    assert csp_violations == []


def test_a_code_typed_the_instant_the_error_shows_still_goes_through_htmx(page, store, log_in, live_server):
    package = store.make_ready(store.package(state=State.PACKED))
    code = re.search(r"\b(\d{6})\b", MemorySmsProvider.outbox[-1].body).group(1)
    page.clock.install()
    log_in(page, store)
    page.goto(f"/packages/{package['id']}?handover=1")
    code_field = page.locator("dialog#modal").get_by_label("Code from the customer's SMS")
    expect(code_field).to_be_focused()
    page.evaluate("window.sameDocument = true")

    # A tablet too busy to run its timers: whatever htmx leaves to a timer after a swap does not happen.
    page.clock.pause_at(int(page.evaluate("Date.now()")) + 1000)
    page.keyboard.type(f"{(int(code) + 1) % 1_000_000:06d}")
    page.keyboard.press("Enter")
    expect(page.locator("#otp-error")).to_have_text("Wrong code. 4 tries left.")
    expect(code_field).to_be_focused()

    # The right code straight away: the swapped-in form already posts through htmx, so the page stays.
    with page.expect_response(re.compile(r"/commands/self-service-package-delivery$")) as answer:
        page.keyboard.type(code)
        page.keyboard.press("Enter")
    assert answer.value.request.headers.get("hx-request") == "true"
    expect(page.locator("#package-status")).to_contain_text("Delivered")
    assert page.evaluate("window.sameDocument") is True
    assert store.state_of(package["id"]) == State.DELIVERED
    page.clock.resume()
