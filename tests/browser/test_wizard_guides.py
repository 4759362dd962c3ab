"""The wizard guides an admin (issue 10), at both tablet orientations: the home leads with the next step and
the steps needing attention, step pages have Previous/Next and a way on, the jobs page builds a schedule;
axe-core finds nothing on the setup home, a step page and the jobs page, and nothing scrolls sideways.

Taps are counted as the review counted them (a tap on a link, button, box or field; a native select is 2).
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from stubs.omnitron_server import SandboxServer

from portal.accounts import auth
from portal.seed import seed_omnitron_login
from portal.setup import service as wizard
from portal.setup.models import SetupStep

ADMIN, ADMIN_PASSWORD = "rehber", "guide-admin-pass-1"
SLOW_MS = 30_000


@pytest.fixture
def omnitron(live_server):
    """The brand's Omnitron (the sandbox, tiny), and the served portal pointed at it."""
    with SandboxServer({"SANDBOX_ADDRESS_COUNT": 50, "SANDBOX_STORE_COUNT": 2}) as sandbox:
        before = live_server.app.config["OMNITRON_URL"]
        live_server.app.config["OMNITRON_URL"] = sandbox.url
        yield sandbox
        live_server.app.config["OMNITRON_URL"] = before


class Taps:
    """Counts the admin's taps: each tap() goes through here."""

    def __init__(self):
        self.count = 0

    def tap(self, locator) -> None:
        """Tap a link, button or box (a click with touch on)."""
        locator.click()
        self.count += 1


def _problems(name: str, figures: dict) -> list[str]:
    """Every missed target on one screen: sideways scrolling, small targets, axe violations."""
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways ({figures['scroll_width']} > {figures['inner_width']} px): "
                        f"{figures['sticking_out']}")
    problems += [f"{name}: touch target under 44x44 px: {t}" for t in figures["small_targets"]]
    problems += [f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                 for v in figures["axe_violations"]]
    return problems


def test_the_wizard_leads_the_admin_and_meets_the_tablet_targets(page, live_server, omnitron, ux, screenshot,
                                                                  csp_violations, viewport):
    with live_server.session() as session:
        auth.create_user(session, ADMIN, ADMIN_PASSWORD, "admin", [], full_name="Rehber Admin")
        seed_omnitron_login(session)  # the demo pre-fills step 7
        wizard.mark(session, "stock_integration", SetupStep.NEEDS_ATTENTION, user_id=None,
                    note="The connection test failed. The address could not be reached.")
    page.set_default_timeout(SLOW_MS)
    taps = Taps()

    page.goto("/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/setup/")

    # The home leads: the next step first, then what needs attention, both above the fold.
    expect(page.locator("#next-step")).to_contain_text("Step 1: Control OMS machine")
    expect(page.locator("#step-omnitron_credentials .chip")).to_have_text("Done")  # pre-filled is done
    attention = page.locator("#needs-attention")
    expect(attention).to_contain_text("Step 10: Product stock integration")
    expect(attention).to_contain_text("The connection test failed.")
    height = page.viewport_size["height"]
    assert page.locator("#next-step").bounding_box()["y"] < height
    assert attention.bounding_box()["y"] < height
    # Step 4 waits for step 3 (step 1 and 7 before it): its links come in that order.
    deps = page.locator("#deps-addresses a")
    expect(deps).to_have_text(["step 1 (Control OMS machine)", "step 3 (Control OMS application)"])
    problems = _problems("setup home", ux.check(page, "setup-home", scope="main"))
    screenshot(page, "wizard-guides-home")

    # Step 1 from the next-step card; once done, the way on leads to the next step to do.
    taps.tap(page.locator("#next-step-go"))
    page.wait_for_url(re.compile(r"/setup/machine$"))
    page.wait_for_load_state("load")
    expect(page.locator("#step-of")).to_have_text("Step 1 of 15")
    taps.tap(page.get_by_role("button", name="Check now"))
    expect(page.locator("#machine-result")).to_contain_text("Omnitron is reachable")
    way_on = page.locator("#way-on")
    expect(way_on).to_contain_text("Next: step 2 (Create users)")
    problems += _problems("step page", ux.check(page, "step-page", scope="main"))
    screenshot(page, "wizard-guides-step-done")

    # Previous and Next walk the steps in order.
    taps.tap(page.locator(".step-nav [rel=next]"))
    page.wait_for_url(re.compile(r"/setup/users$"))
    expect(page.locator("#step-of")).to_have_text("Step 2 of 15")
    taps.tap(page.locator(".step-nav [rel=prev]"))
    page.wait_for_url(re.compile(r"/setup/machine$"))

    # Step 3 (its prerequisites 1 and 7 are done now): log in, then on to the next step.
    page.goto("/setup/application")
    page.wait_for_load_state("load")
    taps.tap(page.get_by_role("button", name="Log in to Omnitron"))
    expect(page.locator("#application-result")).to_contain_text("Logged in to Omnitron")
    expect(page.locator("#way-on")).to_contain_text("Next: step 2 (Create users)")

    # Step 15: a weekly job from the builder, no cron and no JSON.
    page.goto("/setup/jobs")
    page.wait_for_load_state("load")
    expect(page.locator("#new-schedule-preview")).to_contain_text("Every day at 03:00")
    page.get_by_label("Name", exact=True).fill("Monday report")
    page.get_by_label("Type").select_option("report_waiting_packages")
    taps.count += 2  # a native select
    expect(page.locator("#new-job-params")).to_contain_text("Waiting longer than (hours)")
    taps.tap(page.get_by_role("radio", name="Every week"))
    expect(page.get_by_label("Cron expression")).to_be_hidden()
    page.locator("#new-schedule-weekday").select_option("1")
    taps.count += 2
    page.locator("#new-schedule-time").fill("08:30")
    expect(page.locator("#new-schedule-preview")).to_contain_text("Every Monday at 08:30")
    taps.tap(page.get_by_role("button", name="Add job"))
    expect(page.locator("#toasts")).to_contain_text("Job Monday report saved.")
    expect(page.locator("#job-table")).to_contain_text("Every Monday at 08:30")
    delete = page.get_by_role("button", name="Delete Monday report")
    run_now = page.get_by_role("button", name="Run now: Monday report")
    # Delete is never the heaviest button: outlined (transparent), Run now filled.
    assert delete.evaluate("e => getComputedStyle(e).backgroundColor") in ("rgba(0, 0, 0, 0)", "transparent")
    assert run_now.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    problems += _problems("jobs page", ux.check(page, "jobs-page", scope="main"))
    screenshot(page, "wizard-guides-jobs")

    print(f"\n{viewport}: {taps.count} taps for steps 1 and 3 with Next/Previous and a weekly job")
    assert problems == [], "\n".join(problems)
    assert csp_violations == []
