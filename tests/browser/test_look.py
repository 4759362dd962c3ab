"""The look of the store floor: chips whose colour says what a state means, and the printed paper (pick list,
packing slip) on screen and in print media, at both tablet orientations."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal.packages.models import Package, PackageItem
from portal.packages.states import TONES, State

# One state per tone, as a store's list shows them.
TONE_STATES = {"todo": State.WAITING, "waiting": State.READY_FOR_CUSTOMER_PICKUP, "done": State.DELIVERED,
               "problem": State.BLOCKED, "neutral": State.CANCELLED}

CHIPS_JS = """
() => [...document.querySelectorAll('.chip[data-tone]')].map(chip => {
  const style = getComputedStyle(chip);
  const icon = chip.querySelector('svg.chip-icon').getBoundingClientRect();
  return {tone: chip.dataset.tone, bg: style.backgroundColor, fg: style.color, border: style.borderColor,
          icon: [icon.width, icon.height], text: chip.innerText.trim()};
})
"""


def _rgb(css: str) -> tuple[float, ...]:
    """An rgb()/rgba() colour as (r, g, b) in 0..255; a chip's background must be opaque to be judged."""
    parts = [float(p) for p in re.findall(r"[\d.]+", css)]
    assert len(parts) == 3 or parts[3] == 1, f"translucent colour {css}"
    return tuple(parts[:3])


def _luminance(rgb: tuple[float, ...]) -> float:
    """WCAG relative luminance."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG contrast ratio of two colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_helper_knows_the_extremes():
    assert round(contrast((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert contrast((119, 119, 119), (255, 255, 255)) < 4.5  # #777 on white fails AA


def _add_item(live, package: dict, name: str, barcode: str, quantity: int) -> None:
    """Put `quantity` pieces of an item into a package."""
    with live.session() as session:
        row = session.get(Package, package["id"])
        row.items.append(PackageItem(order_item=package["id"] * 1000 + 7, sku="SKU-SHARED", name=name,
                                     barcode=barcode, quantity=quantity))
        session.commit()


def _print_problems(name: str, figures: dict, touch: bool = True) -> list[str]:
    """Missed targets on a print view: sideways scroll, small targets (on screen only: paper is not tapped),
    axe findings."""
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways: {figures['scroll_width']} px {figures['sticking_out']}")
    problems += [f"{name}: small target {t}" for t in figures["small_targets"] if touch]
    problems += [f"{name}: axe {v['id']}: {v['help']} at {v['nodes']}" for v in figures["axe_violations"]]
    return problems


def test_state_chips_have_one_distinct_colour_per_tone_and_readable_text(page, store, log_in, ux, screenshot,
                                                                         csp_violations):
    packages = {tone: store.package(state=state, age=timedelta(hours=i + 1))
                for i, (tone, state) in enumerate(TONE_STATES.items())}
    store.package(state=State.PREPARING, age=timedelta(minutes=30))  # a second "todo" state

    log_in(page, store)
    page.locator("#tab-all").tap()  # every state is on the All tab (the home opens on To pack)
    expect(page.locator("#package-table .chip[data-tone]")).to_have_count(len(TONE_STATES) + 1)
    chips = page.evaluate(CHIPS_JS)

    colours: dict[str, set] = {}
    for chip in chips:
        bg, fg = _rgb(chip["bg"]), _rgb(chip["fg"])
        assert contrast(fg, bg) >= 4.5, f"{chip['text']}: {chip['fg']} on {chip['bg']} is {contrast(fg, bg):.2f}:1"
        assert contrast(fg, (255, 255, 255)) >= 4.5  # the icon and text stay readable next to the page too
        assert chip["icon"][0] >= 12 and chip["icon"][1] >= 12, f"{chip['text']}: no icon drawn"
        colours.setdefault(chip["tone"], set()).add((chip["bg"], chip["fg"]))
    assert set(colours) == set(TONES)
    assert all(len(pairs) == 1 for pairs in colours.values()), colours  # a tone looks the same in every state
    backgrounds = [next(iter(pairs))[0] for pairs in colours.values()]
    assert len(set(backgrounds)) == len(TONES), colours  # and no two tones share a colour
    # Done reads as done, not as disabled grey: its colour is saturated (green), unlike neutral.
    done_r, done_g, done_b = _rgb(next(iter(colours["done"]))[0])
    assert done_g - max(done_r, done_b) > 20

    figures = ux.check(page, "home-chips")
    assert figures["axe_violations"] == []
    screenshot(page, "look-home")

    page.goto(f"/packages/{packages['done']['id']}")
    expect(page.locator("#package-status .chip-done")).to_be_visible()
    assert ux.check(page, "package-done")["axe_violations"] == []
    screenshot(page, "look-package")
    assert csp_violations == []


def test_pick_list_and_packing_slip_fit_the_tablet_and_paper(page, store, live_server, log_in, ux, screenshot,
                                                             csp_violations):
    first = store.package(state=State.WAITING, items=2, age=timedelta(hours=3))
    second = store.package(state=State.READY_FOR_PACKAGING, items=1, age=timedelta(hours=2))
    store.package(state=State.PREPARING, items=3, age=timedelta(hours=1))
    packed = store.package(state=State.PACKED, items=1)
    _add_item(live_server, first, "Wool scarf, long, charcoal grey, 180 cm", "8690000000012", 1)
    _add_item(live_server, second, "Wool scarf, long, charcoal grey, 180 cm", "8690000000012", 2)

    log_in(page, store)
    page.locator("#pick-list-link").tap()
    page.wait_for_url(re.compile(r"/packages/pick-list$"))
    scarf = page.locator("#pick-list tbody tr", has=page.locator("code", has_text="8690000000012"))
    expect(scarf.locator(".col-qty")).to_have_text("3")
    expect(scarf.locator(".for-packages li")).to_have_count(2)
    expect(page.locator("#pick-list")).not_to_contain_text(packed["items"][0]["barcode"])
    expect(page.locator("#pick-packages tbody tr")).to_have_count(3)
    problems = _print_problems("pick list", ux.check(page, "pick-list", scope="main"))
    screenshot(page, "pick-list")

    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.locator("[data-print]")).to_be_hidden()
    problems += _print_problems("pick list in print", ux.check(page, "pick-list-print", scope="main"),
                                touch=False)
    screenshot(page, "pick-list-print")
    page.emulate_media(media="screen")

    page.goto(f"/packages/{first['id']}")
    page.locator("#packing-slip-link").tap()
    page.wait_for_url(re.compile(rf"/packages/{first['id']}/packing-slip$"))
    expect(page.locator("#slip-order")).to_have_text(first["order_number"])
    expect(page.locator("#slip-items tbody tr")).to_have_count(3)
    problems += _print_problems("packing slip", ux.check(page, "packing-slip", scope="main"))
    screenshot(page, "packing-slip")

    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    problems += _print_problems("packing slip in print", ux.check(page, "packing-slip-print", scope="main"),
                                touch=False)
    screenshot(page, "packing-slip-print")

    assert problems == [], "\n".join(problems)
    assert csp_violations == []


def test_the_print_button_opens_the_print_dialog(page, store, log_in, wait_until):
    store.package(state=State.WAITING)
    log_in(page, store)
    page.goto("/packages/pick-list")
    # window.print() blocks in a headless browser: count the calls instead (through DevTools, not the page's CSP).
    # (A function, not a statement: Playwright calls a string that evaluates to a function.)
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    page.locator("[data-print]").tap()
    wait_until(page, "window.__printed === 1")


def test_the_drawn_bars_scan_as_the_printed_digits(page, store, live_server, log_in, screenshot):
    """A barcode reader (zbar) reads the bars on the packing slip as the digits printed under them."""
    if not shutil.which("zbarimg"):
        pytest.skip("zbarimg (apt-get install zbar-tools) is not installed")
    package = store.package(state=State.WAITING, items=1)
    _add_item(live_server, package, "Wool scarf", "8690000000012", 1)
    log_in(page, store)
    page.goto(f"/packages/{package['id']}/packing-slip")
    bars = page.locator("#slip-items .barcode-bars")
    expect(bars).to_have_count(1)  # the other item's made-up code has a wrong check digit: digits only
    path = screenshot(page, "packing-slip-bars")
    found = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sean13.enable", str(path)],
                           capture_output=True, text=True, timeout=30).stdout.split()
    assert found == ["8690000000012"]
