"""The API's rate limit on Redis, as in production (portal.ratelimit's storage): counts, headers and 429."""
import time

import pytest

from portal.accounts import auth
from portal.extensions import db


@pytest.fixture
def app_config(redis_url) -> dict:
    """Rate limits on, on Redis, and low enough to reach in a test."""
    return {"RATELIMIT_ENABLED": True, "API_RATE_LIMIT": "3 per minute", "RATELIMIT_STORAGE_URI": redis_url}


def test_a_token_past_its_limit_is_refused_and_the_headers_count_down(client, make):
    key = auth.create_api_token(db.session, make.user(role="admin"))
    answers = [client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {key}"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers.get("X-RateLimit-Remaining") for a in answers[:3]] == ["2", "1", "0"]
    assert time.time() + 50 < int(answers[0].headers["X-RateLimit-Reset"]) <= time.time() + 62
    other = auth.create_api_token(db.session, make.user(role="admin"))
    assert client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {other}"}).status_code == 200
