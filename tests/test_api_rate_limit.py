"""The API's rate limit (API_RATE_LIMIT) counts per token and answers 429 in JSON."""
import pytest

from portal.accounts import auth
from portal.extensions import db


@pytest.fixture
def app_config() -> dict:
    """Rate limits on, and low enough to reach in a test."""
    return {"RATELIMIT_ENABLED": True, "API_RATE_LIMIT": "3 per minute"}


def test_a_token_past_its_limit_gets_429_and_other_tokens_carry_on(client, make):
    busy = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
    calm = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
    for _ in range(3):
        assert client.get("/api/v1/oms/transitions/", headers=busy).status_code == 200
    limited = client.get("/api/v1/oms/packages/", headers=busy)
    assert limited.status_code == 429
    assert limited.is_json
    assert limited.json["code"] == "rate_limited"
    assert "3 per 1 minute" in limited.json["detail"]
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/api/v1/oms/transitions/", headers=calm).status_code == 200


def test_invented_tokens_share_the_client_addresss_limit(client):
    for n in range(3):
        assert client.get("/api/v1/oms/transitions/",
                          headers={"Authorization": f"Token made-up-{n}"}).status_code == 401
    limited = client.get("/api/v1/oms/transitions/", headers={"Authorization": "Token made-up-4"})
    assert limited.status_code == 429
    assert limited.json["code"] == "rate_limited"
