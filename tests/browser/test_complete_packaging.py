"""Complete Packaging at the packing table: the command opens the packing screen, where every item is scanned."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.packages.states import State


def test_scanning_every_barcode_completes_packaging_and_a_wrong_one_is_caught(
        page, store, log_in, screenshot, csp_violations):
    package = store.package(state=State.WAITING, items=3)
    first, second, third = package["items"]
    log_in(page, store)
    page.keyboard.type(package["number"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))

    page.locator("#primary-action").tap()  # "Pack" (Complete Packaging), the package's one primary action
    page.wait_for_url(re.compile(rf"/packages/{package['id']}/pack$"))
    expect(page.get_by_role("heading", name=f"Pack {package['number']}")).to_be_visible()
    field = page.get_by_label("Scan the items, in any order")
    expect(field).to_be_focused()

    # The scanner types each barcode and presses Enter, in the order the list shows them.
    page.keyboard.type(first["barcode"])
    page.keyboard.press("Enter")
    page.keyboard.type("8699999999999")  # the wrong item was picked
    page.keyboard.press("Enter")
    expect(page.locator("#packing-feedback")).to_have_text("8699999999999 is not in this package.")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#packing-counter")).to_have_text("1 of 3 items")
    assert store.state_of(package["id"]) == State.WAITING

    for item in (second, third):
        page.keyboard.type(item["barcode"])
        page.keyboard.press("Enter")
    expect(page.locator("#packing-counter")).to_have_text("3 of 3 items")
    page.get_by_role("button", name="All ticked: finish packing").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    expect(page.locator(".flashes")).to_contain_text(f"Package {package['number']}")
    expect(page.locator("#package-status")).to_contain_text("Packed All Items")
    expect(page.locator("#package-history tbody tr").first).to_contain_text("Complete Packaging")
    assert store.state_of(package["id"]) == State.PACKED
    assert csp_violations == []
