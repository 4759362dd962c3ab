"""Building blocks of the API's models: strict request bodies, query strings, answers and shared shapes.

Every request body is a `Body`: strict JSON types (no "5" for 5, no 1 for true) and unknown fields
refused. A query string is a `Query`: numbers are plain ASCII digits. An answer is an `Answer`, whose
fields are exactly what the API shows. The OpenAPI document is generated from these models.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError

from portal.db_types import DB_INT_MAX, plain_int
from portal.packages.states import state_info


class Body(BaseModel):
    """A JSON request body: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Query(BaseModel):
    """A query string: every value arrives as text; unknown arguments refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Answer(BaseModel):
    """A JSON answer: built by the routes from domain objects, serialised as declared."""

    model_config = ConfigDict(extra="forbid")


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix: 2026-11-22T11:05:00.123456Z."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# A moment in an answer: ISO 8601 in UTC with a Z suffix.
Timestamp = Annotated[datetime, PlainSerializer(iso_utc, return_type=str),
                      Field(json_schema_extra={"format": "date-time", "description": "ISO 8601, UTC."})]

# A row id in a JSON body: a whole number a database row can have.
RowId = Annotated[int, Field(ge=0, le=DB_INT_MAX)]


def digits(value: Any) -> Any:
    """A query value of ASCII digits as a number within the database's range; anything else is refused."""
    if isinstance(value, str):
        number = plain_int(value)
        if number is None:
            raise PydanticCustomError("plain_number", "not a plain number")
        return number
    return value


# A row id or cursor in a query string: ASCII digits only ("²", "1e3", "-1" are refused).
QueryInt = Annotated[int, BeforeValidator(digits), Field(ge=0, le=DB_INT_MAX)]
# A page size in a query string.
QueryLimit = Annotated[int, BeforeValidator(digits), Field(ge=1, le=DB_INT_MAX)]


class Status(Answer):
    """A package state: the vendor's code, its value (slug) and a label."""

    code: int = Field(description="Vendor status code.")
    value: str
    label: str

    @classmethod
    def of_state(cls, code: int) -> Status:
        """The state with this code."""
        info = state_info(code)
        return cls(code=info.code, value=info.slug, label=str(info.label))

    @classmethod
    def of(cls, code: int | None) -> Status | None:
        """The state with this code; None stays None."""
        return None if code is None else cls.of_state(code)


class StockLocation(Answer):
    """A store (stock location) as answers show it."""

    id: int
    erp_code: str
    name: str


def _left_out() -> Any:
    """The value of a field a partial update left out: never validated, never stored (routes look at
    model_fields_set)."""
    return None


def optional(**constraints: Any) -> Any:
    """A field a PATCH may leave out; sent, it must have its type (null is refused where the type has none)."""
    return Field(default_factory=_left_out, **constraints)
