"""Stand-ins for the outside systems of the production profile (scripts/run-scale): an SMS provider with Twilio's
Messages API and webhook receivers, on one local port, that count what they get so a run can be checked.

    .venv/bin/python bench/standins.py --port 8300 [--account-sid AC... --auth-token ...]

Twilio: POST /2010-04-01/Accounts/{AccountSid}/Messages.json (basic auth AccountSid:AuthToken, form To/From/Body)
answers 201 with a message resource like Twilio's. The portal points TWILIO_API_BASE_URL here.
Webhooks: POST /hooks/{name} answers 200 and records the webhook-id header (a retry of a message that already
arrived counts as a duplicate delivery).
Control and figures (JSON):
  GET  /__stats__                       counts: SMS received, webhooks received, distinct ids, duplicates, and
                                        events that arrived under more than one webhook id (never allowed)
  GET  /__received__                    what arrived: each webhook id with its count, each event's webhook ids,
                                        each SMS's Twilio sids (bench/faults.py matches them to the outbox)
  GET  /__sms__?to=+90555...            the newest SMS body sent to that number (the load test reads codes here)
  GET  /__inflight__                    the requests being answered now: kind (sms / webhook), the webhook id or
                                        the SMS's key (as in /__received__'s sms_keys), the client's address and
                                        port (bench/faults.py finds the worker process that owns the connection),
                                        and for how long it has been held
  POST /__mode__?sms=down|hang|ok       the SMS provider answers 503 (down), holds each request (hang), or works
  POST /__mode__?hooks=down|slow|hang|ok  receivers answer 503, answer after --slow-seconds, hold each request
                                        (hang), or answer at once
  POST /__mode__?hang_seconds=N         how long a held request waits at most (default --hang-seconds); leaving
                                        the hang mode releases every held request at once
A held request is answered (and counted as received) when it is released, as a receiver that was busy would; if
its client is gone by then (a worker killed mid-send), the answer is lost but the message still counts as arrived.
  POST /__reset__                       forget everything received
The server is threaded, keeps HTTP/1.1 connections alive, and logs nothing per request.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})/Messages\.json$")


def sms_key(key: str) -> str:
    """An SMS's key (its To and Body) as a short digest: the same text to the same number is the same message."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class State:
    """What the stand-ins received, and how they answer now."""

    def __init__(self, account_sid: str, auth_token: str, slow_seconds: float, hang_seconds: float = 30.0):
        self.account_sid = account_sid
        self.auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.slow_seconds = slow_seconds
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()
        self.released = threading.Condition(self.lock)  # notified when a mode changes: held requests look again
        self.flights = itertools.count(1)
        self.in_flight: dict[int, dict] = {}
        self.sids = itertools.count(1)
        self.sms_mode = "ok"
        self.hooks_mode = "ok"
        self.reset()

    def reset(self) -> None:
        """Forget everything received."""
        with self.lock:
            self.sms_count = 0
            self.sms_refused = 0
            self.last_sms: dict[str, str] = {}
            self.sms_bodies: Counter[str] = Counter()
            self.sms_sids: dict[str, list[str]] = {}
            self.hook_ids: Counter[str] = Counter()
            self.event_ids: dict[str, set[str]] = {}
            self.hooks_refused = 0
            self.in_flight_peak = 0

    def stats(self) -> dict:
        """The figures a run is checked against."""
        with self.lock:
            return {
                "sms_received": self.sms_count, "sms_refused": self.sms_refused,
                "sms_duplicate_bodies": sum(n - 1 for n in self.sms_bodies.values() if n > 1),
                "webhooks_received": sum(self.hook_ids.values()), "webhook_ids": len(self.hook_ids),
                "webhook_duplicates": sum(n - 1 for n in self.hook_ids.values() if n > 1),
                "webhooks_refused": self.hooks_refused, "sms_mode": self.sms_mode, "hooks_mode": self.hooks_mode,
                "events_with_several_ids": sum(1 for ids in self.event_ids.values() if len(ids) > 1),
                "in_flight": len(self.in_flight),
                "in_flight_sms": sum(1 for f in self.in_flight.values() if f["kind"] == "sms"),
                "in_flight_webhooks": sum(1 for f in self.in_flight.values() if f["kind"] == "webhook"),
                "in_flight_peak": self.in_flight_peak, "hang_seconds": self.hang_seconds,
            }

    def received(self) -> dict:
        """What arrived, in detail: webhook ids with their counts, each event's ids, each SMS's sids."""
        with self.lock:
            return {"webhook_ids": dict(self.hook_ids),
                    "event_ids": {key: sorted(ids) for key, ids in self.event_ids.items()},
                    "sms_sids": [list(sids) for sids in self.sms_sids.values()],
                    "sms_keys": {sms_key(key): list(sids) for key, sids in self.sms_sids.items()}}

    def flights_now(self) -> list[dict]:
        """The requests being answered now, oldest first, with how long each has been held (seconds)."""
        now = time.monotonic()
        with self.lock:
            return [{**{k: v for k, v in flight.items() if k != "since"}, "held": round(now - flight["since"], 3)}
                    for _, flight in sorted(self.in_flight.items())]

    def take_off(self, kind: str, ident: str, client: tuple) -> int:
        """Note a request in flight (until land()); its token."""
        with self.lock:
            token = next(self.flights)
            self.in_flight[token] = {"kind": kind, "id": ident, "host": client[0], "port": client[1],
                                     "since": time.monotonic()}
            self.in_flight_peak = max(self.in_flight_peak, len(self.in_flight))
            return token

    def land(self, token: int) -> None:
        """The request was answered (or its client is gone)."""
        with self.lock:
            self.in_flight.pop(token, None)

    def set_modes(self, sms: str | None, hooks: str | None, hang_seconds: float | None) -> None:
        """Switch modes; held requests are released when their channel leaves the hang mode."""
        with self.released:
            self.sms_mode = sms or self.sms_mode
            self.hooks_mode = hooks or self.hooks_mode
            if hang_seconds is not None:
                self.hang_seconds = hang_seconds
            self.released.notify_all()

    def hold(self, channel: str) -> None:
        """While the channel (sms / hooks) is in the hang mode, wait: until it leaves it or hang_seconds pass."""
        deadline = time.monotonic() + self.hang_seconds
        with self.released:
            while getattr(self, f"{channel}_mode") == "hang" and (left := deadline - time.monotonic()) > 0:
                self.released.wait(left)

    def record_hook(self, path: str, webhook_id: str, raw: bytes) -> None:
        """Count a delivered webhook id, and note it under its event (per receiver path)."""
        try:
            event = json.loads(raw or b"{}").get("event") or {}
        except (ValueError, AttributeError):
            event = {}
        with self.lock:
            self.hook_ids[webhook_id] += 1
            if isinstance(event, dict) and event.get("uuid"):
                self.event_ids.setdefault(f"{path} {event['uuid']}", set()).add(webhook_id)


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    """The request handler bound to the stand-ins' state."""

    class Handler(BaseHTTPRequestHandler):
        """Answers as Twilio, as a webhook receiver, or with figures."""

        protocol_version = "HTTP/1.1"  # keep-alive, as the portal's webhook sessions expect

        def _reply(self, status: int, body: dict | str) -> None:
            """Send a JSON (or text) answer with its length, so the connection can be reused."""
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            """The request body."""
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self):  # noqa: N802 (http.server's name)
            """Figures and the newest SMS to a number."""
            url = urlsplit(self.path)
            if url.path == "/__stats__":
                return self._reply(200, state.stats())
            if url.path == "/__received__":
                return self._reply(200, state.received())
            if url.path == "/__inflight__":
                return self._reply(200, {"in_flight": state.flights_now()})
            if url.path == "/__sms__":
                to = parse_qs(url.query).get("to", [""])[0]
                with state.lock:
                    body = state.last_sms.get(to)
                return self._reply(200, {"to": to, "body": body}) if body else self._reply(404, {"to": to})
            return self._reply(404, {"detail": "not found"})

        def do_POST(self):  # noqa: N802 (http.server's name)
            """Twilio messages, webhook deliveries and the control endpoints."""
            url = urlsplit(self.path)
            body = self._body()
            if url.path.startswith("/hooks/"):
                token = state.take_off("webhook", self.headers.get("webhook-id", ""), self.client_address)
                try:
                    return self._hook(url.path, body)
                finally:
                    state.land(token)
            if (match := MESSAGES.match(url.path)) is not None:
                form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                key = sms_key(form.get("To", "") + "\n" + form.get("Body", ""))
                token = state.take_off("sms", key, self.client_address)
                try:
                    return self._sms(match["sid"], body)
                finally:
                    state.land(token)
            if url.path == "/__mode__":
                query = parse_qs(url.query)
                hang = query.get("hang_seconds", [None])[0]
                state.set_modes(query.get("sms", [None])[0], query.get("hooks", [None])[0],
                                float(hang) if hang is not None else None)
                return self._reply(200, state.stats())
            if url.path == "/__reset__":
                state.reset()
                return self._reply(200, state.stats())
            return self._reply(404, {"detail": "not found"})

        def _sms(self, sid: str, raw: bytes) -> None:
            """Twilio's Messages API: 201 with a message resource, 401 for wrong credentials, 503 when down."""
            if self.headers.get("Authorization") != state.auth or sid != state.account_sid:
                return self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
            form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
            state.hold("sms")
            with state.lock:
                if state.sms_mode == "down":
                    state.sms_refused += 1
                    down = True
                else:
                    down = False
                    state.sms_count += 1
                    state.last_sms[form.get("To", "")] = form.get("Body", "")
                    key = form.get("To", "") + "\n" + form.get("Body", "")
                    state.sms_bodies[key] += 1
                    message_sid = f"SM{next(state.sids):032x}"
                    state.sms_sids.setdefault(key, []).append(message_sid)
            if down:
                return self._reply(503, {"code": 20503, "message": "Service unavailable", "status": 503})
            now = formatdate(usegmt=True)
            return self._reply(201, {
                "account_sid": sid, "api_version": "2010-04-01", "body": form.get("Body", ""), "date_created": now,
                "date_sent": None, "date_updated": now, "direction": "outbound-api", "error_code": None,
                "error_message": None, "from": form.get("From"), "messaging_service_sid": None, "num_media": "0",
                "num_segments": "1", "price": None, "price_unit": "USD", "sid": message_sid, "status": "queued",
                "to": form.get("To"), "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
            })

        def _hook(self, path: str, raw: bytes) -> None:
            """A webhook receiver: counts each webhook-id; 503 while down, late while slow."""
            mode = state.hooks_mode
            if mode == "down":
                with state.lock:
                    state.hooks_refused += 1
                return self._reply(503, "receiver down")
            if mode == "slow":
                time.sleep(state.slow_seconds)
            elif mode == "hang":
                state.hold("hooks")
            state.record_hook(path, self.headers.get("webhook-id", ""), raw)
            return self._reply(200, {"received": True})

        def handle_one_request(self):
            """One request; a client that vanished while its request was held (a killed worker) is no error."""
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            """No line per request."""

    return Handler


class _Server(ThreadingHTTPServer):
    """A threading HTTP server with a real server's listen backlog (fresh workers open many connections at once)."""

    request_queue_size = 1024


def serve(port: int, account_sid: str, auth_token: str, slow_seconds: float = 3.0,
          host: str = "127.0.0.1", hang_seconds: float = 30.0) -> tuple[ThreadingHTTPServer, State]:
    """Start the stand-ins on a thread; returns the server (call shutdown()) and its state."""
    state = State(account_sid, auth_token, slow_seconds, hang_seconds)
    server = _Server((host, port), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="standins", daemon=True).start()
    return server, state


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="standin-auth-token")
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--hang-seconds", type=float, default=30.0,
                        help="the most a request is held in the hang mode (POST /__mode__?hang_seconds=N changes it)")
    args = parser.parse_args(argv)
    server, _ = serve(args.port, args.account_sid, args.auth_token, args.slow_seconds, hang_seconds=args.hang_seconds)
    print(f"Stand-ins (Twilio Messages API, webhook receivers /hooks/<name>) on http://127.0.0.1:{args.port}",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
