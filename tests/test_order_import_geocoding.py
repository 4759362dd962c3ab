"""The order import geocodes addresses without coordinates through step 9's provider: the Omnitron sandbox and
the geocoding stub over real HTTP; found, not found, a refused key or quota (asked once, then no more), a
provider that does not answer in time, geocoding not set up, and one question per distinct address."""
from __future__ import annotations

import math
import socket
import time

import pytest
import requests
from sqlalchemy import select
from stubs.geocoding_server import (
    GOOD_GOOGLE_KEY,
    GOOD_YANDEX_KEY,
    NOWHERE,
    PLACE,
    QUOTA_KEY,
    geocoding_stub,  # noqa: F401 (fixture)
)
from stubs.omnitron_server import PASSWORD, USERNAME, omnitron_sandbox  # noqa: F401 (fixture)

from portal.extensions import db
from portal.orders import service as orders
from portal.packages.models import Package, PackageLog
from portal.scenarios import service as scenarios
from portal.settings import service as settings
from portal.stores.models import StockLocation
from portal.sync import service as sync
from portal.sync.models import Channel

MOBILE = 2  # the sandbox's mobile app channel
FILTER = {"statuses": ["approved"], "channels": [MOBILE], "start_date": None, "exclude_test_orders": True,
          "page_size": 50}
NEAREST_ANYWHERE = ["STORE_ONLY", "SORT_BY_DISTANCE"]
NEAREST_IN_CITY = ["SAME_CITY", "STORE_ONLY", "SORT_BY_DISTANCE"]
GEOCODING_TIMEOUT = 0.5


@pytest.fixture
def app_config(omnitron_sandbox, geocoding_stub):
    """The portal talks to the sandbox, and both geocoding providers are the local stub (short timeout)."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "OMNITRON_RETRIES": 1,
            "GEOCODING_GOOGLE_BASE_URL": geocoding_stub.url, "GEOCODING_YANDEX_BASE_URL": geocoding_stub.url,
            "GEOCODING_TIMEOUT_SECONDS": GEOCODING_TIMEOUT}


@pytest.fixture
def world(app):
    """The Omnitron login saved, stores and channels copied, and the filter fetching approved mobile orders."""
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=None)
    for kind in ("stock_locations", "channels"):
        job = sync.start_job(db.session, kind, user_id=None)
        assert sync.sync_kind(db.session, job.id, token=job.task_id).status == "done"
    settings.set_value(db.session, settings.ORDER_FILTERING, FILTER, user_id=None)


def route_mobile_orders(rules: list[str]) -> list[StockLocation]:
    """An active scenario for the mobile channel over the İstanbul and Ankara stores; returns those stores."""
    stores = list(db.session.scalars(select(StockLocation).where(
        StockLocation.kind == "store", StockLocation.city.in_(["İstanbul", "Ankara"])).order_by(StockLocation.id)))
    mobile = db.session.scalar(select(Channel).where(Channel.omnitron_id == MOBILE))
    scenarios.save_scenario(db.session, channel_id=mobile.id, name="Mobile", is_active=True, rules=rules,
                            locations=[(s.id, n) for n, s in enumerate(stores, start=1)], user_id=None)
    return stores


def save_geocoding(provider: str, api_key: str) -> None:
    """Save GEOLOCATION_DISCOVERY (step 9)."""
    settings.set_value(db.session, settings.GEOLOCATION_DISCOVERY, {"provider": provider, "api_key": api_key},
                       user_id=None)


def sandbox_orders(sandbox) -> dict[int, dict]:
    """The orders the filter fetches (approved, mobile, not test), read over plain HTTP."""
    token = requests.post(f"{sandbox.url}/api/v1/auth/login/", json={"username": USERNAME, "password": PASSWORD},
                          timeout=5).json()["key"]
    body = requests.get(f"{sandbox.url}/api/v1/orders/", params={"limit": 1000},
                        headers={"Authorization": f"Token {token}"}, timeout=5).json()
    return {o["id"]: o for o in body["results"]
            if o["status"] == "approved" and o["channel"] == MOBILE and not o["is_test"]}


def without_coordinates(wanted: dict[int, dict]) -> dict[int, dict]:
    """The cargo orders among them whose address has no coordinates."""
    return {i: o for i, o in wanted.items()
            if o["delivery_type"] == "cargo" and not o["shipping_address"]["latitude"]}


def with_coordinates(wanted: dict[int, dict], count: int) -> list[int]:
    """Ids of a few cargo orders whose address has coordinates."""
    return [i for i, o in sorted(wanted.items()) if o["delivery_type"] == "cargo"
            and o["shipping_address"]["latitude"]][:count]


def move(sandbox, order_ids: list[int], township: str, city: str, country: str | None = "Türkiye") -> None:
    """Change these orders' shipping address in Omnitron to one without coordinates."""
    address = {"line": "Moda Cad. No:1", "township": {"id": 1, "name": township}, "city": {"id": 1, "name": city},
               "latitude": None, "longitude": None}
    if country:
        address["country"] = {"id": 1, "name": country, "code": "TR"}
    sandbox.mutate("orders", ids=order_ids, changes={"shipping_address": address})


def text_of(order: dict) -> str:
    """The address text the import should geocode: township, city, country (the sandbox has no district)."""
    address = order["shipping_address"]
    return f"{address['township']['name']}, {address['city']['name']}, {address['country']['name']}"


def packages() -> dict[int, Package]:
    """Imported packages by Omnitron order id."""
    db.session.expire_all()
    return {p.omnitron_order_id: p for p in db.session.scalars(select(Package).where(
        Package.omnitron_order_id.is_not(None)))}


def km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance in km (worked out here, not with the portal's helper)."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    return 6371 * math.acos(min(1, math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)))


def nearest_to_stub_place(stores: list[StockLocation]) -> str:
    """The erp_code of the store nearest to where the stub places every address."""
    return min(stores, key=lambda s: km(*PLACE, float(s.latitude), float(s.longitude))).erp_code


def asked(stub, param: str = "address") -> list[str]:
    """The addresses the geocoding stub was asked for, in order."""
    return [r.params.get(param, "") for r in stub.requests]


def test_an_address_without_coordinates_is_located_by_google_and_goes_to_the_nearest_store(
        world, omnitron_sandbox, geocoding_stub):
    stores = route_mobile_orders(NEAREST_ANYWHERE)
    save_geocoding("google", GOOD_GOOGLE_KEY)
    wanted = sandbox_orders(omnitron_sandbox)
    lacking = without_coordinates(wanted)
    assert len(lacking) >= 3

    summary = orders.import_orders(db.session)

    made = packages()
    assert summary.status == "done"
    assert not {"geocoding_not_configured", "geocoding_failed", "address_not_found",
                "address_incomplete"} & set(summary.skip_reasons)
    # Each address without coordinates went to Google once, as its township, city and country (no street),
    # with the saved key; addresses with coordinates were not sent.
    assert sorted(asked(geocoding_stub)) == sorted(text_of(o) for o in lacking.values())
    assert {r.params["key"] for r in geocoding_stub.requests} == {GOOD_GOOGLE_KEY}
    nearest = nearest_to_stub_place(stores)
    for order_id, order in lacking.items():
        package = made[order_id]
        assert package.stock_location.erp_code == nearest
        note = db.session.scalar(select(PackageLog.note).where(PackageLog.package_id == package.id))
        assert "address located by Google Maps" in note and order["number"] in note


def test_each_distinct_address_is_asked_once_per_run(world, omnitron_sandbox, geocoding_stub):
    stores = route_mobile_orders(NEAREST_ANYWHERE)
    save_geocoding("yandex", GOOD_YANDEX_KEY)
    wanted = sandbox_orders(omnitron_sandbox)
    kadikoy, cankaya = with_coordinates(wanted, 3), with_coordinates(wanted, 5)[3:]
    move(omnitron_sandbox, kadikoy, "Kadıköy", "İstanbul")
    move(omnitron_sandbox, cankaya, "Çankaya", "Ankara")
    lacking = without_coordinates(sandbox_orders(omnitron_sandbox))
    distinct = {text_of(o) for o in lacking.values()}
    assert len(lacking) == len(distinct) + 3  # three Kadıköy orders, two Çankaya orders: 5 orders, 2 addresses

    summary = orders.import_orders(db.session)

    questions = asked(geocoding_stub, "geocode")
    assert sorted(questions) == sorted(distinct)
    assert questions.count("Kadıköy, İstanbul, Türkiye") == questions.count("Çankaya, Ankara, Türkiye") == 1
    made = packages()
    assert {made[i].stock_location.erp_code for i in kadikoy + cankaya} == {nearest_to_stub_place(stores)}
    assert summary.status == "done" and "address_not_found" not in summary.skip_reasons


def test_the_run_remembers_a_bounded_number_of_addresses(app, geocoding_stub):
    save_geocoding("google", GOOD_GOOGLE_KEY)
    locator = orders._Locator(db.session, app.config, max_addresses=2)

    for address in ("A, İstanbul", "B, İstanbul", "A, İstanbul", "C, İstanbul", "a,  İstanbul", "B, İstanbul"):
        found = locator.locate(address)
        assert (found.lat, found.lng) == PLACE

    # A and B asked; A again from memory; C pushes out B (A was used more recently); "a,  İstanbul" is A
    # written differently; B has to be asked again. Never more than two answers kept.
    assert asked(geocoding_stub) == ["A, İstanbul", "B, İstanbul", "C, İstanbul", "B, İstanbul"]
    assert len(locator.answers) == 2


def test_an_address_the_provider_cannot_find_is_skipped_and_the_others_still_located(
        world, omnitron_sandbox, geocoding_stub):
    route_mobile_orders(NEAREST_ANYWHERE)
    save_geocoding("google", GOOD_GOOGLE_KEY)
    lost = with_coordinates(sandbox_orders(omnitron_sandbox), 2)
    township, city = NOWHERE.split(", ")
    move(omnitron_sandbox, lost, township, city, country=None)
    wanted = sandbox_orders(omnitron_sandbox)
    located = set(without_coordinates(wanted)) - set(lost)

    summary = orders.import_orders(db.session)

    made = packages()
    assert summary.status == "done"
    assert summary.skip_reasons["address_not_found"] == 2
    assert not set(lost) & set(made) and located <= set(made)
    assert asked(geocoding_stub).count(NOWHERE) == 1  # "not found" is remembered too
    numbers = {wanted[i]["number"] for i in lost}
    lines = [line for line in summary.problems if "could not find the address's coordinates" in line]
    assert {line.split(":")[0] for line in lines} == {f"Order {n}" for n in numbers}
    assert f"Google Maps found no place for “{NOWHERE}”" in lines[0]
    assert "2 address not found" in summary.text()


@pytest.mark.parametrize("provider, key, reason", [
    ("google", "not-a-real-key-123", "Google Maps refused the API key (The provided API key is invalid.)"),
    ("yandex", QUOTA_KEY, "Yandex Maps says the key is over its quota (Limit is exceeded)"),
])
def test_a_refused_key_skips_every_such_order_and_stops_asking(world, omnitron_sandbox, geocoding_stub,
                                                              provider, key, reason):
    route_mobile_orders(NEAREST_ANYWHERE)
    save_geocoding(provider, key)
    wanted = sandbox_orders(omnitron_sandbox)
    lacking = without_coordinates(wanted)

    summary = orders.import_orders(db.session)

    made = packages()
    assert len(geocoding_stub.requests) == 1  # the first refusal ends the asking for this run
    assert summary.status == "done"
    assert summary.skip_reasons == {"geocoding_failed": len(lacking)}
    assert not set(lacking) & set(made)
    assert summary.created == len(wanted) - len(lacking) == len(made)  # the others are imported all the same
    lines = [line for line in summary.problems if "could not find the address's coordinates" in line]
    assert len(lines) == len(lacking)
    assert all(reason in line and f"the run stopped asking {reason.split(' ')[0]}" in line for line in lines)
    assert "geocoding failed" in summary.text()


def test_a_provider_that_does_not_answer_in_time_is_waited_for_once(world, omnitron_sandbox, geocoding_stub):
    route_mobile_orders(NEAREST_ANYWHERE)
    save_geocoding("google", GOOD_GOOGLE_KEY)
    geocoding_stub.delay = 5
    lacking = without_coordinates(sandbox_orders(omnitron_sandbox))

    started = time.monotonic()
    summary = orders.import_orders(db.session)
    took = time.monotonic() - started

    assert len(geocoding_stub.requests) == 1
    assert took < 4  # one wait of GEOCODING_TIMEOUT_SECONDS, not one per order
    assert summary.skip_reasons == {"geocoding_failed": len(lacking)}
    assert f"did not answer within {GEOCODING_TIMEOUT:g} seconds" in summary.problems[0]


def test_a_provider_that_cannot_be_reached_is_named_in_the_reason(world, omnitron_sandbox, app):
    route_mobile_orders(NEAREST_ANYWHERE)
    save_geocoding("google", GOOD_GOOGLE_KEY)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    app.config["GEOCODING_GOOGLE_BASE_URL"] = f"http://127.0.0.1:{closed}"
    lacking = without_coordinates(sandbox_orders(omnitron_sandbox))

    summary = orders.import_orders(db.session)

    assert summary.skip_reasons == {"geocoding_failed": len(lacking)}
    assert "Google Maps could not be reached" in summary.problems[0]
    assert GOOD_GOOGLE_KEY not in " ".join(summary.problems)  # the key travels in the URL: never quoted


def test_without_geocoding_set_up_such_orders_wait_until_step_9_is_done(world, omnitron_sandbox, geocoding_stub):
    route_mobile_orders(NEAREST_ANYWHERE)
    lacking = without_coordinates(sandbox_orders(omnitron_sandbox))

    first = orders.import_orders(db.session)

    assert geocoding_stub.requests == []
    assert first.skip_reasons == {"geocoding_not_configured": len(lacking)}
    assert "Geocoding is not set up; save a Google Maps or Yandex Maps key in step 9" in first.problems[0]
    assert "geocoding not configured" in first.text()
    assert not set(lacking) & set(packages())

    # Step 9 done, "Fetch all again": now they are located and imported; the others were already.
    save_geocoding("google", GOOD_GOOGLE_KEY)
    again = orders.import_orders(db.session, full=True)

    assert (again.created, again.skipped) == (len(lacking), 0)
    assert set(lacking) <= set(packages())
    assert len(geocoding_stub.requests) == len({text_of(o) for o in lacking.values()})


def test_no_address_is_sent_when_no_store_of_the_scenario_could_take_the_order_anyway(
        world, omnitron_sandbox, geocoding_stub):
    stores = route_mobile_orders(NEAREST_IN_CITY)
    save_geocoding("google", GOOD_GOOGLE_KEY)
    here = with_coordinates(sandbox_orders(omnitron_sandbox), 1)
    move(omnitron_sandbox, here, "Kadıköy", "İstanbul")
    far = set(without_coordinates(sandbox_orders(omnitron_sandbox))) - set(here)
    assert far  # all in cities where the scenario has no store

    summary = orders.import_orders(db.session)

    # Only the İstanbul address was worth asking; the others are skipped because no store of theirs fits.
    assert asked(geocoding_stub) == ["Kadıköy, İstanbul, Türkiye"]
    made = packages()
    assert made[here[0]].stock_location.erp_code == nearest_to_stub_place([s for s in stores if s.city == "İstanbul"])
    assert not far & set(made)
    assert summary.skip_reasons.get("no_location_fits", 0) >= len(far)
    assert "geocoding_not_configured" not in summary.skip_reasons
