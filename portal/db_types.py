"""Column types shared by the models."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, Result
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores UTC datetimes and always returns them timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Normalise to UTC before writing; naive datetimes are taken as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The largest number a row id can be (ids are INTEGER, 32 bits, on PostgreSQL): a larger one names no row,
# and handing it to the database fails ("integer out of range", or an overflow in SQLite's driver beyond
# 64 bits) instead of finding nothing.
DB_INT_MAX = 2**31 - 1


def plain_int(raw: object) -> int | None:
    """A whole number written in ASCII digits within DB_INT_MAX, or None ("", "-1", "1e3", "²" or too big)."""
    # str.isdigit() also says yes to "²" and other digits int() refuses, and int() reads "١٢" as 12.
    text = str(raw if raw is not None else "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= DB_INT_MAX else None


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through `session.execute()` matched.

    Session.execute() is typed as returning a Result, but for those statements it is a CursorResult, the only kind
    with rowcount: this says so once, for the type checker, instead of a cast at every call site.
    """
    return cast(CursorResult[Any], result).rowcount
