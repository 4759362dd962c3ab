"""The staff home: filters that live in the URL, htmx swaps of the table, pages, and the 30-second refresh."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from portal.packages.states import State

ROWS = "#package-table tbody tr"


def test_filters_live_in_the_url_and_survive_reload_and_back(page, store, log_in, csp_violations):
    for hours in range(8):
        store.package(state=State.WAITING, age=timedelta(hours=hours + 1))
    for days in range(3):
        store.package(state=State.PACKED, click_collect=False, age=timedelta(days=days + 1))
    for minutes in range(3):
        store.package(state=State.READY_FOR_CUSTOMER_PICKUP, age=timedelta(minutes=20 + minutes))
    log_in(page, store)
    expect(page.locator("#count-pack")).to_have_text("11")  # 8 waiting + 3 packed
    page.locator("#tab-all").tap()
    page.wait_for_url(re.compile(r"/packages\?tab=all$"))
    expect(page.locator(ROWS)).to_have_count(10)  # PAGE_SIZE is 10 in these tests
    page.evaluate("window.sameDocument = true")  # only a full page load forgets this

    # Choosing a status swaps the table and puts the filter in the URL.
    page.get_by_label("Status").select_option(label="Waiting")
    page.wait_for_url(re.compile(r"/packages\?status=100$"))
    expect(page.locator(ROWS)).to_have_count(8)
    expect(page.locator(f"{ROWS} .chip")).to_have_text(["Waiting"] * 8)
    assert page.evaluate("window.sameDocument") is True

    page.get_by_label("Delivery type").select_option(label="In store")
    page.wait_for_url(re.compile(r"status=100&delivery_type=in_store$"))
    expect(page.locator(ROWS)).to_have_count(8)
    assert page.evaluate("window.sameDocument") is True

    # A reload is a full page for the same URL: the filters stay chosen.
    page.reload()
    expect(page.get_by_label("Status")).to_have_value("100")
    expect(page.get_by_label("Delivery type")).to_have_value("in_store")
    expect(page.locator(ROWS)).to_have_count(8)
    assert page.evaluate("window.sameDocument") is None

    # Another filter, then Back: the previous filters and rows come back, in the form too.
    page.evaluate("window.sameDocument = true")
    page.get_by_label("Status").select_option(label="Ready for Customer Pickup")
    page.wait_for_url(re.compile(r"status=550"))
    expect(page.locator(ROWS)).to_have_count(3)
    page.go_back()
    page.wait_for_url(re.compile(r"/packages\?status=100&delivery_type=in_store$"))
    expect(page.locator(ROWS)).to_have_count(8)
    expect(page.get_by_label("Status")).to_have_value("100")
    expect(page.get_by_label("Delivery type")).to_have_value("in_store")
    page.go_forward()
    page.wait_for_url(re.compile(r"status=550"))
    expect(page.locator(ROWS)).to_have_count(3)
    expect(page.get_by_label("Status")).to_have_value("550")
    assert page.evaluate("window.sameDocument") is True
    assert csp_violations == []


def test_pages_go_older_and_newer_without_a_reload(page, store, log_in):
    numbers = [store.package(state=State.WAITING, age=timedelta(minutes=90 - n))["number"] for n in range(13)]
    log_in(page, store)
    page.locator("#tab-all").tap()
    page.evaluate("window.sameDocument = true")
    expect(page.locator(f"{ROWS} .row-link")).to_have_text(list(reversed(numbers))[:10])

    page.get_by_role("button", name="Older").tap()
    page.wait_for_url(re.compile(r"after=\d+"))
    expect(page.locator(f"{ROWS} .row-link")).to_have_text(list(reversed(numbers))[10:])
    expect(page.get_by_role("button", name="Older")).to_have_count(0)

    page.get_by_role("button", name="Newer").tap()
    page.wait_for_url(re.compile(r"before=\d+"))
    expect(page.locator(f"{ROWS} .row-link")).to_have_text(list(reversed(numbers))[:10])
    assert page.evaluate("window.sameDocument") is True

    # A finger on any part of a row opens that package, not only on its number.
    box = page.locator(ROWS).nth(2).locator(".col-customer").bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_role("heading", name=f"Package {list(reversed(numbers))[2]}")).to_be_visible()


def test_a_scan_that_matches_nothing_says_so_and_the_next_scan_replaces_it(page, store, log_in):
    wanted = store.package(state=State.WAITING)
    store.package(state=State.WAITING)
    log_in(page, store)
    page.keyboard.type("ORD000000")
    page.keyboard.press("Enter")
    expect(page.locator("#scan-error")).to_contain_text("“ORD000000”")
    expect(page.locator("#search")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#search")).to_be_focused()

    # The failed scan's text is selected, so the next scan replaces it instead of being appended.
    page.keyboard.type(wanted["order_number"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{wanted['id']}$"))


def test_a_scan_before_the_page_has_its_scripts_still_opens_the_package(page, store, log_in):
    wanted = store.package(state=State.WAITING)
    store.package(state=State.WAITING)
    log_in(page, store)

    # A slow tablet: the list is on screen, its search box focused, but htmx is still on its way.
    held = []
    page.route("**/static/vendor/htmx.min.js*", lambda route: route.continue_() if held else held.append(route))
    page.goto("/packages", wait_until="commit")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.type(wanted["order_number"])
    page.keyboard.press("Enter")  # the form goes without htmx: a plain GET, which must still open the match

    page.wait_for_url(re.compile(rf"/packages/{wanted['id']}$"))
    expect(page.get_by_role("heading", name=f"Package {wanted['number']}")).to_be_visible()
    assert len(held) == 1  # the scan really came before the list page's htmx
    page.unroute_all(behavior="ignoreErrors")


def test_list_refreshes_itself_every_30_seconds_keeping_filters_scroll_and_typing(page, store, log_in, wait_until):
    for hours in range(9):
        store.package(state=State.WAITING, age=timedelta(hours=hours + 1))
    store.package(state=State.PACKED)
    page.clock.install()  # htmx's "every 30s" runs on the page's timers, which the test moves on
    log_in(page, store)
    page.get_by_label("Status").select_option(label="Waiting")
    page.wait_for_url(re.compile(r"status=100$"))
    expect(page.locator(ROWS)).to_have_count(9)
    page.evaluate("window.sameDocument = true")

    # Half a scan in the search box, the list scrolled down, and a new order arrives meanwhile.
    search = page.locator("#search")
    search.focus()
    page.keyboard.type("ORD70")
    page.mouse.wheel(0, 300)
    wait_until(page, "window.scrollY > 0")
    scrolled = page.evaluate("window.scrollY")
    newcomer = store.package(state=State.WAITING, age=timedelta(minutes=1))

    with page.expect_response(re.compile(r"/packages\?status=100$")):
        page.clock.run_for(31_000)
    expect(page.locator(f"#package-row-{newcomer['id']}")).to_be_visible()
    expect(page.locator("#count-pack")).to_have_text("11")  # 10 waiting + 1 packed
    expect(page.locator(ROWS)).to_have_count(10)
    expect(search).to_have_value("ORD70")
    expect(search).to_be_focused()
    expect(page.get_by_label("Status")).to_have_value("100")
    assert page.url.endswith("/packages?status=100")
    assert page.evaluate("window.scrollY") == scrolled
    assert page.evaluate("window.sameDocument") is True
