"""Webhook receivers served over real HTTP from a thread on 127.0.0.1, recording every request.

Modes (set `mode`, or queue one-off answers in `answers`, used first and in order):
  "ok"       answers 200 at once;
  "slow"     waits `slow_seconds` before answering 200 (past the portal's timeout in the tests that use it);
  "500"      answers 500;
  "410"      answers 410 Gone;
  "echo"     answers 200 with the request's body (as careless receivers do);
  "redirect" answers 302 to a loopback address on this same server (/internal), which must never be visited.
When `secret` is set, each request is checked with portal.webhooks.signing.verify on arrival, the way a
brand's receiver would, and the outcome is kept on the recorded request (verified / verify_error).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
from stubs.http_stub import StubServer

from portal.webhooks import signing


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool = False
    verify_error: str = ""

    @property
    def json(self) -> dict:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        """The webhook-id header."""
        return self.headers.get("webhook-id", "")


@dataclass
class Receiver:
    """A receiver's settings and what it received; shared with the handler threads."""

    url: str = ""
    mode: str = "ok"
    answers: list[str] = field(default_factory=list)
    secret: str | None = None
    slow_seconds: float = 3.0
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def next_mode(self) -> str:
        """The queued one-off answer, else the standing mode."""
        with self._lock:
            return self.answers.pop(0) if self.answers else self.mode

    def record(self, received: Received) -> None:
        """Keep a request."""
        with self._lock:
            self.requests.append(received)

    def wait_for(self, count: int, seconds: float = 10.0) -> list[Received]:
        """Wait until at least `count` requests arrived; returns them all (fails the test on timeout)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return list(self.requests)
            time.sleep(0.02)
        pytest.fail(f"the receiver got {len(self.requests)} request(s), expected {count}")

    @property
    def target_url(self) -> str:
        """The URL to subscribe with."""
        return f"{self.url}/hooks"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to the receiver's state."""

    class Handler(BaseHTTPRequestHandler):
        """Records the request, then answers as the mode says."""

        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers
        disable_nagle_algorithm = True  # no delayed-ACK stall between the headers and the body

        def _serve(self):
            """Read, verify, record and answer."""
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                            time.time())
            if receiver.secret:
                try:
                    signing.verify(receiver.secret, seen.headers, body)
                    seen.verified = True
                except signing.SignatureError as exc:
                    seen.verify_error = str(exc)
            receiver.record(seen)
            mode = receiver.next_mode() if self.path != "/internal" else "ok"
            if mode == "slow":
                receiver._stopping.wait(receiver.slow_seconds)
                mode = "ok"
            status, headers, data = {
                "ok": (200, {}, b'{"received": true}'),
                "500": (500, {}, b"Internal Server Error: the receiver broke"),
                "410": (410, {}, b"Gone"),
                "echo": (200, {}, body),
                "redirect": (302, {"Location": f"{receiver.url}/internal"}, b""),
            }[mode]
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the sender gave up (timeout) or was killed: nothing to answer to

        do_GET = do_POST = _serve  # noqa: N815 (names http.server calls)

        def log_message(self, format, *args):  # noqa: A002 (signature of http.server)
            """Stay quiet."""

    return Handler


class RunningReceiver:
    """A started receiver; stop() releases its port and wakes slow answers."""

    def __init__(self, mode: str = "ok", secret: str | None = None):
        """Start serving on a free port of 127.0.0.1."""
        self.receiver = Receiver(mode=mode, secret=secret)
        self.server = StubServer(("127.0.0.1", 0), _handler(self.receiver))
        self.receiver.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="webhook-receiver", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.receiver._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receivers():
    """Start receivers on demand: receivers("500") -> Receiver; all are stopped after the test."""
    started: list[RunningReceiver] = []

    def start(mode: str = "ok", secret: str | None = None) -> Receiver:
        """Start one receiver in the given mode."""
        running = RunningReceiver(mode, secret)
        started.append(running)
        return running.receiver

    yield start
    for running in started:
        running.stop()
