"""The API's rate limit on Redis, as in production (portal.ratelimit's storage): counts, headers and 429."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from portal.accounts import auth
from portal.extensions import db


@pytest.fixture
def redis_url():
    """A throwaway redis-server on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


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
