"""CSRF on every form and htmx request, security headers, and production's refusal of unsafe settings."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.config import DEV_SECRET_KEY, ConfigurationError
from portal.extensions import db
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings import service as settings

CSRF_ON = {"WTF_CSRF_ENABLED": True}


def hidden_token(page: str) -> str:
    """The csrf_token hidden field of a form on the page."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def htmx_token(page: str) -> str:
    """The token htmx sends with every request, from the page's hx-headers attribute."""
    headers = json.loads(re.search(r"hx-headers='([^']+)'", page).group(1))
    return headers["X-CSRFToken"]


def log_in(client, username: str, password: str = "correct-horse-1"):
    """Log in through the real form, token included."""
    token = hidden_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


@pytest.mark.parametrize("app_config", [CSRF_ON])
def test_a_login_without_the_form_token_is_refused(client, make):
    make.user("zeynep")

    response = client.post("/login", data={"username": "zeynep", "password": "correct-horse-1"})

    assert response.status_code == 400
    assert client.get("/packages").status_code == 302  # still not logged in
    assert log_in(client, "zeynep").status_code == 302
    assert client.get("/packages").status_code == 200


@pytest.mark.parametrize("app_config", [CSRF_ON])
@pytest.mark.parametrize("htmx", [False, True])
def test_a_command_post_without_a_token_is_rejected_and_changes_nothing(client, make, htmx):
    store = make.store()
    make.user("zeynep", stores=[store])
    package = make.package(store=store, state=State.WAITING)
    assert log_in(client, "zeynep").status_code == 302

    response = client.post(f"/packages/{package.id}/commands/deallocate-package-reservations",
                           data={"version": 1}, headers={"HX-Request": "true"} if htmx else {})

    assert response.status_code == 400
    assert state_of(package) == State.WAITING
    assert db.session.scalar(select(func.count()).select_from(PackageLog)) == 0


@pytest.mark.parametrize("app_config", [CSRF_ON])
def test_a_wrong_token_is_rejected(client, make):
    store = make.store()
    make.user("zeynep", stores=[store])
    package = make.package(store=store)
    log_in(client, "zeynep")

    response = client.post(f"/packages/{package.id}/commands/deallocate-package-reservations",
                           headers={"HX-Request": "true", "X-CSRFToken": "forged-token"})

    assert response.status_code == 400
    assert state_of(package) == State.WAITING


@pytest.mark.parametrize("app_config", [CSRF_ON])
def test_an_htmx_post_with_the_pages_token_header_works(client, make):
    store = make.store()
    make.user("zeynep", stores=[store])
    package = make.package(store=store, state=State.WAITING)
    log_in(client, "zeynep")
    page = client.get(f"/packages/{package.id}").get_data(as_text=True)

    response = client.post(f"/packages/{package.id}/commands/deallocate-package-reservations",
                           data={"version": 1}, headers={"HX-Request": "true", "X-CSRFToken": htmx_token(page)})

    assert response.status_code == 200
    assert state_of(package) == State.PREPARING


@pytest.mark.parametrize("app_config", [CSRF_ON])
def test_a_plain_form_post_with_its_hidden_token_works(client, make):
    store = make.store()
    make.user("zeynep", stores=[store])
    package = make.package(store=store, state=State.WAITING)
    log_in(client, "zeynep")
    # Releasing the reservation asks for a confirmation first: its page holds the plain form.
    page = client.get(f"/packages/{package.id}/commands/deallocate-package-reservations").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/packages/\d+/commands/deallocate-package-reservations"'
                     r'.*?</form>', page, re.S).group(0)

    response = client.post(f"/packages/{package.id}/commands/deallocate-package-reservations",
                           data={"version": 1, "confirmed": "1", "csrf_token": hidden_token(form)})

    assert response.status_code == 302
    assert state_of(package) == State.PREPARING


@pytest.mark.parametrize("app_config", [CSRF_ON])
def test_the_admin_settings_switch_needs_the_token(client, make):
    make.user("admin", role="admin")
    log_in(client, "admin")

    refused = client.post("/admin/settings/otp", data={"enabled": "false"})
    assert refused.status_code == 400
    assert settings.is_otp_enabled(db.session) is True

    page = client.get("/admin/settings").get_data(as_text=True)
    accepted = client.post("/admin/settings/otp", data={"enabled": "false", "csrf_token": hidden_token(page)})
    assert accepted.status_code == 302
    db.session.expire_all()
    assert settings.is_otp_enabled(db.session) is False


@pytest.mark.parametrize("app_config", [CSRF_ON])
def test_logout_needs_the_token(client, make):
    make.user("zeynep")
    log_in(client, "zeynep")

    assert client.post("/logout").status_code == 400
    assert client.get("/packages").status_code == 200


@pytest.mark.parametrize("path,headers", [("/login", {}), ("/packages", {"HX-Request": "true"}),
                                          ("/packages/999999", {}), ("/no-such-page", {})])
def test_every_response_carries_the_security_headers(client, make, auth_actions, path, headers):
    make.user("zeynep")
    auth_actions.login("zeynep")

    response = client.get(path, headers=headers)

    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_session_cookie_is_http_only_and_same_site(client, make, auth_actions):
    make.user("zeynep")

    response = auth_actions.login("zeynep")

    cookie = next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


GOOD_SECRET = "a" * 48
GOOD_KEY = "uJ0DfIm8Fv2mJ0M5d8e1sH4y2rN3kQ7wZ9xC6vB1nA0="
TWILIO = {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t" * 32,
          "TWILIO_FROM_NUMBER": "+15005550006"}


@pytest.mark.parametrize("overrides,message", [
    ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY"),
    ({"SECRET_KEY": ""}, "SECRET_KEY"),
    ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
    ({"ENCRYPTION_KEYS": ""}, "ENCRYPTION_KEYS"),
    ({"SMS_PROVIDER": "console"}, "SMS_PROVIDER=console"),
    ({"SMS_PROVIDER": "memory"}, "SMS_PROVIDER=memory"),
])
def test_production_refuses_to_start_with_unsafe_settings(overrides, message):
    config = {"ENV_NAME": "production", "SECRET_KEY": GOOD_SECRET, "ENCRYPTION_KEYS": GOOD_KEY,
              "SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:", **TWILIO, **overrides}

    with pytest.raises(ConfigurationError, match=message):
        create_app(config)


def test_production_starts_with_a_real_secret_and_key_and_secure_cookies():
    app = create_app({"ENV_NAME": "production", "SECRET_KEY": GOOD_SECRET, "ENCRYPTION_KEYS": GOOD_KEY,
                      "SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:", **TWILIO})

    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["FORCE_HTTPS"] is True  # as the README says: on by default in production
    assert app.test_client().get("/login").status_code in (301, 302)  # plain HTTP is sent to HTTPS
    assert app.config["ENV_NAME"] == "production"
