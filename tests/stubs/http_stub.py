"""What the JSON stub servers share: answering with JSON, and running on a random port of 127.0.0.1 in a thread."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer(ThreadingHTTPServer):
    """A threading HTTP server with a real server's listen backlog, handler threads that never hold up the exit.

    socketserver's default backlog is 5: a batch of webhooks sent at once (OUTBOX_BATCH_SIZE connections) on a busy
    machine overflows it, and the kernel's SYN cookies then reset some connections ("Connection reset by peer"),
    which no real receiver behind nginx (backlog 511) would do.
    """

    request_queue_size = 1024
    daemon_threads = True


def send_json(handler: BaseHTTPRequestHandler, status: int, body: object, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON body; a client that already gave up (a timeout test) is ignored."""
    data = json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


@contextmanager
def serving(stub, handler_class: type[BaseHTTPRequestHandler], name: str) -> Iterator:
    """Serve handler_class on a free port while the block runs; sets stub.url and, at the end, stub.stopping."""
    server = StubServer(("127.0.0.1", 0), handler_class)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
