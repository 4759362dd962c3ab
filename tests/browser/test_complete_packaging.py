"""Complete Packaging at the packing table: every item's barcode is scanned into the modal."""
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

    page.get_by_role("button", name="Complete Packaging", exact=True).tap()
    dialog = page.locator("dialog#modal")
    expect(dialog.get_by_role("heading", name="Complete Packaging")).to_be_visible()
    fields = [dialog.get_by_label(item["name"]) for item in package["items"]]
    expect(fields[0]).to_be_focused()

    # The scanner types each barcode and presses Enter: Enter moves on while a field is still empty.
    page.keyboard.type(first["barcode"])
    page.keyboard.press("Enter")
    expect(fields[1]).to_be_focused()
    page.keyboard.type("8699999999999")  # the wrong item was picked
    page.keyboard.press("Enter")
    expect(fields[2]).to_be_focused()
    page.keyboard.type(third["barcode"])
    page.keyboard.press("Enter")  # every field filled: this Enter submits

    # The mismatch is named beside the fields, the modal stays, and the package has not moved.
    error = dialog.locator("#barcodes-error")
    expect(error).to_have_text(f"Barcode does not match {second['name']}.")
    expect(fields[1]).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator(f"#barcode_{second['order_item']}-error")).to_have_text(
        f"Not this item's barcode. Scan {second['name']} again.")
    expect(fields[0]).not_to_have_attribute("aria-invalid", "true")
    expect(fields[1]).to_be_focused()  # ready for the right item's scan, its text selected
    expect(fields[0]).to_have_value(first["barcode"])
    assert store.state_of(package["id"]) == State.WAITING
    screenshot(page, "modal-barcodes-error", full_page=False)

    page.keyboard.type(second["barcode"])
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text(f"Package {package['number']}")
    expect(page.locator("#package-status")).to_contain_text("Packed All Items")
    expect(page.locator("#package-history tbody tr").first).to_contain_text("Complete Packaging")
    assert store.state_of(package["id"]) == State.PACKED
    assert csp_violations == []
