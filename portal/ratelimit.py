"""The rate limiter's Redis storage: one round trip to Redis per limit per request instead of three.

Flask-Limiter counts a hit (a Lua call), then reads the window's count and its time to live for the X-RateLimit-*
headers: two more commands, two more round trips on every API request. This storage's hit returns the count and
the time to live together (one Lua call), and keeps them, per thread, for the get() and get_expiry() of that key
that follow; any other read (no hit just before) asks Redis, with count and time to live in one pipeline.
Counting, limits and headers are unchanged. Importing this module registers it for the redis:// schemes (limits
picks the storage class by the URI's scheme), so RATELIMIT_STORAGE_URI=redis://... uses it.
"""
from __future__ import annotations

import threading
import time

from limits.storage import RedisStorage

# INCRBY, EXPIRE when the window starts (as limits' own incr_expire.lua), and the key's time to live, at once.
_INCR_EXPIRE_TTL = b"""
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class PipelinedRedisStorage(RedisStorage):
    """RedisStorage that reads a key's count and time to live with its hit, for the headers that follow."""

    STORAGE_SCHEME = ["redis", "rediss", "redis+unix"]

    def __init__(self, *args, **kwargs) -> None:
        """As RedisStorage; adds the per-thread memo of the last count and expiry read."""
        self._last = threading.local()
        super().__init__(*args, **kwargs)

    def initialize_storage(self, _uri: str) -> None:
        """Register limits' scripts and this storage's own."""
        super().initialize_storage(_uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(_INCR_EXPIRE_TTL)

    def _remember(self, key: str, count: int, ttl: int) -> None:
        """Keep a key's count and expiry for the next get() and get_expiry() of it in this thread."""
        self._last.key, self._last.count, self._last.expiry = key, count, max(int(ttl), 0) + time.time()
        self._last.reads = {"count", "expiry"}

    def _recall(self, key: str, what: str):
        """The remembered count or expiry of key (each handed out once), or None."""
        if getattr(self._last, "key", None) != key or what not in self._last.reads:
            return None
        self._last.reads.discard(what)
        return self._last.count if what == "count" else self._last.expiry

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count a hit; its count and time to live come back in the same round trip."""
        current, ttl = self.lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        self._remember(key, int(current), int(ttl))
        return int(current)

    def get(self, key: str) -> int:
        """The counter of key: as the hit just before left it, else from Redis (with its TTL, one round trip)."""
        count = self._recall(key, "count")
        if count is not None:
            return count
        # redis.Redis at run time; limits types it as a protocol without pipeline().
        pipe = self.get_connection(True).pipeline(transaction=False)  # type: ignore[attr-defined]
        prefixed = self.prefixed_key(key)
        pipe.get(prefixed)
        pipe.ttl(prefixed)
        value, ttl = pipe.execute()
        self._remember(key, int(value or 0), int(ttl))
        self._last.reads.discard("count")
        return int(value or 0)

    def get_expiry(self, key: str) -> float:
        """When key's window ends: as read just before with its count, else from Redis."""
        expiry = self._recall(key, "expiry")
        return expiry if expiry is not None else super().get_expiry(key)
