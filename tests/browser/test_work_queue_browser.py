"""The staff home as a work queue: tabs with live counts one tap away, and one scan box that knows what it scans."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from portal.packages.states import State

CARDS = "#package-table .queue-card"


def _problems(name: str, figures: dict) -> list[str]:
    """Missed UX targets on one screen, in words."""
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways: {figures['sticking_out']}")
    problems += [f"{name}: touch target under 44x44 px: {t}" for t in figures["small_targets"]]
    problems += [f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                 for v in figures["axe_violations"]]
    return problems


def test_each_count_opens_its_tab_and_the_counts_follow_the_floor(page, store, log_in, ux, screenshot,
                                                                    csp_violations):
    oldest = store.package(state=State.WAITING, items=3, age=timedelta(hours=6))
    newest = store.package(state=State.WAITING, age=timedelta(minutes=10))
    ready = store.make_ready(store.package(state=State.PACKED, age=timedelta(hours=3)))
    blocked = store.package(state=State.BLOCKED, click_collect=False, age=timedelta(days=1))
    store.package(state=State.DELIVERED, age=timedelta(days=2))
    log_in(page, store)

    # The home is the To pack tab: oldest first, each with its "pack by" time.
    expect(page.locator("#tab-pack")).to_have_attribute("aria-current", "page")
    expect(page.locator("#count-pack")).to_have_text("2")
    expect(page.locator("#count-pickup")).to_have_text("1")
    expect(page.locator("#count-problems")).to_have_text("1")
    expect(page.locator(f"{CARDS} .queue-card-number")).to_have_text([oldest["number"], newest["number"]])
    expect(page.locator(f"#package-row-{oldest['id']} .queue-due")).to_contain_text("Pack by")
    expect(page.locator(f"#package-row-{oldest['id']} .queue-overdue")).to_be_visible()  # 6 h > 4 h
    problems = _problems("queue", ux.check(page, "queue"))
    screenshot(page, "queue-to-pack")
    page.evaluate("window.sameDocument = true")

    # A tap on a count opens its tab, in place.
    page.locator("#count-pickup").tap()
    page.wait_for_url(re.compile(r"/packages\?tab=pickup$"))
    expect(page.locator("#tab-pickup")).to_have_attribute("aria-current", "page")
    expect(page.locator(f"{CARDS} .queue-card-number")).to_have_text([ready["number"]])
    expect(page.locator(f"#package-row-{ready['id']} .queue-due")).to_contain_text("Pick up by")
    problems += _problems("queue pickup", ux.check(page, "queue-pickup"))
    screenshot(page, "queue-pickup")

    page.locator("#count-problems").tap()
    page.wait_for_url(re.compile(r"/packages\?tab=problems$"))
    expect(page.locator(f"{CARDS} .queue-card-number")).to_have_text([blocked["number"]])
    assert page.evaluate("window.sameDocument") is True

    # A command elsewhere (its answer's packages-changed event) refreshes the counts and keeps the tab.
    store.package(state=State.OUT_OF_STOCK)
    page.evaluate("document.body.dispatchEvent(new CustomEvent('packages-changed'))")
    expect(page.locator("#count-problems")).to_have_text("2")
    expect(page.locator(CARDS)).to_have_count(2)
    expect(page.locator("#tab-problems")).to_have_attribute("aria-current", "page")

    # A ready card opens straight on the handover.
    page.locator("#count-pickup").tap()
    page.locator(f"#package-row-{ready['id']} .queue-card-link").tap()
    page.wait_for_url(re.compile(rf"/packages/{ready['id']}\?handover=1$"))
    expect(page.locator("dialog#modal")).to_be_visible()

    assert problems == [], "\n".join(problems)
    assert csp_violations == []


def test_the_scan_box_opens_packages_orders_and_items_and_says_when_nothing_matches(
        page, store, log_in, ux, screenshot, csp_violations):
    waiting = store.package(state=State.WAITING, items=3)
    ready = store.make_ready(store.package(state=State.PACKED))
    log_in(page, store)
    search = page.locator("#search")

    # A package number opens the package.
    page.keyboard.type(waiting["number"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{waiting['id']}$"))
    expect(page.get_by_role("heading", name=f"Package {waiting['number']}")).to_be_visible()

    # An order number of a ready package opens it on the handover.
    page.goto("/packages")
    expect(search).to_be_focused()
    page.keyboard.type(ready["order_number"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{ready['id']}\?handover=1$"))
    expect(page.locator("dialog#modal")).to_be_visible()

    # An item's barcode opens the packing screen of the one open package holding it, with the item.
    page.goto("/packages")
    expect(search).to_be_focused()
    barcode = waiting["items"][2]["barcode"]
    page.keyboard.type(barcode)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{waiting['id']}/pack$"))  # the scan= argument is used, then dropped
    expect(page.locator(f"#packing-line-{waiting['items'][2]['id']}")).to_have_class(re.compile(r"is-(done|partial)"))

    # Nonsense is refused at once, in the field, with the scanned text; the next scan replaces it.
    page.goto("/packages")
    expect(search).to_be_focused()
    page.keyboard.type("XQ-0000-NOPE")
    page.keyboard.press("Enter")
    expect(page.locator("#scan-error")).to_contain_text("“XQ-0000-NOPE”")
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(search).to_be_focused()
    expect(page.locator(CARDS)).to_have_count(1)  # the queue behind it is unchanged
    problems = _problems("scan error", ux.check(page, "scan-error"))
    screenshot(page, "queue-scan-nothing")
    page.keyboard.type(waiting["order_number"])
    expect(page.locator("#scan-error")).to_have_count(0)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/packages/{waiting['id']}$"))

    assert problems == [], "\n".join(problems)
    assert csp_violations == []
