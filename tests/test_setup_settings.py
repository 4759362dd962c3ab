"""Setup wizard steps 7 (Omnitron credentials), 8 (order filtering), 9 (geolocation, with a key test against
a local geocoding stub), and 1 and 3 (reaching and logging in to the Omnitron sandbox over real HTTP):
an admin posts the forms the browser posts; pages and database are checked.
"""
from __future__ import annotations

import json
import re
import socket
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from stubs.geocoding_server import GOOD_GOOGLE_KEY, GOOD_YANDEX_KEY, PLACE, QUOTA_KEY, geocoding_stub  # noqa: F401
from stubs.omnitron_server import LIMITED_PASSWORD, LIMITED_USERNAME, USERNAME, omnitron_sandbox  # noqa: F401
from stubs.omnitron_server import PASSWORD as SANDBOX_PASSWORD

from portal.extensions import db
from portal.geolocation.client import SAMPLE_ADDRESS
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting, SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.sync.models import Channel

HTMX = {"HX-Request": "true"}
PASSWORD = "Omn1tron-Secret-Pass"


@pytest.fixture
def app_config(geocoding_stub):
    """Both geocoding providers point at the local stub; a short timeout keeps timeout tests quick."""
    return {"GEOCODING_GOOGLE_BASE_URL": geocoding_stub.url, "GEOCODING_YANDEX_BASE_URL": geocoding_stub.url,
            "GEOCODING_TIMEOUT_SECONDS": 0.5}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def _closed_port_url() -> str:
    """The URL of a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _setting(key: str):
    """The stored JSON of a setting (straight from the database), or None."""
    db.session.expire_all()
    return db.session.scalar(select(ApplicationSetting.json_value).where(ApplicationSetting.key == key))


def _state(key: str) -> str:
    """The wizard state of a step."""
    db.session.expire_all()
    return wizard.status(db.session, key).state


def _audit_count(key: str) -> int:
    """How many audit rows a setting has."""
    return db.session.scalar(select(func.count()).select_from(SettingChange).where(SettingChange.key == key))


@pytest.mark.parametrize("url", ["/setup/omnitron-credentials", "/setup/order-filtering", "/setup/geolocation"])
def test_only_admins_open_the_settings_steps(client, make, auth_actions, url):
    """A brand manager is refused; nothing is saved by a refused post."""
    make.user("brand", role="brand_manager")
    auth_actions.login("brand")

    assert client.get(url).status_code == 403
    assert client.post(url, data={"username": "x", "password": "y", "provider": "google"}).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(SettingChange)) == 0


# Step 7: OMNITRON_CLIENT_SETTINGS

def test_admin_saves_omnitron_credentials_encrypted_and_sees_only_the_mask(client, admin):
    """The first save needs a password; it is stored encrypted, shown masked, audited; the step is done."""
    page = client.get("/setup/omnitron-credentials")
    assert page.status_code == 200
    assert 'value="oms.application"' in page.text
    assert "No password is stored yet." in page.text

    response = client.post("/setup/omnitron-credentials",
                           data={"username": "oms.application", "password": PASSWORD}, follow_redirects=True)

    assert response.status_code == 200
    assert "Omnitron credentials saved." in response.text
    assert PASSWORD not in response.text
    assert "********ss" in response.text
    stored = _setting(settings.OMNITRON_CLIENT_SETTINGS)
    assert stored["auth"]["username"] == "oms.application"
    assert set(stored["auth"]["password"]) == {settings.ENCRYPTED}
    assert PASSWORD not in json.dumps(stored)
    assert settings.get_secret(db.session, settings.OMNITRON_CLIENT_SETTINGS, ("auth", "password")) == PASSWORD
    assert _audit_count(settings.OMNITRON_CLIENT_SETTINGS) == 1
    step = wizard.status(db.session, "omnitron_credentials")
    assert step.state == SetupStep.DONE
    assert step.record.completed_by_id == admin.id


def test_htmx_save_swaps_the_form_with_a_toast_and_the_new_state(client, admin):
    """An htmx post gets the form panel, the step chip out of band and a toast; no full page."""
    response = client.post("/setup/omnitron-credentials", headers=HTMX,
                           data={"username": "oms.application", "password": PASSWORD})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'id="credentials-form"' in response.text
    assert 'id="step-state" hx-swap-oob="true"' in response.text and "Done" in response.text
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"] == "Omnitron credentials saved."
    assert "HX-Request" in response.headers["Vary"]
    assert PASSWORD not in response.text


def test_an_empty_password_keeps_the_stored_one(client, admin):
    """Changing only the username leaves the encrypted password as it was."""
    client.post("/setup/omnitron-credentials", data={"username": "oms.application", "password": PASSWORD})
    sealed = _setting(settings.OMNITRON_CLIENT_SETTINGS)["auth"]["password"]

    response = client.post("/setup/omnitron-credentials", data={"username": "oms.app2", "password": ""},
                           follow_redirects=True)

    assert response.status_code == 200
    stored = _setting(settings.OMNITRON_CLIENT_SETTINGS)
    assert stored["auth"] == {"username": "oms.app2", "password": sealed}
    assert 'value="oms.app2"' in response.text
    assert _audit_count(settings.OMNITRON_CLIENT_SETTINGS) == 2


@pytest.mark.parametrize("data, field, message", [
    ({"username": "  ", "password": PASSWORD}, "username", "username is required."),
    ({"username": "oms.application", "password": ""}, "password", "password is required."),
    ({"username": "u" * 151, "password": PASSWORD}, "username", "username is too long"),
])
def test_bad_credentials_show_a_message_beside_the_field_and_save_nothing(client, admin, data, field, message):
    """A missing username, a first save without a password, or an over-long name: 422, nothing stored."""
    response = client.post("/setup/omnitron-credentials", data=data, headers=HTMX)

    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert f'id="{field}" ' in response.text and 'aria-invalid="true"' in response.text
    assert _setting(settings.OMNITRON_CLIENT_SETTINGS) is None
    assert _audit_count(settings.OMNITRON_CLIENT_SETTINGS) == 0
    assert _state("omnitron_credentials") == SetupStep.NOT_STARTED


def test_changed_credentials_ask_for_the_login_check_again(client, admin):
    """Step 3 checked the old login; new credentials put it back to needs attention (same ones do not)."""
    client.post("/setup/omnitron-credentials", data={"username": "oms.application", "password": PASSWORD})
    wizard.mark(db.session, "application", SetupStep.DONE, user_id=admin.id)

    client.post("/setup/omnitron-credentials", data={"username": "oms.application", "password": ""})
    assert _state("application") == SetupStep.DONE

    client.post("/setup/omnitron-credentials", data={"username": "oms.application", "password": "another-pass-9"})
    step = wizard.status(db.session, "application")
    assert step.state == SetupStep.NEEDS_ATTENTION
    assert "credentials were changed" in step.record.note


def test_a_post_without_the_csrf_token_is_refused_and_saves_nothing(client, admin, app):
    """With CSRF on (as in production), a forged post changes nothing."""
    app.config["WTF_CSRF_ENABLED"] = True

    response = client.post("/setup/omnitron-credentials", headers=HTMX,
                           data={"username": "oms.application", "password": PASSWORD})

    assert response.status_code == 400
    assert _setting(settings.OMNITRON_CLIENT_SETTINGS) is None


# Step 8: ORDER_FILTERING

def _order_form(**overrides) -> dict:
    """The order filtering form as the browser posts it."""
    data = {"statuses": ["approved", "preparing"], "start_date": "2026-01-15", "page_size": "200",
            "exclude_test_orders": "on"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_without_channels_the_page_says_so_and_saves_for_every_channel(client, admin):
    """No channels copied yet: the page says orders of every channel are fetched, and saving works."""
    page = client.get("/setup/order-filtering")
    assert "No channels have been copied from Omnitron yet" in page.text
    assert "step 6" in page.text
    assert "Not saved yet." in page.text

    response = client.post("/setup/order-filtering", data=_order_form(), follow_redirects=True)

    assert response.status_code == 200
    assert "Order filtering saved." in response.text
    expected = {"statuses": ["approved", "preparing"], "channels": [], "start_date": "2026-01-15",
                "exclude_test_orders": True, "page_size": 200}
    assert _setting(settings.ORDER_FILTERING) == expected
    assert '"page_size": 200' in response.text  # the stored JSON, shown read-only
    assert _state("order_filtering") == SetupStep.DONE
    assert _audit_count(settings.ORDER_FILTERING) == 1


def test_admin_chooses_channels_from_the_copied_ones(client, admin):
    """Channels copied from Omnitron are checkboxes; the chosen Omnitron ids are stored, sorted."""
    db.session.add_all([Channel(omnitron_id=7, name="Web shop", channel_type="web"),
                        Channel(omnitron_id=3, name="Mobile app", channel_type="mobile"),
                        Channel(omnitron_id=9, name="Marketplace", channel_type="marketplace")])
    db.session.commit()
    page = client.get("/setup/order-filtering")
    assert 'name="channels" value="7"' in page.text and "Web shop" in page.text

    response = client.post("/setup/order-filtering", headers=HTMX,
                           data=_order_form(channels=["9", "3"], exclude_test_orders=None, start_date=""))

    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"] == "Order filtering saved."
    stored = _setting(settings.ORDER_FILTERING)
    assert stored["channels"] == [3, 9]
    assert stored["exclude_test_orders"] is False
    assert stored["start_date"] is None
    assert 'value="3" checked' in response.text and 'value="7" >' in response.text


@pytest.mark.parametrize("overrides, field, message", [
    ({"statuses": None}, "statuses", "Choose at least one order status to fetch."),
    ({"statuses": ["approved", "teleported"]}, "statuses", "Unknown order status"),
    ({"start_date": (date.today() + timedelta(days=3)).isoformat()}, "start_date", "cannot be in the future"),
    ({"start_date": "15/01/2026"}, "start_date", "must be a date like"),
    ({"page_size": "lots"}, "page_size", "page_size must be a number from 1 to 1000."),
    ({"page_size": "0"}, "page_size", "page_size must be a number from 1 to 1000."),
    ({"channels": ["42"]}, "channels", "Unknown channel 42"),
])
def test_bad_order_filtering_shows_the_error_beside_the_field_and_keeps_the_saved_value(
        client, admin, overrides, field, message):
    """Each bad field gets its message next to it; the stored setting and the step do not change."""
    client.post("/setup/order-filtering", data=_order_form(statuses=["shipped"]))
    before = _setting(settings.ORDER_FILTERING)

    response = client.post("/setup/order-filtering", data=_order_form(**overrides))

    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert _setting(settings.ORDER_FILTERING) == before
    assert _audit_count(settings.ORDER_FILTERING) == 1
    # What the admin typed is still there to correct.
    if overrides.get("page_size"):
        assert f'value="{overrides["page_size"]}"' in response.text


# Step 9: GEOLOCATION_DISCOVERY

def _save_key(client, provider: str = "google", key: str = GOOD_GOOGLE_KEY, **kwargs):
    """Post the provider and key form."""
    return client.post("/setup/geolocation", data={"provider": provider, "api_key": key}, **kwargs)


def test_admin_saves_a_provider_and_key_encrypted_and_masked(client, admin):
    """The key is stored encrypted and shown as a mask; the step waits for a test."""
    response = _save_key(client, follow_redirects=True)

    assert response.status_code == 200
    assert "Test the key to finish this step." in response.text
    assert GOOD_GOOGLE_KEY not in response.text
    assert settings.mask(GOOD_GOOGLE_KEY) in response.text
    assert 'id="test-key"' in response.text
    stored = _setting(settings.GEOLOCATION_DISCOVERY)
    assert stored["provider"] == "google"
    assert set(stored["api_key"]) == {settings.ENCRYPTED}
    assert GOOD_GOOGLE_KEY not in json.dumps(stored)
    assert _state("geolocation") == SetupStep.IN_PROGRESS
    assert _audit_count(settings.GEOLOCATION_DISCOVERY) == 1


@pytest.mark.parametrize("provider, key", [("google", GOOD_GOOGLE_KEY), ("yandex", GOOD_YANDEX_KEY)])
def test_testing_a_good_key_shows_coordinates_and_finishes_the_step(client, admin, geocoding_stub, provider, key):
    """Test key geocodes the sample address with the stored (decrypted) key and shows where it is."""
    _save_key(client, provider, key)

    response = client.post("/setup/geolocation/test", headers=HTMX, data={"address": ""})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert f"{PLACE[0]:.6f}, {PLACE[1]:.6f}" in response.text
    assert "The key works." in response.text
    assert key not in response.text
    seen = geocoding_stub.requests[-1]
    assert (seen.params.get("key") or seen.params.get("apikey")) == key
    assert (seen.params.get("address") or seen.params.get("geocode")) == SAMPLE_ADDRESS
    step = wizard.status(db.session, "geolocation")
    assert step.state == SetupStep.DONE
    assert step.record.completed_by_id == admin.id
    assert 'id="step-state" hx-swap-oob="true"' in response.text


@pytest.mark.parametrize("provider, key, message", [
    ("google", "AIza-wrong-key-000", "Google Maps refused the API key (The provided API key is invalid.)"),
    ("yandex", "wrong-yandex-key-000", "Yandex Maps refused the API key (Invalid api key)"),
    ("google", QUOTA_KEY, "over its quota"),
    ("yandex", QUOTA_KEY, "over its quota"),
])
def test_a_failing_key_shows_why_and_the_step_needs_attention(client, admin, provider, key, message):
    """A refused key or a key over quota: the reason inline, the step needs attention, the key never shown."""
    _save_key(client, provider, key)

    response = client.post("/setup/geolocation/test", headers=HTMX, data={"address": SAMPLE_ADDRESS})

    assert response.status_code == 200
    assert message in response.text
    assert key not in response.text
    step = wizard.status(db.session, "geolocation")
    assert step.state == SetupStep.NEEDS_ATTENTION
    assert message in step.record.note
    assert key not in step.record.note


def test_a_provider_slower_than_the_timeout_is_reported(client, admin, geocoding_stub):
    """GEOCODING_TIMEOUT_SECONDS bounds the test; the page says the provider did not answer."""
    _save_key(client)
    geocoding_stub.delay = 3

    response = client.post("/setup/geolocation/test", headers=HTMX, data={})

    assert "Google Maps did not answer within 0.5 seconds" in response.text
    assert _state("geolocation") == SetupStep.NEEDS_ATTENTION


def test_an_unreachable_provider_is_reported(client, admin, app):
    """A base URL where nothing listens: 'could not be reached', and the key is not in the message."""
    url = _closed_port_url()
    app.config["GEOCODING_YANDEX_BASE_URL"] = url
    _save_key(client, "yandex", GOOD_YANDEX_KEY)

    response = client.post("/setup/geolocation/test", data={}, follow_redirects=True)

    assert response.status_code == 200
    assert f"Yandex Maps could not be reached at {url}" in response.text
    assert GOOD_YANDEX_KEY not in response.text
    assert _state("geolocation") == SetupStep.NEEDS_ATTENTION


def test_testing_before_saving_a_key_asks_for_one(client, admin, geocoding_stub):
    """Nothing saved: the test says to save a key first and calls no provider."""
    page = client.get("/setup/geolocation")
    assert "Save a provider and a key first." in page.text

    response = client.post("/setup/geolocation/test", headers=HTMX, data={})

    assert response.status_code == 422
    assert "Save a provider and an API key first" in response.text
    assert geocoding_stub.requests == []
    assert _state("geolocation") == SetupStep.NOT_STARTED


@pytest.mark.parametrize("data, field, message", [
    ({"provider": "bing", "api_key": GOOD_GOOGLE_KEY}, "provider", "provider must be google or yandex."),
    ({"provider": "", "api_key": GOOD_GOOGLE_KEY}, "provider", "provider must be google or yandex."),
    ({"provider": "google", "api_key": ""}, "api_key", "api_key is required."),
])
def test_bad_geolocation_settings_save_nothing(client, admin, data, field, message):
    """An unknown provider or a missing first key: 422 with the message beside the field, nothing stored."""
    response = client.post("/setup/geolocation", data=data, headers=HTMX)

    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text and message in response.text
    assert _setting(settings.GEOLOCATION_DISCOVERY) is None
    assert _audit_count(settings.GEOLOCATION_DISCOVERY) == 0
    assert _state("geolocation") == SetupStep.NOT_STARTED


def test_a_new_key_must_be_tested_again_but_resaving_the_same_one_keeps_the_step_done(client, admin):
    """Saving with the key left empty keeps the tested key (step stays done); a new key needs a new test."""
    _save_key(client)
    client.post("/setup/geolocation/test", data={})
    assert _state("geolocation") == SetupStep.DONE

    response = _save_key(client, "google", "", headers=HTMX)
    assert "unchanged" in json.loads(response.headers["HX-Trigger"])["toast"]["message"]
    assert _state("geolocation") == SetupStep.DONE

    _save_key(client, "yandex", GOOD_YANDEX_KEY)
    assert _state("geolocation") == SetupStep.IN_PROGRESS
    assert settings.get_secret(db.session, settings.GEOLOCATION_DISCOVERY, ("api_key",)) == GOOD_YANDEX_KEY


# Steps 1 and 3: Omnitron (the bundled sandbox, served over HTTP)

@pytest.fixture
def omnitron(app, omnitron_sandbox):
    """The portal pointed at a running sandbox, with short timeouts."""
    app.config.update(OMNITRON_URL=omnitron_sandbox.url, OMNITRON_TIMEOUT_SECONDS=0.5,
                      OMNITRON_CONNECT_TIMEOUT_SECONDS=1, OMNITRON_BACKOFF_SECONDS=0.01)
    return omnitron_sandbox


def _save_credentials(client, username: str = USERNAME, password: str = SANDBOX_PASSWORD):
    """Save OMNITRON_CLIENT_SETTINGS through step 7's form."""
    response = client.post("/setup/omnitron-credentials", data={"username": username, "password": password})
    assert response.status_code == 302


def test_check_now_shows_that_omnitron_is_reachable_and_how_fast(client, admin, omnitron):
    """Step 1 pings the sandbox's health endpoint and shows the latency in ms; the step is done."""
    page = client.get("/setup/machine")
    assert page.status_code == 200
    assert omnitron.url in page.text
    assert "Check now" in page.text

    response = client.post("/setup/machine/check", headers=HTMX, data={})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Omnitron is reachable: it answered in" in response.text and " ms</strong>" in response.text
    assert "/api/v1/health/" in [r["path"] for r in omnitron.requests()]
    step = wizard.status(db.session, "machine")
    assert step.state == SetupStep.DONE
    assert step.record.completed_by_id == admin.id
    assert step.record.note.startswith(f"Omnitron at {omnitron.url} answered in ")
    assert "Last check: Omnitron at" in client.get("/setup/machine").text


def test_an_unreachable_omnitron_needs_attention_with_the_error(client, admin, app):
    """Nothing listening at OMNITRON_URL: connection refused, the INF board hint, step needs attention."""
    app.config["OMNITRON_URL"] = _closed_port_url()

    response = client.post("/setup/machine/check", data={})

    assert response.status_code == 200
    assert "cannot be reached (connection refused)" in response.text
    assert "INF board" in response.text
    step = wizard.status(db.session, "machine")
    assert step.state == SetupStep.NEEDS_ATTENTION
    assert "connection refused" in step.record.note and "INF board" in step.record.note


@pytest.mark.parametrize("fault, message", [
    ({"status": 503}, "Omnitron answered 503 to GET /api/v1/health/"),
    ({"delay": 1.5}, "did not answer GET /api/v1/health/ within 0.5 s"),
])
def test_a_failing_or_slow_omnitron_is_reported(client, admin, omnitron, fault, message):
    """A 5xx or an answer slower than OMNITRON_TIMEOUT_SECONDS: the error, and the step needs attention."""
    omnitron.add_fault("/api/v1/health/", **fault)

    response = client.post("/setup/machine/check", headers=HTMX, data={})

    assert message in response.text
    assert _state("machine") == SetupStep.NEEDS_ATTENTION


def test_a_later_successful_check_clears_needs_attention(client, admin, omnitron):
    """After a failure, a good check marks step 1 done again."""
    omnitron.add_fault("/api/v1/health/", status=500)
    client.post("/setup/machine/check", data={})
    assert _state("machine") == SetupStep.NEEDS_ATTENTION

    client.post("/setup/machine/check", data={})

    assert _state("machine") == SetupStep.DONE


def test_log_in_to_omnitron_with_the_saved_credentials(client, admin, omnitron):
    """Step 3 logs in with OMNITRON_CLIENT_SETTINGS (decrypted) and reads a record; the step is done."""
    _save_credentials(client)
    page = client.get("/setup/application")
    assert f'<code id="omnitron-username">{USERNAME}</code>' in page.text
    assert SANDBOX_PASSWORD not in page.text

    response = client.post("/setup/application/check", headers=HTMX, data={})

    assert response.status_code == 200
    assert f"Logged in to Omnitron as <strong>{USERNAME}</strong>" in response.text
    assert SANDBOX_PASSWORD not in response.text
    assert omnitron.logins() == 1
    step = wizard.status(db.session, "application")
    assert step.state == SetupStep.DONE
    assert step.record.completed_by_id == admin.id


def test_wrong_credentials_are_reported_and_point_to_step_7(client, admin, omnitron):
    """Omnitron refuses the password: a clear message, a link to correct it, the step needs attention."""
    _save_credentials(client, password="not-the-password")

    response = client.post("/setup/application/check", data={})

    assert response.status_code == 200
    assert f"Omnitron refused the username or password of &#39;{USERNAME}&#39;" in response.text
    assert "Correct the credentials in step 7" in response.text
    assert "not-the-password" not in response.text
    step = wizard.status(db.session, "application")
    assert step.state == SetupStep.NEEDS_ATTENTION
    assert "refused the username or password" in step.record.note


def test_a_user_without_permission_is_reported(client, admin, omnitron):
    """The login works but the user may not read Omnitron's data (403): said so, step needs attention."""
    _save_credentials(client, LIMITED_USERNAME, LIMITED_PASSWORD)

    response = client.post("/setup/application/check", headers=HTMX, data={})

    assert f"The Omnitron user &#39;{LIMITED_USERNAME}&#39; may not use" in response.text
    assert _state("application") == SetupStep.NEEDS_ATTENTION


def test_logging_in_to_an_unreachable_omnitron_is_reported(client, admin, app):
    """Credentials saved but nothing at OMNITRON_URL: 'cannot be reached', step needs attention."""
    app.config["OMNITRON_URL"] = _closed_port_url()
    _save_credentials(client)

    response = client.post("/setup/application/check", headers=HTMX, data={})

    assert "cannot be reached (connection refused)" in response.text
    assert _state("application") == SetupStep.NEEDS_ATTENTION


def test_logging_in_without_saved_credentials_asks_for_step_7(client, admin, omnitron):
    """No OMNITRON_CLIENT_SETTINGS: the page says to save them first; Omnitron is not called, state unchanged."""
    assert "No Omnitron credentials are saved yet." in client.get("/setup/application").text

    response = client.post("/setup/application/check", headers=HTMX, data={})

    assert response.status_code == 422
    assert "Save the Omnitron username and password in step 7 first." in response.text
    assert omnitron.logins() == 0
    assert _state("application") == SetupStep.NOT_STARTED


@pytest.mark.parametrize("url", ["/setup/machine/check", "/setup/application/check"])
def test_only_admins_run_the_omnitron_checks(client, make, auth_actions, omnitron, url):
    """Store staff are refused before anything is sent to Omnitron."""
    make.user("clerk", role="staff")
    auth_actions.login("clerk")

    assert client.post(url, data={}).status_code == 403
    assert omnitron.requests() == []


# Credentials forms saved as shown: the secret fields are never filled in, and an empty one keeps the secret.

def _form_as_shown(page: str, *names: str) -> dict[str, str]:
    """The values the page's inputs carry, as a browser would post them unchanged ("" without a value)."""
    values = {}
    for name in names:
        tag = re.search(rf'<input id="{name}"[^>]*>', page).group(0)
        value = re.search(r'value="([^"]*)"', tag)
        values[name] = value.group(1) if value else ""
    return values


def test_the_omnitron_form_saved_unchanged_keeps_the_password_and_step_3_still_logs_in(client, admin, omnitron):
    _save_credentials(client)
    page = client.get("/setup/omnitron-credentials").text
    shown = _form_as_shown(page, "username", "password")
    assert shown == {"username": USERNAME, "password": ""}  # the password is never sent back to the browser
    assert SANDBOX_PASSWORD not in page

    assert client.post("/setup/omnitron-credentials", data=shown).status_code == 302

    assert settings.get_secret(db.session, settings.OMNITRON_CLIENT_SETTINGS, ("auth", "password")) == SANDBOX_PASSWORD
    response = client.post("/setup/application/check", headers=HTMX, data={})
    assert response.status_code == 200
    assert _state("application") == SetupStep.DONE


def test_the_geolocation_form_saved_unchanged_keeps_the_key_and_the_key_test_still_works(client, admin):
    _save_key(client, "google", GOOD_GOOGLE_KEY)
    page = client.get("/setup/geolocation").text
    shown = _form_as_shown(page, "api_key")
    assert shown == {"api_key": ""} and GOOD_GOOGLE_KEY not in page

    assert _save_key(client, "google", shown["api_key"]).status_code == 302

    assert settings.get_secret(db.session, settings.GEOLOCATION_DISCOVERY, ("api_key",)) == GOOD_GOOGLE_KEY
    response = client.post("/setup/geolocation/test", headers=HTMX, data={"address": ""})
    assert "The key works." in response.text
