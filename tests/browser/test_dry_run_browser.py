"""Dry run from the package page: a manager previews "Ready for pickup" under "More"; nothing happens."""
from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import func, select

from portal.accounts import auth
from portal.outbox.models import OutboxMessage
from portal.packages.models import PackageLog
from portal.packages.states import State
from tests.browser.conftest import STAFF_PASSWORD


def _problems(name: str, figures: dict) -> list[str]:
    """Missed UX targets on one screen, in words."""
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways: {figures['sticking_out']}")
    problems += [f"{name}: touch target under 44x44 px: {t}" for t in figures["small_targets"]]
    problems += [f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                 for v in figures["axe_violations"]]
    return problems


def _written(store) -> tuple[int, int]:
    """How many history rows and outbox messages exist."""
    with store.live.session() as session:
        return (session.scalar(select(func.count()).select_from(PackageLog)),
                session.scalar(select(func.count()).select_from(OutboxMessage)))


def test_a_manager_previews_ready_for_pickup_from_the_package_page_and_nothing_happens(
        page, store, log_in, ux, screenshot, csp_violations):
    with store.live.session() as session:
        auth.create_user(session, "melis", STAFF_PASSWORD, "brand_manager", ["IST-KDK"], full_name="Melis Demir")
    store.username = "melis"
    package = store.package(state=State.PACKED)
    log_in(page, store)
    before = _written(store)

    page.goto(f"/packages/{package['id']}")
    page.locator("#more-actions > summary").tap()
    preview = page.locator('[data-preview="ready-for-customer-pickup"]')
    expect(preview).to_be_visible()
    problems = _problems("package page", ux.check(page, "dry-run-package"))
    preview.tap()

    dialog = page.locator("dialog#modal")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#modal-title")).to_contain_text("Preview")
    expect(dialog.locator("#dry-run-state")).to_contain_text("Ready for Customer Pickup")
    expect(dialog.locator("#dry-run-events")).to_contain_text("package.ready_for_customer_pickup")
    expect(dialog.locator("#dry-run-sms")).to_contain_text("••••••")
    expect(dialog.locator("#dry-run-audit")).to_contain_text("ready-for-customer-pickup")
    problems += _problems("preview", ux.check(page, "dry-run-preview"))
    screenshot(page, "dry-run-preview")

    dialog.get_by_role("button", name="Close").tap()
    expect(dialog).to_be_hidden()
    assert store.state_of(package["id"]) == State.PACKED
    assert _written(store) == before
    assert problems == [], "\n".join(problems)
    assert csp_violations == []
