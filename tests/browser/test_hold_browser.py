"""The hold on the store floor: "Hold expired" in the Problems tab and on the package, and extending it with a
reason, at both orientations on both databases (no axe finding, no horizontal scroll, 44 px targets)."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select, update

from portal.db_types import utcnow
from portal.otp.models import PickupCode
from portal.packages import hold_sweep
from portal.packages.models import Package, PackageLog
from portal.packages.states import State


def assert_clean(ux, page, name: str, scope: str = "main, header") -> None:
    """No axe violation, no horizontal scroll, no small or crowded target on this screen."""
    page.wait_for_timeout(400)  # Pico's colour transitions settle before axe reads colours
    figures = ux.check(page, name, scope)
    assert figures["axe_violations"] == [], figures["axe_violations"]
    assert figures["scroll_width"] <= figures["inner_width"], figures["sticking_out"]
    assert (figures["small_targets"], figures["crowded_commands"]) == ([], [])
    tidy(page)


def tidy(page) -> None:
    """Take away the empty style="" that axe and Playwright's screenshots leave (htmx's settle would copy it onto
    the swapped-in element, and the CSP rightly refuses an inline style the portal never wrote)."""
    page.evaluate("document.querySelectorAll('[style]').forEach(e => { if (!e.getAttribute('style')) "
                  "e.removeAttribute('style'); })")


def expire(live_server, package_id: int) -> None:
    """End the package's hold a day ago and run the hold sweep, as the scheduled job would."""
    with live_server.session() as session:
        ended = utcnow() - timedelta(days=1)
        session.execute(update(Package).where(Package.id == package_id).values(hold_until=ended))
        session.execute(update(PickupCode).where(PickupCode.package_id == package_id).values(expires_at=ended))
        session.commit()
        run = hold_sweep.start_sweep(session)
        assert run.status == run.DONE and run.expired == 1, run.error


def test_an_expired_hold_shows_in_problems_and_staff_extend_it_with_a_reason(
        page, store, live_server, log_in, ux, screenshot, csp_violations):
    package = store.make_ready(store.package(state=State.PACKED, items=1))
    expire(live_server, package["id"])
    log_in(page, store)

    page.goto("/packages?tab=problems")
    card = page.locator(f"#package-row-{package['id']}")
    expect(card).to_be_visible()
    expect(card.locator(".queue-flag")).to_have_text("Hold expired")
    assert_clean(ux, page, "problems with an expired hold")
    screenshot(page, "hold-problems")

    # Its code was released, so the card opens the package page (with the hold), not the handover.
    card.locator("a.queue-card-link").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    expect(page.locator("dialog#modal[open]")).to_have_count(0)
    expect(page.locator("#hold-card")).to_contain_text("Hold expired")
    assert_clean(ux, page, "package with an expired hold")
    screenshot(page, "hold-expired")

    # Extend: open the form, say how many days and why, tap Extend (3 interactions after the page opened).
    page.locator("#hold-extend summary").tap()
    page.locator("#hold-days").fill("2")
    page.locator("#hold-reason").fill("The customer called: back from a trip on Friday")
    assert_clean(ux, page, "extend the hold")
    screenshot(page, "hold-extend-form", full_page=False)
    tidy(page)
    page.locator("#hold-extend-submit").tap()
    expect(page.locator("#hold-state")).to_contain_text("Pick up by")
    expect(page.locator("#hold-card")).not_to_contain_text("Hold expired")
    expect(page.locator("#package-history")).to_contain_text("back from a trip on Friday")
    assert_clean(ux, page, "hold extended")
    screenshot(page, "hold-extended")

    with live_server.session() as session:
        row = session.get(Package, package["id"])
        assert row.hold_until > utcnow() + timedelta(days=1, hours=23)
        assert row.hold_expired_at is None and row.state == State.READY_FOR_CUSTOMER_PICKUP
        assert session.scalar(select(PackageLog.note).where(PackageLog.package_id == package["id"],
                                                            PackageLog.command == "extend-hold"))
    page.goto("/packages?tab=problems")
    expect(page.locator(f"#package-row-{package['id']}")).to_have_count(0)
    assert csp_violations == []


def test_a_missing_reason_is_refused_and_the_hold_is_unchanged(page, store, live_server, log_in, ux):
    package = store.make_ready(store.package(state=State.PACKED, items=1))
    with live_server.session() as session:
        before = session.get(Package, package["id"]).hold_until
    log_in(page, store)
    page.goto(f"/packages/{package['id']}")
    expect(page.locator("#hold-state")).to_contain_text("Pick up by")
    page.locator("#hold-extend summary").tap()
    page.locator("#hold-reason").fill("   ")
    page.locator("#hold-extend-submit").tap()
    expect(page.locator("#package-panel .flash-error")).to_have_text(re.compile("Say why the hold is extended"))
    expect(page.locator("#hold-extend")).to_have_attribute("open", "")
    assert_clean(ux, page, "extend refused")
    with live_server.session() as session:
        assert session.get(Package, package["id"]).hold_until == before
