"""A local stand-in for a brand's stock services, served over real HTTP from a thread.

GET /health/ and GET /sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/$metadata answer 200 when the request
carries HTTP basic auth with (USERNAME, PASSWORD), `Authorization: Token TOKEN`, or no credentials while
`anonymous` is on; other credentials get 401, other paths 404. `status` forces an answer (e.g. 503),
`delay` makes every answer late (for timeouts); `requests` records what was asked.
"""
from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

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
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format, *args):  # noqa: A002 (signature of http.server)
            """Stay quiet."""

    return Handler


def start() -> tuple[StockEngineStub, ThreadingHTTPServer, threading.Thread]:
    """Start the stub on a random port of 127.0.0.1."""
    stub = StockEngineStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stock-engine-stub",
                              daemon=True)
    thread.start()
    return stub, server, thread


def stop(stub: StockEngineStub, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    """Stop serving and release the port."""
    stub.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def stock_engine():
    """A running stock engine stub for one test."""
    stub, server, thread = start()
    yield stub
    stop(stub, server, thread)
