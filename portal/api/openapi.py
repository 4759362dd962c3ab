"""The API's OpenAPI 3.1 document, generated from the operations and their pydantic models.

Nothing here describes a route by hand: paths, parameters, bodies and answers come from the
`operation(...)` records (portal/api/operations.py), so the document is what the routes do.
"""
from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from portal.api.operations import OPERATIONS, PREFIX, Access, Operation

REF = "#/components/schemas/{model}"

ERROR_RESPONSES = {
    "400": ("BadRequest", "Invalid input, a command that cannot run in the package's state, or a wrong pickup "
                          "code (code: validation_error, command_rejected, invalid_otp). `field` names the input "
                          "as the API spells it."),
    "401": ("Unauthorized", "No token, or an invalid one (code: not_authenticated, authentication_failed). "
                            "The response carries `WWW-Authenticate: Token`."),
    "403": ("Forbidden", "The caller's role may not do this (code: permission_denied)."),
    "404": ("NotFound", "No such record, or it is in a store the caller does not belong to (code: not_found)."),
    "409": ("Conflict", "Someone changed the record at the same moment, a request with the same "
                        "Idempotency-Key is still running, or a job of the same kind is already running "
                        "(code: concurrent_change, idempotency_in_progress, import_running, ...). Retry later."),
    "422": ("IdempotencyKeyReused", "The Idempotency-Key was already used for a different request "
                                    "(code: idempotency_key_reused)."),
    "429": ("TooManyRequests", "Rate limit reached, too many wrong pickup codes, or too many code resends "
                               "(code: rate_limited)."),
    "502": ("BadGateway", "Omnitron could not be reached or answered with an error (code: omnitron_unreachable, "
                          "...)."),
}

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error has this shape. Extra keys carry details, e.g. `errors` (every invalid field), "
                   "`attempts_left` after a wrong pickup code, `missing` / `mismatched` order items for barcodes.",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "A message that can be shown to a person."},
        "code": {"type": "string", "description": "Machine-readable error code.",
                 "examples": ["validation_error", "command_rejected", "invalid_otp", "not_found"]},
        "field": {"type": "string", "description": "The input the error is about, when there is one."},
        "errors": {"type": "array", "description": "Every invalid field of the request.",
                   "items": {"type": "object", "required": ["field", "detail"],
                             "properties": {"field": {"type": "string"}, "detail": {"type": "string"}}}},
        "attempts_left": {"type": "integer"},
        "missing": {"type": "array", "items": {"type": "integer"}},
        "mismatched": {"type": "array", "items": {"type": "integer"}},
    },
    "additionalProperties": True,
}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "Retrying with the same key and body returns the first answer (with header "
                   "`Idempotent-Replayed: true`) without running the command again. Keys last 24 hours.",
}

_STATUS_TEXT = {200: "OK.", 201: "Created.", 202: "Accepted: the work runs on the job queue.", 204: "Done."}


def _tidy(schema: Any) -> Any:
    """A schema without pydantic's titles and null defaults (noise in a document read by people)."""
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tidied = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties", "$defs", "patternProperties"):
            tidied[key] = {name: _tidy(item) for name, item in value.items()}
        else:
            tidied[key] = _tidy(value)
    return tidied


class _Schemas:
    """The document's component schemas, filled as operations refer to models."""

    def __init__(self) -> None:
        self.components: dict[str, dict] = {"Error": ERROR_SCHEMA}

    def _add(self, name: str, schema: dict) -> None:
        """Keep a named schema; two different schemas under one name are a mistake in the models."""
        schema = _tidy(schema)
        known = self.components.get(name)
        if known is not None and known != schema:
            raise ValueError(f"Two different API models are named {name}; rename one.")
        self.components[name] = schema

    def of(self, kind: Any, mode: str) -> dict:
        """The schema of a model or type (validation mode for input, serialization for answers)."""
        schema = TypeAdapter(kind).json_schema(mode=mode, ref_template=REF)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            self._add(name, definition)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self._add(kind.__name__, schema)
            return {"$ref": REF.format(model=kind.__name__)}
        return _tidy(schema)


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: /oms/users/<int:user_id>/ -> /api/v1/oms/users/{user_id}/."""
    return PREFIX + re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _path_parameters(rule: str) -> list[dict]:
    """The path parameters of a Flask rule (<int:x> is an integer, anything else a string)."""
    parameters = []
    for converter, name in re.findall(r"<(?:([^:<>]+):)?([^<>]+)>", rule):
        schema = {"type": "integer", "minimum": 0} if converter == "int" else {"type": "string"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(query: type[BaseModel], schemas: _Schemas) -> list[dict]:
    """One query parameter per field of the query model."""
    schema = _tidy(query.model_json_schema(ref_template=REF))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        description = prop.pop("description", None)
        prop = prop["anyOf"][0] if "anyOf" in prop and {"type": "null"} in prop["anyOf"] else prop
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _operation(op: Operation, schemas: _Schemas) -> dict:
    """The OpenAPI operation object of one operation."""
    parameters = _path_parameters(op.path)
    if op.query is not None:
        parameters += _query_parameters(op.query, schemas)
    if op.idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    success: dict = {"description": _STATUS_TEXT.get(op.status, "OK.")}
    if op.answer is not None:
        success["content"] = {"application/json": {"schema": schemas.of(op.answer, "serialization")}}
    statuses = {op.status, *op.also}
    responses: dict = {str(status): success for status in sorted(statuses)}
    if op.access is not Access.PUBLIC:
        codes = set(op.errors) | {"401", "429"}
        if op.idempotent:
            codes |= {"409", "422"}
        responses.update({code: {"$ref": f"#/components/responses/{ERROR_RESPONSES[code][0]}"}
                          for code in sorted(codes)})
    result: dict = {"operationId": op.endpoint, "summary": op.summary, "responses": responses}
    if op.description and op.description != op.summary:
        result["description"] = op.description
    if op.tag:
        result["tags"] = [op.tag]
    if parameters:
        result["parameters"] = parameters
    if op.body is not None:
        content: dict = {"schema": schemas.of(op.body, "validation")}
        if op.example is not None:
            content["example"] = op.example
        result["requestBody"] = {"required": op.body_required, "content": {"application/json": content}}
    if op.access is Access.PUBLIC:
        result["security"] = []
    return result


@functools.cache
def document() -> dict:
    """The whole OpenAPI document (built once: the operations are all registered when portal.api is imported)."""
    schemas = _Schemas()
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OMS Portal API",
            "version": "1.0.0",
            "description": "Packages and their commands for integrated software (ERP). Authenticate with "
                           "`Authorization: Token <key>`; create a key with `flask --app wsgi create-api-token "
                           "USERNAME`. Store staff tokens see only their stores' packages. Request bodies are "
                           "strict: JSON types as documented, unknown fields refused.",
        },
        "servers": [{"url": "/"}],
        "security": [{"tokenAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"tokenAuth": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "The word Token, a space and the key: `Token 3q2-...`.",
            }},
            "schemas": schemas.components,
            "responses": {name: {"description": description,
                                 "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
                          for name, description in ERROR_RESPONSES.values()},
        },
    }
