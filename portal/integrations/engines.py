"""The stock engines the OMS can ask for physical stock, and the connection test each one answers.

Each engine says which credentials it needs and how it authenticates; `probe()` makes one real HTTP
request to the engine's health (or metadata) URL and turns the outcome into words an admin understands.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

NO_AUTH = "none"
BASIC_AUTH = "basic"
TOKEN_AUTH = "token"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of a connection test: ok or not, a message, the HTTP status when there was one."""

    ok: bool
    message: str
    status: int | None = None
    elapsed_ms: int | None = None


@dataclass(frozen=True)
class StockEngine:
    """A kind of stock service: its credentials, how it authenticates, and where its health check lives."""

    type: str
    name: str
    description: str
    credentials: tuple[str, ...]  # which of "username", "password" the engine needs
    auth: str
    probe_path: str
    password_label: str = "Password"

    @property
    def requires_credentials(self) -> bool:
        """True when the engine cannot be called without credentials."""
        return bool(self.credentials)

    def as_json(self) -> dict:
        """The engine as the available-stock-engines endpoint lists it."""
        return {"type": self.type, "name": self.name, "requires_credentials": self.requires_credentials,
                "credentials": list(self.credentials)}

    def probe_url(self, url: str) -> str:
        """The URL the connection test calls."""
        return url.rstrip("/") + self.probe_path

    def probe(self, url: str, username: str, password: str, *, timeout: float) -> ProbeResult:
        """Call the engine once and describe what happened; never raises for network trouble."""
        target = self.probe_url(url)
        headers = {"Accept": "application/json"}
        auth = None
        if self.auth == BASIC_AUTH:
            auth = (username, password)
        elif self.auth == TOKEN_AUTH:
            headers["Authorization"] = f"Token {password}"
        started = time.monotonic()
        try:
            # Redirects are not followed: credentials must not be replayed to another address.
            response = requests.get(target, headers=headers, auth=auth, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            return ProbeResult(False, f"The stock service did not answer within {_seconds(timeout)}.")
        except requests.exceptions.SSLError:
            return ProbeResult(False, f"The TLS certificate of {_host(target)} could not be verified.")
        except requests.ConnectionError as exc:
            return ProbeResult(False, f"Could not connect to {_host(target)}: {_connection_reason(exc)}.")
        except requests.RequestException as exc:
            return ProbeResult(False, f"The request to {_host(target)} failed ({exc.__class__.__name__}).")
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return self._describe(response, target, elapsed_ms)

    def _describe(self, response: requests.Response, target: str, elapsed_ms: int) -> ProbeResult:
        """Turn an HTTP answer into a result."""
        status = response.status_code
        if 200 <= status < 300:
            return ProbeResult(True, f"Connected: HTTP {status} in {elapsed_ms} ms.", status, elapsed_ms)
        if status == 401:
            what = "token" if self.auth == TOKEN_AUTH else "username and password"
            message = f"The stock service refused the credentials (HTTP 401). Check the {what}."
        elif status == 403:
            message = "The stock service accepted the login but denies access to stock (HTTP 403)."
        elif status == 404:
            message = f"Nothing answers at {target} (HTTP 404). Check the URL."
        elif 300 <= status < 400:
            message = (f"The stock service redirects to {response.headers.get('Location', 'another address')} "
                       f"(HTTP {status}). Use that URL instead.")
        elif status >= 500:
            message = f"The stock service has a problem of its own (HTTP {status}). Try again later."
        else:
            message = f"The stock service refused the request (HTTP {status})."
        return ProbeResult(False, message, status, elapsed_ms)


def _seconds(timeout: float) -> str:
    """5 -> "5 seconds", 0.5 -> "0.5 seconds"."""
    text = f"{timeout:g}"
    return f"{text} second" if text == "1" else f"{text} seconds"


def _host(url: str) -> str:
    """host:port of a URL, for messages."""
    parts = urlsplit(url)
    return parts.netloc or url


def _connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in words: refused, unknown host, or the error's class name."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(seen, socket.gaierror):
            return "the host name is unknown"
        if isinstance(seen, ssl.SSLError):
            return "the TLS handshake failed"
        seen = seen.__cause__ or seen.__context__
    return "no answer"


ENGINES: dict[str, StockEngine] = {engine.type: engine for engine in (
    StockEngine("omnitron", "Omnitron stock", "Stock as Omnitron keeps it; the OMS machine reaches it without "
                "credentials.", (), NO_AUTH, "/health/"),
    StockEngine("basic_auth_rest", "REST service with basic auth", "A brand's own REST stock service behind "
                "HTTP basic authentication.", ("username", "password"), BASIC_AUTH, "/health/"),
    StockEngine("token_rest", "REST service with a token", "A REST stock service that takes an API token "
                "(sent as Authorization: Token ...).", ("password",), TOKEN_AUTH, "/health/", "Token"),
    StockEngine("sap", "SAP (OData)", "SAP S/4HANA material stock through the API_MATERIAL_STOCK_SRV OData "
                "service, with a technical user.", ("username", "password"), BASIC_AUTH,
                "/sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/$metadata"),
)}


def get_engine(engine_type: str) -> StockEngine | None:
    """The engine of this type, or None."""
    return ENGINES.get(engine_type)
