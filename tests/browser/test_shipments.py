"""Cargo shipments on the store floor, over real HTTP to the sandbox's cargo service: Ship a packed cargo package
while the cargo service is down, read the error, Retry when it is back, print the label, and watch the tracking
poll move the package; at both orientations on both databases (no axe finding, no horizontal scroll, 44 px)."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect
from stubs.omnitron_server import SandboxServer

from portal.cargo import service as cargo
from portal.cargo.companies import demo_client_klass
from portal.packages import shipment_tracking
from portal.packages.states import State

from .test_hold_browser import assert_clean, tidy


@pytest.fixture
def cargo_sandbox(live_server):
    """The sandbox's cargo service on a free port; the served portal's demo clients talk to it."""
    with SandboxServer({"SANDBOX_ADDRESS_COUNT": 30, "SANDBOX_STORE_COUNT": 3, "SANDBOX_ORDER_COUNT": 3,
                        "SANDBOX_CARGO_STEP_SECONDS": 0}) as server:
        live_server.app.config["CARGO_SERVICE_URL"] = server.url
        with live_server.session() as session:
            cargo.save_company(session, name="Demo Cargo", erp_code="DEMO", is_managed_by_oms=True,
                               is_demo_client=True, shipping_company="yurtici",
                               conf={"klass": demo_client_klass("DemoShippingClient")}, user_id=None)
        yield server


def test_ship_with_the_service_down_then_retry_print_the_label_and_track_it(
        page, store, live_server, cargo_sandbox, log_in, ux, screenshot, csp_violations):
    package = store.package(state=State.PACKED, click_collect=False, items=1)
    cargo_sandbox.add_fault("/cargo/*", status=503, times=None)
    log_in(page, store)
    page.goto(f"/packages/{package['id']}")

    # Ship: the command goes through whatever the cargo service does.
    ship = page.locator('[data-command="SHIP_PACKAGE"]').first
    if not ship.is_visible():
        page.locator("#more-actions summary").tap()
    ship.tap()
    expect(page.locator("dialog#modal[open]")).to_be_visible()
    page.locator("dialog#modal[open] button[type=submit]").tap()
    expect(page.locator("#package-status")).to_contain_text("Shipped")
    card = page.locator("#shipment-card")
    expect(card).to_contain_text("The cargo company did not take the shipment.")
    expect(page.locator("#shipment-error")).to_contain_text("503")
    assert_clean(ux, page, "shipment failed")
    screenshot(page, "shipment-failed")

    # Back up: Retry makes it, and the tracking number shows.
    requests.delete(f"{cargo_sandbox.url}/__sandbox__/faults", timeout=5).raise_for_status()
    page.locator("#shipment-retry").tap()
    expect(page.locator("#shipment-tracking")).to_have_text(re.compile(r"^\d{12}$"))
    expect(page.locator("#shipment-state")).to_contain_text("waiting for the courier")
    tracking = page.locator("#shipment-tracking").inner_text()
    assert_clean(ux, page, "shipment created")
    screenshot(page, "shipment-created")

    # The label: its own page with the PDF and a Print button.
    page.locator("#shipment-label-print").tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}/shipment/label$"))
    expect(page.locator("#label-frame")).to_be_visible()
    expect(page.locator("h1")).to_contain_text(package["number"])
    assert_clean(ux, page, "shipment label")
    screenshot(page, "shipment-label", full_page=False)
    pdf = page.request.get(f"/packages/{package['id']}/shipment/label.pdf")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    page.go_back()

    # The courier delivers; the scheduled tracking poll moves the package to Delivered.
    requests.post(f"{cargo_sandbox.url}/__sandbox__/cargo/status", json={"tracking_number": tracking,
                                                                         "status": "delivered"}, timeout=5)
    with live_server.session() as session:
        run = shipment_tracking.start_tracking(session)
        assert run.status == run.DONE and run.moved == 1, run.error
    tidy(page)
    page.reload()
    expect(page.locator("#package-status")).to_contain_text("Delivered")
    expect(page.locator("#shipment-state")).to_have_text("Delivered")
    expect(page.locator("#package-history")).to_contain_text("Update The Package's Shipment Status")
    assert_clean(ux, page, "shipment delivered")
    screenshot(page, "shipment-delivered")
    assert csp_violations == []
