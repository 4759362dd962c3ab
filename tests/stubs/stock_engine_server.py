"""A local stand-in for a brand's stock services, served over real HTTP from a thread.

GET /health/ and GET /sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/$metadata answer 200 when the request
carries HTTP basic auth with (USERNAME, PASSWORD), `Authorization: Token TOKEN`, or no credentials while
`anonymous` is on; other credentials get 401, other paths 404. `status` forces an answer (e.g. 503),
`delay` makes every answer late (for timeouts); `requests` records what was asked.
"""
from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
from stubs.http_stub import send_json, serving

USERNAME = "stock-user"
PASSWORD = "stock-pass-0001"
TOKEN = "stock-token-0001"
PATHS = ("/health/", "/sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/$metadata")


@dataclass
class SeenRequest:
    """One request the stub answered: the path and its Authorization header."""

    path: str
    authorization: str


@dataclass
class StockEngineStub:
    """The stub's state, shared with the handler threads."""

    url: str = ""
    anonymous: bool = True
    status: int | None = None
    delay: float = 0.0
    requests: list[SeenRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)


def _authorised(stub: StockEngineStub, header: str) -> bool:
    """True when the Authorization header carries the stub's credentials (or none where anonymous is allowed)."""
    scheme, _, value = header.partition(" ")
    if not header:
        return stub.anonymous
    if scheme == "Basic":
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return (username, password) == (USERNAME, PASSWORD)
    return scheme == "Token" and value == TOKEN


def _handler(stub: StockEngineStub) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to the stub's state."""

    class Handler(BaseHTTPRequestHandler):
        """Answers the health and metadata paths."""

        def do_GET(self):  # noqa: N802 (the name http.server calls)
            """Answer a connection test, late when the stub has a delay."""
            header = self.headers.get("Authorization", "")
            stub.requests.append(SeenRequest(self.path, header))
            if stub.delay and stub.stopping.wait(stub.delay):
                return
            extra = {}
            if stub.status is not None:
                status, body = stub.status, {"detail": "forced by the test"}
            elif self.path not in PATHS:
                status, body = 404, {"detail": "Not found."}
            elif not _authorised(stub, header):
                status, body = 401, {"detail": "Invalid credentials."}
                extra["WWW-Authenticate"] = 'Basic realm="stock"'
            else:
                status, body = 200, {"status": "ok", "service": "stock"}
            send_json(self, status, body, "application/json", extra)

        def log_message(self, format, *args):  # noqa: A002 (signature of http.server)
            """Stay quiet."""

    return Handler


@pytest.fixture
def stock_engine():
    """A running stock engine stub for one test."""
    stub = StockEngineStub()
    with serving(stub, _handler(stub), "stock-engine-stub"):
        yield stub
