"""Property-based run over the generated OpenAPI document (schemathesis): no input may make the API answer 5xx.

Every operation gets valid (positive) and invalid (negative) requests generated from its schema, sent
with an admin's token to the app in this process, on each database. A few rows exist so that small ids
hit real records. Outside calls are cut off: Omnitron is a closed port and no host name resolves, so a
generated webhook URL or a copy from Omnitron fails fast instead of waiting on the network.
"""
from __future__ import annotations

import socket
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from portal.accounts import auth
from portal.extensions import db
from portal.packages.states import State

# Examples per operation and generation mode; about 60 operations keep the run well under a minute.
EXAMPLES = 12
BUDGET_SECONDS = 120


@pytest.fixture
def app_config() -> dict:
    """Omnitron unreachable at once, webhooks answered quickly, no rate limit in the way."""
    return {"OMNITRON_URL": "http://127.0.0.1:9", "OMNITRON_RETRIES": 0, "OMNITRON_BACKOFF_SECONDS": 0,
            "OMNITRON_CONNECT_TIMEOUT_SECONDS": 1, "WEBHOOK_TIMEOUT_SECONDS": 1}


@pytest.fixture
def offline(monkeypatch):
    """No host name resolves but this machine's: generated URLs must not reach the internet."""
    real = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        """Resolve loopback names only."""
        if host in ("127.0.0.1", "localhost", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "name resolution is off in the fuzz test")

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


def _seed(make) -> dict:
    """An admin (whose token the run uses), a store, a package and a staff user: ids 1, 2... exist."""
    store = make.store("IST-KDK")
    admin = make.user("root", role="admin")
    make.user("kasa", stores=[store])
    make.package(store=store, state=State.WAITING)
    make.package(store=store, state=State.PACKED)
    return {"Authorization": f"Token {auth.create_api_token(db.session, admin)}"}


def test_no_generated_request_gets_a_5xx(app, make, offline):
    headers = _seed(make)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    started = time.monotonic()
    failures: list[str] = []
    answered: set[str] = set()  # operations that answered 2xx at least once: the token and the seed rows work
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50

    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                """Send one generated request; a 5xx is recorded with what caused it."""
                response = case.call(headers={**(case.headers or {}), **headers})
                if response.status_code < 300:
                    answered.add(case.operation.label)
                if response.status_code >= 500:
                    failures.append(f"{response.status_code} {case.method} {case.formatted_path} "
                                    f"query={case.query!r} body={case.body!r}")
                db.session.rollback()  # a refused request leaves nothing open for the next one

            call()
    elapsed = time.monotonic() - started
    assert failures == [], "\n".join(failures[:20])
    assert len(answered) >= 15, sorted(answered)
    assert elapsed < BUDGET_SECONDS, f"the fuzz run took {elapsed:.0f} s"
