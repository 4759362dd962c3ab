"""Cargo shipments over real HTTP to the demo cargo service of the sandbox: created after the command commits,
one per package however often asked, nothing lost while the service is down, and the tracking poll moving
packages through the command door (twice the same state changes nothing); the page and the API show it all."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select
from stubs.omnitron_server import SandboxServer

from portal.accounts import auth
from portal.cargo import service as cargo
from portal.cargo.companies import demo_client_klass
from portal.db_types import utcnow
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.packages import commands, shipment_tracking, shipments
from portal.packages.models import Package, PackageLog
from portal.packages.shipment_models import Shipment, ShipmentTrackingRun
from portal.packages.states import State

SMALL_SANDBOX = {"SANDBOX_ADDRESS_COUNT": 30, "SANDBOX_STORE_COUNT": 3, "SANDBOX_ORDER_COUNT": 3,
                 "SANDBOX_CARGO_STEP_SECONDS": 0}


class CargoSandbox:
    """The sandbox's cargo service and its control endpoints."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.url

    def control(self, method: str, path: str, json=None):
        """Call a /__sandbox__/ endpoint."""
        response = requests.request(method, f"{self.url}/__sandbox__/{path}", json=json, timeout=5)
        response.raise_for_status()
        return response.json() if response.content else None

    def shipments(self) -> list[dict]:
        """Every shipment the service made."""
        return self.control("GET", "cargo/shipments")

    def set_status(self, tracking_number: str, status: str) -> None:
        """Put a shipment in a tracking state."""
        self.control("POST", "cargo/status", {"tracking_number": tracking_number, "status": status})

    def down(self) -> None:
        """Every cargo call answers 503 until up()."""
        self.server.add_fault("/cargo/*", status=503, times=None)

    def up(self) -> None:
        """Answer normally again."""
        self.control("DELETE", "faults")

    def create_calls(self) -> int:
        """How many create requests reached the service (faulted ones included)."""
        return sum(1 for r in self.server.requests() if r["method"] == "POST" and r["path"] == "/cargo/v1/shipments/")


@pytest.fixture
def cargo_sandbox():
    """The sandbox (with its cargo service) over real HTTP; tracking states move only when a test moves them."""
    with SandboxServer(SMALL_SANDBOX) as server:
        yield CargoSandbox(server)


@pytest.fixture
def app_config(cargo_sandbox):
    """The portal's demo clients talk to the test's sandbox."""
    return {"CARGO_SERVICE_URL": cargo_sandbox.url, "CARGO_TIMEOUT_SECONDS": 3}


def add_company(name: str = "Demo Cargo", code: str = "DEMO", client: str = "DemoShippingClient", *,
                managed: bool = True):
    """A demo cargo company (setup step 14)."""
    company, _created = cargo.save_company(
        db.session, name=name, erp_code=code, is_managed_by_oms=managed, is_demo_client=True,
        shipping_company="yurtici", conf={"klass": demo_client_klass(client)}, user_id=None)
    return company


def barcodes(package: Package) -> list[dict]:
    """Every item's barcode, as the packing command takes them."""
    return [{"order_item": item.order_item, "barcode": item.barcode} for item in package.items]


def pack(package: Package, **extra) -> commands.CommandResult:
    """Complete Packaging (with shipment) from Waiting."""
    return commands.run_command(db.session, package.id, slug="complete-packaging-from-waiting",
                                params={"barcodes": barcodes(package), **extra}, user_id=None, store_ids=None)


def shipment_of(package: Package) -> Shipment:
    """The package's shipment, fresh from the database."""
    db.session.expire_all()
    shipment = shipments.get_shipment(db.session, package.id)
    assert shipment is not None
    return shipment


def state_of(package: Package) -> int:
    """The package's state, fresh from the database."""
    return db.session.scalar(select(Package.state).where(Package.id == package.id))


def poll() -> ShipmentTrackingRun:
    """A tracking run (inline: the test queue is immediate)."""
    run = shipment_tracking.start_tracking(db.session)
    assert run.status == run.DONE, run.error
    return run


def logs(package: Package, command: str) -> list[PackageLog]:
    """The package's audit rows of a command."""
    return list(db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id,
                                                            PackageLog.command == command)))


def events_of(event_type: str) -> int:
    """How many events of a type were recorded."""
    return db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.event_type == event_type))


# Creating ------------------------------------------------------------------------------------------------------


def test_packing_a_cargo_package_creates_its_shipment_with_a_tracking_number_and_a_pdf_label(make, cargo_sandbox):
    company = add_company()
    package = make.package(click_collect=False)
    result = pack(package)
    assert result.to_state == State.PACKED
    shipment = shipment_of(package)
    assert shipment.status == Shipment.CREATED and shipment.cargo_company_id == company.id
    assert shipment.tracking_number.isdigit() and len(shipment.tracking_number) == 12
    assert shipment.tracking_status == "created" and shipment.attempts == 1 and shipment.last_error == ""
    assert shipment.label.startswith(b"%PDF-1.4") and shipment.label.rstrip().endswith(b"%%EOF")
    assert shipment.tracking_number.encode() in shipment.label
    made = cargo_sandbox.shipments()
    assert [(s["key"], s["tracking_number"], s["reference"]) for s in made] == [
        (shipment.key, shipment.tracking_number, package.number)]
    # Audited, and shipment.created has its source.
    assert "is being created" in logs(package, "complete-packaging-from-waiting")[0].note
    assert shipment.tracking_number in logs(package, shipments.CREATED_COMMAND)[0].note
    assert events_of("shipment.created") == 1


def test_click_and_collect_and_self_shipped_packages_get_no_shipment(make, cargo_sandbox):
    add_company()
    collect = make.package(click_collect=True)
    pack(collect)
    own = make.package(click_collect=False, state=State.PACKED)
    commands.run_command(db.session, own.id, slug="ship-the-package", params={"tracking_number": "OWN-1"},
                         user_id=None, store_ids=None)
    assert shipments.get_shipment(db.session, collect.id) is None
    assert shipments.get_shipment(db.session, own.id) is None
    assert cargo_sandbox.shipments() == []


def test_without_a_managed_cargo_company_packing_still_works_and_no_shipment_is_made(make, cargo_sandbox):
    add_company(managed=False)
    package = make.package(click_collect=False)
    assert pack(package).to_state == State.PACKED
    assert shipments.get_shipment(db.session, package.id) is None


def test_ship_creates_the_shipment_of_a_packed_package_that_has_none(make, cargo_sandbox):
    add_company()
    package = make.package(click_collect=False, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ship-the-package", params={}, user_id=None, store_ids=None)
    assert state_of(package) == State.SHIPPED
    assert shipment_of(package).status == Shipment.CREATED


def test_a_command_may_name_the_cargo_company_and_an_unknown_one_refuses_the_command(make, cargo_sandbox):
    add_company()
    other = add_company("Other Cargo", "OTHER", "DemoDelayedShippingClient")
    package = make.package(click_collect=False)
    pack(package, cargo_company="OTHER")
    assert shipment_of(package).cargo_company_id == other.id
    second = make.package(click_collect=False)
    with pytest.raises(commands.ValidationFailed):
        pack(second, cargo_company="NOPE")
    assert state_of(second) == State.WAITING


def test_asking_again_makes_no_second_shipment_at_the_cargo_company(make, cargo_sandbox):
    add_company()
    package = make.package(click_collect=False)
    pack(package)
    first = shipment_of(package)
    # A worker whose answer was lost asks again with the same key: the service hands back the same shipment.
    db.session.execute(Shipment.__table__.update().where(Shipment.id == first.id).values(
        status=Shipment.PENDING, next_attempt_at=utcnow(), tracking_number=""))
    db.session.commit()
    again = shipments.create_shipment(db.session, first.id)
    assert again.status == Shipment.CREATED and again.tracking_number == first.tracking_number
    assert len(cargo_sandbox.shipments()) == 1
    # Not due (created): nobody claims it.
    assert shipments.create_shipment(db.session, first.id) is None
    with pytest.raises(commands.CommandRejected):
        shipments.request_shipment(db.session, package.id, user_id=None, store_ids=None)


def test_service_down_then_up_loses_nothing(make, cargo_sandbox):
    add_company()
    package = make.package(click_collect=False)
    cargo_sandbox.down()
    result = pack(package)  # the command commits whatever the cargo service does
    assert result.to_state == State.PACKED and state_of(package) == State.PACKED
    shipment = shipment_of(package)
    assert shipment.status == Shipment.FAILED and shipment.attempts == 1
    assert "503" in shipment.last_error and shipment.next_attempt_at > utcnow()
    # Not due yet: the poll leaves it for later.
    assert poll().created_shipments == 0
    cargo_sandbox.up()
    db.session.execute(Shipment.__table__.update().values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    run = poll()
    assert run.created_shipments == 1
    shipment = shipment_of(package)
    assert shipment.status == Shipment.CREATED and shipment.attempts == 2 and shipment.last_error == ""
    assert len(cargo_sandbox.shipments()) == 1 and cargo_sandbox.create_calls() == 2


def test_a_refused_shipment_waits_for_retry_and_retry_makes_it(make, cargo_sandbox):
    company = add_company(client="DemoFailingShippingClient")
    package = make.package(click_collect=False)
    pack(package)
    shipment = shipment_of(package)
    assert shipment.status == Shipment.FAILED and shipment.next_attempt_at is None  # a refusal: no retry by itself
    assert "refuses every shipment" in shipment.last_error
    assert "refuses every shipment" in logs(package, shipments.FAILED_COMMAND)[0].note
    assert shipments.due_ids(db.session) == []
    # The admin switches the company to a working demo client; staff press Retry.
    cargo.save_company(db.session, company_id=company.id, name=company.name, erp_code=company.erp_code,
                       is_managed_by_oms=True, is_demo_client=True, shipping_company="yurtici",
                       conf={"klass": demo_client_klass("DemoShippingClient")}, user_id=None)
    retried = shipments.request_shipment(db.session, package.id, user_id=None, store_ids=None)
    assert retried.status == Shipment.CREATED and retried.attempts == 2
    assert logs(package, shipments.RETRY_COMMAND)


def test_tries_run_out_after_shipment_max_attempts(make, cargo_sandbox, app):
    app.config["SHIPMENT_MAX_ATTEMPTS"] = 2
    add_company()
    package = make.package(click_collect=False)
    cargo_sandbox.down()
    pack(package)
    db.session.execute(Shipment.__table__.update().values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    poll()
    shipment = shipment_of(package)
    assert shipment.status == Shipment.FAILED and shipment.attempts == 2 and shipment.next_attempt_at is None


def test_a_dropped_connection_and_a_slow_service_are_plain_errors(make, cargo_sandbox, app):
    add_company()
    app.config["CARGO_TIMEOUT_SECONDS"] = 0.5
    first, second = make.package(click_collect=False), make.package(click_collect=False)
    cargo_sandbox.server.add_fault("/cargo/v1/shipments/", drop=True, times=1)
    pack(first)
    assert "could not be reached" in shipment_of(first).last_error
    cargo_sandbox.server.add_fault("/cargo/v1/shipments/", delay=1.5, times=1)
    pack(second)
    assert "did not answer within" in shipment_of(second).last_error


def test_a_real_shipping_company_without_a_client_is_refused_plainly(make, cargo_sandbox):
    cargo.save_company(db.session, name="Aras", erp_code="ARAS", is_managed_by_oms=True, is_demo_client=False,
                       shipping_company="aras", conf={"username": "u", "password": "p", "customer_code": "c"},
                       user_id=None)
    package = make.package(click_collect=False)
    pack(package)
    shipment = shipment_of(package)
    assert shipment.status == Shipment.FAILED and "no Aras Kargo integration" in shipment.last_error
    assert shipment.next_attempt_at is None


# Tracking ------------------------------------------------------------------------------------------------------


def test_tracking_poll_moves_packages_through_the_command_door_and_twice_changes_nothing(make, cargo_sandbox):
    add_company()
    packages = [make.package(click_collect=False) for _ in range(4)]
    for package in packages:
        pack(package)
    numbers = [shipment_of(p).tracking_number for p in packages]
    run = poll()  # still "created" at the cargo company: nothing moves
    assert run.checked == 4 and run.moved == 0
    assert [state_of(p) for p in packages] == [State.PACKED] * 4
    cargo_sandbox.set_status(numbers[0], "in_transit")
    cargo_sandbox.set_status(numbers[1], "attempted_delivery")
    cargo_sandbox.set_status(numbers[2], "delivered")
    cargo_sandbox.set_status(numbers[3], "delivery_failed")
    run = poll()
    assert [state_of(p) for p in packages] == [State.SHIPPED, State.ATTEMPTED_DELIVERY, State.DELIVERED,
                                               State.DELIVERY_FAILED]
    assert run.moved == 1 + 2 + 2 + 2  # each through Shipped first
    # Through the command door: audited with the vendor's commands, events raised.
    slugs = [row.command for row in reversed(db.session.scalars(
        select(PackageLog).where(PackageLog.package_id == packages[2].id).order_by(PackageLog.id.desc())).all())]
    assert slugs[-2:] == ["ship-the-package", "update-shipment-status-shipped"]
    assert numbers[2] in logs(packages[2], "update-shipment-status-shipped")[0].note
    assert events_of("package.status.shipped") == 4
    assert events_of("package.status.attempted_delivery") == 1 and events_of("package.status.delivery_failed") == 1
    assert shipment_of(packages[2]).tracking_status == "delivered"
    versions = [db.session.get(Package, p.id).version for p in packages]
    log_count = db.session.scalar(select(func.count(PackageLog.id)))
    again = poll()
    assert again.moved == 0
    db.session.expire_all()
    assert [db.session.get(Package, p.id).version for p in packages] == versions
    assert db.session.scalar(select(func.count(PackageLog.id))) == log_count
    # The second try succeeds: Attempted Delivery -> Delivered; the failed one is left alone.
    cargo_sandbox.set_status(numbers[1], "delivered")
    assert poll().moved == 1
    assert state_of(packages[1]) == State.DELIVERED
    assert poll().checked == 1  # only the one on its way is still asked about


def test_tracking_poll_resumes_from_its_cursor_and_survives_an_unreachable_company(make, cargo_sandbox):
    add_company()
    packages = [make.package(click_collect=False) for _ in range(3)]
    for package in packages:
        pack(package)
        cargo_sandbox.set_status(shipment_of(package).tracking_number, "in_transit")
    # A run whose worker died after the first slice: a new token carries on from the cursor.
    first_id = shipment_of(packages[0]).id
    run = ShipmentTrackingRun(task_id="old", status=ShipmentTrackingRun.RUNNING, cursor={"retried": True,
                              "after": first_id}, progress={}, created_shipments=0, checked=1, moved=0, errors=0,
                              started_at=utcnow() - timedelta(hours=1), heartbeat_at=utcnow() - timedelta(hours=1))
    db.session.add(run)
    db.session.commit()
    from portal.runs import service as runs

    resumed = runs.requeue(db.session, shipment_tracking.KIND, run)
    assert resumed.status == resumed.DONE and resumed.checked == 3
    assert [state_of(p) for p in packages] == [State.PACKED, State.SHIPPED, State.SHIPPED]
    cargo_sandbox.down()
    run = poll()
    assert run.errors == 3 and run.moved == 0  # none could be asked about: left for next time
    cargo_sandbox.up()
    assert poll().moved == 1 and state_of(packages[0]) == State.SHIPPED


def test_the_tracking_job_type_can_be_scheduled(make, cargo_sandbox):
    from portal.jobs import job_types

    add_company()
    package = make.package(click_collect=False)
    pack(package)
    cargo_sandbox.set_status(shipment_of(package).tracking_number, "delivered")
    text = job_types.JOB_TYPES["shipment_tracking"].run(db.session, {})
    assert "2 package move(s)" in text and state_of(package) == State.DELIVERED


# The package page ----------------------------------------------------------------------------------------------


def test_the_page_shows_the_tracking_number_and_the_label(client, make, store, zeynep, cargo_sandbox):
    add_company()
    package = make.package(store=store, click_collect=False)
    pack(package)
    shipment = shipment_of(package)
    page = client.get(f"/packages/{package.id}").get_data(as_text=True)
    assert 'id="shipment-card"' in page and shipment.tracking_number in page
    assert "Label made; waiting for the courier" in page
    label = client.get(f"/packages/{package.id}/shipment/label.pdf")
    assert label.status_code == 200 and label.mimetype == "application/pdf" and label.data == shipment.label
    assert label.headers["X-Frame-Options"] == "SAMEORIGIN"
    framed = client.get(f"/packages/{package.id}/shipment/label")
    assert framed.status_code == 200 and f'/packages/{package.id}/shipment/label.pdf' in framed.get_data(as_text=True)


def test_the_page_shows_the_error_plainly_and_retry_creates_the_shipment(client, make, store, zeynep, cargo_sandbox):
    add_company()
    package = make.package(store=store, click_collect=False)
    cargo_sandbox.down()
    pack(package)
    page = client.get(f"/packages/{package.id}").get_data(as_text=True)
    assert "The cargo company did not take the shipment." in page and "503" in page
    assert 'id="shipment-retry"' in page
    assert client.get(f"/packages/{package.id}/shipment/label.pdf").status_code == 404
    cargo_sandbox.up()
    answer = client.post(f"/packages/{package.id}/shipment/retry", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert shipment_of(package).tracking_number in body and 'id="shipment-retry"' not in body
    assert "Shipment created" in answer.headers.get("HX-Trigger", "")


def test_a_package_packed_before_any_cargo_company_gets_its_shipment_from_the_page(client, make, store, zeynep,
                                                                                   cargo_sandbox):
    package = make.package(store=store, click_collect=False)
    pack(package)  # no cargo company yet: no shipment, and nothing to offer
    assert 'id="shipment-card"' not in client.get(f"/packages/{package.id}").get_data(as_text=True)
    add_company()
    page = client.get(f"/packages/{package.id}").get_data(as_text=True)
    assert "No shipment was made for this package." in page and "Create shipment" in page
    answer = client.post(f"/packages/{package.id}/shipment/retry", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and shipment_of(package).status == Shipment.CREATED
    assert shipment_of(package).tracking_number in answer.get_data(as_text=True)
    collect = make.package(store=store, click_collect=True, state=State.PACKED)
    refused = client.post(f"/packages/{collect.id}/shipment/retry", headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "needs no shipment" in refused.get_data(as_text=True)


def test_another_stores_staff_cannot_see_or_retry_the_shipment(client, make, auth_actions, cargo_sandbox):
    add_company()
    package = make.package(click_collect=False)
    pack(package)
    make.user("elsewhere")
    auth_actions.login("elsewhere")
    assert client.get(f"/packages/{package.id}/shipment/label.pdf").status_code == 404
    assert client.post(f"/packages/{package.id}/shipment/retry").status_code == 404


# The API -------------------------------------------------------------------------------------------------------


def token(user) -> dict:
    """Authorization header of a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def test_the_api_reads_the_shipment_and_its_label_and_retries(client, make, store, cargo_sandbox):
    add_company()
    staff = make.user("ayse", stores=[store])
    headers = token(staff)
    package = make.package(store=store, click_collect=False)
    assert client.get(f"/api/v1/oms/packages/{package.id}/shipment/", headers=headers).status_code == 404
    cargo_sandbox.down()
    pack(package)
    body = client.get(f"/api/v1/oms/packages/{package.id}/shipment/", headers=headers).json
    assert body["status"] == "failed" and "503" in body["last_error"] and body["has_label"] is False
    assert client.get(f"/api/v1/oms/packages/{package.id}/shipment/label/", headers=headers).status_code == 404
    cargo_sandbox.up()
    retried = client.post(f"/api/v1/oms/packages/{package.id}/shipment/retry/", headers=headers)
    assert retried.status_code == 200 and retried.json["status"] == "created"
    assert retried.json["cargo_company"]["erp_code"] == "DEMO" and retried.json["attempts"] == 2
    label = client.get(f"/api/v1/oms/packages/{package.id}/shipment/label/", headers=headers)
    assert label.status_code == 200 and label.mimetype == "application/pdf" and label.data.startswith(b"%PDF")
    again = client.post(f"/api/v1/oms/packages/{package.id}/shipment/retry/", headers=headers)
    assert again.status_code == 400
    outsider = token(make.user("other"))
    assert client.get(f"/api/v1/oms/packages/{package.id}/shipment/", headers=outsider).status_code == 404


def test_the_shipment_operations_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "get" in paths["/api/v1/oms/packages/{package_id}/shipment/"]
    assert "get" in paths["/api/v1/oms/packages/{package_id}/shipment/label/"]
    assert "post" in paths["/api/v1/oms/packages/{package_id}/shipment/retry/"]


# The demo cargo service's label -------------------------------------------------------------------------------


def test_the_label_pdf_is_well_formed_with_turkish_names_and_a_code_39_barcode():
    from sandbox.label_pdf import code39_modules, label_pdf

    pdf = label_pdf(tracking_number="712345678901", carrier="Demo Cargo", sender=["Kadıköy Store", "İstanbul"],
                    recipient=["Ayşe Doğan (VIP)"], reference="PK0000001")
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF\n")
    # Every cross-reference entry points at its object, and startxref at the table.
    xref_at = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref_at:].startswith(b"xref\n0 7\n")
    entries = pdf[xref_at:].split(b"\n")[3:9]
    for number, entry in enumerate(entries, start=1):
        assert pdf[int(entry[:10]):].startswith(b"%d 0 obj" % number)
    assert "(Kadiköy Store)".encode("cp1252") in pdf and b"(Istanbul)" in pdf
    assert "ş".encode() not in pdf and "ı".encode() not in pdf  # no UTF-8 bytes in a WinAnsi string
    assert b"(Ayse Dogan \\(VIP\\))" in pdf
    # Code 39: start/stop "*" around each digit, a narrow gap between characters, three wide elements each.
    modules = code39_modules("10")
    assert modules == "100101101101" + "0" + "110100101011" + "0" + "101001101101" + "0" + "100101101101"
    with pytest.raises(ValueError):
        code39_modules("A1")


def test_the_demo_service_moves_shipments_along_their_route_with_time_and_delayed_ones_four_times_slower():
    from sandbox.cargo import ROUTES, CargoService

    service = CargoService(step_seconds=10, seed=2024)
    request = {"profile": "instant", "reference": "R", "sender": {}, "recipient": {"name": "A"}, "parcels": 1}
    quick, created = service.create({**request, "key": "k-quick"}, now=1000)
    slow, _ = service.create({**request, "key": "k-slow", "profile": "delayed"}, now=1000)
    assert created and quick.status == "created" and quick.route in ROUTES.values()
    assert service.find(quick.tracking_number, now=1009).status == "created"
    assert service.find(quick.tracking_number, now=1010).status == "in_transit"
    assert service.find(quick.tracking_number, now=5000).status == quick.route[-1]
    assert [h["status"] for h in quick.history] == list(quick.route)
    assert service.find(slow.tracking_number, now=1039).status == "created"
    assert service.find(slow.tracking_number, now=1040).status == "in_transit"
    # Asking again with the same key gives the same shipment; a control endpoint's move stops the clock.
    again, created = service.create({**request, "key": "k-quick"}, now=6000)
    assert not created and again is quick
    service.set_status(slow.tracking_number, "delivery_failed", now=1041)
    assert service.find(slow.tracking_number, now=99999).status == "delivery_failed"
    # Routes are drawn from the key: over many keys all three kinds appear.
    routes = {service.route_for(f"oms-{n}-PK{n:07d}") for n in range(200)}
    assert routes == set(ROUTES.values())
