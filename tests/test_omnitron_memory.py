"""Streaming 100,000 addresses from the sandbox keeps the client's memory flat (the benchmark's promise)."""
from __future__ import annotations

import logging
import threading
import time
import tracemalloc

from stubs.omnitron_server import PASSWORD, USERNAME, SandboxProcess

from portal.omnitron import ADDRESS_PATHS, OmnitronClient

DISTRICTS = ADDRESS_PATHS["district"]


def test_100000_districts_stream_in_flat_memory():
    """`python -m sandbox --address-count 100000`: every district arrives once, and the peak stays at one page."""
    # The sandbox runs in its own process so only the client's allocations are traced.
    with SandboxProcess("--address-count", "100000") as sandbox:
        with OmnitronClient(sandbox.url, USERNAME, PASSWORD, timeout=(2, 30), backoff=0.01) as client:
            assert client.count(DISTRICTS) == 100_000  # also logs in, so the login is outside the measurement
            # Allocated before tracing so the bookkeeping itself is not counted: one byte per district.
            seen = bytearray(100_000)
            # pytest keeps every captured log record in memory; urllib3's per-request records would be
            # counted as the client's memory when an earlier test left debug logging on.
            logging.disable(logging.INFO)
            # tracemalloc sees every thread: let request threads of earlier tests' servers (a delayed
            # answer still being written) finish first, so only this stream is measured.
            # One deadline for all of them: a server thread that holds an idle keep-alive connection (webhook
            # deliveries keep theirs open) waits for a request that never comes, and allocates nothing meanwhile.
            deadline = time.monotonic() + 10
            for thread in threading.enumerate():
                if thread is not threading.current_thread() and "process_request_thread" in thread.name:
                    thread.join(timeout=max(0.0, deadline - time.monotonic()))
            tracemalloc.start()
            try:
                for record in client.iter_records(DISTRICTS, page_size=1000):
                    seen[record["id"] - 1] += 1
                    if record["id"] == 10_000:
                        # The peak of the first ten pages is the yardstick for the other ninety.
                        early_peak = tracemalloc.get_traced_memory()[1]
                        tracemalloc.reset_peak()
                late_peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                logging.disable(logging.NOTSET)

    assert seen == bytearray([1]) * 100_000
    # One page of 1,000 records is well under a megabyte parsed; 90,000 more records must not cost more.
    assert late_peak < 4_000_000, f"peak {late_peak / 1e6:.1f} MB while streaming 100,000 districts"
    assert late_peak < early_peak + 1_000_000, f"peak grew from {early_peak / 1e6:.1f} to {late_peak / 1e6:.1f} MB"
