"""A setting read through the API and written back unchanged keeps every stored secret (issue 7).

The API shows secrets masked (`********` plus, for long ones, the last two characters). Sending that
value back must keep the stored secret, for every settings key; the Omnitron login keeps working.
"""
import pytest
from sqlalchemy import select
from stubs.omnitron_server import PASSWORD, USERNAME, omnitron_sandbox  # noqa: F401

from portal import crypto
from portal.accounts import auth
from portal.extensions import db
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting
from portal.sync import service as sync

URL = "/api/v1/oms/settings/application_settings/"
GEO_KEY = "AIzaSy-geolocation-key-42"

# key -> a value an admin saves first (secrets in clear text)
VALUES = {
    settings.IS_OTP_ENABLED: False,
    settings.OMNITRON_CLIENT_SETTINGS: {"auth": {"username": USERNAME, "password": PASSWORD}},
    settings.ORDER_FILTERING: {"statuses": ["approved"], "channels": [], "start_date": None,
                               "exclude_test_orders": True, "page_size": 50},
    settings.GEOLOCATION_DISCOVERY: {"provider": "google", "api_key": GEO_KEY},
    settings.WANTED_EVENTS: [],
    settings.PICKUP_CODE_DELIVERY: settings.EXTENSION_APP,
}


@pytest.fixture
def app_config(omnitron_sandbox):  # noqa: F811 (the fixture imported above)
    """The portal talks to the sandbox without waiting between retries."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "OMNITRON_RETRIES": 1}


@pytest.fixture
def headers(make) -> dict:
    """An admin's token."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, make.user('root', role='admin'))}"}


def stored(key: str) -> object:
    """The stored value of a key with every secret decrypted."""
    db.session.expire_all()
    value = db.session.scalar(select(ApplicationSetting.json_value).where(ApplicationSetting.key == key))
    for path in settings.SECRET_FIELDS.get(key, []):
        sealed = settings._get_path(value, path)
        settings._set_path(value, path, crypto.decrypt(sealed[settings.ENCRYPTED]))
    return value


@pytest.mark.parametrize("key", list(VALUES))
def test_writing_back_what_the_api_showed_keeps_the_stored_value(client, headers, key):
    saved = client.patch(URL, headers=headers, json={"key": key, "json_value": VALUES[key]})
    assert saved.status_code == 200, saved.json
    before = stored(key)
    shown = client.get(f"{URL}{saved.json['id']}/", headers=headers).json
    for path in settings.SECRET_FIELDS.get(key, []):
        assert settings._get_path(shown["json_value"], path).startswith(settings.MASK)
    for url in (URL, f"{URL}{shown['id']}/"):  # by key in the body, and by id in the URL
        again = client.patch(url, headers=headers, json=shown)
        assert again.status_code == 200, again.json
        assert again.json == shown
        assert stored(key) == before


@pytest.mark.parametrize("shown_as", ["tail", "bare"])
def test_the_omnitron_login_still_works_after_writing_the_mask_back(client, headers, shown_as):
    client.patch(URL, headers=headers, json={"key": settings.OMNITRON_CLIENT_SETTINGS,
                                             "json_value": VALUES[settings.OMNITRON_CLIENT_SETTINGS]})
    shown = [s for s in client.get(URL, headers=headers).json if s["key"] == settings.OMNITRON_CLIENT_SETTINGS][0]
    assert shown["json_value"]["auth"]["password"] == settings.MASK + PASSWORD[-2:]
    if shown_as == "bare":
        shown["json_value"]["auth"]["password"] = settings.MASK
    assert client.patch(URL, headers=headers, json=shown).status_code == 200
    assert settings.get_secret(db.session, settings.OMNITRON_CLIENT_SETTINGS, ("auth", "password")) == PASSWORD
    with sync.make_client(db.session) as omnitron:
        assert omnitron.check_login().username == USERNAME  # raises OmnitronAuthError when refused


def test_the_geolocation_key_survives_its_mask_and_a_new_key_replaces_it(client, headers):
    key = settings.GEOLOCATION_DISCOVERY
    client.patch(URL, headers=headers, json={"key": key, "json_value": VALUES[key]})
    shown = [s for s in client.get(URL, headers=headers).json if s["key"] == key][0]
    assert shown["json_value"] == {"provider": "google", "api_key": settings.MASK + "42"}
    shown["json_value"]["provider"] = "yandex"
    assert client.patch(URL, headers=headers, json=shown).status_code == 200
    assert settings.get_secret(db.session, key, ("api_key",)) == GEO_KEY
    assert settings.get_value(db.session, key)["provider"] == "yandex"
    # A value that differs from what was shown is a new secret, even when it starts like a mask.
    new = {"provider": "google", "api_key": settings.MASK + "43"}
    assert client.patch(URL, headers=headers, json={"key": key, "json_value": new}).status_code == 200
    assert settings.get_secret(db.session, key, ("api_key",)) == settings.MASK + "43"


def test_a_mask_with_no_stored_secret_is_refused_not_stored(client, headers):
    response = client.patch(URL, headers=headers, json={"key": settings.OMNITRON_CLIENT_SETTINGS,
                                                        "json_value": {"auth": {"username": "u",
                                                                                "password": settings.MASK}}})
    assert response.status_code == 400 and response.json["field"] == "json_value.auth.password"
    assert db.session.scalar(select(ApplicationSetting).where(
        ApplicationSetting.key == settings.OMNITRON_CLIENT_SETTINGS)) is None


def test_the_stock_integration_password_survives_its_mask_sent_back(client, headers):
    from portal.integrations.models import StockIntegration

    url = "/api/v1/oms/setup/product-stock-integration/execute/"
    body = {"url": "https://stock.example.com/api", "stock_engine_type": "basic_auth_rest", "username": "oms",
            "password": "s3cret-pass-99"}
    created = client.post(url, headers=headers, json=body)
    assert created.status_code == 201 and created.json["password"] == settings.MASK + "99"
    again = client.post(url, headers=headers, json={**body, "password": created.json["password"]})
    assert again.status_code == 200 and again.json["password"] == settings.MASK + "99"
    db.session.expire_all()
    stored = db.session.scalar(select(StockIntegration))
    assert crypto.decrypt(stored.password_encrypted) == "s3cret-pass-99"
