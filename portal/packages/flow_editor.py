"""Editing the package flow (setup step 13): transition validation, the whole-flow check and the flowchart.

A transition is data (see commands.py): this module checks one before it is saved, and checks the
flow as it would be after the save: every state a package can reach, or is in now, must have an
active command out of it unless the state is final. The flowchart is an inline SVG built here, on
the server, with no JavaScript.
"""
from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import NotFound, ValidationFailed
from portal.i18n import N_
from portal.packages import commands
from portal.packages.models import Package, Transition
from portal.packages.states import STATES, State, Visibility, parse_state, state_info
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


# --- The flowchart -------------------------------------------------------------------------------------------

BOX_W, BOX_H = 132, 48
COL_W, ROW_H = 204, 96
PAD_X, PAD_TOP, LANE_GAP = 24, 62, 70
MAIN_ROWS = 2
LINE_CHARS = 16


@dataclass(frozen=True)
class Box:
    """Where a state's box is drawn."""

    x: float
    y: float
    w: float = BOX_W
    h: float = BOX_H

    @property
    def cx(self) -> float:
        """Centre x."""
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        """Centre y."""
        return self.y + self.h / 2

    def contains(self, px: float, py: float, margin: float = 6) -> bool:
        """True when the point lies inside the box grown by margin."""
        return self.x - margin <= px <= self.x + self.w + margin and self.y - margin <= py <= self.y + self.h + margin


def _wrap(label: str, width: int = LINE_CHARS) -> list[str]:
    """Split a label into lines of about width characters."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _layout() -> tuple[dict[int, Box], list[tuple[str, float]], float, float]:
    """Boxes for every state, in two lanes read left to right in code order.

    The lifecycle lane (codes below 900) fills columns of MAIN_ROWS states each; the exceptions
    and refunds lane (900 and up) runs below it in one row. Returns boxes, lane titles (text, y),
    width and height.
    """
    main = sorted(c for c in STATES if c < 900)
    other = sorted(c for c in STATES if c >= 900)
    columns = max(math.ceil(len(main) / MAIN_ROWS), len(other), 1)
    boxes: dict[int, Box] = {}
    for i, code in enumerate(main):
        boxes[code] = Box(PAD_X + (i // MAIN_ROWS) * COL_W, PAD_TOP + (i % MAIN_ROWS) * ROW_H)
    top = PAD_TOP + (MAIN_ROWS - 1) * ROW_H + BOX_H + LANE_GAP
    for i, code in enumerate(other):
        boxes[code] = Box(PAD_X + i * COL_W, top)
    lanes: list[tuple[str, float]] = [(N_("Lifecycle"), PAD_TOP - 34), (N_("Exceptions and refunds"), top - 22)]
    width = PAD_X * 2 + (columns - 1) * COL_W + BOX_W
    height = top + BOX_H + 28
    return boxes, lanes, width, height


def _border_point(box: Box, tx: float, ty: float) -> tuple[float, float]:
    """Where the ray from the box's centre towards (tx, ty) leaves the box."""
    dx, dy = tx - box.cx, ty - box.cy
    if dx == 0 and dy == 0:
        return box.cx, box.cy
    scale = min((box.w / 2) / abs(dx) if dx else math.inf, (box.h / 2) / abs(dy) if dy else math.inf)
    return box.cx + dx * scale, box.cy + dy * scale


def _quad(p0, c, p2, t: float) -> tuple[float, float]:
    """A point of the quadratic Bezier curve p0-c-p2."""
    a, b, d = (1 - t) ** 2, 2 * (1 - t) * t, t ** 2
    return a * p0[0] + b * c[0] + d * p2[0], a * p0[1] + b * c[1] + d * p2[1]


def _label_box(x: float, y: float, text: str) -> Box:
    """The space an edge label centred on (x, y) takes, roughly (10.5 px text)."""
    width = len(text) * 5.9 + 6
    return Box(x - width / 2, y - 11, width, 14)


def _overlaps(a: Box, b: Box) -> bool:
    """True when two boxes overlap."""
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _route(src: Box, dst: Box, obstacles: list[Box], label: str | None, at: float, placed: list[Box]) -> tuple:
    """A curve from src to dst, bent to keep it and its label off the boxes and labels already drawn.

    Returns (start, control, end, label box or None).
    """
    mx, my = (src.cx + dst.cx) / 2, (src.cy + dst.cy) / 2
    length = math.hypot(dst.cx - src.cx, dst.cy - src.cy) or 1
    nx, ny = -(dst.cy - src.cy) / length, (dst.cx - src.cx) / length
    best: tuple[float, tuple[float, float], tuple[float, float], tuple[float, float], Box | None] | None = None
    for bend in (0, 36, -36, 72, -72, 110, -110, 150, -150, 200, -200):
        control = (mx + nx * bend, my + ny * bend)
        start = _border_point(src, *control)
        end = _border_point(dst, *control)
        cost: float = sum(2 for i in range(1, 24) for box in obstacles if box.contains(*_quad(start, control, end, i / 24)))
        label_box: Box | None = None
        if label:
            label_cost = math.inf
            for t in (at, at - 0.15, at + 0.15, at - 0.3, at + 0.3):
                spot = _label_box(*_quad(start, control, end, min(max(t, 0.15), 0.85)), label)
                spot_cost = (sum(3 for box in obstacles + [src, dst] if _overlaps(spot, box))
                             + sum(4 for other in placed if _overlaps(spot, other)) + abs(t - at))
                if spot_cost < label_cost:
                    label_box, label_cost = spot, spot_cost
            cost += label_cost
        cost += abs(bend) / 400  # among equals, the straighter line
        if best is None or cost < best[0]:
            best = (cost, start, control, end, label_box)
        if cost < 0.01:
            break
    assert best is not None  # the loop runs at least once
    return best[1:]


def _fmt(value: float) -> str:
    """A coordinate with one decimal at most."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def flowchart_svg(transitions: Iterable[Transition], counts: Mapping[int, int] | None = None) -> Markup:
    """The active flow as an accessible inline SVG: a box per state, an arrow per command, final states framed twice."""
    counts = counts or {}
    boxes, lanes, width, height = _layout()
    # A row edited outside the portal may name a state the catalogue lacks: it cannot be drawn.
    active = [t for t in transitions if t.is_active and t.source_state in boxes
              and (t.destination_state is None or t.destination_state in boxes)]
    back_box: Box | None = None
    if any(t.destination_state is None for t in active):
        blocked = boxes[int(State.BLOCKED)]
        back_box = Box(blocked.x + COL_W / 2, blocked.y + ROW_H, BOX_W + 34, 34)
        height = max(height, back_box.y + back_box.h + 24)
    used = {t.source_state for t in active} | {t.destination_state for t in active if t.destination_state}

    groups: dict[tuple[int, int | None], list[str]] = defaultdict(list)
    for t in active:
        names = groups[(t.source_state, t.destination_state)]
        if t.name not in names:
            names.append(t.name)

    title = _("Package state flowchart")
    desc = _("%(states)s states and %(commands)s active commands; lifecycle states from left to right in code "
             "order, exceptions and refunds below. The list beside the chart gives every command in words.",
             states=len(STATES), commands=len(active))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flowchart" role="img" width="{_fmt(width)}" '
        f'height="{_fmt(height)}" viewBox="0 0 {_fmt(width)} {_fmt(height)}" aria-label="{escape(title)}" '
        f'aria-describedby="flow-desc">',
        f'<title id="flow-title">{escape(title)}</title><desc id="flow-desc">{escape(desc)}</desc>',
        '<defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="flow-arrowhead"/></marker></defs>',
    ]
    for text, y in lanes:
        parts.append(f'<text class="flow-lane" x="{PAD_X}" y="{_fmt(y)}">{escape(_(text))}</text>')

    # Six "Block" arrows into Blocked carry the same words: say them once, near the target.
    shared: dict[tuple[int | None, tuple[str, ...]], int] = defaultdict(int)
    for (_src, dst), names in groups.items():
        shared[(dst, tuple(names))] += 1
    labelled: set[tuple[int | None, tuple[str, ...]]] = set()
    placed: list[Box] = []
    label_parts = []
    for (src, dst), names in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        source_box = boxes[src]
        target_box = boxes[dst] if dst is not None else back_box
        assert target_box is not None  # back_box is drawn whenever an active command returns to the state before the block
        obstacles = [b for code, b in boxes.items() if code not in (src, dst)]
        label = ", ".join(names)
        key = (dst, tuple(names))
        shown = label if key not in labelled else None
        at = 0.78 if shared[key] > 1 else 0.5
        start, control, end, label_box = _route(source_box, target_box, obstacles, shown, at, placed)
        to_label = _(state_info(dst).label) if dst is not None else _("the state before the block")
        css = "flow-edge flow-edge-back" if dst is None else "flow-edge"
        edge_title = _("%(commands)s: %(source)s to %(target)s", commands=label, source=_(state_info(src).label),
                       target=to_label)
        parts.append(
            f'<g class="{css}"><title>{escape(edge_title)}</title>'
            f'<path d="M{_fmt(start[0])},{_fmt(start[1])} Q{_fmt(control[0])},{_fmt(control[1])} '
            f'{_fmt(end[0])},{_fmt(end[1])}" marker-end="url(#flow-arrow)"/></g>')
        if shown is None:
            continue
        labelled.add(key)
        placed.append(label_box)
        label_parts.append(f'<text class="flow-edge-label" x="{_fmt(label_box.cx)}" y="{_fmt(label_box.y + 11)}" '
                           f'text-anchor="middle">{escape(label)}</text>')

    for code, box in sorted(boxes.items()):
        info = STATES[code]
        classes = f"flow-state flow-state-{info.category}"
        if info.is_final:
            classes += " flow-state-final"
        if code not in used:
            classes += " flow-state-unused"
        count = counts.get(code, 0)
        state_label = _(info.label)
        box_title = f"{state_label} ({code})"
        if info.is_final:
            box_title += " · " + _("final")
        if count:
            box_title += " · " + _("%(count)s package(s)", count=count)
        parts.append(f'<g class="{classes}"><title>{escape(box_title)}</title>')
        parts.append(f'<rect x="{_fmt(box.x)}" y="{_fmt(box.y)}" width="{_fmt(box.w)}" height="{_fmt(box.h)}" rx="8"/>')
        if info.is_final:
            parts.append(f'<rect class="flow-final-inner" x="{_fmt(box.x + 4)}" y="{_fmt(box.y + 4)}" '
                         f'width="{_fmt(box.w - 8)}" height="{_fmt(box.h - 8)}" rx="5"/>')
        lines = _wrap(state_label)
        first_y = box.cy - (len(lines) - 1) * 7 + 4
        tspans = "".join(f'<tspan x="{_fmt(box.cx)}" y="{_fmt(first_y + n * 14)}">{escape(line)}</tspan>'
                         for n, line in enumerate(lines))
        parts.append(f'<text class="flow-state-label" text-anchor="middle">{tspans}</text>')
        parts.append(f'<text class="flow-state-code" x="{_fmt(box.x + box.w - 9)}" y="{_fmt(box.y + box.h - 8)}" '
                     f'text-anchor="end">{code}{" " + escape(_("final")) if info.is_final else ""}</text></g>')
    if back_box is not None:
        parts.append(f'<g class="flow-state flow-state-back"><rect x="{_fmt(back_box.x)}" y="{_fmt(back_box.y)}" '
                     f'width="{_fmt(back_box.w)}" height="{_fmt(back_box.h)}" rx="17"/>'
                     f'<text class="flow-state-label" x="{_fmt(back_box.cx)}" y="{_fmt(back_box.cy + 4)}" '
                     f'text-anchor="middle">{escape(_("State before the block"))}</text></g>')
    parts.extend(label_parts)
    parts.append("</svg>")
    return Markup("".join(parts))
