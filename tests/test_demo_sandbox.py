"""The demo has no dead end: the sandbox stands in for the geocoding providers (step 9) and the stock service (step 10).

The sandbox runs over real HTTP on a free port, as scripts/run-demo runs it, and the portal is configured as
run-demo configures it (GEOCODING_*_BASE_URL and DEMO_SANDBOX_URL at the sandbox): both steps pass against it.
Also the readable terminal's parts: the console SMS block, and seeded SMS sent by the seed, not the worker.
"""
from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from stubs.omnitron_server import SandboxServer

from portal.extensions import db
from portal.geolocation import service as geocoding
from portal.geolocation.client import GeocodingError
from portal.integrations.models import StockIntegration
from portal.outbox import service as outbox
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.sms import ConsoleSmsProvider, console_block
from sandbox.geocoding import locate

HX = {"HX-Request": "true"}
KADIKOY = (40.9902, 29.0293)


@pytest.fixture(scope="module")
def sandbox():
    """The sandbox, small, on a free local port for the whole module."""
    with SandboxServer({"SANDBOX_ADDRESS_COUNT": 300, "SANDBOX_STORE_COUNT": 5}) as server:
        yield server


@pytest.fixture
def app_config(sandbox):
    """The portal as scripts/run-demo configures it."""
    return {"DEMO_SANDBOX_URL": sandbox.url, "GEOCODING_GOOGLE_BASE_URL": sandbox.url,
            "GEOCODING_YANDEX_BASE_URL": sandbox.url, "GEOCODING_TIMEOUT_SECONDS": 5, "STOCK_ENGINE_TIMEOUT_SECONDS": 5}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def step(key: str) -> str | None:
    """The state of a wizard step."""
    record = next(s.record for s in wizard.statuses(db.session) if s.step.key == key)
    return record.state if record else None


# --- the geocoding stand-in ----------------------------------------------------------------------------------

def test_the_stand_in_answers_google_and_yandex_shapes_over_http(sandbox):
    google = requests.get(f"{sandbox.url}/maps/api/geocode/json",
                          params={"address": "Bağdat Caddesi, Kadıköy, İstanbul", "key": "demo-key"}, timeout=5).json()
    assert google["status"] == "OK"
    place = google["results"][0]["geometry"]["location"]
    assert abs(place["lat"] - KADIKOY[0]) < 0.05 and abs(place["lng"] - KADIKOY[1]) < 0.05
    assert google["results"][0]["formatted_address"].startswith("Kadıköy, İstanbul")

    yandex = requests.get(f"{sandbox.url}/1.x/", params={"apikey": "any", "geocode": "Kızılay, Ankara",
                                                         "format": "json"}, timeout=5)
    assert yandex.status_code == 200
    [member] = yandex.json()["response"]["GeoObjectCollection"]["featureMember"]
    lon, lat = map(float, member["GeoObject"]["Point"]["pos"].split())
    assert 39 < lat < 41 and 32 < lon < 34  # Ankara

    assert requests.get(f"{sandbox.url}/1.x/", params={"apikey": "wrong-key", "geocode": "x"}, timeout=5).status_code == 403
    refused = requests.get(f"{sandbox.url}/maps/api/geocode/json", params={"address": "x", "key": "wrong-key"},
                           timeout=5).json()
    assert refused["status"] == "REQUEST_DENIED"


def test_unknown_addresses_get_a_steady_point_in_turkey_and_nowhere_finds_nothing():
    first, again = locate("Some Street 12, Unknown Village"), locate("some street 12, unknown village")
    assert first == again and 36 < first[0] < 42 and 26 < first[1] < 45
    assert locate("Nowhere Street 0, Atlantis") is None
    assert locate("   ") is None


@pytest.mark.parametrize("provider", ["google", "yandex"])
def test_step_9_passes_against_the_sandbox_with_any_key(app, provider):
    geocoding.save_settings(db.session, provider, "demo-key", user_id=None)
    db.session.commit()

    found = geocoding.check_saved_key(db.session, app.config, user_id=None)
    db.session.commit()
    assert abs(found.lat - KADIKOY[0]) < 0.05 and abs(found.lng - KADIKOY[1]) < 0.05
    assert step("geolocation") == SetupStep.DONE


def test_the_refused_key_shows_the_error_and_the_step_needs_attention(app):
    geocoding.save_settings(db.session, "google", "wrong-key", user_id=None)
    db.session.commit()
    with pytest.raises(GeocodingError) as refused:
        geocoding.check_saved_key(db.session, app.config, user_id=None)
    db.session.commit()
    assert refused.value.kind == GeocodingError.INVALID_KEY
    assert step("geolocation") == SetupStep.NEEDS_ATTENTION


def test_step_9_page_says_the_sandbox_plays_the_providers_and_the_test_passes(client, admin, sandbox):
    page = client.get("/setup/geolocation").get_data(as_text=True)
    assert 'id="demo-sandbox-note"' in page and sandbox.url in page and "demo-key" in page
    assert '<option value="google" selected>' in page  # chosen for the admin: both providers are the sandbox

    client.post("/setup/geolocation", data={"provider": "yandex", "api_key": "demo-key"}, headers=HX)
    tested = client.post("/setup/geolocation/test", data={"address": "Kadıköy, İstanbul"}, headers=HX)
    assert "The key works." in tested.get_data(as_text=True)
    assert step("geolocation") == SetupStep.DONE


@pytest.mark.parametrize("app_config", [{}])
def test_outside_the_demo_step_9_says_nothing_of_a_sandbox(client, admin):
    page = client.get("/setup/geolocation").get_data(as_text=True)
    assert 'id="demo-sandbox-note"' not in page and '<option value="google" selected>' not in page


# --- the stock engine ------------------------------------------------------------------------------------------

def test_step_10_offers_the_sandbox_stock_service_and_its_test_passes(client, admin, sandbox):
    url = f"{sandbox.url}/stock-engines/omnitron"
    page = client.get("/setup/stock-integration").get_data(as_text=True)
    assert 'id="demo-sandbox-note"' in page
    assert '<option value="omnitron" selected>' in page
    assert f'value="{url}"' in page

    # The admin takes the defaults: Add, then Test.
    added = client.post("/setup/stock-integration", data={"stock_engine_type": "omnitron", "url": url,
                                                          "is_active": "on"}, headers=HX)
    assert added.status_code == 200
    [integration] = db.session.scalars(select(StockIntegration)).all()
    tested = client.post(f"/setup/stock-integration/{integration.id}/test", headers=HX)
    assert "Connected: HTTP 200" in tested.headers["HX-Trigger"]
    assert step("stock_integration") == SetupStep.DONE
    # Once it exists, a new integration no longer starts from the same URL (it would be refused as a duplicate).
    assert f'value="{url}"' not in client.get("/setup/stock-integration").get_data(as_text=True).split(
        'id="stock-form"')[1]


@pytest.mark.parametrize("app_config", [{}])
def test_outside_the_demo_step_10_starts_empty(client, admin):
    page = client.get("/setup/stock-integration").get_data(as_text=True)
    assert 'id="demo-sandbox-note"' not in page and '<option value="omnitron" selected>' not in page


# --- a readable terminal ---------------------------------------------------------------------------------------

def test_the_console_sms_is_a_framed_block_with_the_number_and_the_whole_text(capsys):
    body = "Your code for order ORD100007 is 123456. Show it at Kadıköy Store to collect your package. " \
           "Pick it up by Dec 13, 2026."
    message_id = ConsoleSmsProvider().send("+90 531 234 5678", body)

    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"┌─ SMS {message_id} to +90 531 234 5678"
    assert out[-1] == "└─"
    assert all(line.startswith("│ ") and len(line) <= 74 for line in out[1:-1])
    assert " ".join(line[2:] for line in out[1:-1]) == body
    assert console_block("x", "1", "") == "┌─ SMS x to 1\n│ \n└─"


def test_the_seed_sends_the_seeded_sms_itself_so_the_worker_starts_quiet(runner, sms):
    result = runner.invoke(args=["seed-demo", "--packages", "40"])

    assert result.exit_code == 0, result.output
    assert outbox.pending_sms(db.session) == []
    assert sms.outbox and all(re.search(r"\b\d{6}\b", m.body) for m in sms.outbox)
    # The logins come after everything else the seed prints.
    assert result.output.rstrip().splitlines()[-1].split()[0] == "floater"


def test_the_quiet_sandbox_prints_no_line_per_request():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port), "--quiet", "--address-count", "30",
                                "--store-count", "5", "--order-count", "5"], cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(f"{url}/api/v1/health/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert requests.get(f"{url}/maps/api/geocode/json", params={"address": "Ankara", "key": "k"},
                            timeout=5).json()["status"] == "OK"
        assert requests.get(f"{url}/stock-engines/omnitron/health/", timeout=5).status_code == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert output.strip() == ""


@pytest.mark.parametrize("app_config", [{"LOG_LEVEL": "WARNING"}])
def test_log_level_quiets_werkzeug_too(app):
    assert logging.getLogger("werkzeug").level == logging.WARNING
