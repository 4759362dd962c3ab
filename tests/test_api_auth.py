"""Only `Authorization: Token <key>` opens the API; errors outside the routes are JSON too."""
import pytest
from sqlalchemy import select

from portal.accounts import auth
from portal.accounts.models import ApiToken
from portal.extensions import db
from portal.packages.models import Package
from portal.packages.states import State


def state_of(package) -> int:
    """The package's state as stored now."""
    return db.session.scalar(select(Package.state).where(Package.id == package.id))


def test_a_token_made_with_the_cli_opens_the_api(client, runner, make):
    store = make.store()
    package = make.package(store=store)
    make.user("kadikoy", stores=[store])
    result = runner.invoke(args=["create-api-token", "kadikoy"])
    assert result.exit_code == 0
    key = result.output.strip()
    response = client.get(f"/api/v1/oms/packages/{package.id}/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert response.json["number"] == package.number
    token = db.session.scalar(select(ApiToken).where(ApiToken.prefix == key[:8]))
    assert token.last_used_at is not None


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/oms/packages/"),
    ("get", "/api/v1/oms/transitions/"),
    ("post", "/api/v1/oms/packages/1/command/"),
    ("patch", "/api/v1/oms/settings/application_settings/"),
])
def test_without_a_token_the_api_answers_401_with_the_token_challenge(client, make, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json["code"] == "not_authenticated"
    assert "Authorization: Token" in response.json["detail"]


@pytest.mark.parametrize("header", ["Token not-a-real-key", "Bearer {key}", "Token", "{key}", "Token " + "x" * 300])
def test_a_bad_token_or_scheme_is_a_401(client, make, header):
    key = auth.create_api_token(db.session, make.user(role="admin"))
    response = client.get("/api/v1/oms/packages/", headers={"Authorization": header.format(key=key)})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_a_revoked_token_or_deactivated_user_is_refused(client, make):
    user = make.user(role="admin")
    revoked = auth.create_api_token(db.session, user)
    kept = auth.create_api_token(db.session, user)
    token = db.session.scalar(select(ApiToken).where(ApiToken.prefix == revoked[:8]))
    auth.revoke_api_token(db.session, user, token.id)
    assert client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {revoked}"}).status_code == 401
    assert client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {kept}"}).status_code == 200
    user.active = False
    db.session.commit()
    assert client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {kept}"}).status_code == 401


def test_a_logged_in_browser_session_does_not_open_the_api(client, make, auth_actions):
    store = make.store()
    package = make.package(store=store)
    make.user("zeynep", stores=[store])
    assert auth_actions.login("zeynep").status_code == 302
    assert client.get("/packages").status_code == 200
    # The API is CSRF-exempt: if the session cookie counted, any web page could post commands.
    response = client.post(f"/api/v1/oms/packages/{package.id}/command/",
                           json={"slug": "complete-packaging-without-shipment"})
    assert response.status_code == 401
    assert state_of(package) == State.WAITING
    assert client.get("/api/v1/oms/packages/").status_code == 401


def test_unknown_api_urls_and_methods_answer_json(client, make):
    headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
    missing = client.get("/api/v1/oms/no-such-thing/", headers=headers)
    assert missing.status_code == 404
    assert missing.is_json
    assert missing.json["detail"]
    wrong_method = client.delete("/api/v1/oms/packages/", headers=headers)
    assert wrong_method.status_code == 405
    assert wrong_method.is_json
    assert wrong_method.json["detail"]
    # The web pages keep their HTML error page.
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert not page.is_json


def test_the_openapi_document_needs_no_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.")
