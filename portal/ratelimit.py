"""The rate limiter's Redis storage, with the figures for the X-RateLimit-* headers read in one round trip.

Flask-Limiter counts a hit (one Lua call), then reads the window's count and its time to live for the headers:
two more commands, two more round trips to Redis on every API request. This storage reads both in one pipeline
and hands the time to live to the get_expiry() call that follows for the same key. Counting, limits and headers
are unchanged. Importing this module registers it for the redis:// schemes (limits picks the storage class by
the URI's scheme), so RATELIMIT_STORAGE_URI=redis://... uses it.
"""
from __future__ import annotations

import threading
import time

from limits.storage import RedisStorage


class PipelinedRedisStorage(RedisStorage):
    """RedisStorage whose get() also fetches the key's TTL, kept (per thread) for the next get_expiry() of that key."""

    STORAGE_SCHEME = ["redis", "rediss", "redis+unix"]

    def __init__(self, *args, **kwargs) -> None:
        """As RedisStorage; adds the per-thread memo of the last TTL read."""
        super().__init__(*args, **kwargs)
        self._last = threading.local()

    def get(self, key: str) -> int:
        """The counter of key, reading its TTL in the same round trip."""
        # redis.Redis at run time; limits types it as a protocol without pipeline().
        pipe = self.get_connection(True).pipeline(transaction=False)  # type: ignore[attr-defined]
        prefixed = self.prefixed_key(key)
        pipe.get(prefixed)
        pipe.ttl(prefixed)
        value, ttl = pipe.execute()
        self._last.key = key
        self._last.expiry = max(int(ttl), 0) + time.time()
        return int(value or 0)

    def get_expiry(self, key: str) -> float:
        """When key's window ends: from the TTL read with the counter just before, else from Redis."""
        if getattr(self._last, "key", None) == key:
            self._last.key = None
            return self._last.expiry
        return super().get_expiry(key)
