"""Setup wizard step 10, product stock integration: an admin defines where the OMS asks for physical stock
(in the wizard and through the setup API), the password is encrypted and masked, and the connection test
calls a local stock service over real HTTP.
"""
from __future__ import annotations

import re
import socket

import pytest
from sqlalchemy import func, select
from stubs.stock_engine_server import PASSWORD, TOKEN, USERNAME, stock_engine  # noqa: F401

from portal import crypto
from portal.accounts import auth
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.integrations import service as integrations
from portal.integrations.models import StockIntegration
from portal.settings.models import SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep

HTMX = {"HX-Request": "true"}
PAGE = "/setup/stock-integration"
API = "/api/v1/oms/setup/product-stock-integration"


@pytest.fixture
def app_config():
    """A short connection-test timeout keeps the timeout test quick."""
    return {"STOCK_ENGINE_TIMEOUT_SECONDS": 1.0}


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


def _integrations() -> list[StockIntegration]:
    """Every stored integration, read afresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(StockIntegration).order_by(StockIntegration.id)))


def _state() -> SetupStep | None:
    """Step 10's record, read afresh."""
    db.session.expire_all()
    return wizard.status(db.session, "stock_integration").record


def _audits() -> list[tuple[str, str, str]]:
    """(area, key, action) of every audit row."""
    return [(r.area, r.key, r.action) for r in db.session.scalars(select(SettingChange).order_by(SettingChange.id))]


def _save(stub_url: str, engine: str = "basic_auth_rest", **kwargs) -> StockIntegration:
    """Save an integration through the domain function."""
    credentials = {"basic_auth_rest": {"username": USERNAME, "password": PASSWORD},
                   "sap": {"username": USERNAME, "password": PASSWORD}, "token_rest": {"password": TOKEN},
                   "omnitron": {}}[engine]
    integration, _ = integrations.save_integration(
        db.session, url=stub_url, stock_engine_type=engine, **{**credentials, **kwargs}, user_id=None)
    return integration


# The engines

def test_the_engines_say_which_need_credentials():
    engines = {e["type"]: e for e in integrations.available_stock_engines()}

    assert engines["omnitron"]["requires_credentials"] is False
    assert engines["basic_auth_rest"] == {"type": "basic_auth_rest", "name": "REST service with basic auth",
                                          "requires_credentials": True, "credentials": ["username", "password"]}
    assert engines["token_rest"]["credentials"] == ["password"]
    assert engines["sap"]["requires_credentials"] is True


# Saving

def test_the_password_is_encrypted_at_rest_and_the_change_audited(app):
    integration = _save("https://stock.example.com/api/")

    stored = _integrations()[0]
    assert stored.url == "https://stock.example.com/api"
    assert stored.username == USERNAME
    assert PASSWORD not in stored.password_encrypted
    assert crypto.decrypt(stored.password_encrypted) == PASSWORD
    assert integrations.password_mask(integration) == "********01"
    assert _audits() == [("stock_integration", "https://stock.example.com/api", "create")]
    assert _state().state == SetupStep.IN_PROGRESS


def test_the_audit_key_leaves_out_a_query_that_may_carry_a_key(app):
    _save("https://stock.example.com/api?apikey=Query-Secret-1", "omnitron")

    assert _audits() == [("stock_integration", "https://stock.example.com/api", "create")]


@pytest.mark.parametrize("engine, fields, field, message", [
    ("basic_auth_rest", {"username": "u"}, "password", "The password is required for REST service with basic auth."),
    ("basic_auth_rest", {"password": "p"}, "username", "The username is required"),
    ("sap", {}, "username", "The username is required for SAP"),
    ("token_rest", {"username": "u"}, "password", "The token is required"),
    ("ftp_stock", {}, "stock_engine_type", "Choose a stock engine"),
])
def test_credentials_are_required_only_where_the_engine_needs_them(app, engine, fields, field, message):
    with pytest.raises(ValidationFailed) as caught:
        integrations.save_integration(db.session, url="https://stock.example.com", stock_engine_type=engine,
                                      **fields, user_id=None)

    assert caught.value.field == field
    assert message in caught.value.message
    db.session.rollback()
    assert _integrations() == [] and _audits() == []


def test_an_engine_without_credentials_keeps_none(app):
    _save("http://omnitron.local:8000", "omnitron", username="leftover", password="not-needed")

    stored = _integrations()[0]
    assert (stored.stock_engine_type, stored.username, stored.password_encrypted) == ("omnitron", "", "")


@pytest.mark.parametrize("url", ["ftp://stock.example.com", "stock.example.com", "https://", "http://a b.com",
                                 "https://user:secret@stock.example.com", "", "http://host:99999"])
def test_only_http_urls_are_accepted(app, url):
    with pytest.raises(ValidationFailed) as caught:
        integrations.save_integration(db.session, url=url, stock_engine_type="omnitron", user_id=None)

    assert caught.value.field == "url"
    db.session.rollback()
    assert _integrations() == []


def test_editing_without_the_password_keeps_it_and_a_new_url_clears_the_last_test(app, stock_engine):
    integration = _save(stock_engine.url)
    integrations.run_connection_test(db.session, integration.id, user_id=None)
    sealed = _integrations()[0].password_encrypted

    for kept in ("", None, "********", "********01"):
        integrations.save_integration(db.session, url=stock_engine.url, stock_engine_type="sap", username=USERNAME,
                                      password=kept, integration_id=integration.id, user_id=None)
        assert _integrations()[0].password_encrypted == sealed
    assert _integrations()[0].last_test_ok is None  # the engine changed: the old test says nothing now

    integrations.run_connection_test(db.session, integration.id, user_id=None)
    assert _integrations()[0].last_test_ok is True
    integrations.save_integration(db.session, url=stock_engine.url + "/v2", stock_engine_type="sap",
                                  username=USERNAME, integration_id=integration.id, user_id=None)
    stored = _integrations()[0]
    assert (stored.url, stored.last_test_ok, stored.last_test_at) == (stock_engine.url + "/v2", None, None)
    assert crypto.decrypt(stored.password_encrypted) == PASSWORD
    assert _state().state == SetupStep.NEEDS_ATTENTION  # it was done; now its test must be run again


def test_a_stored_password_never_becomes_a_token(app, client, admin):
    integration = _save("https://stock.example.com")

    with pytest.raises(ValidationFailed, match="The token is required for REST service with a token."):
        integrations.save_integration(db.session, url="https://stock.example.com", stock_engine_type="token_rest",
                                      integration_id=integration.id, user_id=None)
    db.session.rollback()
    as_token = client.get(f"{PAGE}/credentials?stock_engine_type=token_rest&integration_id={integration.id}")
    as_sap = client.get(f"{PAGE}/credentials?stock_engine_type=sap&integration_id={integration.id}")

    assert "placeholder" not in as_token.get_data(as_text=True)
    assert 'placeholder="********01"' in as_sap.get_data(as_text=True)


def test_a_second_integration_with_the_same_url_is_refused_in_the_wizard(app):
    _save("https://stock.example.com")

    with pytest.raises(ValidationFailed, match="already an integration with this URL"):
        _save("https://stock.example.com/")


# The connection test, against the local stub

@pytest.mark.parametrize("engine, sent", [
    ("basic_auth_rest", "Basic "), ("token_rest", f"Token {TOKEN}"), ("sap", "Basic "), ("omnitron", ""),
])
def test_a_passing_connection_test_finishes_the_step(app, stock_engine, engine, sent):
    stock_engine.anonymous = engine == "omnitron"
    integration = _save(stock_engine.url, engine)

    outcome = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert outcome.result.ok, outcome.result.message
    assert outcome.result.message.startswith("Connected: HTTP 200 in ")
    seen = stock_engine.requests[-1]
    assert seen.authorization.startswith(sent) and (sent or seen.authorization == "")
    assert seen.path == ("/sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/$metadata" if engine == "sap" else "/health/")
    stored = _integrations()[0]
    assert stored.last_test_ok is True and stored.last_test_at is not None
    assert stored.last_test_message == outcome.result.message
    assert _state().state == SetupStep.DONE


def test_wrong_credentials_are_reported_and_the_step_needs_attention(app, stock_engine):
    integration = _save(stock_engine.url, password="wrong-password")

    outcome = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert not outcome.result.ok
    assert outcome.result.status == 401
    assert outcome.result.message == ("The stock service refused the credentials (HTTP 401). "
                                      "Check the username and password.")
    assert _integrations()[0].last_test_ok is False
    record = _state()
    assert record.state == SetupStep.NEEDS_ATTENTION
    assert "refused the credentials" in record.note


def test_a_slow_stock_service_times_out_with_a_clear_message(app, stock_engine):
    stock_engine.delay = 5
    integration = _save(stock_engine.url)

    outcome = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert outcome.result.message == "The stock service did not answer within 1 second."
    assert _integrations()[0].last_test_ok is False


@pytest.mark.parametrize("status, words", [(404, "Check the URL"), (503, "problem of its own (HTTP 503)"),
                                           (403, "denies access")])
def test_other_answers_are_described(app, stock_engine, status, words):
    stock_engine.status = status
    integration = _save(stock_engine.url)

    outcome = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert not outcome.result.ok and words in outcome.result.message


def test_a_service_that_is_down_is_reported(app):
    url = _closed_port_url()
    integration = _save(url)

    outcome = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert outcome.result.message == f"Could not connect to {url.split('//')[1]}: the connection was refused."


def test_only_an_active_integration_that_passed_finishes_the_step(app, stock_engine):
    integration = _save(stock_engine.url, is_active=False)

    integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert _integrations()[0].last_test_ok is True
    assert _state().state == SetupStep.IN_PROGRESS


# The wizard page

def test_only_admins_open_the_step(client, make, auth_actions):
    make.user("brand", role="brand_manager")
    auth_actions.login("brand")

    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"url": "https://x.example", "stock_engine_type": "omnitron"}).status_code == 403
    assert _integrations() == []


def test_admin_adds_an_integration_and_the_password_is_never_shown(client, admin):
    page = client.get(PAGE)
    assert page.status_code == 200
    assert b"No stock integration yet" in page.data
    assert b'<option value="token_rest"' in page.data

    response = client.post(PAGE, data={"stock_engine_type": "basic_auth_rest", "url": "https://stock.example.com",
                                       "username": "oms", "password": "Very-Secret-99", "is_active": "on"},
                           headers=HTMX)

    assert response.status_code == 200
    assert "added" in response.headers["HX-Trigger"]
    html = response.get_data(as_text=True)
    assert "Very-Secret-99" not in html
    assert "********99" in html
    assert 'id="step-state" hx-swap-oob="true"' in html and "In progress" in html
    stored = _integrations()[0]
    assert "Very-Secret-99" not in stored.password_encrypted
    assert crypto.decrypt(stored.password_encrypted) == "Very-Secret-99"
    assert _audits() == [("stock_integration", "https://stock.example.com", "create")]

    edit = client.get(f"{PAGE}?edit={stored.id}").get_data(as_text=True)
    assert "Very-Secret-99" not in edit
    assert 'placeholder="********99"' in edit and "Leave this empty to keep it" in edit


def test_a_bad_form_shows_the_message_beside_the_field_and_saves_nothing(client, admin):
    response = client.post(PAGE, data={"stock_engine_type": "sap", "url": "https://sap.example.com",
                                       "username": "", "password": "Pass-1"}, headers=HTMX)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="stock-username-error" role="alert">The username is required for SAP (OData).' in html
    assert 'value="https://sap.example.com"' in html  # what was typed stays
    assert "Pass-1" not in html  # but never the password
    assert _integrations() == [] and _audits() == []

    plain = client.post(PAGE, data={"stock_engine_type": "omnitron", "url": "ftp://x"})
    assert plain.status_code == 422
    assert b"must start with http:// or https://" in plain.data
    assert _integrations() == []


def test_editing_in_the_wizard_without_the_password_keeps_it(client, admin):
    client.post(PAGE, data={"stock_engine_type": "token_rest", "url": "https://stock.example.com",
                            "password": "tok-123456789"})
    stored = _integrations()[0]
    sealed = stored.password_encrypted

    response = client.post(PAGE, data={"integration_id": str(stored.id), "stock_engine_type": "token_rest",
                                       "url": "https://stock2.example.com", "password": ""})

    assert response.status_code == 302
    stored = _integrations()[0]
    assert (stored.url, stored.password_encrypted, stored.is_active) == ("https://stock2.example.com", sealed, False)
    assert [a[2] for a in _audits()] == ["create", "update"]


def test_the_credential_fields_follow_the_engine(client, admin):
    none = client.get(f"{PAGE}/credentials?stock_engine_type=omnitron", headers=HTMX).get_data(as_text=True)
    token = client.get(f"{PAGE}/credentials?stock_engine_type=token_rest", headers=HTMX).get_data(as_text=True)
    basic = client.get(f"{PAGE}/credentials?stock_engine_type=basic_auth_rest&username=oms",
                       headers=HTMX).get_data(as_text=True)

    assert "needs no credentials" in none and 'name="password"' not in none
    assert 'name="username"' not in token and '<label for="stock-password">Token</label>' in token
    assert 'name="username"' in basic and 'value="oms"' in basic and 'name="password"' in basic
    assert "required" in basic


def test_the_test_button_shows_the_result_in_the_row_and_finishes_the_step(client, admin, stock_engine):
    client.post(PAGE, data={"stock_engine_type": "basic_auth_rest", "url": stock_engine.url, "username": USERNAME,
                            "password": PASSWORD, "is_active": "on"})
    integration = _integrations()[0]

    response = client.post(f"{PAGE}/{integration.id}/test", headers=HTMX)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<tr id="stock-integration-{integration.id}">' in html
    assert "Passed" in html and "Connected: HTTP 200" in html
    assert 'id="step-state" hx-swap-oob="true"' in html and "Done" in html
    assert '"level": "success"' in response.headers["HX-Trigger"]
    assert _state().state == SetupStep.DONE
    assert _state().completed_by_id == admin.id

    stock_engine.status = 401
    failed = client.post(f"{PAGE}/{integration.id}/test", headers=HTMX)
    assert "Failed" in failed.get_data(as_text=True)
    assert '"level": "error"' in failed.headers["HX-Trigger"]
    assert _state().state == SetupStep.NEEDS_ATTENTION


def test_removing_an_integration_is_audited(client, admin):
    client.post(PAGE, data={"stock_engine_type": "omnitron", "url": "https://stock.example.com"})
    integration = _integrations()[0]

    response = client.post(f"{PAGE}/{integration.id}/delete")

    assert response.status_code == 302
    assert _integrations() == []
    assert _audits()[-1] == ("stock_integration", "https://stock.example.com", "delete")


# The setup API

@pytest.fixture
def token(make):
    """An admin's API token header."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, make.user('api-admin', role='admin'))}"}


def test_the_api_lists_the_engines_for_admins_only(client, make, token):
    staff_token = auth.create_api_token(db.session, make.user("clerk"))

    listed = client.get(f"{API}/available-stock-engines/", headers=token)
    refused = client.get(f"{API}/available-stock-engines/", headers={"Authorization": f"Token {staff_token}"})
    anonymous = client.get(f"{API}/available-stock-engines/")

    assert listed.status_code == 200
    assert [e["type"] for e in listed.json] == ["omnitron", "basic_auth_rest", "token_rest", "sap"]
    assert refused.status_code == 403 and refused.json["code"] == "permission_denied"
    assert anonymous.status_code == 401


def test_execute_creates_then_updates_the_integration_with_the_same_url(client, token, stock_engine):
    body = {"url": stock_engine.url, "stock_engine_type": "basic_auth_rest", "username": USERNAME,
            "password": PASSWORD}

    created = client.post(f"{API}/execute/", json=body, headers=token)
    updated = client.post(f"{API}/execute/", json={**body, "password": None}, headers=token)

    assert created.status_code == 201
    assert created.json["password"] == "********01" and PASSWORD not in created.get_data(as_text=True)
    assert updated.status_code == 200 and updated.json["id"] == created.json["id"]
    stored = _integrations()
    assert len(stored) == 1 and crypto.decrypt(stored[0].password_encrypted) == PASSWORD
    assert [a[2] for a in _audits()] == ["create", "update"]

    tested = client.post(f"{API}/{created.json['id']}/test-connection/", headers=token)
    assert tested.status_code == 200
    assert tested.json["ok"] is True and tested.json["integration"]["last_test_ok"] is True
    assert _state().state == SetupStep.DONE


@pytest.mark.parametrize("body, field", [
    ({"url": "https://s.example.com", "stock_engine_type": "basic_auth_rest", "username": "u"}, "password"),
    ({"url": "https://s.example.com", "stock_engine_type": "nope"}, "stock_engine_type"),
    ({"url": "file:///etc/passwd", "stock_engine_type": "omnitron"}, "url"),
    ({"url": "https://s.example.com", "stock_engine_type": "omnitron", "is_active": "yes"}, "is_active"),
    ({"stock_engine_type": "omnitron"}, "url"),
])
def test_execute_refuses_bad_input_with_a_json_400(client, token, body, field):
    response = client.post(f"{API}/execute/", json=body, headers=token)

    assert response.status_code == 400
    assert response.json["code"] == "validation_error" and response.json["field"] == field
    assert _integrations() == []


def test_execute_needs_an_admin_token(client, make):
    manager = auth.create_api_token(db.session, make.user("manager", role="brand_manager"))

    response = client.post(f"{API}/execute/", json={"url": "https://s.example.com", "stock_engine_type": "omnitron"},
                           headers={"Authorization": f"Token {manager}"})

    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(StockIntegration)) == 0


def test_with_csrf_on_the_test_button_carries_its_token(client, admin, app, stock_engine):
    integration = _save(stock_engine.url)
    app.config["WTF_CSRF_ENABLED"] = True

    forged = client.post(f"{PAGE}/{integration.id}/test", headers=HTMX)
    page = client.get(PAGE).get_data(as_text=True)
    row = page[page.index(f'<tr id="stock-integration-{integration.id}">'):]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', row).group(1)
    accepted = client.post(f"{PAGE}/{integration.id}/test", data={"csrf_token": token}, headers=HTMX)

    assert forged.status_code == 400
    assert accepted.status_code == 200 and b"Passed" in accepted.data
    assert len(stock_engine.requests) == 1  # the forged post never reached the stock service
