"""Package commands (transitions): everyone with a token reads them; admins add, change and remove them."""
from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Row, select

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body, Status, optional
from portal.extensions import db
from portal.packages import flow_editor
from portal.packages.models import Transition as TransitionRow
from portal.packages.states import Visibility

_VISIBILITY: dict[str, Any] = {"items": {"type": "string", "enum": list(Visibility.ALL)}}
_ROWS = TransitionRow.__table__
_ALL = select(_ROWS).order_by(_ROWS.c.position, _ROWS.c.id)  # as flow_editor.list_transitions orders them


class Transition(Answer):
    """A transition (command) as admins define it."""

    id: int = Field(description="The transition id the command endpoint accepts.")
    slug: str
    name: str = Field(description="The command's name.")
    command_code: str = Field(description="Chooses the code that does the command's work.")
    source_state: Status
    destination_state: Status | None = Field(description="null: the state the package had before it was blocked.")
    visibility: list[str] = Field(json_schema_extra=_VISIBILITY)
    configuration: dict[str, Any]
    is_active: bool

    @classmethod
    def of(cls, transition: TransitionRow | Row) -> Transition:
        """A transition row as the API shows it."""
        return cls(id=transition.id, slug=transition.slug, name=transition.name,
                   command_code=transition.command_code, source_state=Status.of_state(transition.source_state),
                   destination_state=Status.of(transition.destination_state),
                   visibility=list(transition.visibility or []), configuration=transition.configuration or {},
                   is_active=transition.is_active)


class StateRef(Body):
    """A state as answers show it ({code, value, label}); code or value names it."""

    code: int | None = None
    value: str | None = Field(None, max_length=64)
    label: str | None = Field(None, max_length=200)


# A state in a body: a code (500), a value (packed) or a Status object.
StateInput = int | str | StateRef | None


class TransitionFields(Body):
    """The fields of a command; a PATCH may send any of them (and the read-only id back)."""

    name: str = optional(max_length=200)
    slug: str = optional(max_length=200)
    command_code: str = optional(max_length=64)
    source_state: StateInput = optional(description="A status code (500), value (packed) or Status object.")
    destination_state: StateInput = optional(description="As source_state; null: back to the state the "
                                                            "package had before it was blocked.")
    visibility: list[str] = optional(json_schema_extra=_VISIBILITY)
    configuration: dict[str, Any] = optional()
    is_active: bool = optional()


class TransitionPatch(TransitionFields):
    """Fields to change; read-only fields sent back are ignored."""

    id: int | None = Field(None, json_schema_extra={"readOnly": True})


class NewTransition(TransitionFields):
    """A new command."""

    name: str = Field(max_length=200)
    slug: str = Field(max_length=200)
    command_code: str = Field(max_length=64)
    source_state: StateInput = Field(description="A status code (500), value (packed) or Status object.")
    destination_state: StateInput = Field(description="As source_state; null: back to the state before blocking.")
    visibility: list[str] = Field(json_schema_extra=_VISIBILITY)


def _state(value: StateInput) -> object:
    """A state as the editor takes it: a code or a value."""
    if isinstance(value, StateRef):
        return value.code if value.code is not None else value.value
    return value


def _editor_input(body: TransitionFields, current: dict) -> dict:
    """The editor's input: the fields sent over the current values."""
    data = dict(current)
    for name in body.model_fields_set & set(TransitionFields.model_fields):
        value = getattr(body, name)
        data[name] = _state(value) if name in ("source_state", "destination_state") else value
    return data


@operation("GET", "/oms/transitions/", summary="Every package command (transition).", access=Access.ANY,
           answer=list[Transition], tag="transitions")
def list_transitions():
    """Every command (transition) with its states, visibility and configuration."""
    # Plain rows (the same attributes as the model), in the screens' order: no ORM objects for a read-only list.
    return [Transition.of(row) for row in db.session.connection().execute(_ALL)]


@operation("POST", "/oms/transitions/", summary="Add a package command with the editor's validation (admins only).",
           body=NewTransition, answer=Transition, status=201, tag="transitions",
           example={"name": "Ship From Packaging", "slug": "ship-from-ready-for-packaging",
                    "command_code": "SHIP_PACKAGE", "source_state": "ready_for_packaging", "destination_state": 600,
                    "visibility": ["OMS_WEB"], "configuration": {}})
def create_transition(body: NewTransition):
    """Add a package command with the editor's validation."""
    transition = flow_editor.create_transition(db.session, _editor_input(body, {"configuration": {},
                                                                               "is_active": True}),
                                               user_id=caller().user_id)
    return Transition.of(transition)


@operation("PATCH", "/oms/transitions/<int:transition_id>/", summary="Change a package command (admins only).",
           body=TransitionPatch, answer=Transition, errors=("404",), tag="transitions",
           description="Refused when invalid or when it would strand packages. Sending only is_active is the "
                       "editor's on/off switch.")
def update_transition(transition_id: int, body: TransitionPatch):
    """Change a package command; refused when invalid or when it would strand packages."""
    transition = flow_editor.get_transition(db.session, transition_id)
    changed = body.model_fields_set - {"id"}
    if changed == {"is_active"} and body.is_active is not None:
        transition = flow_editor.set_active(db.session, transition.id, body.is_active, user_id=caller().user_id)
    else:
        current = {"name": transition.name, "slug": transition.slug, "command_code": transition.command_code,
                   "source_state": transition.source_state, "destination_state": transition.destination_state,
                   "visibility": list(transition.visibility or []), "configuration": transition.configuration or {},
                   "is_active": transition.is_active}
        transition = flow_editor.update_transition(db.session, transition.id, _editor_input(body, current),
                                                   user_id=caller().user_id)
    return Transition.of(transition)


@operation("DELETE", "/oms/transitions/<int:transition_id>/", status=204, errors=("404",), tag="transitions",
           summary="Remove a package command; refused when packages could get stuck without it (admins only).")
def delete_transition(transition_id: int):
    """Remove a package command."""
    flow_editor.delete_transition(db.session, transition_id, user_id=caller().user_id)
