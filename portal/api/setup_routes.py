"""API routes of the setup wizard (sync, stock integration, cargo companies)."""
from __future__ import annotations

import json

from flask import jsonify, request

from portal.api import bp
from portal.api.auth import caller
from portal.cargo import service as cargo
from portal.errors import PermissionDenied, ValidationFailed
from portal.extensions import db
from portal.integrations import service as integrations

# Paths these routes add to the OpenAPI document, merged by portal/api/openapi.py.
OPENAPI_PATHS: dict = {}


# Stock integration (setup step 10) and cargo companies (setup step 14)


def _catalog_admin_only() -> None:
    """Raise PermissionDenied unless the caller is an admin."""
    if caller().role != "admin":
        raise PermissionDenied("Only admins may set up stock integrations and cargo companies.")


def _catalog_body() -> dict:
    """The request body as a JSON object; raises ValidationFailed for anything else."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise ValidationFailed("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.")
    return body


def _catalog_flag(body: dict, name: str, default: bool) -> bool:
    """A true/false field of a JSON body, with a default when absent."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false.", field=name)
    return value


def _integration_json(integration) -> dict:
    """A stock integration as the API shows it: the password masked, never in full."""
    return {"id": integration.id, "url": integration.url, "stock_engine_type": integration.stock_engine_type,
            "username": integration.username, "password": integrations.password_mask(integration) or None,
            "is_active": integration.is_active,
            "last_test_at": integration.last_test_at.isoformat() if integration.last_test_at else None,
            "last_test_ok": integration.last_test_ok, "last_test_message": integration.last_test_message}


@bp.get("/oms/setup/product-stock-integration/available-stock-engines/")
def available_stock_engines():
    """The stock engines an integration can use, and whether each needs credentials (admins only)."""
    _catalog_admin_only()
    return jsonify(integrations.available_stock_engines())


@bp.post("/oms/setup/product-stock-integration/execute/")
def execute_stock_integration():
    """Define the stock integration {url, stock_engine_type, username?, password?}; the same URL updates it."""
    _catalog_admin_only()
    body = _catalog_body()
    integration, created = integrations.save_integration(
        db.session, url=body.get("url"), stock_engine_type=body.get("stock_engine_type"),
        username=body.get("username"), password=body.get("password"),
        is_active=_catalog_flag(body, "is_active", True), upsert_by_url=True, user_id=caller().user_id)
    return jsonify(_integration_json(integration)), 201 if created else 200


@bp.post("/oms/setup/product-stock-integration/<int:integration_id>/test-connection/")
def test_stock_integration_connection(integration_id: int):
    """Call the integration's stock service now; the outcome is recorded and returned (admins only)."""
    _catalog_admin_only()
    outcome = integrations.run_connection_test(db.session, integration_id, user_id=caller().user_id)
    return jsonify({"ok": outcome.result.ok, "message": outcome.result.message, "http_status": outcome.result.status,
                    "integration": _integration_json(outcome.integration)})


@bp.get("/oms/cargo-company/")
def list_cargo_companies():
    """Every cargo company, credentials masked (admins only)."""
    _catalog_admin_only()
    return jsonify([cargo.company_json(company) for company in cargo.list_companies(db.session)])


@bp.post("/oms/cargo-company/")
def create_cargo_company():
    """Create a cargo company in the vendor's shape (admins only)."""
    _catalog_admin_only()
    body = _catalog_body()
    company, _ = cargo.save_company(
        db.session, name=body.get("name"), erp_code=body.get("erp_code"),
        is_managed_by_oms=body.get("is_managed_by_oms", True), is_demo_client=body.get("is_demo_client", False),
        shipping_company=body.get("shipping_company"), conf=body.get("conf"), user_id=caller().user_id)
    return jsonify(cargo.company_json(company)), 201


def _catalog_openapi_paths() -> dict:
    """OpenAPI paths of the stock integration and cargo company routes."""
    def errors(*codes: str) -> dict:
        """References to the document's shared error responses."""
        names = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
                 "429": "TooManyRequests"}
        return {code: {"$ref": f"#/components/responses/{names[code]}"} for code in codes}

    def json_response(schema: dict, description: str) -> dict:
        """A response with a JSON body."""
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    nullable_string = {"type": ["string", "null"]}
    engine = {"type": "object", "required": ["type", "name", "requires_credentials", "credentials"], "properties": {
        "type": {"type": "string", "examples": ["basic_auth_rest"]}, "name": {"type": "string"},
        "requires_credentials": {"type": "boolean"},
        "credentials": {"type": "array", "items": {"type": "string", "enum": ["username", "password"]},
                        "description": "The credentials the engine needs; a token goes in `password`."}}}
    integration = {"type": "object", "required": ["id", "url", "stock_engine_type", "username", "password",
                                                   "is_active", "last_test_at", "last_test_ok", "last_test_message"],
                   "properties": {
                       "id": {"type": "integer"}, "url": {"type": "string", "format": "uri"},
                       "stock_engine_type": {"type": "string"}, "username": {"type": "string"},
                       "password": {**nullable_string, "description": "Masked (`********` plus, for long "
                                                                      "passwords, the last two characters)."},
                       "is_active": {"type": "boolean"},
                       "last_test_at": {**nullable_string, "format": "date-time"},
                       "last_test_ok": {"type": ["boolean", "null"]}, "last_test_message": {"type": "string"}}}
    cargo_company = {"type": "object", "required": ["id", "name", "erp_code", "is_managed_by_oms", "is_demo_client",
                                                     "shipping_company", "conf"],
                     "properties": {
                         "id": {"type": "integer"}, "name": {"type": "string"}, "erp_code": {"type": "string"},
                         "is_managed_by_oms": {"type": "boolean", "description": "Shipping management by the OMS."},
                         "is_demo_client": {"type": "boolean"},
                         "shipping_company": {"type": "string", "examples": ["yurtici", "aras", "mng", "ups"]},
                         "conf": {"type": "object", "description": "The shipping company's credential fields "
                                  "(secrets masked), or `{\"klass\": \"oms.shipments.clients.demo_client.<Name>\"}`."}}}
    cargo_input = {"type": "object", "required": ["name", "erp_code", "shipping_company", "conf"], "properties": {
        "name": {"type": "string", "maxLength": 120}, "erp_code": {"type": "string", "maxLength": 64},
        "is_managed_by_oms": {"type": "boolean", "default": True},
        "is_demo_client": {"type": "boolean", "default": False},
        "shipping_company": {"type": "string"}, "conf": {"type": "object"}}}
    return {
        "/api/v1/oms/setup/product-stock-integration/available-stock-engines/": {"get": {
            "operationId": "listAvailableStockEngines", "summary": "The stock engines (admins only).",
            "responses": {"200": json_response({"type": "array", "items": engine}, "The engines."),
                          **errors("401", "403", "429")},
        }},
        "/api/v1/oms/setup/product-stock-integration/execute/": {"post": {
            "operationId": "executeStockIntegration",
            "summary": "Define the product stock integration (admins only).",
            "description": "Creates the integration, or updates the one with the same URL. username and password "
                           "are required only for engines that need them; a password left out (or the mask) "
                           "keeps the stored one. The password is encrypted at rest and never returned.",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["url", "stock_engine_type"], "properties": {
                    "url": {"type": "string", "format": "uri", "description": "http:// or https://"},
                    "stock_engine_type": {"type": "string", "description": "From available-stock-engines."},
                    "username": {"type": "string"}, "password": {"type": "string"},
                    "is_active": {"type": "boolean", "default": True}}},
                "example": {"url": "https://stock.example.com/api", "stock_engine_type": "basic_auth_rest",
                            "username": "oms", "password": "s3cret-pass"}}}},
            "responses": {"200": json_response(integration, "The integration was updated."),
                          "201": json_response(integration, "The integration was created."),
                          **errors("400", "401", "403", "429")},
        }},
        "/api/v1/oms/setup/product-stock-integration/{integration_id}/test-connection/": {"post": {
            "operationId": "testStockIntegrationConnection",
            "summary": "Call the integration's stock service now and record the outcome (admins only).",
            "parameters": [{"name": "integration_id", "in": "path", "required": True, "schema": {"type": "integer"},
                            "description": "The stock integration's id."}],
            "responses": {"200": json_response({"type": "object", "required": ["ok", "message", "integration"],
                                                "properties": {"ok": {"type": "boolean"},
                                                               "message": {"type": "string"},
                                                               "http_status": {"type": ["integer", "null"]},
                                                               "integration": integration}},
                                               "The outcome; a failed call is ok: false, not an error."),
                          **errors("401", "403", "404", "429")},
        }},
        "/api/v1/oms/cargo-company/": {
            "get": {
                "operationId": "listCargoCompanies", "summary": "Cargo companies, secrets masked (admins only).",
                "responses": {"200": json_response({"type": "array", "items": cargo_company}, "The companies."),
                              **errors("401", "403", "429")},
            },
            "post": {
                "operationId": "createCargoCompany", "summary": "Create a cargo company (admins only).",
                "description": "conf holds the shipping company's credential fields, or a demo client's klass. "
                               "It is stored encrypted; secrets are never returned in full.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": cargo_input, "examples": {
                    "integration": {"value": {"name": "Aras", "erp_code": "aras_erp", "is_managed_by_oms": True,
                                              "is_demo_client": False, "shipping_company": "aras",
                                              "conf": {"username": "brand", "password": "s3cret",
                                                       "customer_code": "C-1001"}}},
                    "demo": {"value": {"name": "test", "erp_code": "test_erp_code", "is_managed_by_oms": True,
                                       "is_demo_client": True, "shipping_company": "yurtici",
                                       "conf": {"klass": "oms.shipments.clients.demo_client.DemoShippingClient"}}},
                }}}},
                "responses": {"201": json_response(cargo_company, "The company was created."),
                              **errors("400", "401", "403", "429")},
            },
        },
    }


OPENAPI_PATHS.update(_catalog_openapi_paths())
