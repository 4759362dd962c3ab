"""OpenAPI paths and schemas of the admin routes in admin_routes.py (users, scenarios, commands, jobs, order import)."""
from __future__ import annotations

from portal.accounts.models import Role
from portal.api.openapi import _errors, _json, _ref
from portal.api.pagination import MAX_LIMIT
from portal.jobs import job_types
from portal.packages.states import Visibility
from portal.scenarios.service import RULES

_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time", "description": "ISO 8601, UTC."}
_ROLES = [role.value for role in Role]


def _id(name: str, what: str) -> dict:
    """A path parameter holding a row id."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"},
            "description": f"The {what}'s id."}


def _body(schema: dict, example: dict | None = None, required: bool = True) -> dict:
    """A JSON request body."""
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": required, "content": {"application/json": content}}


def _page(item: str) -> dict:
    """A keyset page of items with next / previous links."""
    return {"type": "object", "required": ["results", "next", "previous"], "properties": {
        "results": {"type": "array", "items": _ref(item)},
        "next": {"type": ["string", "null"], "format": "uri", "description": "The next page; null on the last."},
        "previous": {"type": ["string", "null"], "format": "uri",
                     "description": "The previous page; null on the first."}}}


_PAGE_PARAMS = [
    {"name": "after", "in": "query", "schema": {"type": "integer"}, "description": "Cursor (from `next`)."},
    {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "Cursor (from `previous`)."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
     "description": f"Page size (default 25; larger values are capped at {MAX_LIMIT})."},
]
_STATE_INPUT = {"description": "A status code (500), value (packed) or Status object.",
                "oneOf": [{"type": "integer"}, {"type": "string"}, _ref("Status")]}

OPENAPI_SCHEMAS: dict = {
    "User": {"type": "object", "required": ["id", "username", "full_name", "role", "stores", "is_active",
                                            "is_locked", "created_at"],
             "description": "Never carries the password or its hash.",
             "properties": {
                 "id": {"type": "integer"}, "username": {"type": "string"}, "full_name": {"type": "string"},
                 "role": {"type": "string", "enum": _ROLES},
                 "stores": {"type": "array", "items": _ref("StockLocation")},
                 "is_active": {"type": "boolean"},
                 "is_locked": {"type": "boolean", "description": "Locked for a while after too many failed logins; "
                                                                 "reset_password lifts the lock."},
                 "created_at": _TIME}},
    "UserPage": _page("User"),
    "UserCreate": {"type": "object", "required": ["username", "password", "role"], "additionalProperties": False,
                   "properties": {
                       "username": {"type": "string", "maxLength": 80, "description": "One word."},
                       "password": {"type": "string", "minLength": 8, "maxLength": 200},
                       "full_name": {"type": "string", "maxLength": 120},
                       "role": {"type": "string", "enum": _ROLES},
                       "stores": {"type": "array", "items": {"type": "string"},
                                  "description": "Store erp_codes; store staff need at least one."}}},
    "UserPatch": {"type": "object", "description": "Fields left out keep their values. The whole change is "
                                                   "refused (400) when any part is: nobody deactivates themself, "
                                                   "and the last active admin can be neither deactivated nor "
                                                   "demoted. The fields the answer shows may be sent back.",
                  "properties": {
                      "full_name": {"type": "string", "maxLength": 120},
                      "role": {"type": "string", "enum": _ROLES},
                      "stores": {"type": "array", "items": {"type": "string"}, "description": "Store erp_codes."},
                      "is_active": {"type": "boolean"}}},
    "PasswordReset": {"type": "object", "required": ["password"], "additionalProperties": False,
                      "properties": {"password": {"type": "string", "minLength": 8, "maxLength": 200,
                                                  "description": "The new password, chosen by the admin."}}},
    "ScenarioLocation": {"type": "object", "required": ["stock_location", "erp_code", "name", "priority"],
                         "properties": {"stock_location": {"type": "integer", "description": "Stock location id."},
                                        "erp_code": {"type": "string"}, "name": {"type": "string"},
                                        "priority": {"type": "integer", "minimum": 1,
                                                     "description": "1 is tried first."}}},
    "ScenarioLocationInput": {
        "type": "object", "description": "Name the location by stock_location (id) or erp_code. Priorities are "
                                         "stored as 1..n in the given order; locations without one come last.",
        "properties": {"stock_location": {"type": "integer"}, "erp_code": {"type": "string"},
                       "priority": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000}}},
    "Scenario": {"type": "object", "required": ["id", "channel", "channel_name", "name", "is_active", "rules",
                                                "locations", "created_at", "updated_at"],
                 "properties": {
                     "id": {"type": "integer"}, "channel": {"type": "integer", "description": "Channel id."},
                     "channel_name": {"type": "string"}, "name": {"type": "string"}, "is_active": {"type": "boolean"},
                     "rules": {"type": "array", "items": {"type": "string", "enum": list(RULES)}},
                     "locations": {"type": "array", "items": _ref("ScenarioLocation")},
                     "created_at": _TIME, "updated_at": _TIME}},
    "ScenarioInput": {
        "type": "object", "description": "The editor's rules: exactly one of SORT_BY_PRIORITY and SORT_BY_DISTANCE; "
                                         "not STORE_ONLY with WAREHOUSE_ONLY; at least one active location; "
                                         "distance sorting needs coordinates; at most one active scenario per "
                                         "channel. On PATCH fields left out keep their values.",
        "properties": {
            "channel": {"type": "integer", "description": "Channel id (the portal's)."},
            "name": {"type": "string", "maxLength": 120},
            "rules": {"type": "array", "items": {"type": "string", "enum": list(RULES)},
                      "default": ["SORT_BY_PRIORITY"]},
            "locations": {"type": "array", "items": _ref("ScenarioLocationInput"), "minItems": 1},
            "is_active": {"type": "boolean", "default": True}}},
    "TransitionInput": {
        "type": "object", "description": "The transitions editor's validation: a unique slug, a known command code "
                                         "and states, and no state left without an active command out of it "
                                         "(field `flow`, with `stuck_states`). On PATCH fields left out keep "
                                         "their values; a body with only is_active switches the command on or off.",
        "properties": {
            "name": {"type": "string", "maxLength": 120},
            "slug": {"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 120},
            "command_code": {"type": "string"},
            "source_state": _STATE_INPUT,
            "destination_state": {**_STATE_INPUT, "oneOf": [*_STATE_INPUT["oneOf"], {"type": "null"}],
                                  "description": "null only for an unblock (back to the state before the block)."},
            "visibility": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(Visibility.ALL)}},
            "configuration": {"type": "object", "default": {}},
            "is_active": {"type": "boolean", "default": True}}},
    "ScheduledJob": {"type": "object", "required": ["id", "name", "job_type", "schedule", "parameters", "enabled",
                                                    "next_run_at", "created_at", "updated_at"],
                     "properties": {
                         "id": {"type": "integer"}, "name": {"type": "string"},
                         "job_type": {"type": "string", "enum": list(job_types.JOB_TYPES)},
                         "schedule": {"type": "string", "description": "5-field cron, in the portal's time zone."},
                         "parameters": {"type": "object"}, "enabled": {"type": "boolean"},
                         "next_run_at": {**_NULLABLE_TIME, "description": "null while disabled."},
                         "created_at": _TIME, "updated_at": _TIME}},
    "ScheduledJobInput": {"type": "object", "description": "On PATCH fields left out keep their values.",
                          "properties": {
                              "name": {"type": "string", "maxLength": 120},
                              "job_type": {"type": "string", "enum": list(job_types.JOB_TYPES)},
                              "schedule": {"type": "string", "examples": ["0 3 * * *"]},
                              "parameters": {"type": "object", "description": "The job type's whole-number "
                                                                              "parameters; defaults fill the rest."},
                              "enabled": {"type": "boolean", "default": True}}},
    "JobRun": {"type": "object", "required": ["id", "job_id", "trigger", "status", "result", "started_by",
                                              "started_at", "finished_at"],
               "properties": {
                   "id": {"type": "integer"}, "job_id": {"type": "integer"},
                   "trigger": {"type": "string", "enum": ["manual", "schedule"]},
                   "status": {"type": "string", "enum": ["running", "succeeded", "failed"]},
                   "result": {"type": "string"},
                   "started_by": {"type": ["string", "null"], "description": "Username; null for scheduled runs."},
                   "started_at": _TIME, "finished_at": _NULLABLE_TIME}},
    "JobRunPage": _page("JobRun"),
    "OrderImportRun": {
        "type": "object", "required": ["id", "status", "trigger", "full", "fetched", "created", "already_imported",
                                       "skipped", "failed", "skip_reasons", "problems", "error", "summary", "stale",
                                       "started_by", "created_at", "started_at", "heartbeat_at", "finished_at"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "trigger": {"type": "string", "enum": ["manual", "job", "cli"]},
            "full": {"type": "boolean", "description": "Read every order from the start date again."},
            "fetched": {"type": "integer"}, "created": {"type": "integer"},
            "already_imported": {"type": "integer"}, "skipped": {"type": "integer"}, "failed": {"type": "integer"},
            "skip_reasons": {"type": "object", "additionalProperties": {"type": "integer"},
                             "description": "Reason code -> orders skipped for it."},
            "problems": {"type": "array", "items": {"type": "string"}, "description": "A few examples."},
            "error": {"type": "string", "description": "Why the run stopped; empty when it did not."},
            "summary": {"type": "string", "description": "One sentence, as the wizard shows it."},
            "stale": {"type": "boolean", "description": "Active, but its worker has been silent for over 2 minutes."},
            "started_by": {"type": ["string", "null"]},
            "created_at": _TIME, "started_at": _NULLABLE_TIME, "heartbeat_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME}},
}


def _op(operation_id: str, summary: str, responses: dict, *, description: str = "", parameters: list | None = None,
        body: dict | None = None) -> dict:
    """One operation."""
    operation = {"operationId": operation_id, "summary": summary + " (admins only).", "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


_USER_ID, _SCENARIO_ID = _id("user_id", "user"), _id("scenario_id", "scenario")
_TRANSITION_ID, _JOB_ID = _id("transition_id", "transition"), _id("job_id", "scheduled job")
_DELETED = {"204": {"description": "Deleted."}}

OPENAPI_PATHS: dict = {
    "/api/v1/oms/users/": {
        "get": _op("listUsers", "Users, in id order", {"200": _json(_ref("UserPage"), "A page of users."),
                                                       **_errors("400", "401", "403", "429")},
                   description="Keyset pagination: follow `next` and `previous`.", parameters=_PAGE_PARAMS),
        "post": _op("createUser", "Create a user with a role, stores and a first password",
                    {"201": _json(_ref("User"), "The user."), **_errors("400", "401", "403", "429")},
                    body=_body(_ref("UserCreate"), {"username": "kadikoy2", "password": "first-pass-1",
                                                    "full_name": "Ayşe Yılmaz", "role": "staff",
                                                    "stores": ["IST-KDK"]})),
    },
    "/api/v1/oms/users/{user_id}/": {
        "get": _op("getUser", "One user", {"200": _json(_ref("User"), "The user."),
                                           **_errors("401", "403", "404", "429")}, parameters=[_USER_ID]),
        "patch": _op("updateUser", "Change a user's name, role, stores or active flag",
                     {"200": _json(_ref("User"), "The user as stored."), **_errors("400", "401", "403", "404", "429")},
                     parameters=[_USER_ID], body=_body(_ref("UserPatch"), {"is_active": False})),
    },
    "/api/v1/oms/users/{user_id}/reset_password/": {
        "post": _op("resetUserPassword", "Set a new password for a user",
                    {"200": _json(_ref("User"), "The password was set; any login lock is lifted."),
                     **_errors("400", "401", "403", "404", "429")},
                    description="As in the wizard, the admin chooses the password; it is never returned.",
                    parameters=[_USER_ID], body=_body(_ref("PasswordReset"), {"password": "new-pass-123"})),
    },
    "/api/v1/oms/scenarios/": {
        "get": _op("listScenarios", "Every fulfilment scenario",
                   {"200": _json({"type": "array", "items": _ref("Scenario")}, "The scenarios."),
                    **_errors("401", "403", "429")}),
        "post": _op("createScenario", "Create a scenario for a channel",
                    {"201": _json(_ref("Scenario"), "The scenario."), **_errors("400", "401", "403", "429")},
                    body=_body({"allOf": [_ref("ScenarioInput"), {"required": ["channel", "name", "locations"]}]},
                               {"channel": 1, "name": "Web", "rules": ["SELECT_BY_QUOTA", "SORT_BY_PRIORITY"],
                                "locations": [{"erp_code": "IST-KDK", "priority": 1},
                                              {"stock_location": 7, "priority": 2}], "is_active": True})),
    },
    "/api/v1/oms/scenarios/{scenario_id}/": {
        "get": _op("getScenario", "One scenario", {"200": _json(_ref("Scenario"), "The scenario."),
                                                   **_errors("401", "403", "404", "429")}, parameters=[_SCENARIO_ID]),
        "patch": _op("updateScenario", "Change a scenario",
                     {"200": _json(_ref("Scenario"), "The scenario as stored."),
                      **_errors("400", "401", "403", "404", "429")},
                     parameters=[_SCENARIO_ID], body=_body(_ref("ScenarioInput"), {"is_active": False})),
        "delete": _op("deleteScenario", "Remove a scenario", {**_DELETED, **_errors("401", "403", "404", "429")},
                      parameters=[_SCENARIO_ID]),
    },
    "/api/v1/oms/transitions/": {
        "post": _op("createTransition", "Add a package command (transition)",
                    {"201": _json(_ref("Transition"), "The command."), **_errors("400", "401", "403", "429")},
                    body=_body({"allOf": [_ref("TransitionInput"), {"required": [
                        "name", "slug", "command_code", "source_state", "destination_state", "visibility"]}]},
                        {"name": "Ship", "slug": "ship-package", "command_code": "SHIP_PACKAGE",
                         "source_state": 500, "destination_state": "shipped", "visibility": ["OMS_WEB"],
                         "configuration": {}, "is_active": True})),
    },
    "/api/v1/oms/transitions/{transition_id}/": {
        "patch": _op("updateTransition", "Change a package command",
                     {"200": _json(_ref("Transition"), "The command as stored."),
                      **_errors("400", "401", "403", "404", "429")},
                     parameters=[_TRANSITION_ID], body=_body(_ref("TransitionInput"), {"visibility": ["INSTORE"]})),
        "delete": _op("deleteTransition", "Remove a package command",
                      {**_DELETED, **_errors("400", "401", "403", "404", "429")},
                      description="Refused (400, field `flow`) when packages could get stuck without it; package "
                                  "history keeps the command's slug.",
                      parameters=[_TRANSITION_ID]),
    },
    "/api/v1/oms/jobs/": {
        "get": _op("listScheduledJobs", "Scheduled jobs by name",
                   {"200": _json({"type": "array", "items": _ref("ScheduledJob")}, "The jobs."),
                    **_errors("401", "403", "429")}),
        "post": _op("createScheduledJob", "Add a scheduled job",
                    {"201": _json(_ref("ScheduledJob"), "The job."), **_errors("400", "401", "403", "429")},
                    body=_body({"allOf": [_ref("ScheduledJobInput"), {"required": ["name", "job_type", "schedule"]}]},
                               {"name": "Nightly pickup codes", "job_type": "release_expired_pickup_codes",
                                "schedule": "0 3 * * *", "parameters": {}, "enabled": True})),
    },
    "/api/v1/oms/jobs/{job_id}/": {
        "get": _op("getScheduledJob", "One scheduled job", {"200": _json(_ref("ScheduledJob"), "The job."),
                                                            **_errors("401", "403", "404", "429")},
                   parameters=[_JOB_ID]),
        "patch": _op("updateScheduledJob", "Change a scheduled job",
                     {"200": _json(_ref("ScheduledJob"), "The job as stored."),
                      **_errors("400", "401", "403", "404", "429")},
                     parameters=[_JOB_ID], body=_body(_ref("ScheduledJobInput"), {"enabled": False})),
        "delete": _op("deleteScheduledJob", "Delete a scheduled job and its runs",
                      {**_DELETED, **_errors("401", "403", "404", "429")}, parameters=[_JOB_ID]),
    },
    "/api/v1/oms/jobs/{job_id}/run_now/": {
        "post": _op("runScheduledJobNow", "Run a job now on the job queue",
                    {"202": _json({"type": "object", "required": ["run_id", "run"], "properties": {
                        "run_id": {"type": "integer"}, "run": _ref("JobRun")}},
                        "The run was queued (or has already finished when the queue runs jobs at once)."),
                     **_errors("401", "403", "404", "429")}, parameters=[_JOB_ID]),
    },
    "/api/v1/oms/jobs/{job_id}/runs/": {
        "get": _op("listScheduledJobRuns", "A job's runs, newest first",
                   {"200": _json(_ref("JobRunPage"), "A page of runs."), **_errors("400", "401", "403", "404", "429")},
                   description="Keyset pagination: follow `next` and `previous`.",
                   parameters=[_JOB_ID, *_PAGE_PARAMS]),
    },
    "/api/v1/oms/orders/import/": {
        "post": _op("startOrderImport", "Fetch orders from Omnitron now",
                    {"202": _json({"type": "object", "required": ["run_id", "run"], "properties": {
                        "run_id": {"type": "integer"}, "run": _ref("OrderImportRun")}},
                        "The run was queued (or has already ended when the queue runs jobs at once)."),
                     **_errors("400", "401", "403", "409", "429")},
                    description="What the wizard's \"Fetch orders now\" does: imports the orders ORDER_FILTERING "
                                "chooses, on the job queue. `{\"full\": true}` reads every order from the start date "
                                "again (only missing ones become packages). 400 when the order filtering or the "
                                "Omnitron login is not saved; 409 (code import_running) while a run is active.",
                    body=_body({"type": "object", "additionalProperties": False,
                                "properties": {"full": {"type": "boolean", "default": False}}},
                               {"full": False}, required=False)),
        "get": _op("listOrderImports", "The last order import runs with their summaries",
                   {"200": _json({"type": "object", "required": ["results", "running"], "properties": {
                       "results": {"type": "array", "items": _ref("OrderImportRun")},
                       "running": {"type": "boolean", "description": "True while the newest run is active."}}},
                       "The runs, newest first."),
                    **_errors("400", "401", "403", "429")},
                   parameters=[{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                            "maximum": 50},
                                "description": "How many runs (default 5)."}]),
    },
}
