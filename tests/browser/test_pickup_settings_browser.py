"""A store's pickup settings page in the browser (manager): reached from the pickup shelf, a bad value named at
its field with nothing saved, then saved; both orientations, axe, 44 px targets, no sideways scroll, the CSP."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.accounts import auth
from portal.packages import pickup_settings
from tests.browser.test_handover import assert_clean, tidy


def test_a_manager_sets_a_stores_pickup_settings(page, store, ux, screenshot, csp_violations):
    with store.live.session() as session:
        auth.create_user(session, "mgr", store.password, "brand_manager", [], full_name="Mert Manager")
    page.goto("/login")
    page.get_by_label("Username").fill("mgr")
    page.get_by_label("Password").fill(store.password)
    page.get_by_role("button", name="Log in").tap()
    page.wait_for_url(re.compile(r"/packages$"))
    page.goto(f"/packages/shelf?store={store.store_id}")
    page.locator("#pickup-settings-link").tap()
    page.wait_for_url(re.compile(rf"/stores/{store.store_id}/pickup-settings$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pickup settings")
    expect(page.get_by_label("A shelf slot may hold several packages")).not_to_be_checked()
    assert_clean(ux, page, "pickup settings", "main, header")
    screenshot(page, "pickup-settings")
    tidy(page)

    # A bad value: named at its field, nothing saved.
    page.get_by_label("Days a ready package waits for its customer").fill("400")
    page.get_by_label("A shelf slot may hold several packages").tap()
    page.get_by_role("button", name="Save pickup settings").tap()
    expect(page.locator("#hold_days-error")).to_contain_text("from 1 to 365")
    expect(page.locator("#hold_days")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("A shelf slot may hold several packages")).to_be_checked()  # what was typed stays
    assert_clean(ux, page, "pickup settings error", "main, header")
    screenshot(page, "pickup-settings-error")
    tidy(page)
    with store.live.session() as session:
        assert pickup_settings.read(session, store.store_id).shared_slots is False

    page.get_by_label("Days a ready package waits for its customer").fill("10")
    page.get_by_label("Managers may hand a package over without the code, after checking an ID").tap()
    page.get_by_label("Opening hours on the customer's page, one line each").fill("Mon-Sat 10:00-22:00\nSun closed")
    page.get_by_role("button", name="Save pickup settings").tap()
    expect(page.locator("#hold_days-error")).to_have_count(0)
    expect(page.locator("#hold_days")).to_have_value("10")
    with store.live.session() as session:
        saved = pickup_settings.read(session, store.store_id)
    assert (saved.hold_days, saved.manager_override_allowed, saved.shared_slots, saved.opening_hours) == (
        10, False, True, ["Mon-Sat 10:00-22:00", "Sun closed"])
    assert csp_violations == []
