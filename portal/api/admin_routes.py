"""API routes of the setup steps that had only a UI: users (2), scenarios (11), package commands (13),
scheduled jobs (15) and the order import (step 8's "Fetch orders now"). Admins only.

Each route checks the caller, reads the JSON body strictly (a wrong type or an unknown field is a 400
naming the field, and nothing is changed), calls the domain function the wizard's page calls (so the
same validation and the same audit rows apply) and answers JSON. After a change the step's state is
brought in line with its check, as the wizard's pages do.
"""
from __future__ import annotations

from flask import Response, jsonify, request
from sqlalchemy import select

from portal.accounts import management
from portal.accounts.models import Role, User
from portal.api import bp
from portal.api.auth import caller
from portal.api.body import json_object
from portal.api.pagination import keyset_page, page_args
from portal.api.serializers import iso_utc, transition_json
from portal.errors import PermissionDenied, ValidationFailed
from portal.extensions import db
from portal.jobs import scheduler
from portal.jobs.models import JobRun, ScheduledJob
from portal.orders import service as orders
from portal.packages import flow_editor
from portal.scenarios import service as scenarios
from portal.scenarios.models import Scenario
from portal.setup import service as wizard
from portal.stores.models import StockLocation
from portal.sync.models import Channel
from portal.web import plain_int

USERS_STEP, COMMANDS_STEP, JOBS_STEP = "users", "package_commands", "jobs"
MAX_IMPORT_RUNS = 50


# --- Shared helpers -----------------------------------------------------------------------------------------

def _admins_only() -> None:
    """Raise PermissionDenied unless the caller is an admin."""
    if caller().role != Role.ADMIN.value:
        raise PermissionDenied("Only admins may do this: it is part of the OMS setup.")


def _fields(body: dict, writable: tuple[str, ...], *, required: tuple[str, ...] = (),
            read_only: tuple[str, ...] = ("id",)) -> dict:
    """The writable fields of a body; an unknown field or a missing required one is refused by name.

    Read-only fields (as the answers show them) may be sent back and are ignored.
    """
    unknown = sorted(set(body) - set(writable) - set(read_only))
    if unknown:
        raise ValidationFailed(f"Unknown field {unknown[0]!r}; this takes {', '.join(writable)}.", field=unknown[0])
    for name in required:
        if name not in body:
            raise ValidationFailed(f"{name} is required.", field=name)
    return {name: body[name] for name in writable if name in body}


def _string(fields: dict, name: str, default: str = "") -> str:
    """A string field (default when absent); raises ValidationFailed for another type."""
    value = fields.get(name, default)
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", field=name)
    return value


def _flag(fields: dict, name: str, default: bool) -> bool:
    """A true/false field (default when absent); raises ValidationFailed for another type."""
    value = fields.get(name, default)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false.", field=name)
    return value


def _whole(value: object, name: str) -> int:
    """A JSON whole number (not a boolean); raises ValidationFailed naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{name} must be a whole number.", field=name)
    return value


def _settle(key: str, check) -> None:
    """Bring a setup step's state in line with its check after a change, as the wizard's pages do."""
    ok, note = check(db.session)
    wizard.settle(db.session, key, ok, user_id=caller().user_id, note=note)
    db.session.commit()


def _optional_body() -> dict:
    """The JSON body when there is one, else {}."""
    return json_object() if request.get_data(cache=True).strip() else {}


# --- Step 2: users ------------------------------------------------------------------------------------------

USER_CREATE_FIELDS = ("username", "password", "full_name", "role", "stores")
USER_PATCH_FIELDS = ("full_name", "role", "stores", "is_active")
# What the answers show: sending them back unchanged is harmless.
USER_READ_ONLY = ("id", "username", "is_locked", "created_at")


def user_json(user: User) -> dict:
    """A user as the API shows it: never the password or its hash."""
    return {"id": user.id, "username": user.username, "full_name": user.full_name, "role": user.role,
            "stores": [{"id": s.id, "erp_code": s.erp_code, "name": s.name} for s in user.stock_locations],
            "is_active": user.active, "is_locked": management.is_locked(user), "created_at": iso_utc(user.created_at)}


def _store_ids(value: object) -> list[int]:
    """Store ids for a list of erp_codes (or of stores as the answers show them); raises ValidationFailed."""
    if isinstance(value, list):
        # A user as an answer showed it may be sent back: its stores are objects with their erp_code.
        value = [item.get("erp_code") if isinstance(item, dict) else item for item in value]
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValidationFailed("stores must be a list of store erp_codes.", field="stores")
    wanted = set(value)
    found = dict(db.session.execute(select(StockLocation.erp_code, StockLocation.id)
                                    .where(StockLocation.erp_code.in_(wanted))).tuples().all()) if wanted else {}
    missing = sorted(wanted - set(found))
    if missing:
        raise ValidationFailed(f"Unknown store erp_code {missing[0]!r}.", field="stores")
    return [found[code] for code in dict.fromkeys(value)]


@bp.get("/oms/users/")
def list_users():
    """A page of users in id order, with links to the neighbouring pages (admins only)."""
    _admins_only()
    args = page_args()
    rows, next_url, previous_url = keyset_page(db.session, select(User), User.id, args, newest_first=False,
                                               endpoint="api.list_users")
    return jsonify({"results": [user_json(u) for u in rows], "next": next_url, "previous": previous_url})


@bp.post("/oms/users/")
def create_user():
    """Create a user with a role, stores (by erp_code) and a first password (admins only)."""
    _admins_only()
    fields = _fields(json_object(), USER_CREATE_FIELDS, required=("username", "password", "role"), read_only=())
    data = management.UserInput(full_name=_string(fields, "full_name").strip(), role=_string(fields, "role"),
                                store_ids=_store_ids(fields.get("stores", [])),
                                username=_string(fields, "username").strip(), password=_string(fields, "password"))
    user = management.create_user(db.session, data, actor_id=caller().user_id)
    _settle(USERS_STEP, management.step_check)
    return jsonify(user_json(user)), 201


@bp.get("/oms/users/<int:user_id>/")
def show_user(user_id: int):
    """One user (admins only)."""
    _admins_only()
    return jsonify(user_json(management.get_user(db.session, user_id)))


@bp.patch("/oms/users/<int:user_id>/")
def update_user(user_id: int):
    """Change a user's full_name, role, stores and/or is_active, all or nothing (admins only)."""
    _admins_only()
    fields = _fields(json_object(), USER_PATCH_FIELDS, read_only=USER_READ_ONLY)
    user = management.get_user(db.session, user_id)
    data = None
    if {"full_name", "role", "stores"} & set(fields):
        data = management.UserInput(
            full_name=_string(fields, "full_name", user.full_name or "").strip(),
            role=_string(fields, "role", user.role),
            store_ids=_store_ids(fields["stores"]) if "stores" in fields else user.store_ids)
    active = _flag(fields, "is_active", user.active) if "is_active" in fields else None
    user = management.change_user(db.session, user_id, data, active, actor_id=caller().user_id)
    _settle(USERS_STEP, management.step_check)
    return jsonify(user_json(user))


@bp.post("/oms/users/<int:user_id>/reset_password/")
def reset_user_password(user_id: int):
    """Set a new password chosen by the admin, as the wizard does; any login lock is lifted (admins only)."""
    _admins_only()
    fields = _fields(json_object(), ("password",), required=("password",), read_only=())
    user = management.reset_password(db.session, user_id, _string(fields, "password"), actor_id=caller().user_id)
    return jsonify(user_json(user))


# --- Step 11: scenarios -------------------------------------------------------------------------------------

SCENARIO_FIELDS = ("channel", "name", "rules", "locations", "is_active")
SCENARIO_READ_ONLY = ("id", "channel_name", "created_at", "updated_at")


def scenario_json(scenario: Scenario) -> dict:
    """A scenario with its channel, rules and stock locations in priority order."""
    channel = db.session.get(Channel, scenario.channel_id)
    return {"id": scenario.id, "channel": scenario.channel_id, "channel_name": channel.name if channel else "",
            "name": scenario.name, "is_active": scenario.is_active, "rules": list(scenario.rules or []),
            "locations": [{"stock_location": row.stock_location_id, "erp_code": row.stock_location.erp_code,
                           "name": row.stock_location.name, "priority": row.priority}
                          for row in sorted(scenario.locations, key=lambda r: r.priority)],
            "created_at": iso_utc(scenario.created_at), "updated_at": iso_utc(scenario.updated_at)}


def _scenario_locations(value: object) -> list[tuple[int, int | None]]:
    """[(stock location id, priority or None)] from [{stock_location | erp_code, priority?}]."""
    if not isinstance(value, list):
        raise ValidationFailed("locations must be a list of {stock_location, priority}.", field="locations")
    codes = {item["erp_code"] for item in value if isinstance(item, dict) and isinstance(item.get("erp_code"), str)}
    by_code = dict(db.session.execute(select(StockLocation.erp_code, StockLocation.id)
                                      .where(StockLocation.erp_code.in_(codes))).tuples().all()) if codes else {}
    result = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"stock_location", "erp_code", "name", "priority"}:
            raise ValidationFailed("Each location is {stock_location (id) or erp_code, priority}.", field="locations")
        if item.get("stock_location") is not None:
            location_id = _whole(item["stock_location"], "locations")
        elif isinstance(item.get("erp_code"), str):
            if item["erp_code"] not in by_code:
                raise ValidationFailed(f"Unknown stock location erp_code {item['erp_code']!r}.", field="locations")
            location_id = by_code[item["erp_code"]]
        else:
            raise ValidationFailed("Each location needs stock_location (its id) or erp_code.", field="locations")
        priority = item.get("priority")
        result.append((location_id, None if priority is None else _whole(priority, "locations")))
    return result


def _save_scenario(scenario: Scenario | None, fields: dict) -> Scenario:
    """Create or update a scenario through the editor's domain function, fields merged over the stored ones."""
    if scenario is not None:
        current = {"channel": scenario.channel_id, "name": scenario.name, "rules": list(scenario.rules or []),
                   "is_active": scenario.is_active,
                   "locations": [(row.stock_location_id, row.priority) for row in scenario.locations]}
    else:
        current = {"channel": None, "name": "", "rules": [scenarios.SORT_BY_PRIORITY], "is_active": True,
                   "locations": []}
    channel = fields.get("channel", current["channel"])
    if channel is not None:
        channel = _whole(channel, "channel")
    locations = _scenario_locations(fields["locations"]) if "locations" in fields else current["locations"]
    return scenarios.save_scenario(
        db.session, channel_id=channel, name=fields.get("name", current["name"]),
        is_active=_flag(fields, "is_active", current["is_active"]), rules=fields.get("rules", current["rules"]),
        locations=locations, scenario_id=scenario.id if scenario is not None else None, user_id=caller().user_id)


@bp.get("/oms/scenarios/")
def list_scenarios():
    """Every scenario, by channel (admins only)."""
    _admins_only()
    rows = db.session.scalars(select(Scenario).order_by(Scenario.channel_id, Scenario.id))
    return jsonify([scenario_json(s) for s in rows])


@bp.post("/oms/scenarios/")
def create_scenario():
    """Create a scenario with the editor's validation (admins only)."""
    _admins_only()
    fields = _fields(json_object(), SCENARIO_FIELDS, required=("channel", "name", "locations"), read_only=())
    return jsonify(scenario_json(_save_scenario(None, fields))), 201


@bp.get("/oms/scenarios/<int:scenario_id>/")
def show_scenario(scenario_id: int):
    """One scenario (admins only)."""
    _admins_only()
    return jsonify(scenario_json(scenarios.get_scenario(db.session, scenario_id)))


@bp.patch("/oms/scenarios/<int:scenario_id>/")
def update_scenario(scenario_id: int):
    """Change a scenario; fields left out keep their values (admins only)."""
    _admins_only()
    fields = _fields(json_object(), SCENARIO_FIELDS, read_only=SCENARIO_READ_ONLY)
    scenario = scenarios.get_scenario(db.session, scenario_id)
    return jsonify(scenario_json(_save_scenario(scenario, fields)))


@bp.delete("/oms/scenarios/<int:scenario_id>/")
def delete_scenario(scenario_id: int):
    """Remove a scenario (admins only)."""
    _admins_only()
    scenarios.delete_scenario(db.session, scenario_id, user_id=caller().user_id)
    return Response(status=204)


# --- Step 13: package commands (transitions) ----------------------------------------------------------------

TRANSITION_FIELDS = ("name", "slug", "command_code", "source_state", "destination_state", "visibility",
                     "configuration", "is_active")


def _commands_check(session) -> tuple[bool, str]:
    """Step 13's check: the flow validates and has an active command."""
    flow = flow_editor.flow_status(session)
    return flow.ok, flow.message


def _state_value(value: object, name: str) -> object:
    """A state as the API takes it: a code, a value (slug) or a Status object {code, ...}."""
    if isinstance(value, dict):
        value = value.get("code", value.get("value"))
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
        raise ValidationFailed(f"{name} must be a status code or value.", field=name)
    return value


def _transition_data(fields: dict, current: dict) -> dict:
    """The editor's input: fields (type-checked) over the current values."""
    data = dict(current)
    for name in ("name", "slug", "command_code"):
        if name in fields:
            data[name] = _string(fields, name)
    for name in ("source_state", "destination_state"):
        if name in fields:
            data[name] = _state_value(fields[name], name)
    if "visibility" in fields:
        if not isinstance(fields["visibility"], list) or not all(isinstance(v, str) for v in fields["visibility"]):
            raise ValidationFailed("visibility must be a list: OMS_WEB and/or INSTORE.", field="visibility")
        data["visibility"] = fields["visibility"]
    if "configuration" in fields:
        if not isinstance(fields["configuration"], dict):
            raise ValidationFailed("configuration must be a JSON object.", field="configuration")
        data["configuration"] = fields["configuration"]
    if "is_active" in fields:
        data["is_active"] = _flag(fields, "is_active", True)
    return data


@bp.post("/oms/transitions/")
def create_transition():
    """Add a package command with the editor's validation (admins only)."""
    _admins_only()
    fields = _fields(json_object(), TRANSITION_FIELDS,
                     required=("name", "slug", "command_code", "source_state", "destination_state", "visibility"),
                     read_only=())
    data = _transition_data(fields, {"configuration": {}, "is_active": True})
    transition = flow_editor.create_transition(db.session, data, user_id=caller().user_id)
    _settle(COMMANDS_STEP, _commands_check)
    return jsonify(transition_json(transition)), 201


@bp.patch("/oms/transitions/<int:transition_id>/")
def update_transition(transition_id: int):
    """Change a package command; refused when invalid or when it would strand packages (admins only)."""
    _admins_only()
    fields = _fields(json_object(), TRANSITION_FIELDS)
    transition = flow_editor.get_transition(db.session, transition_id)
    if set(fields) == {"is_active"}:
        # Only switching on or off: the editor's switch, with its own checks.
        transition = flow_editor.set_active(db.session, transition.id, _flag(fields, "is_active", True),
                                            user_id=caller().user_id)
    else:
        current = {"name": transition.name, "slug": transition.slug, "command_code": transition.command_code,
                   "source_state": transition.source_state, "destination_state": transition.destination_state,
                   "visibility": list(transition.visibility or []), "configuration": transition.configuration or {},
                   "is_active": transition.is_active}
        transition = flow_editor.update_transition(db.session, transition.id, _transition_data(fields, current),
                                                   user_id=caller().user_id)
    _settle(COMMANDS_STEP, _commands_check)
    return jsonify(transition_json(transition))


@bp.delete("/oms/transitions/<int:transition_id>/")
def delete_transition(transition_id: int):
    """Remove a package command; refused when packages could get stuck without it (admins only)."""
    _admins_only()
    flow_editor.delete_transition(db.session, transition_id, user_id=caller().user_id)
    _settle(COMMANDS_STEP, _commands_check)
    return Response(status=204)


# --- Step 15: scheduled jobs --------------------------------------------------------------------------------

JOB_FIELDS = ("name", "job_type", "schedule", "parameters", "enabled")
JOB_READ_ONLY = ("id", "next_run_at", "created_at", "updated_at")


def job_json(job: ScheduledJob) -> dict:
    """A scheduled job as the API shows it."""
    return {"id": job.id, "name": job.name, "job_type": job.job_type, "schedule": job.schedule,
            "parameters": job.parameters or {}, "enabled": job.enabled, "next_run_at": iso_utc(job.next_run_at),
            "created_at": iso_utc(job.created_at), "updated_at": iso_utc(job.updated_at)}


def run_json(run: JobRun, usernames: dict[int, str]) -> dict:
    """One run of a job: how it was started, how it ended and what it reported."""
    return {"id": run.id, "job_id": run.job_id, "trigger": run.trigger, "status": run.status,
            "result": run.result or "", "started_by": usernames.get(run.started_by_id),
            "started_at": iso_utc(run.started_at), "finished_at": iso_utc(run.finished_at)}


def _usernames(user_ids: set) -> dict[int, str]:
    """Usernames by id (for who started runs)."""
    user_ids = {i for i in user_ids if i}
    if not user_ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).tuples().all())


def _job_input(fields: dict, job: ScheduledJob | None) -> scheduler.JobInput:
    """The job form's input: fields (type-checked) over the stored job's values."""
    parameters = fields.get("parameters", job.parameters if job is not None else {})
    if not isinstance(parameters, dict):
        raise ValidationFailed("parameters must be a JSON object.", field="parameters")
    return scheduler.JobInput(
        name=_string(fields, "name", job.name if job is not None else "").strip(),
        job_type=_string(fields, "job_type", job.job_type if job is not None else ""),
        schedule=_string(fields, "schedule", job.schedule if job is not None else "").strip(),
        parameters=parameters, enabled=_flag(fields, "enabled", job.enabled if job is not None else True))


@bp.get("/oms/jobs/")
def list_jobs():
    """Every scheduled job by name (admins only)."""
    _admins_only()
    return jsonify([job_json(job) for job in scheduler.list_jobs(db.session)])


@bp.post("/oms/jobs/")
def create_job():
    """Add a scheduled job; the schedule and parameters are checked as in the wizard (admins only)."""
    _admins_only()
    fields = _fields(json_object(), JOB_FIELDS, required=("name", "job_type", "schedule"), read_only=())
    job = scheduler.create_job(db.session, _job_input(fields, None), user_id=caller().user_id)
    _settle(JOBS_STEP, scheduler.step_check)
    return jsonify(job_json(job)), 201


@bp.get("/oms/jobs/<int:job_id>/")
def show_job(job_id: int):
    """One scheduled job (admins only)."""
    _admins_only()
    return jsonify(job_json(scheduler.get_job(db.session, job_id)))


@bp.patch("/oms/jobs/<int:job_id>/")
def update_job(job_id: int):
    """Change a scheduled job; fields left out keep their values (admins only)."""
    _admins_only()
    fields = _fields(json_object(), JOB_FIELDS, read_only=JOB_READ_ONLY)
    job = scheduler.get_job(db.session, job_id)
    job = scheduler.update_job(db.session, job.id, _job_input(fields, job), user_id=caller().user_id)
    _settle(JOBS_STEP, scheduler.step_check)
    return jsonify(job_json(job))


@bp.delete("/oms/jobs/<int:job_id>/")
def delete_job(job_id: int):
    """Delete a scheduled job and its runs (admins only)."""
    _admins_only()
    scheduler.delete_job(db.session, job_id, user_id=caller().user_id)
    _settle(JOBS_STEP, scheduler.step_check)
    return Response(status=204)


@bp.post("/oms/jobs/<int:job_id>/run_now/")
def run_job_now(job_id: int):
    """Run a job now on the job queue; 202 with the run to follow in runs/ (admins only)."""
    _admins_only()
    run = scheduler.run_now(db.session, job_id, user_id=caller().user_id)
    return jsonify({"run_id": run.id, "run": run_json(run, _usernames({run.started_by_id}))}), 202


@bp.get("/oms/jobs/<int:job_id>/runs/")
def list_job_runs(job_id: int):
    """A page of a job's runs, newest first (admins only)."""
    _admins_only()
    job = scheduler.get_job(db.session, job_id)
    rows, next_url, previous_url = keyset_page(
        db.session, select(JobRun).where(JobRun.job_id == job.id), JobRun.id, page_args(), newest_first=True,
        endpoint="api.list_job_runs", job_id=job.id)
    usernames = _usernames({run.started_by_id for run in rows})
    return jsonify({"results": [run_json(run, usernames) for run in rows], "next": next_url,
                    "previous": previous_url})


# --- Step 8: the order import -------------------------------------------------------------------------------

def import_run_json(run, usernames: dict[int, str]) -> dict:
    """An order import run with its counts and summary sentence."""
    return {"id": run.id, "status": run.status, "trigger": run.trigger, "full": run.full,
            "fetched": run.fetched, "created": run.created, "already_imported": run.already_imported,
            "skipped": run.skipped, "failed": run.failed, "skip_reasons": dict(run.skip_reasons or {}),
            "problems": list(run.problems or []), "error": run.error or "", "summary": orders.summary_text(run),
            "stale": orders.is_stale(run), "started_by": usernames.get(run.started_by_id),
            "created_at": iso_utc(run.created_at), "started_at": iso_utc(run.started_at),
            "heartbeat_at": iso_utc(run.heartbeat_at), "finished_at": iso_utc(run.finished_at)}


@bp.post("/oms/orders/import/")
def start_order_import():
    """Start fetching the orders ORDER_FILTERING chooses, on the job queue; 202 with the run (admins only)."""
    _admins_only()
    fields = _fields(_optional_body(), ("full",), read_only=())
    run = orders.execute(db.session, user_id=caller().user_id, full=_flag(fields, "full", False))
    return jsonify({"run_id": run.id, "run": import_run_json(run, _usernames({run.started_by_id}))}), 202


@bp.get("/oms/orders/import/")
def list_order_imports():
    """The last order import runs, newest first, with their summaries (admins only)."""
    _admins_only()
    raw = (request.args.get("limit") or "").strip()
    if raw and not plain_int(raw):
        raise ValidationFailed("limit must be a positive number.", field="limit")
    runs = orders.recent_runs(db.session, limit=min(plain_int(raw), MAX_IMPORT_RUNS) if raw else 5)
    usernames = _usernames({run.started_by_id for run in runs})
    return jsonify({"results": [import_run_json(run, usernames) for run in runs],
                    "running": orders.is_active(runs[0]) and not orders.is_stale(runs[0]) if runs else False})
