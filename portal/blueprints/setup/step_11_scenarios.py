"""Setup step 11, Scenarios: per channel, which stock locations may fulfil packages, and how."""
from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import step_url
from portal.blueprints.setup.shared_catalog import _done, _respond
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.scenarios import service as scenarios
from portal.setup.steps import BY_KEY
from portal.web import is_fragment_request, plain_int

SCENARIO_TEMPLATE = "setup/scenarios.html"


def _scenario_values(scenario=None, channel_id: int | None = None) -> dict:
    """The editor's values for a scenario (or a new one for a channel)."""
    if scenario is None:
        return {"scenario_id": None, "channel_id": channel_id, "name": "", "is_active": True,
                "rules": [scenarios.SORT_BY_PRIORITY], "locations": {}}
    return {"scenario_id": scenario.id, "channel_id": scenario.channel_id, "name": scenario.name,
            "is_active": scenario.is_active, "rules": list(scenario.rules or []),
            "locations": {row.stock_location_id: row.priority for row in scenario.locations}}


def _location_filter() -> scenarios.LocationFilter:
    """The editor's location search and filters, from the posted form (or the query string)."""
    source = request.form if request.method == "POST" else request.args
    kind = source.get("find_kind", "")
    return scenarios.LocationFilter(query=source.get("find", "")[:80], city=source.get("find_city", "")[:80],
                                    kind=kind if kind in ("store", "warehouse") else "",
                                    show_all=bool(source.get("show_all")))


def _locations_context(values: dict | None) -> dict:
    """What the editor's location list needs: the chosen locations first, the filtered rest, the filter."""
    wanted = _location_filter()
    choice = scenarios.location_choice(scenarios.list_stock_locations(db.session),
                                       values["locations"] if values else {}, wanted)
    return {"choice": choice, "location_filter": wanted}


def _scenario_response(code: int = 200, *, values=None, state_changed=False, **context):
    """The scenarios page or its panel."""
    return _respond(SCENARIO_TEMPLATE, "scenario_panel", scenarios.STEP_KEY, code, state_changed=state_changed,
                    channels=scenarios.list_channels(db.session), values=values,
                    rules=scenarios.RULES, rule_label=scenarios.rule_label,
                    channels_url=step_url(BY_KEY["channels"]), **_locations_context(values), **context)


# The endpoint is named after the step (portal/setup/steps.py); the function name would hide the service module.
@bp.get("/scenarios", endpoint="scenarios")
def scenarios_page():
    """Step 11: each channel's scenarios; ?edit=<id> or ?new=<channel id> opens the editor."""
    edit_id = request.args.get("edit", type=plain_int)
    new_for = request.args.get("new", type=plain_int)
    values = None
    if edit_id:
        values = _scenario_values(scenarios.get_scenario(db.session, edit_id))
    elif new_for is not None:
        values = _scenario_values(channel_id=new_for)
    return _scenario_response(values=values)


def _posted_scenario() -> dict:
    """The editor's posted values: rules from the checkboxes and radios, locations with their priorities."""
    rules = request.form.getlist("rule")
    for group in ("kind", "sort"):
        if request.form.get(group):
            rules.append(request.form[group])
    locations = {}
    for raw in request.form.getlist("location"):
        if plain_int(raw) is not None:
            locations[plain_int(raw)] = (request.form.get(f"priority-{raw}") or "").strip()
    return {"scenario_id": request.form.get("scenario_id", type=plain_int), "channel_id": request.form.get("channel_id",
            type=plain_int), "name": request.form.get("name", ""), "is_active": request.form.get("is_active") == "on",
            "rules": rules, "locations": locations}


@bp.post("/scenarios/locations")
def scenario_locations():
    """Search and filter the editor's stock locations, keeping the ticked ones (and their priorities) on top.

    htmx swaps in the list alone; without JavaScript the filter buttons post here and get the whole page back
    with the editor as it was filled in.
    """
    values = _posted_scenario()
    if is_fragment_request():
        return render_template("setup/_scenario_locations.html", values=values, **_locations_context(values))
    return _scenario_response(values=values)


@bp.post("/scenarios")
def save_scenario():
    """Create or change a scenario from the editor."""
    values = _posted_scenario()
    try:
        locations = []
        for location_id, raw in values["locations"].items():
            if raw and plain_int(raw) is None:
                raise ValidationFailed(_("A priority must be a whole number from 1."), field="locations")
            locations.append((location_id, int(raw) if raw else None))
        scenario = scenarios.save_scenario(
            db.session, channel_id=values["channel_id"], name=values["name"], is_active=values["is_active"],
            rules=values["rules"], locations=locations, scenario_id=values["scenario_id"], user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _scenario_response(422, values=values, error=exc.message, error_field=exc.field)
    message = _("Scenario %(name)s saved.", name=repr(scenario.name))
    if request.form.get("copy_to_uncovered") == "on":
        copies = scenarios.copy_to_uncovered(db.session, scenario, user_id=current_user.id)
        if copies:
            message = ngettext("Scenario %(name)s saved, and copied to %(num)s more channel: %(channels)s.",
                               "Scenario %(name)s saved, and copied to %(num)s more channels: %(channels)s.",
                               len(copies), name=repr(scenario.name),
                               channels=", ".join(channel.name for channel in copies))
    return _done(message, "setup.scenarios", lambda: _scenario_response(state_changed=True))


@bp.post("/scenarios/<int:scenario_id>/delete")
def delete_scenario(scenario_id: int):
    """Remove a scenario."""
    scenarios.delete_scenario(db.session, scenario_id, user_id=current_user.id)
    return _done(_("Scenario removed."), "setup.scenarios", lambda: _scenario_response(state_changed=True))


def _float_arg(name: str) -> float | None:
    """An optional decimal query argument; raises ValidationFailed when it is not a number."""
    raw = (request.args.get(name) or "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(_("%(name)s must be a number like 41.0082.", name=name), field=name) from None


@bp.get("/scenarios/<int:scenario_id>/plan")
def plan_scenario(scenario_id: int):
    """Try a scenario on an address: the stock locations it would pick, in order."""
    scenario = scenarios.get_scenario(db.session, scenario_id)
    city = request.args.get("city", "")
    try:
        lat, lon = _float_arg("lat"), _float_arg("lon")
        planned = scenarios.plan_locations(db.session, scenario, city=city or None, lat=lat, lon=lon)
        error = None
    except ValidationFailed as exc:
        planned, lat, lon, error = [], None, None, exc.message
    return render_template("setup/_scenario_plan.html", scenario=scenario, planned=planned, error=error,
                           distance=lambda loc: scenarios.distance_km(loc, lat, lon), city=city)
