"""An admin sets up a brand's OMS in the browser: all 15 steps of the setup wizard, on the real pages, against
the Omnitron sandbox on 127.0.0.1, until the wizard's home shows every step finished and who finished it.

The copy jobs of steps 4 to 6 run in the request (the live server's queue is immediate), so "Copy now"
answers with the finished job; the page's polling is exercised by tests/test_sync_views.py.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from stubs.omnitron_server import PASSWORD, USERNAME, SandboxServer

from portal.accounts import auth
from portal.accounts.models import User
from portal.cargo.models import CargoCompany
from portal.integrations.models import StockIntegration
from portal.jobs.models import ScheduledJob
from portal.scenarios.models import Scenario
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.setup.steps import STEPS
from portal.stores.models import StockLocation
from portal.sync.models import AddressNode, Channel

ADMIN, ADMIN_PASSWORD = "kurulum", "setup-admin-pass-1"
# A small Omnitron keeps the copies quick on a loaded 2-core machine.
SANDBOX = {"SANDBOX_ADDRESS_COUNT": 300, "SANDBOX_STORE_COUNT": 5}
# The wizard's steps make real HTTP calls and copy data: allow for a busy machine.
SLOW_MS = 30_000


@pytest.fixture
def viewport() -> str:
    """Admins set the OMS up on a laptop-sized screen: the landscape 1024x768 one only."""
    return "landscape"


@pytest.fixture
def omnitron(live_server):
    """The brand's Omnitron (the sandbox, small), and the served portal pointed at it."""
    with SandboxServer(SANDBOX) as sandbox:
        before = live_server.app.config["OMNITRON_URL"]
        live_server.app.config["OMNITRON_URL"] = sandbox.url
        yield sandbox
        live_server.app.config["OMNITRON_URL"] = before


def expect_state(page, label: str) -> None:
    """The step page's state chip says `label`."""
    expect(page.locator("#step-state .chip")).to_have_text(label, timeout=SLOW_MS)


def open_step(page, title: str) -> None:
    """Go back to the wizard home and open a step by its title, as an admin would."""
    page.get_by_role("link", name="← OMS setup").click()
    page.wait_for_url(re.compile(r"/setup/$"))
    page.locator("#setup-steps").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    # The heading shows before htmx has wired the page's controls (on DOMContentLoaded, before "load"): a
    # select changed in between fires no request, and the fields it should bring never come (seen under load).
    page.wait_for_load_state("load")


def skip_step(page, number: int, reason: str) -> None:
    """Skip the open step with a reason (a full form post and redirect back to the step)."""
    page.get_by_text("Skip this step").click()
    page.get_by_label("Why is it skipped?").fill(reason)
    page.get_by_role("button", name=f"Skip step {number}").click()
    expect_state(page, "Skipped")
    expect(page.locator("details.skip-step summary")).to_have_text(f"Skipped: {reason}")


def copy_from_omnitron(page, title: str, noun_pattern: str) -> None:
    """Steps 4 to 6: see whether a copy is needed, click "Copy now", wait for the finished job's summary."""
    open_step(page, title)
    expect(page.locator("#sync-required-result")).to_contain_text("Yes, copy now.", timeout=SLOW_MS)
    page.get_by_role("button", name="Copy now").click()
    expect(page.locator("#sync-job-state")).to_have_text("Done", timeout=SLOW_MS)
    expect(page.locator("#sync-percent")).to_have_text("100%")
    expect(page.locator("#sync-summary")).to_contain_text(re.compile(noun_pattern, re.I))
    expect(page.locator("#sync-failed")).to_have_text("0")
    expect(page.locator("#toasts")).to_contain_text("Copied")
    expect_state(page, "Done")
    # Once the job has ended, the page asks Omnitron again: nothing is left to copy.
    expect(page.locator("#sync-required-result")).to_contain_text("No, up to date.", timeout=SLOW_MS)


def test_an_admin_completes_the_setup_wizard_in_the_browser(page, live_server, omnitron, screenshot,
                                                            csp_violations):
    """Log in as an admin, finish (or skip, with a reason) each of the 15 steps, and see the home complete."""
    with live_server.session() as session:
        auth.create_user(session, ADMIN, ADMIN_PASSWORD, "admin", [], full_name="Kurulum Admin")
    page.set_default_timeout(SLOW_MS)

    page.goto("/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Setup").click()
    page.wait_for_url(re.compile(r"/setup/$"))
    expect(page.locator("#setup-finished")).to_have_text("0")

    # Step 1: can the OMS machine reach Omnitron?
    page.locator("#setup-steps").get_by_role("link", name="Control OMS machine", exact=True).click()
    expect(page.locator("#omnitron-url")).to_have_text(omnitron.url)
    page.wait_for_load_state("load")  # as in open_step
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#machine-result")).to_contain_text("Omnitron is reachable")
    expect_state(page, "Done")

    # Step 7: the oms.application user's credentials (the password is stored encrypted and shown masked).
    open_step(page, "OMS credentials")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Save credentials").click()
    expect(page.locator("#toasts")).to_contain_text("Omnitron credentials saved.")
    expect(page.locator("#stored-credentials")).to_contain_text(USERNAME)
    assert PASSWORD not in page.content()
    expect_state(page, "Done")

    # Step 3: log in to Omnitron with them.
    open_step(page, "Control OMS application")
    expect(page.locator("#omnitron-username")).to_have_text(USERNAME)
    page.get_by_role("button", name="Log in to Omnitron").click()
    expect(page.locator("#application-result")).to_contain_text(f"Logged in to Omnitron as {USERNAME}")
    expect_state(page, "Done")

    # Steps 4, 5 and 6: copy addresses, stores and channels.
    copy_from_omnitron(page, "Copy addresses", r"address|district|record")
    copy_from_omnitron(page, "Copy stores", r"stock location|store|record")
    copy_from_omnitron(page, "Copy channels", r"channel|record")
    with live_server.session() as session:
        assert len(session.scalars(select(AddressNode)).all()) >= 300
        stores = session.scalars(select(StockLocation).order_by(StockLocation.name)).all()
        assert len(stores) == 5 and all(s.omnitron_id for s in stores)
        store_name, store_code, store_id = stores[0].name, stores[0].erp_code, stores[0].id
        channels = session.scalars(select(Channel).order_by(Channel.name)).all()
        active_channels = [c.name for c in channels if c.is_active]
        assert channels and active_channels

    # Step 2: a staff member for one of the copied stores.
    open_step(page, "Create users")
    page.get_by_label("Username").fill("magaza1")
    page.get_by_label("Full name").fill("Mağaza Personeli")
    page.get_by_label("Role").select_option("staff")
    page.locator("#user-create .store-choices").get_by_label(re.compile(re.escape(store_name))).check()
    page.get_by_label("First password").fill("magaza-pass-1")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#toasts")).to_contain_text("User magaza1 created.")
    expect(page.locator("#user-table")).to_contain_text("magaza1")
    expect(page.locator("#user-table")).to_contain_text(store_code)
    expect_state(page, "Done")

    # Step 8: fetch approved orders only.
    open_step(page, "Order filtering")
    page.locator("#statuses").get_by_label("Approved").check()
    page.get_by_role("button", name="Save order filtering").click()
    expect(page.locator("#toasts")).to_contain_text("Order filtering saved.")
    expect(page.locator("#order-filtering-summary")).to_contain_text("Approved")
    expect_state(page, "Done")

    # Step 9: the maps key comes from the brand later; the provider is external, so the step is skipped.
    open_step(page, "Geolocation discovery")
    skip_step(page, 9, "The brand sends its Google Maps key next week.")

    # Step 10: the sandbox's stock service for the "omnitron" engine (no credentials), tested for real.
    open_step(page, "Product stock integration")
    page.get_by_label("Stock engine").select_option("omnitron")
    expect(page.locator("#stock-credentials")).to_contain_text("needs no credentials")
    stock_url = f"{omnitron.url}/stock-engines/omnitron"
    page.get_by_label("URL of the stock service").fill(stock_url)
    page.get_by_role("button", name="Add integration").click()
    expect(page.locator("#toasts")).to_contain_text("Test its connection to finish this step.")
    page.get_by_role("button", name=f"Test connection of {stock_url}").click()
    result = page.locator("#stock-integrations .test-result")
    expect(result.locator(".chip")).to_have_text("Passed", timeout=SLOW_MS)
    with live_server.session() as session:
        [integration] = session.scalars(select(StockIntegration)).all()
        assert integration.last_test_ok, integration.last_test_message
    expect_state(page, "Done")

    # Step 11: one scenario per active channel, each allowing the staff member's store.
    open_step(page, "Scenarios")
    for name in active_channels:
        page.get_by_role("button", name=f"New scenario for {name}").click()
        editor = page.locator("#scenario-editor")
        expect(editor.get_by_label("Channel", exact=True)).to_have_value(re.compile(r"\d+"))
        editor.get_by_label("Name", exact=True).fill(f"{name} from the store")
        # Only chosen locations are listed at first: find the store by name.
        editor.get_by_label("Search by name, code or city").fill(store_name)
        editor.get_by_label(f"Allow {store_name}").check()
        editor.get_by_label(f"Priority of {store_name}").fill("1")
        editor.get_by_role("button", name="Save scenario").click()
        expect(page.locator("#toasts")).to_contain_text(f"Scenario '{name} from the store' saved.")
        expect(page.locator("#scenario-panel")).to_contain_text(f"Scenario: {name} from the store")
        # The editor closes on save, so the next channel's editor is not mistaken for this one while it loads.
        expect(page.locator("#scenario-editor")).to_have_count(0)
    expect_state(page, "Done")

    # Step 12: the brand wants no events yet; saving the empty list finishes the step.
    open_step(page, "Event list")
    page.get_by_role("button", name="Save event list").click()
    expect(page.locator("#toasts")).to_contain_text("Event list saved. Every wanted event has a subscription.")
    expect_state(page, "Done")

    # Step 13: the installed vendor flow passes the check.
    open_step(page, "Package commands")
    expect(page.locator("#flow-check")).to_have_class(re.compile("flash-success"))
    # Wait for the check's answer: leaving before it would race the home page against the step's state.
    with page.expect_response(re.compile(r"/setup/package-commands/check$")):
        page.get_by_role("button", name="Check the flow").click()
    expect_state(page, "Done")

    # Step 14: a demo client plays the cargo company.
    open_step(page, "Cargo companies")
    page.get_by_label("Name", exact=True).fill("Demo Kargo")
    page.get_by_label("ERP code").fill("DEMO-KARGO")
    page.get_by_label("Shipping company").select_option(index=1)
    # Both changes swap #cargo-conf: let the first land, or its late answer could replace the demo choices.
    expect(page.locator("#cargo-conf legend")).to_contain_text("Credentials for")
    page.get_by_role("switch", name=re.compile("Demo client")).check()
    page.get_by_role("radio", name=re.compile("DemoShippingClient")).check()
    page.get_by_role("button", name="Add cargo company").click()
    expect(page.locator("#toasts")).to_contain_text("Cargo company Demo Kargo (DEMO-KARGO) added.")
    expect(page.locator("#cargo-companies")).to_contain_text("Demo client")
    expect_state(page, "Done")

    # Step 15: one enabled job, every night at 03:00.
    open_step(page, "Brand-specific jobs")
    page.get_by_label("Name", exact=True).fill("Nightly pickup code release")
    page.get_by_label("Type").select_option("release_expired_pickup_codes")
    # The type's own description, which only the swapped-in fragment has ("Parameters" is there before it).
    expect(page.locator("#new-job-params")).to_contain_text("Marks pickup codes past their expiry")
    # The schedule builder starts at every day, 03:00: the preview says so before anything is touched.
    expect(page.get_by_role("radio", name="Every day")).to_be_checked()
    expect(page.locator("#new-schedule-preview")).to_contain_text("Every day at 03:00")
    expect(page.locator("#new-schedule-preview")).to_contain_text("Next runs:")
    page.get_by_role("button", name="Add job").click()
    expect(page.locator("#toasts")).to_contain_text("Job Nightly pickup code release saved.")
    expect_state(page, "Done")

    # The wizard's home: 15 of 15 finished, a full progress bar, and who finished each step.
    page.get_by_role("link", name="← OMS setup").click()
    page.wait_for_url(re.compile(r"/setup/$"))
    expect(page.locator("#setup-finished")).to_have_text("15")
    expect(page.locator("#setup-progress")).to_have_attribute("value", "15")
    expect(page.locator("#setup-progress")).to_have_attribute("max", "15")
    skipped = {"geolocation"}
    for step in STEPS:
        row = page.locator(f"#step-{step.key}")
        expect(row.locator(".chip")).to_have_text("Skipped" if step.key in skipped else "Done")
        expect(row.locator(".step-side small")).to_contain_text(f"{ADMIN}, ")
    expect(page.locator("#step-geolocation")).to_contain_text("Skipped: The brand sends its Google Maps key")
    screenshot(page, "setup-home-complete")

    with live_server.session() as session:
        admin_id = session.scalar(select(User.id).where(User.username == ADMIN))
        statuses = {s.step.key: s for s in wizard.statuses(session)}
        for step in STEPS:
            record = statuses[step.key].record
            assert record.state == (SetupStep.SKIPPED if step.key in skipped else SetupStep.DONE), step.key
            assert record.completed_by_id == admin_id, step.key
        assert wizard.progress(session) == (15, 15)
        assert settings.get_value(session, settings.ORDER_FILTERING)["statuses"] == ["approved"]
        staff = session.scalar(select(User).where(User.username == "magaza1"))
        assert staff.role == "staff" and [s.id for s in staff.stock_locations] == [store_id]
        assert len(session.scalars(select(Scenario).where(Scenario.is_active.is_(True))).all()) == len(active_channels)
        [company] = session.scalars(select(CargoCompany)).all()
        assert (company.erp_code, company.is_demo_client) == ("DEMO-KARGO", True)
        [job] = session.scalars(select(ScheduledJob)).all()
        assert (job.schedule, job.enabled) == ("0 3 * * *", True)
    assert csp_violations == []
