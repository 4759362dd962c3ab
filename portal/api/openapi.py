"""The API's OpenAPI 3.1 document, written by hand next to the routes it describes (a test keeps them in step)."""
from __future__ import annotations

from portal.packages.states import STATES, DeliveryType, Visibility


def _ref(name: str) -> dict:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    """A response with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    """An error response in the API's error shape."""
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _errors(*codes: str) -> dict:
    """The shared error responses for the given status codes."""
    return {code: {"$ref": f"#/components/responses/{_ERROR_RESPONSES[code][0]}"} for code in codes}


_ERROR_RESPONSES = {
    "400": ("BadRequest", "Invalid input, a command that cannot run in the package's state, or a wrong pickup "
                          "code (code: validation_error, command_rejected, invalid_otp)."),
    "401": ("Unauthorized", "No token, or an invalid one (code: not_authenticated, authentication_failed). "
                            "The response carries `WWW-Authenticate: Token`."),
    "403": ("Forbidden", "The caller's role may not do this (code: permission_denied)."),
    "404": ("NotFound", "No such record, or it is in a store the caller does not belong to (code: not_found)."),
    "409": ("Conflict", "Someone changed the package at the same moment, a request with the same "
                        "Idempotency-Key is still running, or a job of the same kind is already running "
                        "(code: concurrent_change, idempotency_in_progress, import_running, ...). Retry later."),
    "422": ("IdempotencyKeyReused", "The Idempotency-Key was already used for a different request "
                                    "(code: idempotency_key_reused)."),
    "429": ("TooManyRequests", "Rate limit reached, too many wrong pickup codes, or too many code resends "
                               "(code: rate_limited)."),
}

_PACKAGE_ID = {"name": "package_id", "in": "path", "required": True, "schema": {"type": "integer"},
               "description": "The package's id."}
_SETTING_ID = {"name": "setting_id", "in": "path", "required": True, "schema": {"type": "integer"},
               "description": "The application setting's id."}

_STATUS_CODES = sorted(STATES)
_STATUS_SLUGS = [STATES[c].slug for c in _STATUS_CODES]


def _schemas() -> dict:
    """Component schemas."""
    nullable_string = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "description": "Every error has this shape. Extra keys carry details, e.g. `attempts_left` after a "
                           "wrong pickup code, `missing` / `mismatched` order items for barcodes.",
            "required": ["detail", "code"],
            "properties": {
                "detail": {"type": "string", "description": "A message that can be shown to a person."},
                "code": {"type": "string", "description": "Machine-readable error code.",
                         "examples": ["validation_error", "command_rejected", "invalid_otp", "not_found"]},
                "field": {"type": "string", "description": "The input the error is about, when there is one."},
                "attempts_left": {"type": "integer"},
                "missing": {"type": "array", "items": {"type": "integer"}},
                "mismatched": {"type": "array", "items": {"type": "integer"}},
            },
            "additionalProperties": True,
        },
        "Status": {
            "type": "object",
            "required": ["code", "value", "label"],
            "properties": {
                "code": {"type": "integer", "enum": _STATUS_CODES, "description": "Vendor status code."},
                "value": {"type": "string", "enum": _STATUS_SLUGS},
                "label": {"type": "string"},
            },
        },
        "StockLocation": {
            "type": "object",
            "required": ["id", "erp_code", "name"],
            "properties": {"id": {"type": "integer"}, "erp_code": {"type": "string"}, "name": {"type": "string"}},
        },
        "Customer": {
            "type": "object",
            "required": ["first_name", "last_name", "phone"],
            "properties": {"first_name": {"type": "string"}, "last_name": {"type": "string"},
                           "phone": {"type": "string"}},
        },
        "Package": {
            "type": "object",
            "required": ["id", "number", "order_number", "status", "delivery_type", "delivery_from_store",
                         "stock_location", "customer", "item_count", "created_at", "updated_at", "version"],
            "properties": {
                "id": {"type": "integer"},
                "number": {"type": "string"},
                "order_number": {"type": "string"},
                "status": _ref("Status"),
                "delivery_type": {"type": "string", "enum": list(DeliveryType.ALL)},
                "delivery_from_store": {"type": "boolean"},
                "stock_location": _ref("StockLocation"),
                "customer": _ref("Customer"),
                "item_count": {"type": "integer"},
                "created_at": {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."},
                "updated_at": {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."},
                "version": {"type": "integer", "description": "Grows by one with every change of state."},
            },
        },
        "PackageItem": {
            "type": "object",
            "required": ["order_item", "sku", "name", "barcode", "quantity"],
            "properties": {"order_item": {"type": "integer"}, "sku": {"type": "string"}, "name": {"type": "string"},
                           "barcode": {"type": "string"}, "quantity": {"type": "integer"}},
        },
        "AvailableTransition": {
            "type": "object",
            "required": ["id", "slug", "name", "command_code", "destination_state"],
            "properties": {
                "id": {"type": "integer"}, "slug": {"type": "string"}, "name": {"type": "string"},
                "command_code": {"type": "string"},
                "destination_state": {"oneOf": [_ref("Status"), {"type": "null"}],
                                      "description": "null: the state the package had before it was blocked."},
            },
        },
        "PackageDetail": {
            "allOf": [_ref("Package"), {
                "type": "object",
                "required": ["items", "transitions"],
                "properties": {
                    "items": {"type": "array", "items": _ref("PackageItem")},
                    "transitions": {"type": "array", "items": _ref("AvailableTransition"),
                                    "description": "Active commands that start from the package's state."},
                },
            }],
        },
        "PackagePage": {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": {"type": "array", "items": _ref("Package")},
                "next": {**nullable_string, "format": "uri", "description": "Older packages; null on the last page."},
                "previous": {**nullable_string, "format": "uri",
                             "description": "Newer packages; null on the first page."},
            },
        },
        "Transition": {
            "type": "object",
            "required": ["id", "slug", "name", "command_code", "source_state", "destination_state", "visibility",
                         "configuration", "is_active"],
            "properties": {
                "id": {"type": "integer", "description": "The transition id the command endpoint accepts."},
                "slug": {"type": "string"},
                "name": {"type": "string", "description": "The command's name."},
                "command_code": {"type": "string", "description": "Chooses the code that does the command's work."},
                "source_state": _ref("Status"),
                "destination_state": {"oneOf": [_ref("Status"), {"type": "null"}],
                                      "description": "null: the state the package had before it was blocked."},
                "visibility": {"type": "array", "items": {"type": "string", "enum": list(Visibility.ALL)}},
                "configuration": {"type": "object"},
                "is_active": {"type": "boolean"},
            },
        },
        "CommandRequest": {
            "type": "object",
            "description": "Give `transition` or `slug` (or both, naming the same command).",
            "properties": {
                "transition": {"type": "integer", "description": "Transition id."},
                "slug": {"type": "string", "description": "Transition slug, e.g. ready-for-customer-pickup."},
                "input_parameters": {
                    "type": "object",
                    "properties": {
                        "package": {"type": "integer", "description": "When given, must equal package_id."},
                        "otp": {"type": "string", "pattern": "^[0-9]+$",
                                "description": "The customer's pickup code (self-service-package-delivery)."},
                        "barcodes": {
                            "description": "Complete Packaging: the barcode of every order item.",
                            "oneOf": [_ref("ItemBarcode"), {"type": "array", "items": _ref("ItemBarcode")}],
                        },
                        "denial_reason": {"type": "integer", "description": "Refuse with denial reason."},
                        "tracking_number": {"type": "string", "description": "Ship the package."},
                        "reason": {"type": "string", "description": "Block the package."},
                    },
                    "additionalProperties": True,
                },
            },
            "anyOf": [{"required": ["transition"]}, {"required": ["slug"]}],
        },
        "ItemBarcode": {
            "type": "object",
            "required": ["order_item", "barcode"],
            "properties": {"order_item": {"type": "integer"}, "barcode": {"type": "string"}},
        },
        "ApplicationSetting": {
            "type": "object",
            "required": ["id", "key", "json_value"],
            "properties": {"id": {"type": "integer"}, "key": {"type": "string"},
                           "json_value": {"description": "Any JSON value; IS_OTP_ENABLED takes true or false."}},
        },
        "ApplicationSettingPatch": {
            "type": "object",
            "required": ["json_value"],
            "properties": {
                "id": {"type": "integer", "description": "Names the setting (or give key)."},
                "key": {"type": "string", "examples": ["IS_OTP_ENABLED"]},
                "json_value": {"description": "The new value."},
            },
        },
    }


def _paths() -> dict:
    """Every route of the API."""
    idempotency_key = {
        "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
        "description": "Retrying with the same key and body returns the first answer (with header "
                       "`Idempotent-Replayed: true`) without running the command again. Keys last 24 hours.",
    }
    setting_patch_body = {"required": True, "content": {"application/json": {
        "schema": _ref("ApplicationSettingPatch"),
        "example": {"key": "IS_OTP_ENABLED", "json_value": False}}}}
    return {
        "/api/v1/openapi.json": {"get": {
            "operationId": "getOpenApiDocument", "summary": "This document.", "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
        }},
        "/api/v1/oms/packages/": {"get": {
            "operationId": "listPackages", "summary": "Packages in the caller's stores, newest first.",
            "description": "Keyset pagination: follow `next` and `previous`; every page costs the same.",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string"},
                 "description": "Status code (550) or value (ready_for_customer_pickup)."},
                {"name": "delivery_type", "in": "query", "schema": {"type": "string", "enum": list(DeliveryType.ALL)}},
                {"name": "stock_location", "in": "query", "schema": {"type": "integer"},
                 "description": "Stock location id."},
                {"name": "search", "in": "query", "schema": {"type": "string", "maxLength": 64},
                 "description": "Exact package number or order number."},
                {"name": "after", "in": "query", "schema": {"type": "integer"},
                 "description": "Cursor: packages older than this id (from `next`)."},
                {"name": "before", "in": "query", "schema": {"type": "integer"},
                 "description": "Cursor: packages newer than this id (from `previous`)."},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                 "description": "Page size (default 25; larger values are capped at 100)."},
            ],
            "responses": {"200": _json(_ref("PackagePage"), "A page of packages."), **_errors("400", "401", "429")},
        }},
        "/api/v1/oms/packages/{package_id}/": {"get": {
            "operationId": "getPackage", "summary": "One package with its items and available commands.",
            "parameters": [_PACKAGE_ID],
            "responses": {"200": _json(_ref("PackageDetail"), "The package."), **_errors("401", "404", "429")},
        }},
        "/api/v1/oms/packages/{package_id}/command/": {"post": {
            "operationId": "runPackageCommand", "summary": "Run a command on a package.",
            "description": "The command is named by transition id or slug. Running it from a state it does not "
                           "start from is a validation error (400).",
            "parameters": [_PACKAGE_ID, idempotency_key],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("CommandRequest"),
                "examples": {
                    "completePackaging": {"value": {
                        "slug": "complete-packaging-from-waiting",
                        "input_parameters": {"package": 12, "barcodes": {"order_item": 12, "barcode": "868000956286"}},
                    }},
                    "handover": {"value": {"slug": "self-service-package-delivery",
                                           "input_parameters": {"package": 12, "otp": "123456"}}},
                }}}},
            "responses": {"204": {"description": "The command ran."},
                          **_errors("400", "401", "403", "404", "409", "422", "429")},
        }},
        "/api/v1/oms/transitions/": {"get": {
            "operationId": "listTransitions", "summary": "Every package command (transition).",
            "responses": {"200": _json({"type": "array", "items": _ref("Transition")}, "The transitions."),
                          **_errors("401", "429")},
        }},
        "/api/v1/oms/settings/application_settings/": {
            "get": {
                "operationId": "listApplicationSettings", "summary": "Application settings (admins only).",
                "responses": {"200": _json({"type": "array", "items": _ref("ApplicationSetting")}, "The settings."),
                              **_errors("401", "403", "429")},
            },
            "patch": {
                "operationId": "updateApplicationSetting",
                "summary": "Change a setting named by id or key; a new key is created (admins only).",
                "requestBody": setting_patch_body,
                "responses": {"200": _json(_ref("ApplicationSetting"), "The stored setting."),
                              **_errors("400", "401", "403", "404", "429")},
            },
        },
        "/api/v1/oms/settings/application_settings/{setting_id}/": {
            "get": {
                "operationId": "getApplicationSetting", "summary": "One application setting (admins only).",
                "parameters": [_SETTING_ID],
                "responses": {"200": _json(_ref("ApplicationSetting"), "The setting."),
                              **_errors("401", "403", "404", "429")},
            },
            "patch": {
                "operationId": "updateApplicationSettingById", "summary": "Change this setting (admins only).",
                "parameters": [_SETTING_ID],
                "requestBody": setting_patch_body,
                "responses": {"200": _json(_ref("ApplicationSetting"), "The stored setting."),
                              **_errors("400", "401", "403", "404", "429")},
            },
        },
    }


def document() -> dict:
    """The whole OpenAPI document."""
    from portal.api import admin_openapi, setup_routes, webhook_routes  # these routes describe their own paths

    paths = _paths()
    for extra in (setup_routes.OPENAPI_PATHS, webhook_routes.OPENAPI_PATHS, admin_openapi.OPENAPI_PATHS):
        for path, item in extra.items():
            # Merged per path: two modules may serve different methods of one URL (GET/POST /oms/transitions/).
            paths[path] = {**paths.get(path, {}), **item}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OMS Portal API",
            "version": "1.0.0",
            "description": "Packages and their commands for integrated software (ERP). Authenticate with "
                           "`Authorization: Token <key>`; create a key with `flask --app wsgi create-api-token "
                           "USERNAME`. Store staff tokens see only their stores' packages.",
        },
        "servers": [{"url": "/"}],
        "security": [{"tokenAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"tokenAuth": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "The word Token, a space and the key: `Token 3q2-...`.",
            }},
            "schemas": {**_schemas(), **admin_openapi.OPENAPI_SCHEMAS},
            "responses": {name: _error(description) for name, description in _ERROR_RESPONSES.values()},
        },
    }
