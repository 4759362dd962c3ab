"""API routes. Each checks the caller, parses JSON or the query string, calls one domain function, answers JSON."""
from __future__ import annotations


from flask import Response, current_app, jsonify, request, url_for

from portal.api.body import json_object
from portal.api import bp, openapi
from portal.api.auth import caller, require_admin, unauthorized
from portal.api.idempotency import idempotent
from portal.api.serializers import package_detail_json, package_json, setting_json, transition_json
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import commands, flow_editor, queries
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting
from portal.web import check_int_args, plain_int

# Routes anyone may read without a token.
PUBLIC_ENDPOINTS = {"api.openapi_document"}
MAX_LIMIT = 100
MAX_NAME_LENGTH = 200
# Query arguments of the package list that must be plain numbers a row id can have.
LIST_INT_ARGS = ("after", "before", "stock_location")


@bp.before_request
def authenticate():
    """Every route but the OpenAPI document needs a valid token; cookies are ignored."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    current = caller()
    if current.user_id is None:
        return unauthorized(current.problem)
    return None


def _optional_int(body: dict, name: str) -> int | None:
    """An integer field of a JSON body (numeric strings accepted), or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    number = None if isinstance(value, bool) or not isinstance(value, (int, str)) else plain_int(value)
    if number is None:
        raise ValidationFailed(f"{name} must be a number.", field=name)
    return number


def _optional_str(body: dict, name: str) -> str | None:
    """A string field of a JSON body, or None when absent or empty."""
    value = body.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", field=name)
    if len(value) > MAX_NAME_LENGTH:
        # Slugs and keys are short; a long one is not echoed back in the error either.
        raise ValidationFailed(f"{name} is too long (at most {MAX_NAME_LENGTH} characters).", field=name)
    return value


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document describing this API."""
    return jsonify(openapi.document())


@bp.get("/oms/packages/")
def list_packages():
    """A page of packages in the caller's stores, newest first, with links to the neighbouring pages."""
    check_int_args(request.args, LIST_INT_ARGS)
    filters = queries.PackageFilters.from_args(request.args)
    limit_arg = (request.args.get("limit") or "").strip()
    if limit_arg and not plain_int(limit_arg):
        raise ValidationFailed("limit must be a positive number.", field="limit")
    limit = min(int(limit_arg), MAX_LIMIT) if limit_arg else min(current_app.config["PAGE_SIZE"], MAX_LIMIT)
    page = queries.list_packages(db.session, filters, caller().store_ids, limit=limit)
    extra = {"limit": limit} if limit_arg else {}

    def link(**cursor) -> str:
        """The URL of a neighbouring page with the same filters."""
        return url_for("api.list_packages", _external=True, **filters.query_args(**cursor), **extra)

    return jsonify({
        "results": [package_json(p) for p in page.packages],
        "next": link(after=page.next_after) if page.next_after is not None else None,
        "previous": link(before=page.prev_before) if page.prev_before is not None else None,
    })


@bp.get("/oms/packages/<int:package_id>/")
def show_package(package_id: int):
    """One package with its items and the commands that start from its state."""
    package = queries.get_package(db.session, package_id, caller().store_ids)
    transitions = commands.available_transitions(db.session, package, None)
    return jsonify(package_detail_json(package, transitions))


@bp.post("/oms/packages/<int:package_id>/command/")
@idempotent
def run_command(package_id: int):
    """Run a command on a package, named by transition id or slug; 204 when it ran."""
    body = json_object()
    transition_id = _optional_int(body, "transition")
    slug = _optional_str(body, "slug")
    params = body.get("input_parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValidationFailed("input_parameters must be an object.", field="input_parameters")
    if params.get("package") is not None and str(params["package"]) != str(package_id):
        raise ValidationFailed("input_parameters.package does not match the package in the URL.",
                               field="input_parameters.package")
    current = caller()
    commands.run_command(db.session, package_id, transition_id=transition_id, slug=slug, params=params,
                         user_id=current.user_id, store_ids=current.store_ids)
    return Response(status=204)


@bp.get("/oms/transitions/")
def list_transitions():
    """Every command (transition) with its states, visibility and configuration."""
    return jsonify([transition_json(t) for t in flow_editor.list_transitions(db.session)])


@bp.get("/oms/settings/application_settings/")
def list_settings():
    """Every stored application setting (admins only)."""
    require_admin()
    return jsonify([setting_json(s) for s in settings.list_settings(db.session)])


def _setting_or_404(setting_id: int) -> ApplicationSetting:
    """The setting with this id; raises NotFound."""
    setting = db.session.get(ApplicationSetting, setting_id)
    if setting is None:
        raise NotFound(f"No application setting with id {setting_id}.")
    return setting


def _save_setting(setting_id: int | None):
    """Validate the PATCH body {id?, key, json_value} and store it through the settings service."""
    require_admin()
    body = json_object()
    body_id = _optional_int(body, "id")
    if setting_id is not None and body_id is not None and body_id != setting_id:
        raise ValidationFailed("id does not match the setting in the URL.", field="id")
    if "json_value" not in body:
        raise ValidationFailed("json_value is required.", field="json_value")
    setting = settings.set_value(db.session, _optional_str(body, "key") or "", body["json_value"],
                                 user_id=caller().user_id,
                                 setting_id=setting_id if setting_id is not None else body_id)
    return jsonify(setting_json(setting))


@bp.patch("/oms/settings/application_settings/")
def update_setting():
    """Change a setting named by id or key (admins only)."""
    return _save_setting(None)


@bp.get("/oms/settings/application_settings/<int:setting_id>/")
def show_setting(setting_id: int):
    """One application setting (admins only)."""
    require_admin()
    return jsonify(setting_json(_setting_or_404(setting_id)))


@bp.patch("/oms/settings/application_settings/<int:setting_id>/")
def update_setting_by_id(setting_id: int):
    """Change the setting with this id (admins only)."""
    return _save_setting(setting_id)
