"""The one SSRF guard of every outbound URL (portal/outbound.py): stock engines, geocoding, cargo, Omnitron, webhooks.

The production rule holds here: OUTBOUND_ALLOW_PRIVATE_TARGETS and WEBHOOK_ALLOW_PRIVATE_TARGETS are off. Every
refused target is tried against a real local HTTP server, which must see nothing: no request and not even a
TCP connection (the guard vets addresses before it opens a socket, so nothing tells what listens where).
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import select
from stubs.http_stub import StubServer

from portal import outbound
from portal.accounts import auth
from portal.cargo import service as cargo
from portal.cargo.clients import CargoError, SandboxCargoClient, client_for
from portal.cargo.companies import DEMO_CLIENT_MODULE
from portal.cargo.models import CargoCompany
from portal.config import Config, ProductionConfig
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.geolocation.client import SAMPLE_ADDRESS, GeocodingError, geocoder_for
from portal.integrations import service as integrations
from portal.integrations.models import StockIntegration
from portal.omnitron import OmnitronClient, OmnitronNotAllowed
from portal.outbox import service as outbox
from portal.webhooks import events
from portal.webhooks import service as webhooks
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

PUBLIC_IP = "93.184.216.34"
API = "/api/v1/oms/setup/product-stock-integration"


@pytest.fixture
def app_config():
    """The production rule: only public targets, no exceptions."""
    return {"OUTBOUND_ALLOW_PRIVATE_TARGETS": False, "OUTBOUND_ALLOWED_HOSTS": "",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": False, "STOCK_ENGINE_TIMEOUT_SECONDS": 2.0,
            "OMNITRON_RETRIES": 0, "GEOCODING_TIMEOUT_SECONDS": 2.0, "CARGO_TIMEOUT_SECONDS": 2.0}


class Listener:
    """A local HTTP server that counts the connections it accepts and records the requests it reads.

    With `redirect_to`, it answers every request with a 302 to that URL; otherwise 200 with {}.
    """

    def __init__(self, redirect_to: str | None = None):
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.redirect_to = redirect_to
        listener = self

        class Handler(BaseHTTPRequestHandler):
            """Records the request, answers 200 {} or the redirect."""

            def _answer(self) -> None:
                """Record and answer any method."""
                listener.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if listener.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", listener.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = _answer

            def log_message(self, *args) -> None:
                """Quiet."""

        class Server(StubServer):
            """Counts accepted connections."""

            def verify_request(self, request, client_address) -> bool:
                """Every accepted socket passes through here."""
                listener.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def untouched(self) -> bool:
        """True when nothing reached the server, not even a TCP connection."""
        return self.connections == 0 and self.requests == []

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    """A local HTTP server that must stay untouched by refused connections."""
    server = Listener()
    yield server
    server.stop()


@pytest.fixture
def redirector(listener):
    """A local server that redirects every request to the listener."""
    server = Listener(redirect_to=f"http://127.0.0.1:{listener.port}/inside")
    yield server
    server.stop()


@pytest.fixture
def dns(monkeypatch):
    """Answer lookups of chosen names with a list of addresses, in turn; every other name goes to the resolver."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        """The resolver with our names in front (the last answer repeats)."""
        if host in answers:
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port or 80))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The refused targets, built around the listener's port.
TARGETS = {
    "loopback": "http://127.0.0.1:{port}",
    "private": "http://10.1.2.3:{port}",
    "metadata": "http://169.254.169.254",
    "ipv6 loopback": "http://[::1]:{port}",
    "name of loopback": "http://localhost:{port}",
    "ipv4-mapped loopback": "http://[::ffff:127.0.0.1]:{port}",
}


def _refused(kind: str, listener: Listener) -> str:
    """The URL of one refused target."""
    return TARGETS[kind].format(port=listener.port)


def _same_words(message: str, url: str) -> str:
    """The message with its URL taken out: what must be identical for every refused target."""
    return message.replace(outbound.display_url(url), "<url>")


EXPECTED = "This address is not allowed: <url>. The portal connects only to public internet addresses; an " \
           "operator can allow others with OUTBOUND_ALLOWED_HOSTS."


# The guard itself


def test_the_refusal_is_the_same_whatever_the_reason_and_whatever_listens(listener):
    closed = f"http://127.0.0.1:{_closed_port()}"
    urls = [closed, *(_refused(kind, listener) for kind in TARGETS)]

    for url in urls:
        with pytest.raises(ValidationFailed) as refused:
            outbound.check_url(url, outbound.STRICT, field="url")
        assert _same_words(refused.value.message, url) == EXPECTED, url
        assert refused.value.field == "url"
    assert listener.untouched


def test_the_refusal_never_quotes_a_query_that_may_carry_a_key():
    with pytest.raises(ValidationFailed) as refused:
        outbound.check_url("http://10.0.0.9/geo?key=secret-42", outbound.STRICT)

    assert "secret-42" not in refused.value.message and "http://10.0.0.9/geo" in refused.value.message


def test_a_public_address_passes_and_the_allow_list_is_exact(dns):
    dns["stock.brand.example"] = [PUBLIC_IP]
    dns["omnitron.brand.internal"] = ["10.0.4.7"]
    policy = outbound.Policy(allowed_hosts=outbound.parse_allowed_hosts("omnitron.brand.internal:8000, [::1]"))

    assert outbound.check_url("https://stock.brand.example/api", outbound.STRICT) == "https://stock.brand.example/api"
    assert outbound.check_url("http://omnitron.brand.internal:8000/", policy)
    assert outbound.check_url("http://[::1]:9999/", policy)
    for url in ("http://omnitron.brand.internal:8001/", "http://omnitron.brand.internal/", "http://10.0.4.7:8000/"):
        with pytest.raises(ValidationFailed):
            outbound.check_url(url, policy)


def test_connections_go_to_the_vetted_address_not_to_a_later_dns_answer(dns, listener):
    # DNS rebinding: the first answer (checked) is public, every later one is loopback. The connection is pinned
    # to the checked address, so the loopback listener never even sees a SYN.
    dns["rebind.example"] = [PUBLIC_IP, "127.0.0.1"]
    session = outbound.guarded_session(outbound.STRICT)

    with pytest.raises(Exception):  # noqa: B017 - the public address is unreachable or answers; either way not here
        session.get(f"http://rebind.example:{listener.port}/", timeout=0.5)

    assert listener.untouched


def test_a_redirect_to_a_private_address_is_refused_by_the_session(app, listener, redirector):
    policy = outbound.Policy(allowed_hosts=frozenset({f"127.0.0.1:{redirector.port}"}))
    session = outbound.guarded_session(policy)

    with pytest.raises(outbound.BlockedAddress):
        session.get(f"http://127.0.0.1:{redirector.port}/start", timeout=2)

    assert redirector.requests == [("GET", "/start")]
    assert listener.untouched


def test_the_setting_allows_private_targets_again(listener):
    session = outbound.guarded_session(outbound.Policy(allow_private=True))

    assert session.get(f"http://127.0.0.1:{listener.port}/ok", timeout=2).status_code == 200
    assert listener.requests == [("GET", "/ok")]


def test_production_allows_nothing_private_by_default_and_development_only_the_sandbox():
    assert ProductionConfig.OUTBOUND_ALLOW_PRIVATE_TARGETS is False and ProductionConfig.OUTBOUND_ALLOWED_HOSTS == ""
    assert Config.OUTBOUND_ALLOW_PRIVATE_TARGETS is False and Config.OUTBOUND_ALLOWED_HOSTS == "127.0.0.1:8100"


def test_the_settings_are_read_from_the_configuration(app):
    app.config.update(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOWED_HOSTS="127.0.0.1:8100,Sandbox.Local")

    policy = outbound.current_policy()

    assert not policy.allow_private and policy.allowed_hosts == frozenset({"127.0.0.1:8100", "sandbox.local"})
    assert policy.allows_host("127.0.0.1", 8100) and policy.allows_host("sandbox.local", 443)
    assert not policy.allows_host("127.0.0.1", 8101)


# Stock engines (setup step 10): save time and the connection test


@pytest.fixture
def token(make):
    """An admin's API token header."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, make.user('api-admin', role='admin'))}"}


@pytest.mark.parametrize("kind", list(TARGETS))
def test_a_stock_integration_to_a_refused_address_is_not_saved(client, token, listener, kind):
    url = _refused(kind, listener)

    answer = client.post(f"{API}/execute/", json={"url": url, "stock_engine_type": "omnitron"}, headers=token)

    assert answer.status_code == 400
    assert answer.json["field"] == "url" or "url" in str(answer.json)
    assert EXPECTED.replace("<url>", outbound.display_url(url)) in str(answer.json)
    assert db.session.scalar(select(StockIntegration.id)) is None
    assert listener.untouched


def _stored_integration(url: str) -> StockIntegration:
    """An integration stored before the guard (or before its name moved): the connection test must still refuse."""
    integration = StockIntegration(url=url, stock_engine_type="omnitron", username="", password_encrypted="")
    db.session.add(integration)
    db.session.commit()
    return integration


@pytest.mark.parametrize("kind", list(TARGETS))
def test_the_connection_test_refuses_without_a_status_oracle(client, token, listener, kind):
    listening = _stored_integration(_refused(kind, listener))
    closed = _stored_integration(f"http://127.0.0.1:{_closed_port()}")

    answers = [client.post(f"{API}/{integration.id}/test-connection/", headers=token).json
               for integration in (listening, closed)]

    assert [a["ok"] for a in answers] == [False, False]
    assert _same_words(answers[0]["message"], listening.url) == EXPECTED
    assert _same_words(answers[1]["message"], closed.url) == EXPECTED
    assert answers[0]["integration"]["last_test_ok"] is False
    assert listener.untouched


def test_the_connection_test_refuses_a_redirect_to_a_private_address(app, listener, redirector):
    app.config["OUTBOUND_ALLOWED_HOSTS"] = f"127.0.0.1:{redirector.port}"
    integration = _stored_integration(f"http://127.0.0.1:{redirector.port}")

    test = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert not test.result.ok
    assert _same_words(test.result.message, f"http://127.0.0.1:{listener.port}/inside") == EXPECTED
    assert redirector.requests == [("GET", "/health/")]
    assert listener.untouched


def test_the_connection_test_reaches_an_allowed_host(app, listener):
    app.config["OUTBOUND_ALLOWED_HOSTS"] = f"127.0.0.1:{listener.port}"
    integration, _ = integrations.save_integration(db.session, url=f"http://127.0.0.1:{listener.port}",
                                                   stock_engine_type="omnitron", user_id=None)

    test = integrations.run_connection_test(db.session, integration.id, user_id=None)

    assert test.result.ok, test.result.message
    assert listener.requests == [("GET", "/health/")]


def test_a_cargo_company_endpoint_to_a_refused_address_is_not_saved(app, listener):
    url = _refused("loopback", listener)

    with pytest.raises(ValidationFailed) as refused:
        cargo.save_company(db.session, name="HepsiJET", erp_code="HJ", is_managed_by_oms=True, is_demo_client=False,
                           shipping_company="hepsijet", conf={"username": "u", "password": "p", "company_code": "c",
                                                              "api_key": "k", "api_url": url}, user_id=None)

    assert refused.value.field == "conf.api_url"
    assert _same_words(refused.value.message, url) == EXPECTED
    assert listener.untouched


# Geocoding (setup step 9), cargo, Omnitron: connect time


def _config(app, **overrides) -> dict:
    """The app's configuration with some settings replaced."""
    return {**app.config, **overrides}


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("provider, setting", [("google", "GEOCODING_GOOGLE_BASE_URL"),
                                               ("yandex", "GEOCODING_YANDEX_BASE_URL")])
def test_geocoding_refuses_a_private_base_url(app, listener, kind, provider, setting):
    url = _refused(kind, listener)

    with pytest.raises(GeocodingError) as refused:
        geocoder_for(provider, "key-42", _config(app, **{setting: url})).geocode(SAMPLE_ADDRESS)

    assert refused.value.kind == GeocodingError.NOT_ALLOWED
    assert _same_words(refused.value.message, url) == EXPECTED
    assert listener.untouched


def test_geocoding_refuses_a_redirect_to_a_private_address(app, listener, redirector):
    config = _config(app, GEOCODING_GOOGLE_BASE_URL=f"http://127.0.0.1:{redirector.port}",
                     OUTBOUND_ALLOWED_HOSTS=f"127.0.0.1:{redirector.port}")

    with pytest.raises(GeocodingError) as refused:
        geocoder_for("google", "key-42", config).geocode(SAMPLE_ADDRESS)

    assert refused.value.kind == GeocodingError.NOT_ALLOWED
    assert len(redirector.requests) == 1 and listener.untouched


def test_geocoding_reaches_a_private_base_url_when_allowed(app, listener):
    config = _config(app, GEOCODING_GOOGLE_BASE_URL=f"http://127.0.0.1:{listener.port}",
                     OUTBOUND_ALLOW_PRIVATE_TARGETS=True)

    with pytest.raises(GeocodingError) as answered:  # the listener is no geocoder: it answers {} (no status)
        geocoder_for("google", "key-42", config).geocode(SAMPLE_ADDRESS)

    assert answered.value.kind == GeocodingError.BAD_RESPONSE
    assert [path.split("?")[0] for _, path in listener.requests] == ["/maps/api/geocode/json"]


@pytest.mark.parametrize("kind", list(TARGETS))
def test_the_cargo_client_refuses_a_private_service_url(app, listener, kind):
    url = _refused(kind, listener)
    client = SandboxCargoClient(url, "instant", session=outbound.guarded_session(outbound.current_policy()))

    with pytest.raises(CargoError) as refused:
        client.track(["TRK1"])

    assert not refused.value.retryable
    assert _same_words(str(refused.value), url) == EXPECTED
    assert listener.untouched


def test_the_cargo_client_of_a_company_uses_the_guard_and_the_setting(app, listener, redirector):
    company = CargoCompany(name="Demo", is_demo_client=True, shipping_company="yurtici")
    app.config["CARGO_SERVICE_URL"] = f"http://127.0.0.1:{redirector.port}"
    app.config["OUTBOUND_ALLOWED_HOSTS"] = f"127.0.0.1:{redirector.port}"

    with pytest.raises(CargoError) as refused:
        client_for(app, company, {"klass": f"{DEMO_CLIENT_MODULE}.DemoShippingClient"}).track(["TRK1"])

    assert _same_words(str(refused.value), app.config["CARGO_SERVICE_URL"]) == EXPECTED
    assert len(redirector.requests) == 1 and listener.untouched


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("call", ["ping", "check_login"])
def test_the_omnitron_client_refuses_a_private_url(app, listener, kind, call):
    url = _refused(kind, listener)
    client = OmnitronClient.from_config(_config(app, OMNITRON_URL=url, OMNITRON_RETRIES=3), "oms", "secret")

    with pytest.raises(OmnitronNotAllowed) as refused:
        getattr(client, call)()

    assert _same_words(refused.value.message, url) == EXPECTED
    assert refused.value.attempts == 1  # never retried
    assert listener.untouched


def test_the_omnitron_client_refuses_a_redirect_to_a_private_address(app, listener, redirector):
    config = _config(app, OMNITRON_URL=f"http://127.0.0.1:{redirector.port}",
                     OUTBOUND_ALLOWED_HOSTS=f"127.0.0.1:{redirector.port}")

    with pytest.raises(OmnitronNotAllowed):
        OmnitronClient.from_config(config, "oms", "secret").ping()

    assert len(redirector.requests) == 1 and listener.untouched


def test_the_omnitron_client_reaches_an_allowed_host(app, listener):
    config = _config(app, OMNITRON_URL=f"http://127.0.0.1:{listener.port}",
                     OUTBOUND_ALLOWED_HOSTS=f"127.0.0.1:{listener.port}")

    OmnitronClient.from_config(config, "oms", "secret").ping()

    assert listener.requests == [("GET", "/api/v1/health/")]


def test_the_omnitron_client_outside_an_app_follows_the_environment(listener, monkeypatch):
    monkeypatch.delenv("OUTBOUND_ALLOW_PRIVATE_TARGETS", raising=False)
    monkeypatch.delenv("OUTBOUND_ALLOWED_HOSTS", raising=False)

    with pytest.raises(OmnitronNotAllowed):
        OmnitronClient(f"http://127.0.0.1:{listener.port}", "oms", "secret", retries=0).ping()
    assert listener.untouched

    monkeypatch.setenv("OUTBOUND_ALLOWED_HOSTS", f"127.0.0.1:{listener.port}")
    OmnitronClient(f"http://127.0.0.1:{listener.port}", "oms", "secret", retries=0).ping()
    assert listener.requests == [("GET", "/api/v1/health/")]


# Webhooks: the same guard, their own switch (WEBHOOK_ALLOW_PRIVATE_TARGETS) and their detailed save-time reasons


def _subscribe(manager, url: str) -> WebhookSubscription:
    """Save a subscription to every event."""
    subscription, _ = webhooks.create_subscription(db.session, event_type="*", target_url=url,
                                                   retry_countdown_config=None, additional_headers=None,
                                                   user_id=manager.id)
    return subscription


def _deliver_one() -> DeliveryAttempt:
    """Record an event and deliver it now; the attempt logged."""
    events.record_event(db.session, "stock_location.updated", {"id": 1})
    db.session.commit()
    outbox.deliver_after_commit(db.session)
    return db.session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id.desc())).first()


@pytest.mark.parametrize("kind", list(TARGETS))
def test_a_webhook_to_a_refused_address_is_not_saved_nor_delivered(app, manager, listener, kind):
    url = _refused(kind, listener) + "/hooks"

    with pytest.raises(ValidationFailed) as refused:
        _subscribe(manager, url)
    assert refused.value.field == "target_url" and "public internet addresses" in refused.value.message

    # Saved while private targets were allowed, delivered after they no longer are: refused before connecting.
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    _subscribe(manager, url)
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    attempt = _deliver_one()

    assert attempt.status_code is None and not attempt.succeeded
    assert attempt.error.startswith("Refused to connect to ")
    assert listener.untouched


def test_a_webhook_never_follows_a_redirect(app, manager, listener, redirector):
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    _subscribe(manager, f"http://127.0.0.1:{redirector.port}/hooks")

    attempt = _deliver_one()

    assert attempt.status_code == 302 and not attempt.succeeded
    assert len(redirector.requests) == 1 and listener.untouched


def test_a_webhook_reaches_a_private_receiver_when_allowed(app, manager, listener):
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    _subscribe(manager, f"http://127.0.0.1:{listener.port}/hooks")

    attempt = _deliver_one()

    assert attempt.succeeded and listener.requests == [("POST", "/hooks")]


def test_the_webhook_switch_and_the_outbound_switch_are_separate(app, manager, listener):
    app.config["OUTBOUND_ALLOW_PRIVATE_TARGETS"] = True

    with pytest.raises(ValidationFailed):
        _subscribe(manager, f"http://127.0.0.1:{listener.port}/hooks")
    assert integrations.clean_url(f"http://127.0.0.1:{listener.port}/") == f"http://127.0.0.1:{listener.port}"
