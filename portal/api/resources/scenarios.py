"""Scenarios (setup step 11, admins only): which stock locations fulfil a channel's packages, in which order."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy import select

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.schemas import Answer, Body, RowId, Timestamp, optional
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.scenarios import service as scenarios
from portal.scenarios.models import Scenario as ScenarioRow
from portal.stores.models import StockLocation as StockLocationRow
from portal.sync.models import Channel

# Domain field names reported under the API's names.
RENAMES = {"channel_id": "channel", "sort": "rules"}
_RULES: dict[str, Any] = {"items": {"type": "string", "enum": list(scenarios.RULES)}}


class ScenarioLocation(Answer):
    """A stock location of a scenario, with its priority (1 first)."""

    stock_location: int
    erp_code: str
    name: str
    priority: int


class Scenario(Answer):
    """A scenario with its channel, rules and stock locations in priority order."""

    id: int
    channel: int
    channel_name: str
    name: str
    is_active: bool
    rules: list[str] = Field(json_schema_extra=_RULES)
    locations: list[ScenarioLocation]
    created_at: Timestamp | None
    updated_at: Timestamp | None

    @classmethod
    def of(cls, scenario: ScenarioRow) -> Scenario:
        """A scenario row as the API shows it."""
        channel = db.session.get(Channel, scenario.channel_id)
        return cls(id=scenario.id, channel=scenario.channel_id, channel_name=channel.name if channel else "",
                   name=scenario.name, is_active=scenario.is_active, rules=list(scenario.rules or []),
                   locations=[ScenarioLocation(stock_location=row.stock_location_id,
                                               erp_code=row.stock_location.erp_code, name=row.stock_location.name,
                                               priority=row.priority)
                              for row in sorted(scenario.locations, key=lambda r: r.priority)],
                   created_at=scenario.created_at, updated_at=scenario.updated_at)


class LocationInput(Body):
    """A stock location named by id (stock_location) or erp_code, with an optional priority."""

    stock_location: RowId | None = None
    erp_code: str | None = Field(None, max_length=64)
    name: str | None = Field(None, max_length=200, json_schema_extra={"readOnly": True})
    priority: int | None = Field(None, ge=0, le=scenarios.MAX_PRIORITY)


class ScenarioFields(Body):
    """The fields of a scenario; a PATCH may send any of them (and the read-only ones back)."""

    channel: RowId = optional(description="The channel's id.")
    name: str = optional(max_length=200)
    rules: list[str] = optional(json_schema_extra=_RULES)
    locations: list[LocationInput] = optional(description="In priority order; priorities are stored 1..n.")
    is_active: bool = optional()


class ScenarioPatch(ScenarioFields):
    """Fields to change; fields left out keep their values."""

    id: int | None = Field(None, json_schema_extra={"readOnly": True})
    channel_name: str | None = Field(None, json_schema_extra={"readOnly": True})
    created_at: str | None = Field(None, json_schema_extra={"readOnly": True})
    updated_at: str | None = Field(None, json_schema_extra={"readOnly": True})


class NewScenario(ScenarioFields):
    """A new scenario."""

    channel: RowId = Field(description="The channel's id.")
    name: str = Field(max_length=200)
    locations: list[LocationInput] = Field(description="In priority order; priorities are stored 1..n.")


def _locations(items: list[LocationInput]) -> list[tuple[int, int | None]]:
    """[(stock location id, priority or None)]; erp_codes are looked up."""
    codes = {item.erp_code for item in items if item.stock_location is None and item.erp_code is not None}
    by_code = dict(db.session.execute(select(StockLocationRow.erp_code, StockLocationRow.id)
                                      .where(StockLocationRow.erp_code.in_(codes))).tuples().all()) if codes else {}
    result = []
    for item in items:
        if item.stock_location is not None:
            location_id = item.stock_location
        elif item.erp_code is not None:
            if item.erp_code not in by_code:
                raise ValidationFailed(_("Unknown stock location erp_code %(code)r.", code=item.erp_code),
                                       field="locations")
            location_id = by_code[item.erp_code]
        else:
            raise ValidationFailed(_("Each location needs stock_location (its id) or erp_code."), field="locations")
        result.append((location_id, item.priority))
    return result


def _save(scenario: ScenarioRow | None, body: ScenarioFields) -> ScenarioRow:
    """Create or update a scenario through the editor's domain function, the fields sent over the stored ones."""
    if scenario is not None:
        current = {"channel": scenario.channel_id, "name": scenario.name, "rules": list(scenario.rules or []),
                   "is_active": scenario.is_active,
                   "locations": [(row.stock_location_id, row.priority) for row in scenario.locations]}
    else:
        current = {"channel": None, "name": "", "rules": [scenarios.SORT_BY_PRIORITY], "is_active": True,
                   "locations": []}
    sent = body.model_fields_set

    def value(name: str):
        """The field sent, else the stored value."""
        return getattr(body, name) if name in sent else current[name]

    locations = _locations(body.locations) if "locations" in sent else current["locations"]
    return scenarios.save_scenario(
        db.session, channel_id=value("channel"), name=value("name"), is_active=value("is_active"),
        rules=value("rules"), locations=locations, scenario_id=scenario.id if scenario is not None else None,
        user_id=caller().user_id)


@operation("GET", "/oms/scenarios/", summary="Every scenario, by channel (admins only).", answer=list[Scenario],
           tag="scenarios")
def list_scenarios():
    """Every scenario, by channel."""
    rows = db.session.scalars(select(ScenarioRow).order_by(ScenarioRow.channel_id, ScenarioRow.id))
    return [Scenario.of(s) for s in rows]


@operation("POST", "/oms/scenarios/", summary="Create a scenario with the editor's validation (admins only).",
           body=NewScenario, answer=Scenario, status=201, renames=RENAMES, tag="scenarios",
           example={"channel": 1, "name": "Istanbul first", "rules": ["SORT_BY_PRIORITY"],
                    "locations": [{"erp_code": "IST-KDK"}, {"erp_code": "IST-BSK"}]})
def create_scenario(body: NewScenario):
    """Create a scenario with the editor's validation."""
    return Scenario.of(_save(None, body))


@operation("GET", "/oms/scenarios/<int:scenario_id>/", summary="One scenario (admins only).", answer=Scenario,
           errors=("404",), tag="scenarios")
def show_scenario(scenario_id: int):
    """One scenario."""
    return Scenario.of(scenarios.get_scenario(db.session, scenario_id))


@operation("PATCH", "/oms/scenarios/<int:scenario_id>/", summary="Change a scenario (admins only).",
           body=ScenarioPatch, answer=Scenario, errors=("404",), renames=RENAMES, tag="scenarios")
def update_scenario(scenario_id: int, body: ScenarioPatch):
    """Change a scenario; fields left out keep their values."""
    return Scenario.of(_save(scenarios.get_scenario(db.session, scenario_id), body))


@operation("DELETE", "/oms/scenarios/<int:scenario_id>/", summary="Remove a scenario (admins only).", status=204,
           errors=("404",), tag="scenarios")
def delete_scenario(scenario_id: int):
    """Remove a scenario."""
    scenarios.delete_scenario(db.session, scenario_id, user_id=caller().user_id)
