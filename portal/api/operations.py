"""One place that describes each API operation: method, path, models, summary and who may call it.

An operation is a plain function decorated with `operation(...)`. The decorator registers the Flask
route, and the wrapper it puts around the function does the same work for every route:

1. checks the caller's role (admins only unless the operation says otherwise);
2. reads the query string into the operation's query model and the JSON body into its body model
   (strict types, unknown fields refused); a missing or wrong field is a 400 naming the field as the
   API spells it;
3. calls the function with the path arguments, `body=` and `query=`;
4. serialises what the function returns with the operation's answer model, with its status.

The same records produce the OpenAPI document (portal/api/openapi.py), so the document cannot drift
from what the routes accept and answer.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import wraps
from typing import Any

from flask import Response, jsonify, request
from flask_babel import gettext as _
from pydantic import BaseModel, TypeAdapter, ValidationError

from portal.accounts.models import Role
from portal.api import bp
from portal.api.auth import caller
from portal.api.idempotency import idempotent
from portal.errors import DomainError, PermissionDenied, ValidationFailed

PREFIX = "/api/v1"


class Access(Enum):
    """Who may call an operation (every operation but PUBLIC needs a valid token)."""

    PUBLIC = "public"        # no token needed
    ANY = "any"              # any valid token (store staff see only their stores)
    MANAGERS = "managers"    # brand managers and admins
    ADMIN = "admin"          # admins only: the default


_ROLES = {Access.MANAGERS: {Role.ADMIN.value, Role.BRAND_MANAGER.value}, Access.ADMIN: {Role.ADMIN.value}}


@dataclass
class Operation:
    """Everything the route wrapper and the OpenAPI document need to know about one operation."""

    method: str
    path: str                      # Flask rule under /api/v1, e.g. /oms/users/<int:user_id>/
    endpoint: str
    summary: str
    description: str
    access: Access
    body: type[BaseModel] | None
    body_required: bool
    query: type[BaseModel] | None
    answer: Any                    # a model, list[Model], or None for an empty answer
    status: int
    also: tuple[int, ...]          # other success statuses it may answer
    errors: tuple[str, ...]
    tag: str
    idempotent: bool
    renames: dict[str, str]        # domain field name -> API field name, for domain errors
    example: dict | None
    defaults: dict = field(default_factory=dict)


OPERATIONS: list[Operation] = []
PUBLIC_ENDPOINTS: set[str] = set()


# Parts of a pydantic error location that name a member of a union type, not a field.
_TYPE_TAGS = {"int", "str", "bool", "float", "none", "list", "dict"}
_FIELD_PART = re.compile(r"^[a-z_][a-z0-9_]*$")


def _api_location(loc: tuple) -> tuple[tuple, bool]:
    """The location without union member tags (source_state.int -> source_state), and whether any was dropped."""
    kept = tuple(part for part in loc if isinstance(part, int) or
                 (_FIELD_PART.match(str(part)) and part not in _TYPE_TAGS))
    return kept, len(kept) != len(loc)


def _field_name(loc: tuple) -> str:
    """A pydantic error location as the API names the field: input_parameters.package, locations.0."""
    return ".".join(str(part) for part in _api_location(loc)[0]) or "body"


def _problem(error: Any) -> str:
    """A translated sentence for one pydantic error."""
    name = _field_name(error["loc"])
    kind = error["type"]
    if _api_location(error["loc"])[1] and kind != "extra_forbidden":
        return _("%(field)s has the wrong type or shape.", field=name)
    if kind == "missing":
        return _("%(field)s is required.", field=name)
    if kind == "extra_forbidden":
        return _("Unknown field '%(field)s'.", field=name)
    if kind in ("bool_type", "bool_parsing"):
        return _("%(field)s must be true or false.", field=name)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("%(field)s must be a whole number.", field=name)
    if kind in ("float_type", "float_parsing", "plain_number"):
        return _("%(field)s must be a number.", field=name)
    if kind == "string_type":
        return _("%(field)s must be a string.", field=name)
    if kind in ("list_type", "tuple_type"):
        return _("%(field)s must be a list.", field=name)
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return _("%(field)s must be a JSON object.", field=name)
    if kind == "string_too_long":
        return _("%(field)s is too long (at most %(limit)s characters).", field=name,
                 limit=error.get("ctx", {}).get("max_length"))
    bounds = error.get("ctx", {})
    if kind == "greater_than_equal":
        return _("%(field)s must be at least %(limit)s.", field=name, limit=bounds.get("ge"))
    if kind == "less_than_equal":
        return _("%(field)s must be at most %(limit)s.", field=name, limit=bounds.get("le"))
    if kind in ("greater_than", "less_than"):
        return _("%(field)s is out of range.", field=name)
    if kind == "literal_error" or kind == "enum":
        return _("%(field)s must be one of: %(choices)s.", field=name,
                 choices=error.get("ctx", {}).get("expected", ""))
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", "")) or _("%(field)s is not valid.", field=name)
    return _("%(field)s is not valid.", field=name)


def validation_failed(exc: ValidationError) -> ValidationFailed:
    """A pydantic error as the API's 400: the first problem names the field; `errors` lists them all."""
    problems = exc.errors(include_url=False, include_input=False)
    listed: list[dict] = []
    for problem in problems:
        name = _field_name(problem["loc"])
        if not any(item["field"] == name for item in listed):  # a union reports each member: say it once
            listed.append({"field": name, "detail": _problem(problem)})
    first = listed[0]
    return ValidationFailed(first["detail"], field=first["field"], details={"errors": listed})


def _json_body(required: bool) -> bytes | None:
    """The raw JSON body; None when it is empty and may be; raises ValidationFailed when it must be an object."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ValidationFailed(_("The request body must be a JSON object."))
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ValidationFailed(_("The request body is not valid JSON.")) from None
    except RecursionError:  # thousands of nested arrays or objects: no request of ours looks like that
        raise ValidationFailed(_("The request body is nested too deeply.")) from None
    if not isinstance(parsed, dict):
        raise ValidationFailed(_("The request body must be a JSON object."))
    return raw


def _read_body(model: type[BaseModel], required: bool) -> BaseModel:
    """The body validated by its model (strict JSON types, unknown fields refused)."""
    raw = _json_body(required)
    try:
        return model.model_validate_json(raw) if raw is not None else model.model_validate({})
    except ValidationError as exc:
        raise validation_failed(exc) from None


def _read_query(model: type[BaseModel]) -> BaseModel:
    """The query string validated by its model; empty arguments count as absent."""
    values = {name: value.strip() for name, value in request.args.items() if value.strip()}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise validation_failed(exc) from None


_ADAPTERS: dict[int, TypeAdapter] = {}


def _adapter(answer: Any) -> TypeAdapter:
    """A cached TypeAdapter for an answer type."""
    key = id(answer)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(answer)
    return _ADAPTERS[key]


def _answer(op: Operation, result: Any) -> Response:
    """What the function returned, serialised by the operation's answer model."""
    if isinstance(result, Response):
        return result
    status = op.status
    if isinstance(result, tuple):
        result, status = result
    if op.answer is None:
        return Response(status=status)
    response = jsonify(_adapter(op.answer).dump_python(result, mode="json"))
    response.status_code = status
    return response


def check_access(access: Access) -> None:
    """Raise PermissionDenied unless the caller's role may call an operation with this access."""
    allowed = _ROLES.get(access)
    if allowed is None:
        return
    if caller().role not in allowed:
        if access is Access.ADMIN:
            raise PermissionDenied(_("Only admins may do this."))
        raise PermissionDenied(_("Only brand managers and admins may do this."))


def operation(method: str, path: str, *, summary: str, access: Access = Access.ADMIN,
              body: type[BaseModel] | None = None, body_required: bool = True, query: type[BaseModel] | None = None,
              answer: Any = None, status: int = 200, also: tuple[int, ...] = (), errors: tuple[str, ...] = (),
              tag: str = "", is_idempotent: bool = False, renames: dict[str, str] | None = None,
              example: dict | None = None, endpoint: str | None = None, defaults: dict | None = None,
              description: str | None = None):
    """Register a function as an API operation (see the module docstring). Admins only unless access says so.

    errors: the status codes the operation may answer besides 401 and 429 (which every token
    operation may); 400 is added when there is a body or a query, 403 unless any token may call it.
    renames: domain field names to report under the API's name (e.g. {"active": "is_active"}).
    """
    def register(view: Callable) -> Callable:
        """Add the route and its record."""
        codes = set(errors)
        if body is not None or query is not None:
            codes.add("400")
        if access in (Access.MANAGERS, Access.ADMIN):
            codes.add("403")
        op = Operation(method=method.upper(), path=path, endpoint=endpoint or view.__name__, summary=summary,
                       description=description if description is not None else (view.__doc__ or "").strip(),
                       access=access, body=body, body_required=body_required, query=query, answer=answer,
                       status=status, also=also, errors=tuple(sorted(codes)), tag=tag, idempotent=is_idempotent,
                       renames=renames or {}, example=example, defaults=defaults or {})

        def run(**kwargs):
            """Validate, call the function, rename domain fields."""
            if op.query is not None:
                kwargs["query"] = _read_query(op.query)
            if op.body is not None:
                kwargs["body"] = _read_body(op.body, op.body_required)
            try:
                return view(**kwargs)
            except DomainError as error:
                if error.field in op.renames:
                    error.field = op.renames[error.field]
                raise

        def respond(**kwargs) -> Response:
            """The operation's answer as a response (what an Idempotency-Key keeps)."""
            return _answer(op, run(**kwargs))

        inner = idempotent(respond) if is_idempotent else respond

        @wraps(view)
        def wrapped(**kwargs):
            """The Flask view: access first, then the operation."""
            check_access(op.access)
            return inner(**kwargs)

        if op.defaults:
            bp.add_url_rule(path, endpoint=op.endpoint, view_func=wrapped, methods=[op.method], defaults=op.defaults)
        else:
            bp.add_url_rule(path, endpoint=op.endpoint, view_func=wrapped, methods=[op.method])
        OPERATIONS.append(op)
        if access is Access.PUBLIC:
            PUBLIC_ENDPOINTS.add(f"{bp.name}.{op.endpoint}")
        return view

    return register
