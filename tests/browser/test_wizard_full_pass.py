"""A full pass of the setup wizard in the browser, as an admin of the demo makes it: 15 of 15 done, nothing skipped.

The portal is set up as scripts/run-demo sets it up: the demo seed (stores, users, the sandbox's Omnitron login
in step 7) and the sandbox playing Omnitron, the geocoding providers (step 9) and the stock service (step 10).
Every tap and every typed string is counted (a native select is 2 taps, as in the UX review), and the
navigation taps (one a step: the home's next step, then each done step's way-on banner) are counted apart.

The flowchart (step 13) and the scenario editor (step 11) are also checked at both orientations: they fit the
screen, their boxes and rows are touch-sized, axe-core finds nothing, and a tap on the chart opens what it shows.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from stubs.omnitron_server import SandboxServer

from portal import seed
from portal.accounts import auth
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.setup.steps import STEPS
from portal.stores.models import StockLocation
from portal.sync.models import Channel
from tests.browser.conftest import ROOT

SLOW_MS = 30_000
# A small Omnitron keeps the copies quick on a loaded 2-core machine.
SANDBOX = {"SANDBOX_ADDRESS_COUNT": 300, "SANDBOX_STORE_COUNT": 8}


@dataclass
class Taps:
    """Counts what the admin does: taps and typed strings, with the navigation taps apart."""

    page: object
    work: int = 0
    navigation: int = 0
    typed: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    current: str = "log in"

    def tap(self, locator) -> None:
        """One tap on a button, link, box or switch."""
        locator.click()
        self.work += 1
        self.steps[self.current] = self.steps.get(self.current, 0) + 1

    def type(self, locator, text: str) -> None:
        """A tap into a field and one typed string."""
        locator.fill(text)
        self.work += 1
        self.typed += 1
        self.steps[self.current] = self.steps.get(self.current, 0) + 1

    def choose(self, locator, value: str) -> None:
        """A native select: open it, then pick (2 taps)."""
        locator.select_option(value)
        self.work += 2
        self.steps[self.current] = self.steps.get(self.current, 0) + 2

    def go(self, locator) -> None:
        """A tap that only moves between pages."""
        locator.click()
        self.navigation += 1

    @property
    def total(self) -> int:
        """Every tap, work and navigation."""
        return self.work + self.navigation


@pytest.fixture
def sandbox(live_server):
    """The sandbox, and the served portal configured as scripts/run-demo configures it."""
    with SandboxServer(SANDBOX) as server:
        config = live_server.app.config
        keys = ("OMNITRON_URL", "DEMO_SANDBOX_URL", "GEOCODING_GOOGLE_BASE_URL", "GEOCODING_YANDEX_BASE_URL")
        before = {key: config[key] for key in keys}
        config.update({key: server.url for key in keys})
        yield server
        config.update(before)


@pytest.fixture
def demo(live_server):
    """The demo seed without its packages: stores, users, and the sandbox's login saved for step 7."""
    with live_server.session() as session:
        seed.seed_stores(session)
        seed.seed_users(session)
        seed.seed_omnitron_login(session)
        session.commit()


def log_in_as_admin(page, taps: Taps) -> None:
    """The demo admin logs in and opens the setup wizard."""
    page.goto("/login")
    taps.type(page.get_by_label("Username"), "admin")
    taps.type(page.get_by_label("Password"), "admin-demo-1")
    taps.tap(page.get_by_role("button", name="Log in"))
    page.wait_for_url(re.compile(r"/packages"))
    taps.go(page.get_by_role("link", name="Setup"))
    page.wait_for_url(re.compile(r"/setup/$"))


def open_step(page, taps: Taps, key: str, title: str) -> None:
    """Go on to a step in one tap: the way-on banner of the step just done, else (first step) the home's next step.

    The wizard must lead there by itself: the banner or the home must point at exactly this step.
    """
    taps.current = title
    way_on = page.locator("#way-on")
    taps.go(way_on if way_on.count() else page.locator("#next-step-go"))
    expect(page.locator("#step-head")).to_have_attribute("data-step", key)
    page.wait_for_load_state("load")  # htmx wires the controls on DOMContentLoaded


def expect_done(page) -> None:
    """The step page's state chip says Done."""
    expect(page.locator("#step-state .chip")).to_have_text("Done", timeout=SLOW_MS)


def copy_now(page, taps: Taps, key: str, title: str) -> None:
    """Steps 4 to 6: "Copy now" and wait for the finished copy."""
    open_step(page, taps, key, title)
    expect(page.locator("#sync-required-result")).to_contain_text("Yes, copy now.", timeout=SLOW_MS)
    taps.tap(page.get_by_role("button", name="Copy now"))
    expect(page.locator("#sync-job-state")).to_have_text("Done", timeout=SLOW_MS)
    expect_done(page)


@pytest.mark.parametrize("viewport", ["landscape", "portrait"])
def test_an_admin_finishes_all_15_steps_of_the_demo_without_skipping(page, live_server, sandbox, demo,
                                                                       csp_violations, screenshot, viewport):
    page.set_default_timeout(SLOW_MS)
    taps = Taps(page)
    log_in_as_admin(page, taps)

    open_step(page, taps, "machine", "Control OMS machine")
    taps.tap(page.get_by_role("button", name="Check now"))
    expect(page.locator("#machine-result")).to_contain_text("Omnitron is reachable")
    expect_done(page)

    open_step(page, taps, "users", "Create users")  # the way on after step 1: step 2
    taps.type(page.get_by_label("Username"), "magaza1")
    taps.type(page.get_by_label("Full name"), "Mağaza Personeli")
    taps.choose(page.get_by_label("Role"), "staff")
    taps.tap(page.locator("#user-create .store-choices").get_by_label(re.compile("Kadıköy Store")))
    taps.type(page.get_by_label("First password"), "magaza-pass-1")
    taps.tap(page.get_by_role("button", name="Add user"))
    expect(page.locator("#toasts")).to_contain_text("User magaza1 created.")
    expect_done(page)

    # Step 7 is done already: the demo saved and tested the sandbox's login, so the way on leads to step 3.
    open_step(page, taps, "application", "Control OMS application")
    taps.tap(page.get_by_role("button", name="Log in to Omnitron"))
    expect(page.locator("#application-result")).to_contain_text("Logged in to Omnitron")
    expect_done(page)

    copy_now(page, taps, "addresses", "Copy addresses")
    copy_now(page, taps, "stock_locations", "Copy stores")
    copy_now(page, taps, "channels", "Copy channels")
    with live_server.session() as session:
        channels = list(session.scalars(select(Channel.name).where(Channel.is_active.is_(True)).order_by(Channel.name)))
    assert len(channels) >= 2

    open_step(page, taps, "order_filtering", "Order filtering")
    taps.tap(page.locator("#statuses").get_by_label("Approved"))
    taps.tap(page.get_by_role("button", name="Save order filtering"))
    expect_done(page)

    # Step 9: the sandbox plays Google Maps (chosen already); any key works.
    open_step(page, taps, "geolocation", "Geolocation discovery")
    expect(page.locator("#demo-sandbox-note")).to_contain_text("any API key")
    taps.type(page.get_by_label("API key"), "demo-key")
    taps.tap(page.get_by_role("button", name="Save"))
    taps.tap(page.get_by_role("button", name="Test key"))
    expect(page.locator("#geolocation-result")).to_contain_text("The key works.")
    expect_done(page)

    # Step 10: the sandbox's stock service is the form's default: add it, test it.
    open_step(page, taps, "stock_integration", "Product stock integration")
    stock_url = f"{sandbox.url}/stock-engines/omnitron"
    expect(page.locator("#stock-url")).to_have_value(stock_url)
    taps.tap(page.get_by_role("button", name="Add integration"))
    taps.tap(page.get_by_role("button", name=f"Test connection of {stock_url}"))
    expect(page.locator("#stock-integrations .test-result .chip")).to_have_text("Passed")
    expect_done(page)

    # Step 11: one scenario, found by search, used for every channel.
    open_step(page, taps, "scenarios", "Scenarios")
    taps.tap(page.get_by_role("button", name=f"New scenario for {channels[0]}"))
    editor = page.locator("#scenario-editor")
    taps.type(editor.get_by_label("Name", exact=True), "From Kadıköy")
    taps.type(editor.get_by_label("Search by name, code or city"), "kadıköy")
    taps.tap(editor.get_by_label("Allow Kadıköy Store"))
    taps.tap(editor.locator("#scenario-copy"))
    taps.tap(editor.get_by_role("button", name="Save scenario"))
    expect(page.locator("#toasts")).to_contain_text("Scenario 'From Kadıköy' saved")
    expect_done(page)

    open_step(page, taps, "events", "Event list")
    taps.tap(page.get_by_role("button", name="Save event list"))
    expect_done(page)

    open_step(page, taps, "package_commands", "Package commands")
    with page.expect_response(re.compile(r"/setup/package-commands/check$")):
        taps.tap(page.get_by_role("button", name="Check the flow"))
    expect_done(page)

    open_step(page, taps, "cargo_companies", "Cargo companies")
    taps.type(page.get_by_label("Name", exact=True), "Demo Kargo")
    taps.type(page.get_by_label("ERP code"), "DEMO-KARGO")
    page.get_by_label("Shipping company").select_option(index=1)
    taps.work += 2
    taps.steps[taps.current] += 2
    expect(page.locator("#cargo-conf legend")).to_contain_text("Credentials for")
    taps.tap(page.get_by_role("switch", name=re.compile("Demo client")))
    taps.tap(page.get_by_role("radio", name=re.compile("DemoShippingClient")))
    taps.tap(page.get_by_role("button", name="Add cargo company"))
    expect(page.locator("#toasts")).to_contain_text("Cargo company Demo Kargo (DEMO-KARGO) added.")
    expect_done(page)

    open_step(page, taps, "jobs", "Brand-specific jobs")
    taps.type(page.get_by_label("Name", exact=True), "Nightly pickup code release")
    taps.choose(page.get_by_label("Type"), "release_expired_pickup_codes")
    expect(page.locator("#new-job-params")).to_contain_text("Marks pickup codes past their expiry")
    # The schedule builder's default is what is wanted: daily at 03:00.
    expect(page.locator("#new-kind-daily")).to_be_checked()
    expect(page.locator("#new-schedule-time")).to_have_value("03:00")
    taps.tap(page.get_by_role("button", name="Add job"))
    expect(page.locator("#toasts")).to_contain_text("Job Nightly pickup code release saved.")
    expect_done(page)

    taps.current = "home"
    taps.go(page.locator("#way-on"))  # "Every step is finished": back to the overview
    page.wait_for_url(re.compile(r"/setup/$"))
    expect(page.locator("#setup-finished")).to_have_text("15")
    screenshot(page, "wizard-full-pass-home")
    with live_server.session() as session:
        states = {s.step.key: (s.record.state if s.record else None) for s in wizard.statuses(session)}
    assert states == {step.key: SetupStep.DONE for step in STEPS}  # nothing skipped
    assert csp_violations == []

    figures = {"taps_total": taps.total, "taps_work": taps.work, "taps_navigation": taps.navigation,
               "typed_strings": taps.typed, "work_taps_by_step": taps.steps}
    folder = ROOT / "test-artifacts" / "ux"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"wizard-full-pass-taps-{viewport}.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False),
                                                       encoding="utf-8")
    print("wizard full pass:", json.dumps(figures, ensure_ascii=False))
    # One tap from step to step (the way-on banner), one into the first step and one back to the overview.
    assert taps.navigation == 16, figures  # 14 steps to open (step 7 is done by the demo), home and back


# --- the flowchart and the scenario editor at both orientations ----------------------------------------------

@pytest.fixture
def many_locations(live_server):
    """A brand with 100 stock locations over four cities and one channel, as the review's demo had."""
    with live_server.session() as session:
        cities = ("İstanbul", "Ankara", "İzmir", "Bursa")
        for n in range(100):
            session.add(StockLocation(erp_code=f"LOC-{n:03d}", name=f"{cities[n % 4]} Store {n:03d}",
                                      city=cities[n % 4], kind="warehouse" if n % 10 == 0 else "store",
                                      max_quota=10, latitude=Decimal("41.0"), longitude=Decimal("29.0")))
        session.add(Channel(omnitron_id=1, name="Web", channel_type="web"))
        session.commit()
        auth.create_user(session, "admin", "admin-demo-1", "admin", [], full_name="Ayşe Admin")


# Checkboxes, radios and switches smaller than 44 x 44 whose label (around them or naming them) is smaller too,
# and other fields under 44 px high.
TAP_TARGETS_JS = """
(scope) => {
  const out = [];
  for (const e of document.querySelector(scope).querySelectorAll('input:not([type=hidden]), select, button')) {
    if (!e.checkVisibility()) continue;
    let r = e.getBoundingClientRect();
    if (e.matches('[type=checkbox], [type=radio]')) {
      const label = e.closest('label') || (e.id && document.querySelector(`label[for="${e.id}"]`));
      if (label && (r.width < 44 || r.height < 44)) r = label.getBoundingClientRect();
      if (r.width < 43.5 || r.height < 43.5) out.push(`${e.name} ${e.value}: ${Math.round(r.width)}x${Math.round(r.height)}`);
    } else if (r.height < 43.5) {
      out.push(`${e.name || e.tagName}: height ${Math.round(r.height)}`);
    }
  }
  return out;
}
"""


def assert_fits(page, ux, name: str, scope: str = "main") -> dict:
    """No horizontal scroll of the page (wide tables scroll in their own box), no axe-core violation."""
    figures = ux.check(page, name, scope=scope)
    assert figures["scroll_width"] <= figures["inner_width"], figures["sticking_out"]
    assert figures["axe_violations"] == [], figures["axe_violations"]
    return figures


@pytest.mark.parametrize("viewport", ["landscape", "portrait"])
def test_the_flowchart_fits_the_tablet_and_a_tap_opens_a_command_or_a_state(page, live_server, many_locations, ux,
                                                                           screenshot, csp_violations, viewport):
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-demo-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/packages"))
    page.goto("/setup/package-commands")
    page.wait_for_load_state("load")

    chart = page.locator("#flowchart")
    box = chart.bounding_box()
    width = page.viewport_size["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    # Not scaled down: drawn at its own size, so its 13 px labels stay 13 px.
    assert abs(box["width"] - float(chart.get_attribute("width"))) < 1
    assert_fits(page, ux, "flowchart")
    # Every box is a touch target of at least 44 x 44.
    for link in chart.locator("a.flow-link").all():
        size = link.bounding_box()
        assert size["width"] >= 44 and size["height"] >= 44, link.get_attribute("aria-label")

    page.locator("#flowchart a[aria-label^='Edit the command Ship The Package']").click()
    expect(page.locator("dialog[open]")).to_contain_text("Ship The Package")
    page.keyboard.press("Escape")
    page.locator("#flow-box-s930").click()
    expect(page).to_have_url(re.compile(r"#flow-state-930$"))
    expect(page.locator("#flow-state-930")).to_be_in_viewport()
    assert csp_violations == []
    page.goto("/setup/package-commands")
    screenshot(page, "flowchart")


@pytest.mark.parametrize("viewport", ["landscape", "portrait"])
def test_the_scenario_editor_lists_the_chosen_and_finds_the_rest(page, live_server, many_locations, ux, screenshot,
                                                               csp_violations, viewport):
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-demo-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/packages"))
    page.goto("/setup/scenarios")
    page.get_by_role("button", name="New scenario for Web").click()
    editor = page.locator("#scenario-editor")
    expect(editor.locator("#locations-hidden")).to_have_text("100 more locations are not shown.")
    height = page.evaluate("document.scrollingElement.scrollHeight")
    assert height < 3000, height  # the review's page was 10,664 px

    editor.get_by_label("Search by name, code or city").fill("ankara")
    expect(editor.locator(".locations-matching tr:not(.locations-group)")).to_have_count(25)
    editor.get_by_label("Allow Ankara Store 001").check()
    editor.get_by_label("Type", exact=True).select_option("warehouse")
    # The ticked store stays on top while the list shows Ankara's warehouses (none), then Izmir's (five).
    expect(editor.locator(".locations-chosen")).to_contain_text("Ankara Store 001")
    editor.get_by_label("Search by name, code or city").fill("")
    editor.get_by_label("City", exact=True).select_option("İzmir")
    expect(editor.locator(".locations-matching tr:not(.locations-group)")).to_have_count(5)
    expect(editor.get_by_label("Allow Ankara Store 001")).to_be_checked()

    figures = assert_fits(page, ux, "scenario-editor", scope="#scenario-editor")
    # A box or a switch is tapped through its label: the label is the 44 px target (see tap_targets).
    small = [t for t in figures["small_targets"] if not t.startswith("input")]
    assert small == [], small
    assert page.evaluate(TAP_TARGETS_JS, "#scenario-editor") == []
    # (the screenshot is taken at the end: its animation switch-off is an inline style the CSP reports)

    editor.get_by_label("Name", exact=True).fill("Ankara first")
    editor.get_by_role("button", name="Save scenario").click()
    expect(page.locator("#toasts")).to_contain_text("Scenario 'Ankara first' saved.")
    assert csp_violations == []
    screenshot(page, "scenario-editor-saved")
