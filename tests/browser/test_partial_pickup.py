"""Partial pickup at the counter (issue 9): the customer refuses an item, or every item, in the handover dialog.

Both orientations, both databases: the refused line is marked with a reason, the confirm button says what it
will do, the rest is delivered and the refused item goes to a refund package in Packed for Refund; refusing
every item asks for a confirmation and delivers nothing. axe finds nothing, targets are 44 px, nothing scrolls
sideways, and the journey's interactions are counted.
"""
from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.packages.models import Package, PackageItem
from portal.packages.states import State
from tests.browser.test_handover import Interactions, assert_clean, last_code, tidy


def with_quantity(live_server, package: dict, index: int, quantity: int) -> None:
    """Give one line of a package several units."""
    with live_server.session() as session:
        session.get(PackageItem, package["items"][index]["id"]).quantity = quantity
        session.commit()


def refund_of(live_server, package: dict) -> tuple[int, list[tuple[int, int]]] | None:
    """The state and (order item, units) of the package split off for refund, or None."""
    with live_server.session() as session:
        refund = session.scalar(select(Package).where(Package.number == f"{package['number']}-R1"))
        return (refund.state, [(i.order_item, i.quantity) for i in refund.items]) if refund else None


def test_one_refused_item_is_split_off_for_refund_and_the_rest_delivered(page, store, live_server, log_in, ux,
                                                                         screenshot, csp_violations):
    package = store.package(state=State.PACKED, items=3)
    with_quantity(live_server, package, 0, 2)
    store.make_ready(package)
    code = last_code()
    log_in(page, store)

    staff = Interactions(page)
    staff.scan(package["order_number"])
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#otp")).to_be_focused()
    staff.type(code)
    confirm = dialog.locator("button[type=submit].confirm")
    expect(confirm).to_have_text("Confirm delivery")
    expect(dialog.locator("[data-refuse-line]").first).to_be_hidden()  # closed: a plain handover looks as before

    staff.tap(dialog.locator("#refuse-toggle"))
    lines = dialog.locator("[data-refuse-line]")
    expect(lines).to_have_count(3)
    refused = lines.nth(1)
    staff.tap(refused.locator(".refuse-choice", has_text="Damaged"))
    expect(refused).to_have_class(re.compile("refuse-line-refused"))
    expect(confirm).to_have_text("Deliver the rest")
    expect(dialog.locator("#refuse-all")).to_be_hidden()
    expect(lines.nth(0).locator("input[type=number]")).to_be_hidden()  # shown once the line is refused
    assert_clean(ux, page, "handover with a refused item", "dialog[open]")
    screenshot(page, "partial-pickup-refused", full_page=False)
    tidy(page)

    staff.tap(confirm)
    expect(page.locator("#delivered-overlay")).to_be_visible()
    assert store.state_of(package["id"]) == State.DELIVERED
    assert refund_of(live_server, package) == (State.PACKED_FOR_REFUND, [(package["items"][1]["order_item"], 1)])
    # Scan, code, open the refusals, the reason, confirm: two taps more than a plain handover.
    assert staff.count == 5
    page.wait_for_url(re.compile(r"/packages$"))

    # The package's page says what was refused and links the refund package.
    page.goto(f"/packages/{package['id']}")
    record = page.locator("#handover-record")
    expect(record).to_contain_text("Damaged")
    expect(record.get_by_role("link", name=f"{package['number']}-R1")).to_be_visible()
    assert_clean(ux, page, "package page after a partial pickup", "main, header")
    screenshot(page, "partial-pickup-record")
    assert csp_violations == []


def test_every_item_refused_asks_for_a_confirmation_and_delivers_nothing(page, store, live_server, log_in, ux,
                                                                         screenshot, csp_violations):
    package = store.make_ready(store.package(state=State.PACKED, items=2))
    code = last_code()
    log_in(page, store)
    page.goto(f"/packages/{package['id']}?handover=1")
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#otp")).to_be_focused()
    page.keyboard.type(code)

    dialog.locator("#refuse-toggle").tap()
    lines = dialog.locator("[data-refuse-line]")
    lines.nth(0).locator(".refuse-choice", has_text="Not found").tap()
    expect(dialog.locator("#refuse-all")).to_be_hidden()
    lines.nth(1).locator(".refuse-choice", has_text="Changed mind").tap()
    confirm = dialog.locator("button[type=submit].confirm")
    expect(dialog.locator("#refuse-all")).to_be_visible()
    expect(confirm).to_have_text("Refuse the whole package")
    assert_clean(ux, page, "full refusal", "dialog[open]")
    screenshot(page, "partial-pickup-full-refusal", full_page=False)
    tidy(page)

    # Without the tick the server asks again and nothing changes; the choices and the confirmation stay.
    confirm.tap()
    expect(dialog.locator("#refusal-error")).to_contain_text("Confirm the full refusal")
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    expect(dialog.locator("#refuse-all")).to_be_visible()
    assert_clean(ux, page, "full refusal asked again", "dialog[open]")
    dialog.locator("#otp").fill(code)
    dialog.locator(".refuse-confirm").tap()
    expect(dialog.locator("#confirm-full")).to_be_checked()
    dialog.locator("button[type=submit].confirm").tap()

    expect(dialog).to_be_hidden()
    expect(page.locator("#package-status")).to_contain_text("Packed for Refund")
    assert store.state_of(package["id"]) == State.PACKED_FOR_REFUND
    assert refund_of(live_server, package) is None  # nothing split off: the whole package is refused
    assert csp_violations == []
