"""API routes of the setup wizard (sync, stock integration, cargo companies)."""
from __future__ import annotations


from flask import jsonify, request

from portal.api.body import json_object
from portal.api import bp
from portal.api.auth import caller
from portal.cargo import service as cargo
from portal.errors import PermissionDenied, ValidationFailed
from portal.extensions import db
from portal.integrations import service as integrations
from portal.sync import service as sync
from portal.web import plain_int

# Paths these routes add to the OpenAPI document, merged by portal/api/openapi.py.
OPENAPI_PATHS: dict = {}


# Stock integration (setup step 10) and cargo companies (setup step 14)


def _catalog_admin_only() -> None:
    """Raise PermissionDenied unless the caller is an admin."""
    if caller().role != "admin":
        raise PermissionDenied("Only admins may set up stock integrations and cargo companies.")


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
    body = json_object()
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
    body = json_object()
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


# Copying addresses, stores and channels from Omnitron (setup steps 4 to 6) ----------------------------------

# kind -> the vendor's URL prefix for its is_required / execute / get_async_status endpoints
SYNC_PREFIXES = {"addresses": "/oms/setup/addresses/", "stock_locations": "/oms/stock_locations/",
                 "channels": "/oms/channels/"}


def _sync_admin_only() -> None:
    """Raise PermissionDenied unless the caller is an admin."""
    if caller().role != "admin":
        raise PermissionDenied("Only admins may copy data from Omnitron.")


def sync_is_required(kind: str):
    """Whether the kind's data is missing or out of sync with Omnitron, and why (admins only)."""
    _sync_admin_only()
    check = sync.check_required(db.session, kind)
    return jsonify({"kind": kind, "is_required": check.required, "reason": check.reason,
                    "local_count": check.local_count, "remote_count": check.remote_count})


def sync_execute(kind: str):
    """Start copying the kind from Omnitron on the job queue; answers the job (admins only).

    The body is optional: {"changed_only": true} reads only what changed since the last copy.
    """
    _sync_admin_only()
    body = json_object() if request.get_data(cache=True).strip() else {}
    changed_only = body.get("changed_only", False)
    if not isinstance(changed_only, bool):
        raise ValidationFailed("changed_only must be true or false.", field="changed_only")
    job = sync.execute(db.session, kind, user_id=caller().user_id, changed_only=changed_only)
    return jsonify(sync.job_json(job, kind)), 202


def sync_get_async_status(kind: str):
    """The newest job of the kind (or ?job_id=) with its status, progress and counters (admins only)."""
    _sync_admin_only()
    raw = (request.args.get("job_id") or "").strip()
    if raw and plain_int(raw) is None:
        raise ValidationFailed("job_id must be a job number.", field="job_id")
    job = sync.get_job(db.session, kind, plain_int(raw) if raw else None)
    return jsonify(sync.job_json(job, kind))


for _kind, _prefix in SYNC_PREFIXES.items():
    bp.add_url_rule(f"{_prefix}is_required/", endpoint=f"sync_{_kind}_is_required", view_func=sync_is_required,
                    methods=["GET"], defaults={"kind": _kind})
    bp.add_url_rule(f"{_prefix}execute/", endpoint=f"sync_{_kind}_execute", view_func=sync_execute,
                    methods=["POST"], defaults={"kind": _kind})
    bp.add_url_rule(f"{_prefix}get_async_status/", endpoint=f"sync_{_kind}_get_async_status",
                    view_func=sync_get_async_status, methods=["GET"], defaults={"kind": _kind})


def _sync_openapi_paths() -> dict:
    """OpenAPI paths of the sync routes: is_required, execute and get_async_status for each kind."""
    def errors(*codes: str) -> dict:
        """References to the document's shared error responses."""
        names = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
                 "409": "Conflict", "429": "TooManyRequests"}
        return {code: {"$ref": f"#/components/responses/{names[code]}"} for code in codes}

    def json_response(schema: dict, description: str) -> dict:
        """A response with a JSON body."""
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    omnitron_note = (" When Omnitron cannot be reached or keeps failing, the answer is 502 Bad Gateway in the "
                     "usual error shape (code omnitron_unreachable, omnitron_server_error, omnitron_auth_failed, ...).")
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    counter = {"type": "integer", "minimum": 0}
    job = {"type": "object", "required": ["job_id", "kind", "status", "progress", "processed", "total", "created",
                                          "updated", "unchanged", "failed", "removed", "changed_only", "error",
                                          "resumed_from", "created_at", "started_at", "heartbeat_at", "finished_at"],
           "properties": {
               "job_id": {"type": ["integer", "null"], "description": "null when the kind was never copied."},
               "kind": {"type": "string", "enum": list(SYNC_PREFIXES)},
               "status": {"type": "string", "enum": ["not_started", "queued", "running", "done", "failed"]},
               "progress": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Percent done."},
               "processed": {**counter, "description": "Records read from Omnitron so far."},
               "total": {**counter, "description": "Records Omnitron has (all levels for addresses)."},
               "created": counter, "updated": counter, "unchanged": counter,
               "failed": {**counter, "description": "Records that could not be stored (the first few reasons "
                                                    "are in error); they do not stop the job."},
               "removed": {**counter, "description": "Records Omnitron no longer has, deactivated here (never "
                                                     "deleted: packages, scenarios and staff may point at them). "
                                                     "A record that comes back is reactivated and counted as "
                                                     "updated."},
               "changed_only": {"type": "boolean", "description": "True when the job read only records "
                                                                  "changed since the last copy (it removes nothing)."},
               "error": {"type": "string", "description": "Why the job stopped, and/or the first record problems, "
                                                          "one per line; empty when all went well."},
               "resumed_from": {"type": ["integer", "null"],
                                "description": "The unfinished job this one carried on from its last copied page."},
               "created_at": nullable_time, "started_at": nullable_time, "heartbeat_at": nullable_time,
               "finished_at": nullable_time}}
    required = {"type": "object", "required": ["kind", "is_required", "reason", "local_count", "remote_count"],
                "properties": {"kind": {"type": "string", "enum": list(SYNC_PREFIXES)},
                               "is_required": {"type": "boolean"}, "reason": {"type": "string"},
                               "local_count": {**counter, "description": "Records copied from Omnitron that it "
                                                                         "still listed at the last copy."},
                               "remote_count": {"type": ["integer", "null"],
                                                "description": "Records in Omnitron; null when not asked "
                                                               "(nothing copied yet)."}}}
    job_id = {"name": "job_id", "in": "query", "required": False, "schema": {"type": "integer"},
              "description": "A job of this kind; the newest one when left out."}
    labels = {"addresses": ("Addresses", "the address tree (countries, cities, townships, districts)"),
              "stock_locations": ("StockLocations", "stores and warehouses (stock locations)"),
              "channels": ("Channels", "sales channels")}
    paths = {}
    for kind, prefix in SYNC_PREFIXES.items():
        name, what = labels[kind]
        base = f"/api/v1{prefix}"
        paths[f"{base}is_required/"] = {"get": {
            "operationId": f"is{name}SyncRequired", "summary": f"Whether {what} need copying (admins only).",
            "description": "True when nothing was copied yet, Omnitron's count differs from the portal's (records "
                           "deleted in Omnitron show up this way until a copy deactivates them), or a record "
                           "changed in Omnitron since the newest one copied." + omnitron_note,
            "responses": {"200": json_response(required, "The answer and its reason."),
                          **errors("400", "401", "403", "429")},
        }}
        paths[f"{base}execute/"] = {"post": {
            "operationId": f"execute{name}Sync", "summary": f"Start copying {what} from Omnitron (admins only).",
            "description": "Queues a background job and answers it at once; follow it with get_async_status. "
                           "Records are upserted by Omnitron id, so copying again changes only what changed. A job "
                           "that stopped midway (Omnitron failing, a worker killed) is carried on from its last "
                           "copied page. A full copy also deactivates (never deletes) records Omnitron no longer "
                           "has, and reactivates those that come back. The body is optional: "
                           "`{\"changed_only\": true}` reads only records modified since the last copy (quicker, "
                           "but it cannot notice deletions). 409 when a copy of the same kind is already "
                           "running (unless its worker has been silent for over 2 minutes: then it is carried on).",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"changed_only": {"type": "boolean", "default": False}}}}}},
            "responses": {"202": json_response(job, "The job, queued (or already finished when the queue runs "
                                                    "jobs immediately)."),
                          **errors("400", "401", "403", "409", "429")},
        }}
        paths[f"{base}get_async_status/"] = {"get": {
            "operationId": f"get{name}SyncStatus", "summary": f"Status and progress of copying {what} (admins only).",
            "parameters": [job_id],
            "responses": {"200": json_response(job, "The job; status not_started when none has run."),
                          **errors("400", "401", "403", "404", "429")},
        }}
    return paths


OPENAPI_PATHS.update(_sync_openapi_paths())
