"""With CSRF protection on, a form posted without a valid token is refused and the user is told it expired."""
from __future__ import annotations

import json

import pytest

from portal.extensions import db
from portal.setup import service as wizard
from portal.setup.models import SetupStep

MESSAGE = "The form expired: reload the page and try again."


@pytest.fixture
def app_config():
    """CSRF protection on, as in production."""
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture
def admin(make, client):
    """A logged-in admin (the login form carries its token, read from the login page)."""
    make.user("ayse", "admin")
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert client.post("/login", data={"username": "ayse", "password": "correct-horse-1",
                                       "csrf_token": token}).status_code == 302


def test_a_stale_form_gets_the_error_page_saying_it_expired(client, admin):
    response = client.post("/setup/jobs/skip", data={"reason": "Not needed", "csrf_token": "stale"})

    assert response.status_code == 400
    assert MESSAGE in response.get_data(as_text=True)
    assert wizard.status(db.session, "jobs").state == SetupStep.NOT_STARTED  # nothing changed


def test_a_stale_htmx_post_gets_a_toast_and_swaps_nothing(client, admin):
    response = client.post("/setup/users/check", headers={"HX-Request": "true"}, data={"csrf_token": "stale"})

    assert response.status_code == 400
    assert response.headers["HX-Reswap"] == "none" and response.get_data() == b""
    assert json.loads(response.headers["HX-Trigger"])["toast"] == {"message": MESSAGE, "level": "error"}
    assert wizard.status(db.session, "users").record is None
