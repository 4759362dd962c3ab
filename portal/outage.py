"""What an outage of the database or Redis looks like to the code: the exceptions that mean "unreachable now"
(a restart, a failover), as opposed to a bug or a refused request. The web layer answers them 503."""
from __future__ import annotations

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError


def _outage_errors() -> tuple[type[Exception], ...]:
    """The database's and, when the Redis client is installed, Redis's connection errors."""
    errors: list[type[Exception]] = [OperationalError, DisconnectionError, InterfaceError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # no Redis client installed: the portal runs on SQLite and the file queue
        return tuple(errors)
    return (*errors, RedisConnectionError, RedisTimeoutError)


OUTAGE_ERRORS = _outage_errors()
