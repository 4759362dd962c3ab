"""Importing Omnitron's orders as packages: the sandbox over real HTTP, ORDER_FILTERING, scenarios, idempotency,
incremental and interrupted runs, package.created in the outbox, and the import_orders job type."""
from __future__ import annotations

import math
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy import func, select
from stubs.omnitron_server import PASSWORD, USERNAME, credentials, omnitron_sandbox  # noqa: F401
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.db_types import utcnow
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.jobs import scheduler
from portal.omnitron import OmnitronClient
from portal.orders import service as orders
from portal.orders.models import OrderImportRun
from portal.outbox.models import OutboxMessage
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.scenarios import service as scenarios
from portal.settings import service as settings
from portal.stores.models import StockLocation
from portal.sync import service as sync
from portal.sync.models import Channel
from portal.webhooks import service as webhooks

WEB, MOBILE, TRENDYOL = 1, 2, 3  # the sandbox's channel ids
FILTER = {"statuses": ["approved"], "channels": [WEB, MOBILE], "start_date": None, "exclude_test_orders": True,
          "page_size": 20}


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox and retries without waiting; webhook receivers listen on loopback."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "OMNITRON_RETRIES": 1,
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


def copy(kind: str) -> None:
    """Copy stores or channels from the sandbox, as steps 5 and 6 do."""
    job = sync.start_job(db.session, kind, user_id=None)
    assert sync.sync_kind(db.session, job.id, token=job.task_id).status == "done"


def location(code: str) -> StockLocation:
    """A stock location by erp_code."""
    return db.session.scalar(select(StockLocation).where(StockLocation.erp_code == code))


def channel(omnitron_id: int) -> Channel:
    """A copied channel by its Omnitron id."""
    return db.session.scalar(select(Channel).where(Channel.omnitron_id == omnitron_id))


def save_filter(**changes) -> None:
    """Save ORDER_FILTERING (step 8)."""
    settings.set_value(db.session, settings.ORDER_FILTERING, {**FILTER, **changes}, user_id=None)


def scenario(omnitron_channel: int, rules: list[str], codes: list[str]):
    """An active scenario for a channel over these stock locations, in priority order."""
    return scenarios.save_scenario(
        db.session, channel_id=channel(omnitron_channel).id, name=f"Channel {omnitron_channel}", is_active=True,
        rules=rules, locations=[(location(c).id, n) for n, c in enumerate(codes, start=1)], user_id=None)


@pytest.fixture
def world(credentials):
    """Stores and channels copied; web orders go to the central warehouse (3 packages of quota) then Tuzla;
    mobile orders to the nearest store in the delivery city."""
    copy("stock_locations")
    copy("channels")
    central, tuzla = location("WH-CENTRAL"), location("WH-TUZLA")
    central.max_quota, tuzla.max_quota = 3, 1000
    db.session.commit()
    scenario(WEB, ["SELECT_BY_QUOTA", "SORT_BY_PRIORITY"], ["WH-CENTRAL", "WH-TUZLA"])
    city_stores = [s.erp_code for s in db.session.scalars(select(StockLocation).where(
        StockLocation.kind == "store", StockLocation.city.in_(["İstanbul", "Ankara"])).order_by(StockLocation.id))]
    scenario(MOBILE, ["SAME_CITY", "STORE_ONLY", "SORT_BY_DISTANCE"], city_stores)
    save_filter()


def sandbox_orders(sandbox) -> dict[int, dict]:
    """Every order of the sandbox by id, read over plain HTTP (300 fit one page)."""
    token = requests.post(f"{sandbox.url}/api/v1/auth/login/", json={"username": USERNAME, "password": PASSWORD},
                          timeout=5).json()["key"]
    body = requests.get(f"{sandbox.url}/api/v1/orders/", params={"limit": 1000},
                        headers={"Authorization": f"Token {token}"}, timeout=5).json()
    assert body["next"] is None
    return {o["id"]: o for o in body["results"]}


def wanted(all_orders: dict[int, dict], statuses=("approved",), channels=(WEB, MOBILE)) -> dict[int, dict]:
    """The orders the filter should fetch: these statuses and channels, no test orders."""
    return {i: o for i, o in all_orders.items()
            if o["status"] in statuses and o["channel"] in channels and not o["is_test"]}


def packages() -> dict[int, Package]:
    """Imported packages by Omnitron order id, as stored now."""
    db.session.expire_all()
    return {p.omnitron_order_id: p for p in db.session.scalars(select(Package).where(
        Package.omnitron_order_id.is_not(None)).order_by(Package.id))}


def km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance in km (worked out here, not with the portal's helper)."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    return 6371 * math.acos(min(1, math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)))


def order_requests(sandbox) -> list[dict]:
    """The order list requests the sandbox received."""
    return [r for r in sandbox.requests() if r["path"] == "/api/v1/orders/"]


def test_the_import_makes_a_waiting_package_of_each_new_order_the_filter_chooses(world, omnitron_sandbox, make):
    admin = make.user("ayse", role="admin")
    expected = wanted(sandbox_orders(omnitron_sandbox))
    assert len(expected) > 40  # several pages of 20
    asked_before = len(order_requests(omnitron_sandbox))

    summary = orders.import_orders(db.session, user_id=admin.id)

    made = packages()
    assert summary.status == "done"
    assert summary.fetched == len(expected)
    assert summary.created == len(made) > 20
    assert summary.created + summary.skipped + summary.failed == summary.fetched
    assert summary.already_imported == summary.failed == 0
    assert set(made) <= set(expected)
    # The filter went to Omnitron as query parameters, oldest change first, page by page.
    first = parse_qs(order_requests(omnitron_sandbox)[asked_before]["query"])
    assert (first["status"], first["channel"], first["is_test"]) == (["approved"], ["1,2"], ["false"])
    assert (first["ordering"], first["limit"], first["page"]) == (["modified_date"], ["20"], ["1"])
    for order_id, package in made.items():
        order = expected[order_id]
        assert package.state == State.WAITING
        assert package.order_number == order["number"] and package.number == f"{order['number']}-1"
        assert package.customer.phone == order["customer"]["phone_number"]
        assert package.customer.last_name == order["customer"]["last_name"]
        assert [(i.order_item, i.sku, i.barcode, i.quantity) for i in package.items] == [
            (i["id"], i["product"]["sku"], i["product"]["barcode"], i["quantity"]) for i in order["orderitem_set"]]
        assert package.item_count == len(order["orderitem_set"])
        if order["delivery_type"] == "in_store":
            # Click & collect: the customer's store, whatever the scenario says.
            assert package.stock_location.erp_code == order["pickup_store"]["erp_code"]
            assert (package.delivery_type, package.delivery_from_store, package.is_click_and_collect) == (
                "in_store", True, True)
        else:
            assert package.delivery_type == "cargo"
        log = db.session.scalar(select(PackageLog).where(PackageLog.package_id == package.id))
        assert (log.command, log.user_id) == ("import-order", admin.id) and order["number"] in log.note
    run = db.session.get(OrderImportRun, summary.run_id)
    assert (run.status, run.created, run.started_by_id) == ("done", summary.created, admin.id)
    assert run.cursor["modified"] == max(o["modified_date"] for o in expected.values())


def test_web_orders_fill_the_warehouse_quota_then_go_to_the_next_priority(world, omnitron_sandbox):
    expected = wanted(sandbox_orders(omnitron_sandbox))

    orders.import_orders(db.session)

    web_cargo = [p for i, p in packages().items()
                 if expected[i]["channel"] == WEB and expected[i]["delivery_type"] == "cargo"]
    assert len(web_cargo) > 5
    # In the order they were imported: three to the central warehouse (its quota), the rest to Tuzla.
    assert [p.stock_location.erp_code for p in web_cargo] == ["WH-CENTRAL"] * 3 + ["WH-TUZLA"] * (len(web_cargo) - 3)
    assert all(p.delivery_from_store is False for p in web_cargo)  # shipped from a warehouse
    assert (location("WH-CENTRAL").quota, location("WH-CENTRAL").available_quota) == (3, 0)
    assert location("WH-TUZLA").quota == len(web_cargo) - 3


def test_mobile_orders_go_to_the_nearest_store_in_the_delivery_city_or_are_skipped(world, omnitron_sandbox):
    expected = wanted(sandbox_orders(omnitron_sandbox))
    stores = {s.erp_code: s for s in db.session.scalars(select(StockLocation).where(
        StockLocation.kind == "store", StockLocation.city.in_(["İstanbul", "Ankara"])))}

    summary = orders.import_orders(db.session)

    made = packages()
    mobile_cargo = {i: o for i, o in expected.items() if o["channel"] == MOBILE and o["delivery_type"] == "cargo"}
    placed = 0
    for order_id, order in mobile_cargo.items():
        address = order["shipping_address"]
        city = address["city"]["name"]
        if city not in ("İstanbul", "Ankara"):
            assert order_id not in made  # no store of the scenario in that city
            continue
        placed += 1
        lat, lon = float(address["latitude"]), float(address["longitude"])
        nearest = min((s for s in stores.values() if s.city == city),
                      key=lambda s: km(lat, lon, float(s.latitude), float(s.longitude)))
        assert made[order_id].stock_location.erp_code == nearest.erp_code
        assert made[order_id].delivery_from_store is True
    assert placed > 3
    outside = sum(1 for o in mobile_cargo.values() if o["shipping_address"]["city"]["name"] not in ("İstanbul", "Ankara"))
    assert summary.skip_reasons.get("no_location_fits", 0) + summary.skip_reasons.get("address_incomplete", 0) == outside
    assert outside > 0


def test_orders_that_cannot_be_placed_are_skipped_and_counted_by_reason(credentials, omnitron_sandbox, make):
    # Only the demo's six stores exist; channels were never copied, so no scenario can exist either.
    for code in ("IST-KDK", "IST-BSK", "WH-CENTRAL"):
        make.store(code)
    save_filter(channels=[], statuses=["approved", "preparing"])
    expected = wanted(sandbox_orders(omnitron_sandbox), statuses=("approved", "preparing"),
                      channels=range(1, 9))

    summary = orders.import_orders(db.session)

    made = packages()
    cargo = [o for o in expected.values() if o["delivery_type"] == "cargo"]
    pickups_here = [o for o in expected.values()
                    if o["delivery_type"] == "in_store" and o["pickup_store"]["erp_code"] in ("IST-KDK", "IST-BSK")]
    assert summary.fetched == len(expected)
    assert summary.skip_reasons["channel_not_copied"] == len(cargo)
    assert summary.skip_reasons["pickup_store_unknown"] == len(expected) - len(cargo) - len(pickups_here)
    assert summary.created == len(made) == len(pickups_here) > 0
    assert summary.skipped == len(expected) - len(pickups_here)
    run = db.session.get(OrderImportRun, summary.run_id)
    assert any("is not in the portal" in line for line in run.problems)
    assert "channel not copied" in summary.text()

    # Channels copied but still no scenario: the reason changes; an inactive pickup store is named as such.
    copy("channels")
    location("IST-BSK").is_active = False
    db.session.commit()
    summary = orders.import_orders(db.session, full=True)
    assert summary.skip_reasons["no_active_scenario"] == len(cargo)
    assert summary.already_imported == len(pickups_here) and summary.created == 0


def test_importing_again_creates_nothing_and_a_full_run_only_finds_them_imported(world, omnitron_sandbox):
    first = orders.import_orders(db.session)
    before = packages()
    events = db.session.scalar(select(func.count()).select_from(OutboxMessage))

    again = orders.import_orders(db.session)
    full = orders.import_orders(db.session, full=True)

    assert (again.status, again.fetched, again.created) == ("done", 0, 0)
    assert (full.fetched, full.created, full.already_imported, full.skipped) == (
        first.fetched, 0, first.created, first.skipped)
    assert packages().keys() == before.keys()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == events
    assert location("WH-CENTRAL").quota == 3  # nothing planned twice


def test_the_next_run_reads_only_orders_changed_since_the_last_one(world, omnitron_sandbox):
    first = orders.import_orders(db.session)
    before = set(packages())
    cursor = db.session.get(OrderImportRun, first.run_id).cursor["modified"]
    added = omnitron_sandbox.mutate("orders", add=40)["added_ids"]
    touched = min(before)
    omnitron_sandbox.mutate("orders", ids=[touched], changes={"status": "approved"})  # changed in Omnitron since
    new = wanted({i: o for i, o in sandbox_orders(omnitron_sandbox).items() if i in added})
    assert new  # some of the added orders match the filter
    asked_before = len(order_requests(omnitron_sandbox))

    second = orders.import_orders(db.session)

    first_query = parse_qs(order_requests(omnitron_sandbox)[asked_before]["query"])
    assert first_query["modified_date__gte"] == [cursor]
    assert (second.fetched, second.already_imported) == (len(new) + 1, 1)
    assert second.created + second.skipped + second.failed == len(new)
    made_now = set(packages()) - before
    assert made_now <= set(new) and len(made_now) == second.created > 0


def test_a_run_stopped_by_omnitron_failing_midway_is_carried_on_by_the_next(world, omnitron_sandbox):
    # A real HTTP session that makes Omnitron fail for good once the second page of orders has been read.
    http = requests.Session()
    seen = []

    def break_after_two_pages(response, *args, **kwargs):
        """Count order pages; after the second, arm a lasting 500 on the order list."""
        if "/api/v1/orders/" in response.url:
            seen.append(response.url)
            if len(seen) == 2:
                omnitron_sandbox.add_fault("/api/v1/orders/", status=500, times=None)
        return response

    http.hooks["response"].append(break_after_two_pages)
    client = OmnitronClient(omnitron_sandbox.url, USERNAME, PASSWORD, retries=1, backoff=0.01, session=http)

    stopped = orders.import_orders(db.session, client=client)

    run = db.session.get(OrderImportRun, stopped.run_id)
    assert run.status == "failed" and "answered 500" in run.error
    halfway = packages()
    # Two pages of 20 committed; the second request starts at the first page's newest change, so it brings
    # that page's last order again, which is left out by id.
    assert stopped.fetched == 39 and len(halfway) == stopped.created > 0
    assert run.cursor["modified"]

    requests.delete(f"{omnitron_sandbox.url}/__sandbox__/faults", timeout=5)
    resumed = orders.import_orders(db.session)

    expected = wanted(sandbox_orders(omnitron_sandbox))
    assert resumed.status == "done"
    assert resumed.fetched == len(expected) - 39  # only what the first run had not read
    assert resumed.already_imported == 0
    final = packages()
    assert len(final) == stopped.created + resumed.created
    # The same packages as one uninterrupted import would have made.
    assert stopped.skipped + resumed.skipped + len(final) == len(expected)


def test_a_run_whose_worker_died_is_marked_failed_and_the_next_carries_on(world, omnitron_sandbox):
    lost = orders.start_run(db.session, user_id=None)
    lost.status, lost.heartbeat_at = "running", utcnow() - timedelta(minutes=5)
    db.session.commit()

    summary = orders.import_orders(db.session)

    db.session.expire_all()
    assert db.session.get(OrderImportRun, lost.id).status == "failed"
    assert "worker stopped" in db.session.get(OrderImportRun, lost.id).error
    assert summary.status == "done" and summary.created > 0


def test_a_second_import_is_refused_while_one_is_running(world):
    orders.start_run(db.session, user_id=None)

    with pytest.raises(orders.ImportAlreadyRunning):
        orders.import_orders(db.session)


def test_each_new_package_raises_package_created_in_the_outbox_and_it_is_delivered(world, make, receivers):
    receiver = receivers()
    subscription, receiver.secret = webhooks.create_subscription(
        db.session, event_type="package.created", target_url=receiver.target_url, retry_countdown_config=None,
        additional_headers=None, user_id=make.user("brand", role="brand_manager").id)

    summary = orders.import_orders(db.session)

    made = packages()
    rows = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "event",
                                                               OutboxMessage.event_type == "package.created")))
    assert len(rows) == summary.created
    by_package = {r.package_id: r for r in rows}
    for package in made.values():
        body = by_package[package.id].payload
        payload = body.get("payload", body)
        assert payload["order_number"] == package.order_number
        assert payload["status"] == {"code": 100, "value": "waiting", "label": "Waiting"}
        assert payload["stock_location"]["erp_code"] == package.stock_location.erp_code
        assert payload["delivery_type"] == package.delivery_type
    # Delivered after each page's commit (the queue runs inline in tests), signed.
    received = receiver.wait_for(summary.created)
    assert {r.json["payload"]["id"] for r in received} == {p.id for p in made.values()}
    assert all(r.verified for r in received)
    webhook_rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")).all()
    assert len(webhook_rows) == summary.created and {r.subscription_id for r in webhook_rows} == {subscription.id}


def test_a_changed_filter_reads_again_from_the_start_date(world, omnitron_sandbox):
    orders.import_orders(db.session)
    before = set(packages())
    all_orders = sandbox_orders(omnitron_sandbox)
    save_filter(statuses=["approved", "preparing"], start_date="2024-11-15")
    # The start date is a day where the brand is: midnight in Istanbul is 21:00 UTC the day before.
    expected = {i: o for i, o in wanted(all_orders, statuses=("approved", "preparing")).items()
                if o["created_date"] >= "2024-11-14T21:00:00"}
    asked_before = len(order_requests(omnitron_sandbox))

    summary = orders.import_orders(db.session)

    query = parse_qs(order_requests(omnitron_sandbox)[asked_before]["query"])
    assert query["created_date__gte"] == ["2024-11-14T21:00:00Z"] and "modified_date__gte" not in query
    assert query["status"] == ["approved,preparing"]
    assert summary.fetched == len(expected)
    assert summary.already_imported == len(set(expected) & before)
    assert summary.created == len(set(packages()) - before) > 0


def test_nothing_runs_without_the_filter_or_the_login(app, omnitron_sandbox):
    with pytest.raises(ValidationFailed, match="order filtering"):
        orders.import_orders(db.session)
    save_filter(channels=[])
    with pytest.raises(ValidationFailed, match="step 7"):
        orders.import_orders(db.session)
    assert db.session.scalar(select(func.count()).select_from(OrderImportRun)) == 0


def test_the_import_orders_job_runs_now_and_reports_its_summary(world, make):
    admin = make.user("ayse", role="admin")
    job = scheduler.create_job(db.session, scheduler.JobInput(
        name="Fetch orders", job_type="import_orders", schedule="*/15 * * * *", parameters="", enabled=True))
    assert job.parameters == {"full": 0}

    run = scheduler.run_now(db.session, job.id, user_id=admin.id)

    assert run.status == "succeeded", run.result
    assert run.result.startswith("Order import run #") and "package(s) created" in run.result
    assert len(packages()) > 0
    # A second run finds nothing new; an Omnitron that is down makes the job's run fail with the reason.
    again = scheduler.run_now(db.session, job.id, user_id=admin.id)
    assert again.status == "succeeded" and "Fetched 0 order(s)" in again.result
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": USERNAME, "password": "wrong-password"}}, user_id=None)
    failed = scheduler.run_now(db.session, job.id, user_id=admin.id)
    assert failed.status == "failed" and "refused the username or password" in failed.result
