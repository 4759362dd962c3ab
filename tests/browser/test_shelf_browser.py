"""Pickup shelf slots on the tablet: ready → the slot scanned → shown in the handover and on the queue card →
delivered frees it; the shelf view with a move and slot management. Both orientations, both databases, axe 0."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.accounts import auth
from portal.packages import shelf
from portal.packages.shelf_models import ShelfAssignment
from portal.packages.states import State
from tests.browser.test_handover import Interactions, assert_clean, last_code, tidy


def slots(store, *labels: str) -> dict[str, dict]:
    """Shelf slots of the test store: label -> {"id", "barcode"}."""
    made = {}
    with store.live.session() as session:
        for label in labels:
            slot = shelf.create_slot(session, store.store_id, label=label, store_ids=None)
            made[label] = {"id": slot.id, "barcode": slot.barcode}
    return made


def slot_of(store, package_id: int) -> str | None:
    """The label of the package's current slot, as stored."""
    with store.live.session() as session:
        held = shelf.current(session, package_id)
        return held.slot.label if held else None


def test_ready_then_scan_a_slot_shown_in_queue_and_handover_and_delivery_frees_it(
        page, store, log_in, ux, screenshot, csp_violations):
    made = slots(store, "A1", "A2")
    package = store.package(state=State.PACKED, items=2)
    log_in(page, store)
    page.goto(f"/packages/{package['id']}")

    # Ready for pickup is still one tap; the slot's scan field then has the focus, and one scan puts it there.
    staff = Interactions(page)
    staff.tap(page.locator("#primary-action"))
    expect(page.locator("#package-status")).to_contain_text("Ready for Customer Pickup")
    expect(page.locator("#shelf-barcode")).to_be_focused()
    staff.scan(made["A1"]["barcode"])
    expect(page.locator("#shelf-current")).to_contain_text("A1")
    assert staff.count == 2  # ready 1 + slot 1
    assert slot_of(store, package["id"]) == "A1"
    # A1 is taken now: the pick list says so and will not offer it to another package.
    assert_clean(ux, page, "package on its slot", "main, header")
    screenshot(page, "shelf-package-page")
    tidy(page)

    # The queue card says where the package is.
    page.goto("/packages?tab=pickup")
    card = page.locator(f"#package-row-{package['id']}")
    expect(card.locator(".queue-shelf")).to_have_text("Shelf A1")
    assert_clean(ux, page, "queue card with slot", "main, header")
    screenshot(page, "shelf-queue-card")
    tidy(page)

    # The handover names the slot; the delivery frees it.
    card.locator(".queue-card-link").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    expect(dialog.locator("#handover-shelf")).to_have_text("Shelf A1")
    expect(dialog.locator("#otp")).to_be_focused()
    assert_clean(ux, page, "handover with slot", "dialog[open]")
    screenshot(page, "shelf-handover", full_page=False)
    tidy(page)
    page.keyboard.type(last_code())
    page.keyboard.press("Enter")
    expect(page.locator("#delivered-overlay")).to_be_visible()
    page.wait_for_url(re.compile(r"/packages$"))
    assert store.state_of(package["id"]) == State.DELIVERED
    assert slot_of(store, package["id"]) is None
    assert csp_violations == []


def test_the_shelf_view_moves_a_package_and_managers_manage_slots(
        page, store, log_in, ux, screenshot, csp_violations):
    made = slots(store, "A1", "A2")
    package = store.make_ready(store.package(state=State.PACKED))
    other = store.make_ready(store.package(state=State.PACKED))
    with store.live.session() as session:
        shelf.assign(session, package["id"], slot_id=made["A1"]["id"], user_id=None, store_ids=None)
        auth.create_user(session, "mgr", store.password, "brand_manager", [], full_name="Mert Manager")
    log_in(page, store)

    # Staff: the shelf from the work queue, which slot holds which package; a move is a pick and a tap.
    page.locator("#shelf-link").tap()
    page.wait_for_url(re.compile(r"/packages/shelf$"))
    a1 = page.locator(f"#slot-{made['A1']['id']}")
    expect(a1.locator(".shelf-package")).to_contain_text(package["number"])
    expect(page.locator(f"#slot-{made['A2']['id']} .shelf-empty")).to_be_visible()
    expect(page.locator("#shelf-summary")).to_contain_text("1 of 2 active slots")
    assert_clean(ux, page, "shelf view", "main, header")
    screenshot(page, "shelf-view")
    tidy(page)
    a1.locator("select").select_option(label="A2")
    a1.get_by_role("button", name="Move").tap()
    expect(page.locator(f"#slot-{made['A2']['id']} .shelf-package")).to_contain_text(package["number"])
    assert slot_of(store, package["id"]) == "A2"
    expect(page.locator(".shelf-manage")).to_have_count(0)  # staff do not manage slots

    # The other package cannot take A2 from its page: A2 is shown as taken and cannot be chosen.
    page.goto(f"/packages/{other['id']}")
    expect(page.locator("#shelf-slot option", has_text="A2")).to_be_disabled()

    # A manager adds a slot, renames one and closes an empty one; the labels print with their bars.
    page.context.clear_cookies()
    page.goto("/login")
    page.get_by_label("Username").fill("mgr")
    page.get_by_label("Password").fill(store.password)
    page.get_by_role("button", name="Log in").tap()
    page.wait_for_url(re.compile(r"/packages$"))
    page.goto(f"/packages/shelf?store={store.store_id}")
    page.locator("#new-slot-label").fill("B1")
    page.locator("#new-slot-submit").tap()
    expect(page.locator('[data-slot="B1"]')).to_be_visible()
    assert_clean(ux, page, "shelf view for a manager", "main, header")
    screenshot(page, "shelf-view-manager")
    tidy(page)
    page.locator(f"#rename-{made['A1']['id']}").fill("A1 top")
    page.locator(f"#slot-{made['A1']['id']}").get_by_role("button", name="Rename").tap()
    expect(page.locator(f"#slot-{made['A1']['id']} h2")).to_contain_text("A1 top")
    page.locator('[data-toggle-slot="A1 top"]').tap()
    expect(page.locator(f"#slot-{made['A1']['id']}")).to_have_class(re.compile("shelf-slot-inactive"))
    page.locator("#print-labels").tap()
    page.wait_for_url(re.compile(r"/labels$"))
    expect(page.locator("#shelf-labels li")).to_have_count(2)  # A2 and B1: A1 top is closed
    expect(page.locator("#shelf-labels .barcode-bars")).to_have_count(2)
    assert_clean(ux, page, "slot labels", "main, header")
    screenshot(page, "shelf-labels")
    tidy(page)
    with store.live.session() as session:
        assert session.query(ShelfAssignment).filter(ShelfAssignment.released_at.is_(None)).count() == 1
    assert csp_violations == []
