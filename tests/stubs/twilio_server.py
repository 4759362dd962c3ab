"""A local stand-in for Twilio's Messages API, served over real HTTP from a thread on 127.0.0.1.

POST /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP basic auth (AccountSid:AuthToken) and a
form body (To, From or MessagingServiceSid, Body) answers 201 with a message resource like Twilio's.
Wrong credentials answer 401 and a missing field 400, with Twilio's error JSON. `fail_with` forces an
answer status (e.g. 400 or 500) for every request; `requests` records what was received.
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest
from stubs.http_stub import StubServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "stub-auth-token-0123456789abcdef"
MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")


@dataclass
class SeenRequest:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class TwilioStub:
    """The stub's state, shared with the handler threads."""

    url: str = ""
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    fail_with: int | None = None
    requests: list[SeenRequest] = field(default_factory=list)
    _sids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_sid(self) -> str:
        """A message SID shaped like Twilio's: SM and 32 hex digits."""
        return f"SM{next(self._sids):032x}"


def _error(status: int, code: int, message: str) -> dict:
    """Twilio's error body."""
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


def _answer(stub: TwilioStub, request: SeenRequest) -> tuple[int, dict]:
    """What Twilio would answer to one request."""
    match = MESSAGES_PATH.match(request.path)
    if request.method != "POST" or match is None:
        return 404, _error(404, 20404, f"The requested resource {request.path} was not found")
    expected = "Basic " + base64.b64encode(f"{stub.account_sid}:{stub.auth_token}".encode()).decode()
    if request.headers.get("authorization") != expected or match["sid"] != stub.account_sid:
        return 401, _error(401, 20003, "Authenticate")
    if stub.fail_with == 400:
        return 400, _error(400, 21211, f"The 'To' number {request.form.get('To', '')} is not a valid phone number.")
    if stub.fail_with:
        return stub.fail_with, _error(stub.fail_with, 20500, "An internal server error has occurred")
    form = request.form
    if not form.get("To") or not form.get("Body"):
        return 400, _error(400, 21604, "A 'To' phone number and a 'Body' are required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 400, _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
    sid = stub.next_sid()
    now = formatdate(usegmt=True)
    return 201, {
        "account_sid": stub.account_sid, "api_version": "2010-04-01", "body": form["Body"],
        "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
        "error_code": None, "error_message": None, "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0", "num_segments": "1",
        "price": None, "price_unit": "USD", "sid": sid, "status": "accepted" if not form.get("From") else "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{stub.account_sid}/Messages/{sid}/Media.json"},
        "to": form["To"], "uri": f"/2010-04-01/Accounts/{stub.account_sid}/Messages/{sid}.json",
    }


def _handler(stub: TwilioStub) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to the stub's state."""

    class Handler(BaseHTTPRequestHandler):
        """Answers like api.twilio.com."""

        def _serve(self):
            """Read the request, record it and answer."""
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            seen = SeenRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, form)
            stub.requests.append(seen)
            status, body = _answer(stub, seen)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815 (names http.server calls)

        def log_message(self, format, *args):  # noqa: A002 (signature of http.server)
            """Stay quiet."""

    return Handler


class RunningStub:
    """A started stub server; stop() releases its port."""

    def __init__(self):
        self.stub = TwilioStub()
        self.server = StubServer(("127.0.0.1", 0), _handler(self.stub))
        self.stub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="twilio-stub", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def twilio_stub():
    """A running Twilio stub for one test."""
    running = RunningStub()
    yield running.stub
    running.stop()
