"""The Omnitron sandbox on a free local port in a background thread, and pytest fixtures for it.

Use it from a test module with `from stubs.omnitron_server import omnitron_sandbox  # noqa: F401`
(the fixture), or `with SandboxServer({...}) as sandbox:` directly.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from portal.omnitron import OmnitronClient
from sandbox import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
USERNAME = "oms.application"
PASSWORD = "sandbox-password"
LIMITED_USERNAME = "oms.readonly"
LIMITED_PASSWORD = "readonly-password"

# Fixed here so SANDBOX_* variables in the developer's shell cannot change what the tests see.
TEST_CONFIG = {
    "SANDBOX_SEED": 2024, "SANDBOX_ADDRESS_COUNT": 3000, "SANDBOX_STORE_COUNT": 100,
    "SANDBOX_USERNAME": USERNAME, "SANDBOX_PASSWORD": PASSWORD,
    "SANDBOX_LIMITED_USERNAME": LIMITED_USERNAME, "SANDBOX_LIMITED_PASSWORD": LIMITED_PASSWORD,
    "SANDBOX_STOCK_USERNAME": "stock.user", "SANDBOX_STOCK_PASSWORD": "stock-password",
    "SANDBOX_PAGE_SIZE": 50, "SANDBOX_MAX_PAGE_SIZE": 1000, "SANDBOX_ADMIN_TOKEN": "", "SANDBOX_FAULTS": [],
}


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the access log line per request (tests make hundreds)."""

    def log_request(self, code="-", size="-") -> None:
        """Do not log successful requests."""


class SandboxServer:
    """The sandbox served over real HTTP; control helpers call its /__sandbox__/ endpoints."""

    def __init__(self, config: dict | None = None):
        self.app = create_app({**TEST_CONFIG, **(config or {})})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=QuietRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="omnitron-sandbox", daemon=True)
        self.http = requests.Session()

    def start(self) -> SandboxServer:
        """Start serving in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.http.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        """Start on entering a with block."""
        return self.start()

    def __exit__(self, *exc_info) -> None:
        """Stop on leaving the with block."""
        self.stop()

    def client(self, username: str = USERNAME, password: str = PASSWORD, **kwargs) -> OmnitronClient:
        """A client for this sandbox; tiny backoff and short timeouts so failing tests stay fast."""
        kwargs.setdefault("timeout", (2, 5))
        kwargs.setdefault("backoff", 0.01)
        return OmnitronClient(self.url, username, password, **kwargs)

    def _control(self, method: str, path: str, json=None):
        """Call a /__sandbox__/ endpoint; fails the test if the sandbox refuses."""
        response = self.http.request(method, f"{self.url}/__sandbox__/{path}", json=json, timeout=5)
        response.raise_for_status()
        return response.json() if response.content else None

    def add_fault(self, path: str, **fault) -> int:
        """Arm a fault (page=, status=, delay=, drop=, times= [None: always], method=); returns its id."""
        return self._control("POST", "faults", {"path": path, **fault})["id"]

    def faults(self) -> list[dict]:
        """The armed faults with their hit counts."""
        return self._control("GET", "faults")

    def mutate(self, resource: str, **change) -> dict:
        """Change records (update=n, ids=[...], changes={...}, add=n)."""
        return self._control("POST", "mutate", {"resource": resource, **change})

    def revoke_tokens(self) -> None:
        """Make every issued token invalid."""
        self._control("DELETE", "tokens")

    def requests(self) -> list[dict]:
        """The requests the sandbox received (method, path, query, authorization scheme)."""
        return self._control("GET", "requests")

    def logins(self) -> int:
        """How many times a client logged in."""
        return sum(1 for r in self.requests() if r["path"] == "/api/v1/auth/login/")


def free_port() -> int:
    """A local port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """`python -m sandbox` in a child process, as the README's run command starts it.

    A separate process keeps the sandbox's own allocations out of a test's tracemalloc numbers.
    """

    def __init__(self, *args: str, startup_seconds: float = 15):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--port", str(self.port), *args]
        self.startup_seconds = startup_seconds
        self.process: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()

    def __enter__(self) -> SandboxProcess:
        """Start the process and wait until its health endpoint answers."""
        env = {**os.environ, **{k: str(v) for k, v in TEST_CONFIG.items() if not isinstance(v, list)}}
        self.process = subprocess.Popen([sys.executable, "-m", "sandbox", *self.args], cwd=REPO_ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                requests.get(f"{self.url}/api/v1/health/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        self.__exit__()
        self.log.seek(0)
        raise RuntimeError(f"The sandbox did not start: {self.log.read().decode(errors='replace')[-2000:]}")

    def __exit__(self, *exc_info) -> None:
        """Stop the process."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def omnitron_sandbox():
    """A running sandbox with the default test data (3,000 districts, 100 stock locations)."""
    with SandboxServer() as sandbox:
        yield sandbox


@pytest.fixture
def omnitron_sandbox_factory():
    """Start sandboxes with other settings: `omnitron_sandbox_factory({"SANDBOX_ADDRESS_COUNT": 100_000})`."""
    started: list[SandboxServer] = []

    def start(config: dict | None = None) -> SandboxServer:
        """A running sandbox with these settings, stopped after the test."""
        sandbox = SandboxServer(config).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def credentials(app):
    """The sandbox's oms.application login saved in OMNITRON_CLIENT_SETTINGS (step 7), as an admin would."""
    from portal.extensions import db
    from portal.settings import service as settings

    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=None)
