"""The Omnitron client against the sandbox over real HTTP: login, pagination, retries and its errors."""
from __future__ import annotations

import threading
import time

import pytest
from stubs.omnitron_server import (  # noqa: F401
    LIMITED_PASSWORD,
    LIMITED_USERNAME,
    QuietRequestHandler,
    free_port,
    omnitron_sandbox,
    omnitron_sandbox_factory,
)
from werkzeug.serving import make_server

from portal.omnitron import (
    ADDRESS_PATHS,
    CHANNELS_PATH,
    OmnitronAuthError,
    OmnitronBadResponse,
    OmnitronClient,
    OmnitronError,
    OmnitronForbidden,
    OmnitronNotFound,
    OmnitronServerError,
    OmnitronTimeout,
    OmnitronUnreachable,
)

DISTRICTS = ADDRESS_PATHS["district"]


def _gets(sandbox, path: str) -> list[dict]:
    """The GET requests the sandbox received for a path."""
    return [r for r in sandbox.requests() if r["method"] == "GET" and r["path"] == path]


def test_pages_through_every_district_exactly_once(omnitron_sandbox_factory):
    """2,500 districts at 300 a page: nine requests, every id once, in order."""
    sandbox = omnitron_sandbox_factory({"SANDBOX_ADDRESS_COUNT": 2500})
    with sandbox.client() as client:
        pages = list(client.iter_pages(DISTRICTS, page_size=300))
        ids = [record["id"] for page in pages for record in page.results]

    assert ids == list(range(1, 2501))
    assert [p.number for p in pages] == list(range(1, 10))
    assert {p.count for p in pages} == {2500} and pages[0].pages == 9
    assert pages[-1].next_page is None and len(pages[-1].results) == 100
    queries = [r["query"] for r in _gets(sandbox, DISTRICTS)]
    assert queries == [f"page={n}&limit=300" for n in range(1, 10)]


def test_iter_records_resumes_from_a_page_and_caps_the_page_size(omnitron_sandbox):
    """A sync restarting at page 3 gets the records after the first two pages; limits above 1000 are capped."""
    with omnitron_sandbox.client() as client:
        resumed = [r["id"] for page in client.iter_pages(DISTRICTS, page_size=1000, start_page=3) for r in page.results]
        capped = next(client.iter_pages(DISTRICTS, page_size=5000))

    assert resumed == list(range(2001, 3001))
    assert len(capped.results) == 1000 and capped.page_size == 1000


def test_logs_in_once_and_reuses_the_token(omnitron_sandbox):
    """Many calls, one login: the token is cached and sent as `Token <key>`."""
    with omnitron_sandbox.client() as client:
        assert len(list(client.iter_records(CHANNELS_PATH, page_size=3))) == 8
        client.get(f"{DISTRICTS}1/")
        client.count(ADDRESS_PATHS["city"])

    log = omnitron_sandbox.requests()
    assert [r["path"] for r in log].count("/api/v1/auth/login/") == 1
    assert log[0]["path"] == "/api/v1/auth/login/"
    assert {r["authorization"] for r in log[1:]} == {"Token"}


def test_logs_in_again_once_when_the_token_is_revoked(omnitron_sandbox):
    """Omnitron rotated its tokens: the next call answers 401, the client logs in again and carries on."""
    with omnitron_sandbox.client() as client:
        client.get(f"{CHANNELS_PATH}1/")
        omnitron_sandbox.revoke_tokens()
        channel = client.get(f"{CHANNELS_PATH}2/")

    assert channel["name"] == "Mobil Uygulama"
    assert omnitron_sandbox.logins() == 2


def test_wrong_password_raises_auth_error(omnitron_sandbox):
    """A wrong password is an auth error an admin can act on; it is not retried."""
    with omnitron_sandbox.client(password="not-the-password", retries=3) as client:
        with pytest.raises(OmnitronAuthError) as caught:
            client.get(CHANNELS_PATH)

    error = caught.value
    assert "'oms.application'" in error.message and "OMNITRON_CLIENT_SETTINGS" in error.message
    assert "not-the-password" not in error.message
    assert error.status == 400 and error.http_status == 502 and error.code == "omnitron_auth_failed"
    assert omnitron_sandbox.logins() == 1
    assert _gets(omnitron_sandbox, CHANNELS_PATH) == []


def test_missing_credentials_fail_without_calling_omnitron(omnitron_sandbox):
    """No password saved yet (step 7 not done): a clear error and no request at all."""
    with omnitron_sandbox.client(password="") as client:
        with pytest.raises(OmnitronAuthError, match="setup step 7"):
            client.get(CHANNELS_PATH)

    assert omnitron_sandbox.requests() == []


def test_user_without_permission_gets_forbidden(omnitron_sandbox):
    """A user who may log in but not read: 403 becomes OmnitronForbidden, also from check_login."""
    with omnitron_sandbox.client(LIMITED_USERNAME, LIMITED_PASSWORD) as client:
        with pytest.raises(OmnitronForbidden) as caught:
            client.get(DISTRICTS)
        with pytest.raises(OmnitronForbidden):
            client.check_login()

    assert caught.value.status == 403 and "'oms.readonly'" in caught.value.message
    assert len(_gets(omnitron_sandbox, DISTRICTS)) == 1


def test_unknown_record_and_page_past_the_end_are_not_found(omnitron_sandbox):
    """404s map to OmnitronNotFound and are not retried."""
    with omnitron_sandbox.client(retries=3) as client:
        with pytest.raises(OmnitronNotFound) as caught:
            client.get(f"{DISTRICTS}999999/")
        with pytest.raises(OmnitronNotFound):
            next(client.iter_pages(DISTRICTS, page_size=1000, start_page=4))

    assert caught.value.status == 404 and caught.value.attempts == 1
    assert len(_gets(omnitron_sandbox, f"{DISTRICTS}999999/")) == 1


def test_a_page_answering_500_twice_is_retried_and_the_sync_completes(omnitron_sandbox):
    """Page 2 fails twice with 500, the third try works: every record still arrives exactly once."""
    omnitron_sandbox.add_fault(DISTRICTS, page=2, status=500, times=2)
    with omnitron_sandbox.client(retries=3) as client:
        ids = [r["id"] for r in client.iter_records(DISTRICTS, page_size=1000)]

    assert ids == list(range(1, 3001))
    pages_asked = [r["query"] for r in _gets(omnitron_sandbox, DISTRICTS)]
    assert pages_asked == ["page=1&limit=1000"] + ["page=2&limit=1000"] * 3 + ["page=3&limit=1000"]
    assert omnitron_sandbox.faults()[0]["hits"] == 2


def test_a_page_always_answering_500_raises_server_error_after_the_retries(omnitron_sandbox):
    """The sandbox failing midway: after the configured retries the client gives up with OmnitronServerError."""
    omnitron_sandbox.add_fault(DISTRICTS, page=2, status=503, times=None)
    records = []
    with omnitron_sandbox.client(retries=2) as client:
        with pytest.raises(OmnitronServerError) as caught:
            for record in client.iter_records(DISTRICTS, page_size=1000):
                records.append(record)

    assert len(records) == 1000
    assert caught.value.status == 503 and caught.value.attempts == 3
    assert "503" in caught.value.message and "3 attempts" in caught.value.message
    assert len([r for r in _gets(omnitron_sandbox, DISTRICTS) if "page=2" in r["query"]]) == 3


def test_retries_wait_longer_each_time(omnitron_sandbox):
    """Exponential backoff: with backoff 0.1 s and three retries the client waits 0.1 + 0.2 + 0.4 s."""
    omnitron_sandbox.add_fault(CHANNELS_PATH, status=500, times=None)
    with omnitron_sandbox.client(retries=3, backoff=0.1) as client:
        started = time.monotonic()
        with pytest.raises(OmnitronServerError):
            client.get(CHANNELS_PATH)
        elapsed = time.monotonic() - started

    assert 0.7 <= elapsed < 5.0
    assert len(_gets(omnitron_sandbox, CHANNELS_PATH)) == 4


def test_other_4xx_answers_are_not_retried(omnitron_sandbox):
    """A 400 will not get better by asking again: one request, a clear error with Omnitron's words."""
    omnitron_sandbox.add_fault(CHANNELS_PATH, status=400, times=None)
    with omnitron_sandbox.client(retries=3) as client:
        with pytest.raises(OmnitronBadResponse) as caught:
            client.get(CHANNELS_PATH)

    assert caught.value.status == 400 and "Injected fault" in caught.value.message
    assert len(_gets(omnitron_sandbox, CHANNELS_PATH)) == 1


def test_a_dropped_connection_is_retried(omnitron_sandbox):
    """The sandbox closes the connection once without answering; the retry gets the page."""
    omnitron_sandbox.add_fault(CHANNELS_PATH, drop=True, times=1)
    with omnitron_sandbox.client(retries=1) as client:
        channels = client.get(CHANNELS_PATH)

    assert channels["count"] == 8
    assert len(_gets(omnitron_sandbox, CHANNELS_PATH)) == 2


def test_a_connection_dropped_every_time_raises_unreachable(omnitron_sandbox):
    """Dropped on every try: OmnitronUnreachable saying the connection was closed."""
    omnitron_sandbox.add_fault(CHANNELS_PATH, drop=True, times=None)
    with omnitron_sandbox.client(retries=2) as client:
        with pytest.raises(OmnitronUnreachable) as caught:
            client.get(CHANNELS_PATH)

    assert "closed" in caught.value.message and caught.value.attempts == 3


def test_connection_refused_raises_unreachable():
    """Nothing listens on the port: OmnitronUnreachable after the retries, naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    with OmnitronClient(url, "oms.application", "pw", timeout=(1, 1), retries=2, backoff=0.01) as client:
        started = time.monotonic()
        with pytest.raises(OmnitronUnreachable) as caught:
            client.get(CHANNELS_PATH)

    assert time.monotonic() - started < 2
    assert not isinstance(caught.value, OmnitronTimeout)
    assert "connection refused" in caught.value.message and url in caught.value.message
    assert caught.value.attempts == 3 and caught.value.code == "omnitron_unreachable"


def test_an_answer_slower_than_the_read_timeout_raises_unreachable_quickly(omnitron_sandbox):
    """The sandbox waits 2 s, the client's read timeout is 0.3 s: it gives up at once, without retrying."""
    omnitron_sandbox.add_fault(CHANNELS_PATH, delay=2.0, times=None)
    with omnitron_sandbox.client(timeout=(1, 0.3), retries=3) as client:
        client.get(f"{CHANNELS_PATH}1/")  # logs in before the clock starts
        started = time.monotonic()
        with pytest.raises(OmnitronUnreachable) as caught:
            client.get(CHANNELS_PATH)
        elapsed = time.monotonic() - started

    assert isinstance(caught.value, OmnitronTimeout)
    assert elapsed < 1.0
    assert "within 0.3 s" in caught.value.message and caught.value.attempts == 1


def test_slow_answers_can_be_retried_when_asked(omnitron_sandbox):
    """retry_timeouts=True: the first answer is too slow, the second comes in time."""
    omnitron_sandbox.add_fault(CHANNELS_PATH, delay=1.0, times=1)
    with omnitron_sandbox.client(timeout=(1, 0.3), retries=1, retry_timeouts=True) as client:
        assert client.get(CHANNELS_PATH)["count"] == 8


def test_ping_returns_latency_without_logging_in(omnitron_sandbox):
    """Step 1: the health check answers in milliseconds and needs no credentials."""
    with omnitron_sandbox.client(password="") as client:
        latency = client.ping()

    assert isinstance(latency, float) and 0 < latency < 1000
    assert [r["path"] for r in omnitron_sandbox.requests()] == ["/api/v1/health/"]


def test_ping_does_not_retry_and_reports_server_errors(omnitron_sandbox):
    """A failing health check is shown as it is, after one try."""
    omnitron_sandbox.add_fault("/api/v1/health/", status=502, times=None)
    with omnitron_sandbox.client(retries=3) as client:
        with pytest.raises(OmnitronServerError, match="502"):
            client.ping()

    assert len(_gets(omnitron_sandbox, "/api/v1/health/")) == 1


def test_check_login_logs_in_afresh_and_reports_the_user(omnitron_sandbox):
    """Step 3: check_login does not trust a cached token; it logs in again and reads one record."""
    with omnitron_sandbox.client() as client:
        client.get(f"{CHANNELS_PATH}1/")
        result = client.check_login()

    assert result.username == "oms.application" and result.latency_ms >= 0
    assert omnitron_sandbox.logins() == 2
    assert [r["query"] for r in _gets(omnitron_sandbox, CHANNELS_PATH)] == ["limit=1"]


def test_stock_engines_say_which_need_credentials(omnitron_sandbox):
    """Step 10: the engines come with the flag that decides whether the form asks for a username."""
    with omnitron_sandbox.client() as client:
        engines = {e["stock_engine_type"]: e for e in client.stock_engines()}

    assert engines["omnitron"]["requires_credentials"] is False
    assert engines["erp_rest"]["requires_credentials"] is True
    assert all(e["name"] for e in engines.values())


def test_a_url_that_is_not_omnitron_gives_a_clear_error():
    """OMNITRON_URL pointing at a web page: the login answer is HTML, and the error says so."""
    def html_site(environ, start_response):
        """Every path answers a web page."""
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<html><body>Welcome</body></html>"]

    server = make_server("127.0.0.1", 0, html_site, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with OmnitronClient(f"http://127.0.0.1:{server.port}", "oms.application", "pw", retries=0) as client:
            with pytest.raises(OmnitronBadResponse, match="text/html, not JSON"):
                client.check_login()
    finally:
        server.shutdown()
        server.server_close()


def test_settings_come_from_config_and_a_bad_url_is_refused():
    """from_config reads the OMNITRON_* settings; a URL without http(s) is refused up front."""
    client = OmnitronClient.from_config(
        {"OMNITRON_URL": "http://omnitron.local/", "OMNITRON_CONNECT_TIMEOUT_SECONDS": 2,
         "OMNITRON_TIMEOUT_SECONDS": 7, "OMNITRON_RETRIES": 1, "OMNITRON_BACKOFF_SECONDS": 0.2}, "u", "secret-pw")

    assert (client.base_url, client.timeout, client.retries, client.backoff) == (
        "http://omnitron.local", (2.0, 7.0), 1, 0.2)
    assert "secret-pw" not in repr(client)
    with pytest.raises(OmnitronError, match="OMNITRON_URL"):
        OmnitronClient("omnitron.local", "u", "p")


def test_count_of_records_changed_since_a_moment(omnitron_sandbox):
    """How a sync asks "anything new?": a count filtered on modified_date__gt, one tiny page."""
    with omnitron_sandbox.client() as client:
        newest = max(c["modified_date"] for c in client.iter_records(CHANNELS_PATH))
        assert client.count(CHANNELS_PATH, {"modified_date__gt": newest}) == 0
        omnitron_sandbox.mutate("channels", update=2)
        changed = list(client.iter_records(CHANNELS_PATH, params={"modified_date__gt": newest}))

        assert client.count(CHANNELS_PATH, {"modified_date__gt": newest}) == 2
    assert len(changed) == 2 and all(c["modified_date"] > newest for c in changed)
