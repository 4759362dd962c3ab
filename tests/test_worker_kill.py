"""A worker killed with SIGKILL in the middle of a send, on the real job queue and real HTTP.

A huey_consumer process sends an SMS (through the Twilio stand-in) and a webhook message (to a receiver) while
bench/standins.py holds both requests (its hang mode); the worker is killed with SIGKILL while the stand-ins hold
them, then the requests are released (the provider and the receiver got them: the worker never learnt it). The
claims' short lease runs out, a second worker starts and its start-up sweep redelivers both: the webhook under
the same webhook id (the receiver saw that id twice, no other id for the event), the SMS from the same outbox
message, and both end delivered, their second attempt recorded.

bench/faults.py's worker-send fault does the same on the production profile; the last test checks how it finds
the worker to kill (the process holding the connection of a request the stand-ins hold).
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from stubs.huey_worker import Consumer, queue_file, wait_for  # noqa: F401

from portal.db_types import utcnow
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.webhooks import events, service
from portal.webhooks.models import DeliveryAttempt

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "worker-kill-auth-token"
LEASE_SECONDS = 3  # a killed worker's claim runs out quickly (production: 60 s)


def _free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def standins():
    """bench/standins.py as its own process (Twilio's Messages API and webhook receivers); its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "standins.py"), "--port", str(port), "--account-sid", ACCOUNT_SID,
         "--auth-token", AUTH_TOKEN, "--hang-seconds", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 15, "the stand-ins to listen")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    """The stand-ins answer."""
    try:
        return requests.get(f"{url}/__stats__", timeout=1).ok
    except requests.RequestException:
        return False


def worker_env(url: str) -> dict[str, str]:
    """The workers send SMS through the Twilio stand-in and webhooks to its receivers, with a short lease."""
    return {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": url, "TWILIO_TIMEOUT_SECONDS": "30",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOK_TIMEOUT_SECONDS": "30",
            "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS)}


@pytest.fixture
def app_config(standins):
    """The test app writes the messages; the workers send them (the same settings)."""
    return {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True, "OUTBOX_LEASE_SECONDS": LEASE_SECONDS}


def mode(url: str, **modes: str) -> None:
    """Switch the stand-ins' modes (hang holds each request until the mode changes)."""
    requests.post(f"{url}/__mode__", params=modes, timeout=5).raise_for_status()


def in_flight(url: str) -> list[dict]:
    """The requests the stand-ins hold now."""
    return requests.get(f"{url}/__inflight__", timeout=5).json()["in_flight"]


def messages_now() -> dict[str, OutboxMessage]:
    """The SMS and webhook messages as the database has them now (the workers' commits included), by kind."""
    db.session.rollback()
    rows = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind.in_(["sms", "webhook"]))
                                   .execution_options(populate_existing=True)))
    assert len(rows) == 2, [(r.kind, r.status) for r in rows]
    return {row.kind: row for row in rows}


def test_a_worker_killed_mid_send_leaves_its_sms_and_webhook_to_the_next_worker_under_the_same_ids(
        app, make, standins, queue_file, tmp_path):
    manager = make.user("brand", role="brand_manager")
    subscription, _secret = service.create_subscription(
        db.session, event_type="stock_location.updated", target_url=f"{standins}/hooks/kill",
        retry_countdown_config=None, additional_headers=None, user_id=manager.id)
    mode(standins, hooks="hang", sms="hang")
    sms = outbox.enqueue_sms(db.session, to="+905551112233", body="Your pickup code is 482913", package_id=None)
    recorded = events.record_event(db.session, "stock_location.updated", {"id": 7, "name": "Kadıköy"})
    db.session.commit()
    sms_id = sms.id
    log_path = str(tmp_path / "consumer.log")
    first = Consumer(app, queue_file, log_path, **worker_env(standins))
    try:
        outbox.deliver_after_commit(db.session)  # onto the real queue: the consumer fans out and sends
        try:
            flights = wait_for(lambda: (lambda now: now if len(now) == 2 else None)(in_flight(standins)), 45,
                               "the SMS and the webhook to be held by the stand-ins")
        except BaseException:  # say what the worker did and what the stand-ins hold
            print("in flight:", in_flight(standins), "\nconsumer log:\n", Path(log_path).read_text()[-4000:])
            raise
    finally:
        first.kill()  # SIGKILL to the consumer and its worker processes, while both requests are held

    killed = messages_now()
    assert {kind: (m.status, m.attempts) for kind, m in killed.items()} == {
        "sms": ("sending", 1), "webhook": ("sending", 1)}, Path(log_path).read_text()[-3000:]
    assert killed["sms"].id == sms_id and killed["webhook"].subscription_id == subscription.id
    webhook_id = killed["webhook"].uuid
    assert {(f["kind"], f["id"]) for f in flights if f["kind"] == "webhook"} == {("webhook", webhook_id)}
    [sms_key] = [f["id"] for f in flights if f["kind"] == "sms"]
    # The provider and the receiver finish what they were doing: the customer got the text, the receiver the
    # webhook; the worker that sent them is gone and recorded nothing.
    mode(standins, hooks="ok", sms="ok")
    wait_for(lambda: not in_flight(standins), 10, "the held requests to be answered")
    got = requests.get(f"{standins}/__received__", timeout=5).json()
    assert got["webhook_ids"] == {webhook_id: 1} and len(got["sms_keys"][sms_key]) == 1
    assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0

    # The claims run out (OUTBOX_LEASE_SECONDS); a new worker's start-up sweep finds them and sends again.
    lease_ends = max(m.lease_until for m in killed.values())
    time.sleep(max(0.0, (lease_ends - utcnow()).total_seconds()) + 0.2)
    second = Consumer(app, queue_file, log_path, **worker_env(standins))
    try:
        done = wait_for(lambda: (lambda now: now if all(m.status == "sent" for m in now.values()) else None)(
            messages_now()), 30, "the second worker to deliver both messages")
    finally:
        second.kill()

    log = Path(log_path).read_text(errors="replace")[-3000:]
    assert {kind: m.attempts for kind, m in done.items()} == {"sms": 2, "webhook": 2}, log
    got = requests.get(f"{standins}/__received__", timeout=5).json()
    # The webhook arrived twice under the same id, and the event under no other id.
    assert got["webhook_ids"] == {webhook_id: 2}, log
    assert got["event_ids"] == {f"/hooks/kill {recorded.uuid}": [webhook_id]}
    assert done["webhook"].uuid == webhook_id and done["webhook"].event_uuid == recorded.uuid
    # The SMS went out twice from the one outbox message (Twilio takes no idempotency key): the message keeps
    # the second send's sid.
    first_sid, second_sid = got["sms_keys"][sms_key]
    assert done["sms"].id == sms_id and done["sms"].provider_id == second_sid != first_sid
    assert done["sms"].body_encrypted is None
    [attempt] = db.session.scalars(select(DeliveryAttempt))
    assert attempt.succeeded and attempt.attempt == 2 and attempt.message_id == done["webhook"].id
    stats = requests.get(f"{standins}/__stats__", timeout=5).json()
    assert (stats["webhooks_received"], stats["sms_received"], stats["events_with_several_ids"]) == (2, 2, 0)
    assert stats["in_flight_peak"] == 2


def _bench_faults():
    """bench/faults.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_faults", ROOT / "bench" / "faults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # it puts bench/ first on the path for its own imports: keep that out of the tests
    return module


def test_the_fault_script_finds_which_process_holds_a_connection_to_the_standins(standins):
    faults = _bench_faults()
    port = int(standins.rsplit(":", 1)[1])
    mode(standins, hooks="hang", hang_seconds="10")
    with socket.create_connection(("127.0.0.1", port)) as held, socket.create_connection(("127.0.0.1", port)):
        held.sendall(b"POST /hooks/a HTTP/1.1\r\nHost: x\r\nwebhook-id: msg_1\r\nContent-Length: 2\r\n\r\n{}")
        [flight] = wait_for(lambda: in_flight(standins), 10, "the stand-ins to hold the request")
        assert (flight["kind"], flight["id"], flight["port"]) == ("webhook", "msg_1", held.getsockname()[1])
        connections = faults.connections_to(port)
        assert held.getsockname()[1] in connections
        owners = faults.sockets_of({"this test": os.getpid(), "another": os.getppid()})
        assert connections[flight["port"]] in owners["this test"]
        assert connections[flight["port"]] not in owners["another"]
        mode(standins, hooks="ok")
        assert held.recv(1024).startswith(b"HTTP/1.1 200")
    assert requests.get(f"{standins}/__received__", timeout=5).json()["webhook_ids"] == {"msg_1": 1}


class DrippingReceiver:
    """A receiver that answers 200 one byte at a time, each byte sooner than a read timeout: it never times out.

    What a slow or hostile receiver can do to a worker: hold its send for as long as it likes.
    """

    def __init__(self, body_bytes: int, pause: float, drip: str = "body"):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hooks/drip"
        self.body_bytes, self.pause, self.drip = body_bytes, pause, drip
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        """Answer one request, slowly."""
        conn, _ = self.server.accept()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + f"Content-Length: {self.body_bytes}\r\n".encode()
        with conn:
            conn.recv(65536)
            if self.drip == "headers":  # the status line at once, then one header a pause, never the blank line
                conn.sendall(head)
                pieces = [f"X-Drip-{n}: .\r\n".encode() for n in range(self.body_bytes)]
            else:
                conn.sendall(head + b"\r\n")
                pieces = [b"."] * self.body_bytes
            for piece in pieces:
                time.sleep(self.pause)
                try:
                    conn.sendall(piece)
                except OSError:  # the sender gave up: what it should do
                    return

    def close(self) -> None:
        """Stop listening."""
        self.server.close()


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_delivery_never_outlasts_its_timeout_so_no_other_worker_can_take_it_while_it_is_being_sent(app, make,
                                                                                                    drip):
    app.config.update(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_TIMEOUT_SECONDS=1.0, OUTBOX_LEASE_SECONDS=2)
    receiver = DrippingReceiver(body_bytes=10, pause=0.4, drip=drip)  # 4 s in all, never 1 s without a byte
    manager = make.user("brand", role="brand_manager")
    service.create_subscription(db.session, event_type="stock_location.updated", target_url=receiver.url,
                                retry_countdown_config=None, additional_headers=None, user_id=manager.id)
    recorded = events.record_event(db.session, "stock_location.updated", {"id": 7, "name": "Kadıköy"})
    db.session.commit()
    [message_id] = outbox.fan_out(db.session, recorded.uuid)
    taken_over: list = []

    def another_worker() -> None:
        """Once the first worker's claim has run out (while it still waits for the receiver), try to claim."""
        time.sleep(2.5)
        with app.app_context():
            taken_over.append(outbox.claim(db.session, message_id))
            db.session.remove()

    rival = threading.Thread(target=another_worker)
    rival.start()
    started = time.monotonic()
    try:
        outbox.process_message(db.session, message_id)
    finally:
        took = time.monotonic() - started
        rival.join()
        receiver.close()
    # The send gives up at its timeout (well inside the lease), so no other worker can claim the message mid-send.
    assert taken_over == [None], f"another worker claimed the message while it was being sent ({took:.1f} s)"
    assert took < 2.0, f"the delivery took {took:.1f} s with WEBHOOK_TIMEOUT_SECONDS=1 and a 2 s lease"
