"""Packing in any order on a tablet: scans out of order, a wrong barcode, quantities above 1, a missing item."""
from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.packages.models import PackageItem, PackageLog
from portal.packages.states import State

# A stand-in for the tablet's vibration motor: the page's own navigator.vibrate calls are recorded.
RECORD_VIBRATIONS = "navigator.vibrate = (pattern) => { (window.vibrations = window.vibrations || []).push(pattern);" \
                    " return true; };"


def _packing_problems(name: str, figures: dict) -> list[str]:
    """Missed UX targets on one screen."""
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways: {figures['sticking_out']}")
    problems += [f"{name}: touch target under 44x44 px: {t}" for t in figures["small_targets"]]
    problems += [f"{name}: command buttons closer than 8 px: {c}" for c in figures["crowded_commands"]]
    problems += [f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                 for v in figures["axe_violations"]]
    return problems


def _with_quantities(store, package: dict, quantities: list[int], same_name: bool = False) -> dict:
    """Give the package's lines these quantities (and the last line the first one's name, if asked)."""
    with store.live.session() as session:
        items = list(session.scalars(select(PackageItem).where(PackageItem.package_id == package["id"])
                                     .order_by(PackageItem.id)))
        for item, quantity in zip(items, quantities, strict=True):
            item.quantity = quantity
        if same_name:
            items[-1].name = items[0].name
        session.commit()
        package["items"] = [{"id": i.id, "name": i.name, "barcode": i.barcode, "quantity": i.quantity}
                            for i in items]
    return package


def _scan(page, barcode: str) -> None:
    """What a handheld scanner does: type the barcode and press Enter, into the focused field."""
    page.keyboard.type(barcode)
    page.keyboard.press("Enter")


def _last_note(store, package_id: int) -> str:
    """The note of the package's newest audit row."""
    with store.live.session() as session:
        return session.scalars(select(PackageLog.note).where(PackageLog.package_id == package_id)
                               .order_by(PackageLog.id.desc())).first()


def test_packing_three_items_out_of_order_with_a_wrong_scan_and_two_units(
        page, store, log_in, ux, screenshot, csp_violations):
    package = _with_quantities(store, store.package(state=State.WAITING, items=3, click_collect=False),
                               [1, 2, 1], same_name=True)
    first, pair, last = package["items"]
    page.add_init_script(RECORD_VIBRATIONS)
    log_in(page, store)
    page.goto(f"/packages/{package['id']}")

    taps = 0
    page.locator("#primary-action").tap()  # "Pack" (Complete Packaging), the package's one primary action
    taps += 1
    page.wait_for_url(re.compile(rf"/packages/{package['id']}/pack$"))
    field = page.get_by_label("Scan the items, in any order")
    expect(field).to_be_focused()
    counter = page.locator("#packing-counter")
    expect(counter).to_have_text("0 of 4 items")
    # Two lines share a name; each shows its own barcode, so they can be told apart.
    expect(page.locator(".packing-name", has_text=first["name"])).to_have_count(2)
    problems = _packing_problems("packing", ux.check(page, "packing"))
    screenshot(page, "packing-start")

    feedback = page.locator("#packing-feedback")
    lines = {item["barcode"]: page.locator(f"#packing-line-{item['id']}") for item in package["items"]}

    _scan(page, last["barcode"])  # the last line first: the order the shelf gives
    taps += 1
    expect(feedback).to_have_text(f"{last['name']} ticked. 1 of 4 items.")
    expect(lines[last["barcode"]]).to_have_class(re.compile(r"\bis-done\b"))
    expect(lines[first["barcode"]]).not_to_have_class(re.compile(r"\bis-done\b"))
    expect(counter).to_have_text("1 of 4 items")

    _scan(page, "8699999999999")  # a wrong item: refused at once, with its text; nothing changes
    expect(feedback).to_have_text("8699999999999 is not in this package.")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("")
    expect(field).to_be_focused()
    expect(counter).to_have_text("1 of 4 items")
    expect(page.locator(".packing-line.is-done")).to_have_count(1)
    screenshot(page, "packing-wrong-barcode")

    _scan(page, pair["barcode"])
    taps += 1
    expect(lines[pair["barcode"]].locator(".packing-count")).to_contain_text("1 of 2")
    expect(lines[pair["barcode"]]).to_have_class(re.compile(r"\bis-partial\b"))
    _scan(page, pair["barcode"])
    taps += 1
    expect(lines[pair["barcode"]].locator(".packing-count")).to_contain_text("2 of 2")
    expect(lines[pair["barcode"]]).to_have_class(re.compile(r"\bis-done\b"))
    expect(field).not_to_have_attribute("aria-invalid", "true")

    assert page.evaluate("window.vibrations") == [40, [80, 60, 80], 40, 40]  # a tick buzzes short, a refusal twice

    page.reload()  # the ticks live on the server
    expect(page.locator("#packing-counter")).to_have_text("3 of 4 items")
    expect(page.locator(".packing-line.is-done")).to_have_count(2)
    expect(page.get_by_role("button", name="All ticked: finish packing")).to_have_count(0)

    _scan(page, first["barcode"])
    taps += 1
    expect(page.locator("#packing-counter")).to_have_text("4 of 4 items")
    finish = page.get_by_role("button", name="All ticked: finish packing")
    expect(finish).to_be_visible()
    problems += _packing_problems("packing complete", ux.check(page, "packing-complete"))
    screenshot(page, "packing-all-ticked")
    assert page.evaluate("window.vibrations") == [40]

    finish.tap()
    taps += 1
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    expect(page.locator("#package-status")).to_contain_text("Packed All Items")
    assert store.state_of(package["id"]) == State.PACKED
    assert _last_note(store, package["id"]).startswith("Scanned: ")
    # 3 lines (4 units): open the screen, one scan per unit, one finish tap. Lines of one unit: items + 2.
    assert taps == 1 + 4 + 1
    assert problems == [], "\n".join(problems)
    assert csp_violations == []


def test_a_label_that_will_not_scan_is_ticked_by_hand_and_a_missing_item_refuses_the_package(
        page, store, log_in, ux, screenshot, csp_violations):
    package = _with_quantities(store, store.package(state=State.WAITING, items=2), [1, 1])
    first, missing = package["items"]
    log_in(page, store)
    page.goto(f"/packages/{package['id']}/pack?scan={first['barcode']}")  # the scan box's hand-over
    page.wait_for_url(re.compile(rf"/packages/{package['id']}/pack$"))
    expect(page.locator("#packing-counter")).to_have_text("1 of 2 items")
    expect(page.locator(f"#packing-line-{first['id']}")).to_have_class(re.compile(r"\bis-done\b"))

    line = page.locator(f"#packing-line-{missing['id']}")
    line.get_by_role("button", name=re.compile(r"^Not found")).tap()
    question = line.locator(".packing-confirm")
    expect(question).to_contain_text("needs rescheduling")
    problems = _packing_problems("not found question", ux.check(page, "packing-not-found"))
    screenshot(page, "packing-not-found-question")
    question.get_by_role("button", name="Keep packing").tap()
    expect(line.locator(".packing-confirm")).to_have_count(0)

    line.get_by_role("button", name=re.compile(r"^Not found")).tap()
    line.get_by_role("button", name="Refuse the package: item not found").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    expect(page.locator("#package-status")).to_contain_text("Needs Rescheduling")
    assert store.state_of(package["id"]) == State.NEEDS_RESCHEDULING
    assert _last_note(store, package["id"]) == f"Product not found in store: {missing['name']}"
    assert problems == [], "\n".join(problems)
    assert csp_violations == []


def test_a_tap_ticks_a_line_whose_label_will_not_scan(page, store, log_in, csp_violations):
    package = _with_quantities(store, store.package(state=State.WAITING, items=2), [1, 1])
    first, unreadable = package["items"]
    log_in(page, store)
    page.goto(f"/packages/{package['id']}/pack")
    expect(page.get_by_label("Scan the items, in any order")).to_be_focused()  # as staff wait for the field
    _scan(page, first["barcode"])
    expect(page.locator("#packing-counter")).to_have_text("1 of 2 items")
    page.locator(f"#packing-line-{unreadable['id']}").get_by_role("button", name=re.compile(r"^Tick by hand")).tap()
    expect(page.locator("#packing-feedback")).to_have_text(f"{unreadable['name']} ticked by hand. 2 of 2 items.")
    expect(page.get_by_label("Scan the items, in any order")).to_be_focused()

    # A tick by mistake: start over, and every line is unticked again (the page is reloaded).
    page.get_by_role("button", name="Start over: remove every tick").tap()
    expect(page.locator("#packing-counter")).to_have_text("0 of 2 items")
    expect(page.locator(".packing-line.is-done")).to_have_count(0)
    expect(page.get_by_label("Scan the items, in any order")).to_be_focused()
    _scan(page, first["barcode"])
    page.locator(f"#packing-line-{unreadable['id']}").get_by_role("button", name=re.compile(r"^Tick by hand")).tap()
    page.get_by_role("button", name="All ticked: finish packing").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    assert store.state_of(package["id"]) == State.PACKED
    assert _last_note(store, package["id"]) == f"Scanned: {first['name']}. Ticked by hand: {unreadable['name']}."
    assert csp_violations == []
