"""Abuse of the web and API surface: each story is something a hostile or careless client tried, and what it got.

Every refusal must be a clear 4xx that changes nothing; never a 500.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from portal.accounts import auth
from portal.accounts.models import User
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.idempotency.models import IdempotencyRecord
from portal.packages import commands
from portal.packages.models import Package, PackageLog
from portal.packages.queries import PackageFilters
from portal.packages.states import State
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting

HUGE = 10**30  # more than any database integer can hold
BEYOND_INT = 2**31 + 5  # more than a PostgreSQL INTEGER id can be, though SQLite would store it


def api_headers(user) -> dict:
    """The Authorization header of a fresh API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def hidden_token(page: str) -> str:
    """The csrf_token hidden field of a form on the page."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def state_and_logs(package) -> tuple[int, int]:
    """The package's state and how many audit rows it has, read from the database."""
    db.session.expire_all()
    logs = db.session.scalar(select(func.count()).select_from(PackageLog).where(PackageLog.package_id == package.id))
    return db.session.get(Package, package.id).state, logs


@pytest.mark.parametrize("number", [HUGE, BEYOND_INT])
def test_a_package_id_too_large_for_the_database_is_a_404_in_the_ui_and_the_api(app, client, make, auth_actions,
                                                                                  number):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    package = make.package(store=store)
    headers = api_headers(staff)
    auth_actions.login("kadikoy")

    page = client.get(f"/packages/{number}")
    command = client.post(f"/packages/{number}/commands/ready-for-customer-pickup", headers={"HX-Request": "true"})
    api = app.test_client().get(f"/api/v1/oms/packages/{number}/", headers=headers)
    api_command = app.test_client().post(f"/api/v1/oms/packages/{number}/command/", headers=headers,
                                         json={"slug": "complete-packaging-without-shipment"})

    assert page.status_code == 404
    # Werkzeug's router answers 405 when the id fits no rule of that path but the path has a GET rule: a refusal too.
    assert command.status_code in (404, 405)
    assert api.status_code == 404 and api.is_json
    assert api_command.status_code == 404 and api_command.is_json
    assert state_and_logs(package) == (State.WAITING, 0)


@pytest.mark.parametrize("query", [f"after={HUGE}", "after=%C2%B2", f"before={BEYOND_INT}", f"stock_location={HUGE}",
                                   f"stock_location={BEYOND_INT}", "limit=%C2%B2", f"limit={HUGE}"])
def test_a_package_list_cursor_that_is_not_a_plain_number_is_a_400(app, make, query):
    admin = make.user("boss", role="admin")
    make.package()

    response = app.test_client().get(f"/api/v1/oms/packages/?{query}", headers=api_headers(admin))

    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"
    assert response.get_json()["field"] == query.split("=")[0]


@pytest.mark.parametrize("query", [f"after={HUGE}", "after=%C2%B2", f"before={BEYOND_INT}", f"stock_location={HUGE}"])
def test_the_package_list_page_explains_a_bad_cursor_instead_of_failing(client, make, auth_actions, query):
    make.user("boss", role="admin")
    package = make.package()
    auth_actions.login("boss")

    response = client.get(f"/packages?{query}")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "must be a number" in page
    assert package.number in page  # the list falls back to its first page


@pytest.mark.parametrize("path", ["/api/v1/oms/channels/get_async_status/?job_id=%C2%B2",
                                  f"/api/v1/oms/channels/get_async_status/?job_id={HUGE}",
                                  "/api/v1/whisperer/hooks/1/deliveries/?limit=%C2%B2"])
def test_other_number_arguments_of_the_api_are_a_400(app, make, path):
    admin = make.user("boss", role="admin")

    response = app.test_client().get(path, headers=api_headers(admin))

    assert response.status_code in (400, 404)  # 404: no hook 1, which is fine too; never a 500
    assert response.is_json


@pytest.mark.parametrize("body", [
    {"transition": HUGE},
    {"transition": BEYOND_INT},
    {"transition": "²"},
    {"transition": -1},
    {"slug": "refuse-with-denial-reason-from-waiting", "input_parameters": {"denial_reason": HUGE}},
    {"slug": "refuse-with-denial-reason-from-waiting", "input_parameters": {"denial_reason": BEYOND_INT}},
])
def test_a_command_naming_things_by_impossible_numbers_is_a_400_and_changes_nothing(app, make, body):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    package = make.package(store=store)

    response = app.test_client().post(f"/api/v1/oms/packages/{package.id}/command/", json=body,
                                      headers=api_headers(staff))

    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"
    assert state_and_logs(package) == (State.WAITING, 0)


def test_a_huge_slug_is_refused_without_being_echoed_back(app, make):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    package = make.package(store=store)

    response = app.test_client().post(f"/api/v1/oms/packages/{package.id}/command/",
                                      json={"slug": "x" * 100_000}, headers=api_headers(staff))

    assert response.status_code == 400
    assert response.get_json()["field"] == "slug"
    assert len(response.get_data()) < 500
    assert state_and_logs(package) == (State.WAITING, 0)


@pytest.mark.parametrize("idempotency_key", [None, "nested-1"])
def test_a_deeply_nested_json_body_is_a_400_not_a_crash(app, make, idempotency_key):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    package = make.package(store=store)
    headers = api_headers(staff)
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key

    response = app.test_client().post(f"/api/v1/oms/packages/{package.id}/command/", headers=headers,
                                      data='{"a":' * 50_000 + "1" + "}" * 50_000, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["detail"] == "The request body is nested too deeply."
    assert state_and_logs(package) == (State.WAITING, 0)
    # A refused body is an answer like any other: kept for the key, so a retry gets the same 400.
    kept = db.session.scalar(select(func.count()).select_from(IdempotencyRecord))
    assert kept == (1 if idempotency_key else 0)


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 4096}])
def test_a_body_over_the_size_limit_is_refused_with_413(app, client, make, auth_actions):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    package = make.package(store=store)
    padding = "x" * 8000

    api = app.test_client().post(
        f"/api/v1/oms/packages/{package.id}/command/", headers=api_headers(staff),
        json={"slug": "complete-packaging-without-shipment", "input_parameters": {"note": padding}})
    auth_actions.login("kadikoy")
    form = client.post(f"/packages/{package.id}/commands/complete-packaging-without-shipment",
                       data={"padding": padding})

    assert api.status_code == 413 and api.is_json
    assert form.status_code == 413
    assert "too large" in form.get_data(as_text=True)
    assert state_and_logs(package) == (State.WAITING, 0)


def test_a_forged_denial_reason_in_the_refuse_form_asks_for_a_reason(client, make, auth_actions):
    store = make.store()
    make.user("manager", role="admin")
    package = make.package(store=store)
    auth_actions.login("manager")

    response = client.post(f"/packages/{package.id}/commands/refuse-with-denial-reason-from-waiting",
                           data={"denial_reason": str(HUGE)}, headers={"HX-Request": "true"})

    assert response.status_code == 422
    assert "Choose a denial reason." in response.get_data(as_text=True)
    assert state_and_logs(package) == (State.WAITING, 0)


def test_a_barcode_field_named_with_a_non_ascii_number_is_ignored(client, make, auth_actions):
    store = make.store()
    make.user("kadikoy", stores=[store])
    package = make.package(store=store, items=1)
    auth_actions.login("kadikoy")

    response = client.post(f"/packages/{package.id}/commands/complete-packaging-from-waiting",
                           data={"barcode_²": package.items[0].barcode}, headers={"HX-Request": "true"})

    assert response.status_code == 422  # the one real item's barcode is still missing
    assert state_and_logs(package) == (State.WAITING, 0)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_a_csrf_token_from_before_login_stops_working_once_logged_in(client, make):
    # Someone who planted their own (anonymous) session cookie knows its CSRF token; it must not survive the login.
    make.user("boss", role="admin")
    before = hidden_token(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"username": "boss", "password": "correct-horse-1",
                                       "csrf_token": before}).status_code == 302

    forged = client.post("/admin/settings/otp", data={"enabled": "false", "csrf_token": before})

    assert forged.status_code == 400
    assert settings.is_otp_enabled(db.session) is True
    fresh = hidden_token(client.get("/admin/settings").get_data(as_text=True))
    assert fresh != before
    assert client.post("/admin/settings/otp", data={"enabled": "false", "csrf_token": fresh}).status_code == 302
    assert settings.is_otp_enabled(db.session) is False


def test_a_password_reset_by_an_admin_ends_the_users_other_sessions(app, make):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    make.user("boss", role="admin")
    tablet, office = app.test_client(), app.test_client()
    tablet.post("/login", data={"username": "kadikoy", "password": "correct-horse-1"})
    office.post("/login", data={"username": "boss", "password": "correct-horse-1"})
    assert tablet.get("/packages").status_code == 200

    reset = office.post(f"/setup/users/{staff.id}/password", data={"password": "brand-new-secret-2"})

    assert reset.status_code == 302
    assert tablet.get("/packages").status_code == 302  # back to the login page
    assert office.get("/setup/users").status_code == 200  # the admin's own session is untouched
    assert tablet.post("/login", data={"username": "kadikoy", "password": "correct-horse-1"}).status_code == 401
    assert tablet.post("/login", data={"username": "kadikoy", "password": "brand-new-secret-2"}).status_code == 302
    assert tablet.get("/packages").status_code == 200
    db.session.expire_all()
    assert auth.verify_password(db.session.get(User, staff.id).password_hash, "brand-new-secret-2")


def test_the_settings_page_never_shows_a_secret_or_its_ciphertext(client, make, auth_actions):
    make.user("boss", role="admin")
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": "oms", "password": "hunter2-hunter2"}}, user_id=None)
    stored = db.session.scalar(select(ApplicationSetting).where(
        ApplicationSetting.key == settings.OMNITRON_CLIENT_SETTINGS)).json_value
    ciphertext = stored["auth"]["password"]["$encrypted"]
    auth_actions.login("boss")

    page = client.get("/admin/settings").get_data(as_text=True)

    assert "hunter2-hunter2" not in page
    assert ciphertext not in page and "$encrypted" not in page
    assert json.dumps(settings.mask("hunter2-hunter2")).strip('"') in page


@pytest.mark.parametrize("app_config", [{"PROXY_COUNT": 1, "RATELIMIT_ENABLED": True}])
def test_behind_a_proxy_the_login_limit_counts_each_client_not_the_proxy(app):
    # Every request arrives from the proxy's address; only X-Forwarded-For tells the clients apart.
    guesser, colleague = app.test_client(), app.test_client()
    for _ in range(30):
        guesser.post("/login", data={"username": "nobody", "password": "wrong-password"},
                     headers={"X-Forwarded-For": "203.0.113.7"})

    blocked = guesser.post("/login", data={"username": "nobody", "password": "wrong-password"},
                           headers={"X-Forwarded-For": "203.0.113.7"})
    other = colleague.post("/login", data={"username": "nobody", "password": "wrong-password"},
                           headers={"X-Forwarded-For": "198.51.100.20"})

    assert blocked.status_code == 429
    assert other.status_code == 401


def test_the_domain_itself_refuses_ids_no_row_can_have(make):
    """The command engine and the list query, called by any caller (a job, the CLI), not only the web layer."""
    package = make.package()
    for junk in ("99999999999999999999", "²", "-3", "1e3"):
        with pytest.raises(ValidationFailed, match="Choose a denial reason"):
            commands.run_command(db.session, package.id, slug="refuse-with-denial-reason-from-waiting",
                               params={"denial_reason": junk}, user_id=None, store_ids=None)
        with pytest.raises(ValidationFailed, match="after must be a number"):
            PackageFilters.from_args({"after": junk})
    db.session.expire_all()
    assert db.session.get(Package, package.id).state == State.WAITING


def test_pages_with_customer_data_are_never_stored_by_the_browser(client, make, auth_actions):
    store = make.store(code="IST-KDK")
    make.user("kadikoy", role="staff", stores=[store])
    package = make.package(store=store)
    login_page = client.get("/login")
    assert "no-store" not in login_page.headers.get("Cache-Control", "")

    auth_actions.login("kadikoy")

    for path in ("/packages", f"/packages/{package.id}"):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert "HX-Request" in response.headers["Vary"]
    assert "no-store" not in client.get("/static/portal.css").headers.get("Cache-Control", "")
