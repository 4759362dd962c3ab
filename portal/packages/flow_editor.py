"""Editing the package flow (setup step 13): transition validation and the whole-flow check.

A transition is data (see commands.py): this module checks one before it is saved, and checks the
flow as it would be after the save: every state a package can reach, or is in now, must have an
active command out of it unless the state is final. The flowchart is drawn by flowchart.py.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import NotFound, ValidationFailed
from portal.i18n import N_
from portal.packages import commands
from portal.packages.models import Package, Transition
from portal.packages.states import State, Visibility, parse_state, state_info
from portal.settings import service as settings
from portal.setup import service as wizard

SLUG_RE = re.compile(r"^[a-z0-9-]+$")
UNBLOCK_CODE = "UNBLOCK_PACKAGE_FOR_ACTION"
# Packages arrive from Omnitron as Waiting, so Waiting always needs a way out.
ENTRY_STATES = frozenset({int(State.WAITING)})
AUDIT_AREA = "transition"
STEP_KEY = "package_commands"


@dataclass(frozen=True)
class Edge:
    """The part of a transition the whole-flow check needs."""

    id: int | None
    source_state: int
    destination_state: int | None
    is_active: bool


def _truthy(value: object) -> bool:
    """Checkbox and JSON booleans alike: "on", "true", "1", True."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in {"1", "true", "on", "yes"}


def form_data(form) -> dict:
    """A transition form (werkzeug MultiDict) as the plain dict validate_transition() takes."""
    return {
        "name": form.get("name", ""), "command_code": form.get("command_code", ""), "slug": form.get("slug", ""),
        "source_state": form.get("source_state", ""), "destination_state": form.get("destination_state", ""),
        "visibility": form.getlist("visibility"), "configuration": form.get("configuration", ""),
        "is_active": form.get("is_active") in ("on", "true", "1"),
    }


def _clean_optional_state(raw: object, field: str, label: str) -> int | None:
    """Like _clean_state, but an empty value means None (no state)."""
    if raw in (None, ""):
        return None
    return _clean_state(raw, field, label)


def _clean_state(raw: object, field: str, label: str) -> int:
    """A state code from a code or slug. Raises ValidationFailed for an unknown state."""
    code = parse_state(raw)
    if code is None:
        label = _(label)  # marked with N_ by the caller
        raise ValidationFailed(_("%(label)s: %(raw)r is not a known state.", label=label, raw=raw)
                               if raw not in (None, "")
                               else _("Choose the %(label)s.", label=label.lower()), field=field)
    return code


def _clean_configuration(raw: object) -> dict:
    """The configuration as a JSON object (text or dict; empty means {}). Raises ValidationFailed."""
    if isinstance(raw, dict):
        return raw
    text = str(raw or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(_("The configuration is not valid JSON (line %(line)s, column %(column)s: %(error)s).",
                                 line=exc.lineno, column=exc.colno, error=exc.msg), field="configuration") from None
    if not isinstance(value, dict):
        raise ValidationFailed(_('The configuration must be a JSON object, like {"key": "value"}.'),
                               field="configuration")
    return value


def _clean_visibility(raw: object) -> list[str]:
    """A non-empty subset of OMS_WEB and INSTORE, in that order. Raises ValidationFailed."""
    values: list[object]
    if isinstance(raw, str):
        values = [part for part in re.split(r"[\s,]+", raw) if part]
    elif raw is None:
        values = []
    elif isinstance(raw, Iterable):
        values = list(raw)
    else:
        raise ValidationFailed(_("Unknown visibility %(unknown)r; use OMS_WEB and/or INSTORE.", unknown=raw),
                               field="visibility")
    unknown = [v for v in values if v not in Visibility.ALL]
    if unknown:
        raise ValidationFailed(_("Unknown visibility %(unknown)r; use OMS_WEB and/or INSTORE.", unknown=unknown[0]),
                               field="visibility")
    if not values:
        raise ValidationFailed(_("Show the command somewhere: tick OMS WEB, INSTORE or both."), field="visibility")
    return [v for v in Visibility.ALL if v in values]


def package_counts(session: Session) -> dict[int, int]:
    """How many packages are in each state (one GROUP BY query)."""
    rows = session.execute(select(Package.state, func.count()).group_by(Package.state))
    return {int(state): count for state, count in rows}


def check_flow(transitions: Iterable, occupied: Iterable[int] = (), entry: Iterable[int] = ENTRY_STATES) -> list[int]:
    """The states packages could get stuck in, sorted by code.

    A state needs a way out when an active transition leads into it, when packages are in it now
    (occupied) or when packages arrive in it (entry); it has one when an active transition starts
    from it. Final states never need one. An unblock (destination None) leaves its source state;
    where it leads back to already had a way out (the block), so it adds nothing to reach.
    """
    needs_exit = set(int(s) for s in occupied) | set(int(s) for s in entry)
    has_exit: set[int] = set()
    for t in transitions:
        if not t.is_active:
            continue
        has_exit.add(int(t.source_state))
        if t.destination_state is not None:
            needs_exit.add(int(t.destination_state))
    return sorted(s for s in needs_exit - has_exit if not state_info(s).is_final)


def _edges(session: Session) -> list[Edge]:
    """Every stored transition as an Edge."""
    return [Edge(t.id, t.source_state, t.destination_state, t.is_active)
            for t in session.scalars(select(Transition))]


def _names(states: Iterable[int]) -> str:
    """State labels as a readable list: "Shipped" or "Shipped and Delivered"."""
    labels = [_(state_info(s).label) for s in states]
    if len(labels) == 1:
        return labels[0]
    return _("%(states)s and %(last)s", states=", ".join(labels[:-1]), last=labels[-1])


def _check_change(session: Session, changed: Edge) -> None:
    """Refuse a change that makes the flow worse: a state loses its last way out, or a command newly
    leads into a state that has none. States stuck before and untouched by the change do not block
    it (the flow status reports them), so an admin can fix several of them one save at a time.
    """
    counts = package_counts(session)
    occupied = [s for s, n in counts.items() if n > 0]
    before_edges = _edges(session)
    old = next((e for e in before_edges if changed.id is not None and e.id == changed.id), None)
    after_edges = [e for e in before_edges if old is None or e.id != old.id] + [changed]
    before = set(check_flow(before_edges, occupied))
    after = check_flow(after_edges, occupied)
    newly_leads_in = changed.is_active and changed.destination_state in after and not (
        old is not None and old.is_active and old.destination_state == changed.destination_state)
    stuck = [s for s in after if s not in before or (newly_leads_in and s == changed.destination_state)]
    if stuck:
        held = [_("%(count)s package(s) in %(state)s", count=counts[s], state=_(state_info(s).label))
                for s in stuck if counts.get(s)]
        why = f" ({'; '.join(held)})" if held else ""
        raise ValidationFailed(
            ngettext("Packages would be stuck in %(states)s%(why)s: it has no active command out. "
                     "Add a command out of it first.",
                     "Packages would be stuck in %(states)s%(why)s: they have no active command out. "
                     "Add a command out of them first.", len(stuck), states=_names(stuck), why=why),
            field="flow", details={"stuck_states": stuck})


def validate_transition(session: Session, data: Mapping, transition_id: int | None = None) -> dict:
    """Check a transition's fields and the flow after saving it; return the cleaned fields.

    Raises ValidationFailed (with .field naming the wrong field, "flow" for a stuck state).
    """
    name = str(data.get("name") or "").strip()
    if not name:
        raise ValidationFailed(_("Give the command a name."), field="name")
    if len(name) > 120:
        raise ValidationFailed(_("The name is too long (at most 120 characters)."), field="name")
    slug = str(data.get("slug") or "").strip()
    if not slug:
        raise ValidationFailed(_("Give the command a slug, like ship-the-package."), field="slug")
    if not SLUG_RE.match(slug) or len(slug) > 120:
        raise ValidationFailed(_("A slug uses only lower-case letters, digits and hyphens (at most 120)."),
                               field="slug")
    taken = session.scalar(select(Transition.id).where(Transition.slug == slug))
    if taken is not None and taken != transition_id:
        raise ValidationFailed(_("The slug %(slug)r is already used by another command.", slug=slug), field="slug")
    code = str(data.get("command_code") or "").strip()
    if code not in commands.command_codes():
        raise ValidationFailed(_("Unknown command code %(code)r; choose one from the list.", code=code) if code
                               else _("Choose a command code."), field="command_code")
    source = _clean_state(data.get("source_state"), "source_state", N_("Source state"))
    destination = _clean_optional_state(data.get("destination_state"), "destination_state", N_("Destination state"))
    if destination is None and code != UNBLOCK_CODE:
        raise ValidationFailed(_("Choose the destination state (only an unblock may return to the state before "
                                 "the block)."), field="destination_state")
    if destination == source:
        raise ValidationFailed(_("The destination must differ from the source state."), field="destination_state")
    visibility = _clean_visibility(data.get("visibility"))
    configuration = _clean_configuration(data.get("configuration"))
    is_active = _truthy(data.get("is_active", True))
    _check_change(session, Edge(transition_id, source, destination, is_active))
    return {"name": name, "slug": slug, "command_code": code, "source_state": source,
            "destination_state": destination, "visibility": visibility, "configuration": configuration,
            "is_active": is_active}


def list_transitions(session: Session) -> list[Transition]:
    """Every transition in the order the screens show commands."""
    return list(session.scalars(select(Transition).order_by(Transition.position, Transition.id)))


def get_transition(session: Session, transition_id: int) -> Transition:
    """One transition. Raises NotFound."""
    transition = session.get(Transition, transition_id)
    if transition is None:
        raise NotFound(_("No such command."))
    return transition


def create_transition(session: Session, data: Mapping, *, user_id: int | None) -> Transition:
    """Validate and add a transition at the end of the list. Raises ValidationFailed."""
    fields = validate_transition(session, data)
    position = (session.scalar(select(func.max(Transition.position))) or 0) + 1
    transition = Transition(position=position, **fields)
    session.add(transition)
    settings.audit(session, fields["slug"][:80], user_id=user_id, area=AUDIT_AREA, action="create")
    refresh_step(session, user_id=user_id)
    session.commit()
    return transition


def update_transition(session: Session, transition_id: int, data: Mapping, *, user_id: int | None) -> Transition:
    """Validate and save changes to a transition. Raises NotFound or ValidationFailed."""
    transition = get_transition(session, transition_id)
    fields = validate_transition(session, data, transition_id=transition.id)
    for key, value in fields.items():
        setattr(transition, key, value)
    settings.audit(session, fields["slug"][:80], user_id=user_id, area=AUDIT_AREA, action="update")
    refresh_step(session, user_id=user_id)
    session.commit()
    return transition


def set_active(session: Session, transition_id: int, active: bool, *, user_id: int | None) -> Transition:
    """Switch a transition on or off; switching off is refused when it would strand packages.

    Raises NotFound or ValidationFailed.
    """
    transition = get_transition(session, transition_id)
    if transition.is_active == active:
        return transition
    if active and transition.command_code not in commands.command_codes():
        raise ValidationFailed(_("No implementation for command code %(code)s; edit it first.",
                                 code=transition.command_code), field="command_code")
    _check_change(session, Edge(transition.id, transition.source_state, transition.destination_state, active))
    transition.is_active = active
    settings.audit(session, transition.slug[:80], user_id=user_id, area=AUDIT_AREA,
                   action="activate" if active else "deactivate")
    refresh_step(session, user_id=user_id)
    session.commit()
    return transition


def delete_transition(session: Session, transition_id: int, *, user_id: int | None) -> str:
    """Remove a transition (audited); refused when it is the only way out of a state. Returns its slug.

    Package history keeps the command's slug (the database clears its transition id). Raises NotFound or
    ValidationFailed.
    """
    transition = get_transition(session, transition_id)
    slug = transition.slug
    # Without it the flow is as if it were switched off: the same check refuses stranding packages.
    _check_change(session, Edge(transition.id, transition.source_state, transition.destination_state, False))
    session.delete(transition)
    settings.audit(session, slug[:80], user_id=user_id, area=AUDIT_AREA, action="delete")
    refresh_step(session, user_id=user_id)
    session.commit()
    return slug


@dataclass
class FlowStatus:
    """Whether the stored flow is complete: its stuck states and how many commands are active."""

    stuck: list[int]
    active_count: int
    counts: dict[int, int]

    @property
    def ok(self) -> bool:
        """True when no state is stuck and there is at least one active command."""
        return not self.stuck and self.active_count > 0

    @property
    def message(self) -> str:
        """What an admin should do, or that all is well."""
        if self.active_count == 0:
            return _("There is no active command: add at least one.")
        if self.stuck:
            return ngettext("Packages could get stuck in %(states)s: add an active command out of it.",
                            "Packages could get stuck in %(states)s: add an active command out of each of them.",
                            len(self.stuck), states=_names(self.stuck))
        return _("The flow is complete: %(count)s active commands, every non-final state has a way out.",
                 count=self.active_count)


def flow_status(session: Session) -> FlowStatus:
    """Check the stored flow as it is."""
    edges = _edges(session)
    counts = package_counts(session)
    stuck = check_flow(edges, [s for s, n in counts.items() if n > 0])
    return FlowStatus(stuck=stuck, active_count=sum(1 for e in edges if e.is_active), counts=counts)


def step_check(session: Session) -> tuple[bool, str]:
    """Step 13 is done when the flow validates and has at least one active command."""
    flow = flow_status(session)
    return flow.ok, flow.message


def refresh_step(session: Session, *, user_id: int | None) -> tuple[bool, str]:
    """Bring step 13 in line with the stored flow (not committed); returns its check.

    Every change to the transitions here calls it, so the wizard's page and the API settle the step the same way.
    """
    session.flush()
    ok, note = step_check(session)
    wizard.settle(session, STEP_KEY, ok, user_id=user_id, note=note)
    return ok, note
