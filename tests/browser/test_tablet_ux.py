"""The measurable targets of the store floor (shared/UX.md) on the staff pages, at both tablet sizes."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from portal.packages.states import State

WEIGHT_LIMIT = 100 * 1024


def _problems(name: str, figures: dict) -> list[str]:
    """Every missed target on one screen, in words a reader of the test output understands."""
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways ({figures['scroll_width']} > {figures['inner_width']} px): "
                        f"{figures['sticking_out']}")
    problems += [f"{name}: touch target under 44x44 px: {t}" for t in figures["small_targets"]]
    problems += [f"{name}: command buttons closer than 8 px: {c}" for c in figures["crowded_commands"]]
    problems += [f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                 for v in figures["axe_violations"]]
    return problems


def test_staff_pages_meet_the_touch_size_and_accessibility_targets(
        page, store, log_in, ux, screenshot, csp_violations):
    waiting = store.package(state=State.WAITING, items=3, age=timedelta(days=2))
    ready = store.make_ready(store.package(state=State.PACKED, age=timedelta(hours=5)))
    store.package(state=State.PREPARING, click_collect=False, age=timedelta(hours=3))
    store.package(state=State.PACKED, age=timedelta(hours=1))
    store.package(state=State.BLOCKED, click_collect=False, age=timedelta(days=4))
    store.package(state=State.DELIVERED, age=timedelta(days=6))
    store.package(state=State.WAITING, items=1, age=timedelta(minutes=12))

    page.goto("/login")
    problems = _problems("login", ux.check(page, "login", scope="main"))
    screenshot(page, "login")

    log_in(page, store)
    page.locator("#tab-all").tap()
    expect(page.locator("#package-table tbody tr")).to_have_count(7)
    problems += _problems("list", ux.check(page, "list"))
    screenshot(page, "list")

    page.goto(f"/packages/{waiting['id']}")
    expect(page.locator("#package-actions [data-command]")).to_have_count(4)
    problems += _problems("detail", ux.check(page, "detail"))
    screenshot(page, "detail")

    page.locator("#primary-action").tap()  # "Pack" (Complete Packaging): the one primary action of a Waiting package
    page.wait_for_url(re.compile(rf"/packages/{waiting['id']}/pack$"))
    expect(page.get_by_label("Scan the items, in any order")).to_be_focused()
    problems += _problems("packing screen", ux.check(page, "packing"))
    screenshot(page, "packing", full_page=False)

    page.goto(f"/packages/{ready['id']}?handover=1")
    code_field = page.get_by_label("Code from the customer's SMS")
    expect(code_field).to_be_focused()
    page.keyboard.type("000000")
    page.keyboard.press("Enter")
    expect(page.locator("dialog#modal #otp-error")).to_contain_text("Wrong code")
    problems += _problems("handover modal", ux.check(page, "modal-error", scope="dialog[open]"))
    screenshot(page, "modal-handover-error", full_page=False)  # "modal-error" is test_click_and_collect's

    assert problems == [], "\n".join(problems)
    assert csp_violations == []


def test_staff_list_weighs_under_100_kb_on_first_load(new_context, context, page, store, log_in, live_server,
                                                      viewport):
    for hours in range(12):
        store.package(state=State.WAITING if hours % 3 else State.PACKED, age=timedelta(hours=hours + 1))
    log_in(page, store)

    # A tablet that has never seen the portal (empty cache) but holds the session: the first load.
    fresh = new_context(storage_state=context.storage_state(), viewport=page.viewport_size, has_touch=True,
                        base_url=live_server.url)
    tablet = fresh.new_page()
    requests = []
    tablet.on("requestfinished", lambda request: requests.append(request))
    tablet.goto("/packages", wait_until="networkidle")
    expect(tablet.locator("#package-table .queue-card")).to_have_count(10)  # the To pack tab

    received = []
    for request in requests:
        response = request.response()
        sizes = request.sizes()
        received.append((request.url.removeprefix(live_server.url), response.status,
                         response.headers.get("content-encoding", "identity"),
                         sizes["responseBodySize"], sizes["responseHeadersSize"]))
    table = "\n".join(f"{url} {status} {encoding} body={body} B headers={headers} B"
                      for url, status, encoding, body, headers in received)
    urls = [url for url, *_ in received]
    assert "/packages" in urls and len(urls) == len(set(urls)), table  # finishing order varies
    assert all(status == 200 for _, status, *_ in received), table
    # Text is compressed on the wire (Flask-Compress picks zstd, br or gzip from Accept-Encoding).
    assert all(encoding in ("zstd", "br", "gzip") for _, _, encoding, *_ in received), table
    bodies = sum(body for *_, body, _ in received)
    with_headers = sum(body + headers for *_, body, headers in received)
    print(f"\nfirst load of the staff list ({viewport}): {bodies / 1024:.1f} KB of bodies, "
          f"{with_headers / 1024:.1f} KB with headers\n{table}")
    assert bodies < WEIGHT_LIMIT, table
    assert re.search(r"/static/vendor/htmx\.min\.js", table) and "/static/portal.css" in table
