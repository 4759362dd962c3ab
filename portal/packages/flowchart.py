"""The flowchart of setup step 13: the package states and the active commands between them, laid out to fit a tablet.

Each state is a box, and each command is a box of its own between the states it joins: a command run
from several states ("Block The Package For Action" from six) is one box with an arrow from each. So
every label sits inside its own box, and the layered layout (flow_layout.py) keeps boxes from
overlapping and edges off boxes. The drawing is data here; the template setup/_flowchart.html turns it
into an SVG whose boxes link to the command's edit dialog or to the state in "The flow in words".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.packages import flow_layout
from portal.packages.models import Transition
from portal.packages.states import STATES, state_info

MAX_WIDTH = 660.0  # fits the content column of a 768 px wide (portrait) tablet without scaling
# Wrap widths (state, command), in characters: the first that lets the chart fit max_width is used.
WRAPS = ((15, 20), (13, 16), (11, 13))
STATE_CHAR_W, COMMAND_CHAR_W, SMALL_CHAR_W = 7.4, 6.6, 6.0  # generous average glyph widths (13, 11.5, 11 px text)
LINE_H, SMALL_LINE_H = 15.0, 13.0
MIN_STATE_W, MIN_COMMAND_W, MIN_H = 96.0, 88.0, 44.0  # boxes are touch targets
BOX_PAD_X, BOX_PAD_Y = 10.0, 9.0
BACK_KEY = "back"


def wrap(text: str, width: int) -> list[str]:
    """Split a label into lines of at most about `width` characters, at spaces (a longer word keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


@dataclass
class Box:
    """A drawn box: a state, a command, or "the state before the block"; its lines of text and where they go."""

    key: str
    kind: str  # state | command | back
    lines: list[str]
    note: str  # a smaller line under the label ("12 packages"), or ""
    title: str  # the tooltip and accessible name
    css: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    transition_id: int | None = None  # a command's first transition: its box opens that command
    state_code: int | None = None
    is_final: bool = False

    @property
    def cx(self) -> float:
        """Centre x."""
        return self.x + self.w / 2

    def text_lines(self) -> list[tuple[str, float, str]]:
        """(text, baseline y, css class) of every line, centred vertically in the box."""
        rows = [(line, LINE_H, "flow-label") for line in self.lines]
        if self.note:
            rows.append((self.note, SMALL_LINE_H, "flow-note"))
        total = sum(height for _text, height, _css in rows)
        y = self.y + (self.h - total) / 2
        out = []
        for text, height, css in rows:
            y += height
            out.append((text, y - 3.5, css))
        return out

    def label_box(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) the box's text takes, by the same measure that sized the box."""
        widths = [len(line) * (COMMAND_CHAR_W if self.kind == "command" else STATE_CHAR_W) for line in self.lines]
        if self.note:
            widths.append(len(self.note) * SMALL_CHAR_W)
        height = len(self.lines) * LINE_H + (SMALL_LINE_H if self.note else 0)
        width = max(widths)
        return self.cx - width / 2, self.y + (self.h - height) / 2, width, height


@dataclass
class Edge:
    """A drawn arrow: its SVG path, whether it points backwards (its arrow at the start), and its tooltip."""

    path: str
    title: str
    reversed: bool
    css: str


@dataclass
class Flowchart:
    """The whole drawing: boxes, arrows, size, and the words for its title and description."""

    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float
    title: str
    description: str
    loose_top: float | None
    crossings: int


def _size(lines: list[str], note: str, char_w: float, min_w: float) -> tuple[float, float]:
    """A box's width and height for its text."""
    widest = max([len(line) * char_w for line in lines] + ([len(note) * SMALL_CHAR_W] if note else []))
    height = len(lines) * LINE_H + (SMALL_LINE_H if note else 0) + 2 * BOX_PAD_Y
    return max(min_w, widest + 2 * BOX_PAD_X), max(MIN_H, height)


def build(transitions: Iterable[Transition], counts: Mapping[int, int] | None = None, *,
          max_width: float = MAX_WIDTH) -> Flowchart:
    """The flowchart of the active transitions, with a package count on each state that has packages.

    Labels wrap more tightly when the chart would be wider than max_width; the narrowest try is kept if
    none fits (the page then scales the drawing down).
    """
    transitions = list(transitions)
    chart = None
    for state_chars, command_chars in WRAPS:
        chart = _build(transitions, counts or {}, max_width, state_chars, command_chars)
        if chart.width <= max_width:
            break
    assert chart is not None  # WRAPS is not empty
    return chart


def _build(transitions: list[Transition], counts: Mapping[int, int], max_width: float, state_chars: int,
           command_chars: int) -> Flowchart:
    """The flowchart with labels wrapped at the given widths."""
    # A row edited outside the portal may name a state the catalogue lacks: it cannot be drawn.
    active = [t for t in transitions if t.is_active and t.source_state in STATES
              and (t.destination_state is None or t.destination_state in STATES)]
    boxes: dict[str, Box] = {}
    for code, info in sorted(STATES.items()):
        label = _(info.label)
        count = counts.get(code, 0)
        note = ngettext("%(num)s package", "%(num)s packages", count) if count else ""
        title = label + (" · " + _("final state") if info.is_final else "") + (f" · {note}" if note else "")
        css = f"flow-state flow-state-{info.category}" + (" flow-state-final" if info.is_final else "")
        boxes[f"s{code}"] = Box(f"s{code}", "state", wrap(label, state_chars), note, title, css, state_code=code,
                                is_final=info.is_final)

    # One command box per (name, destination): the same command from several states is one box.
    commands: dict[tuple[str, int | None], list[Transition]] = {}
    for t in active:
        commands.setdefault((t.name, t.destination_state), []).append(t)
    edge_specs: list[flow_layout.EdgeSpec] = []
    edge_titles: dict[str, tuple[str, str]] = {}
    for n, ((name, destination), group) in enumerate(commands.items()):
        key = f"c{n}"
        target = f"s{destination}" if destination is not None else BACK_KEY
        to_label = _(state_info(destination).label) if destination is not None else _("the state before the block")
        sources = [_(state_info(t.source_state).label) for t in group]
        title = _("%(command)s: from %(sources)s to %(target)s", command=name, sources=", ".join(sources),
                  target=to_label)
        boxes[key] = Box(key, "command", wrap(name, command_chars), "", title,
                         "flow-command" + (" flow-command-back" if destination is None else ""),
                         transition_id=group[0].id)
        if destination is None and BACK_KEY not in boxes:
            back = _("State before the block")
            boxes[BACK_KEY] = Box(BACK_KEY, "back", wrap(back, state_chars), "", back, "flow-state flow-state-back")
        for t in group:
            edge_key = f"{key}-from-{t.source_state}"
            if edge_key in edge_titles:
                continue
            edge_specs.append(flow_layout.EdgeSpec(edge_key, f"s{t.source_state}", key))
            edge_titles[edge_key] = (_("%(command)s from %(source)s", command=name,
                                       source=_(state_info(t.source_state).label)), "flow-edge")
        edge_specs.append(flow_layout.EdgeSpec(f"{key}-to", key, target))
        edge_titles[f"{key}-to"] = (_("%(command)s to %(target)s", command=name, target=to_label),
                                    "flow-edge flow-edge-back" if destination is None else "flow-edge")

    specs = []
    for box in boxes.values():
        char_w, min_w = (COMMAND_CHAR_W, MIN_COMMAND_W) if box.kind == "command" else (STATE_CHAR_W, MIN_STATE_W)
        box.w, box.h = _size(box.lines, box.note, char_w, min_w)
        specs.append(flow_layout.NodeSpec(box.key, box.w, box.h))
    placed = flow_layout.layout(specs, edge_specs, max_width=max_width)
    for box in boxes.values():
        spot = placed.nodes[box.key]
        box.x, box.y = spot.x, spot.y
    edges = [Edge(route.path(), edge_titles[route.key][0], route.reversed, edge_titles[route.key][1])
             for route in placed.routes]
    description = _("%(states)s states and %(commands)s active commands, read from top to bottom: each command is "
                    "a box between the states it joins. States that no active command touches are listed at the "
                    "bottom. The list beside the chart gives every command in words.", states=len(STATES),
                    commands=len(active))
    return Flowchart(list(boxes.values()), edges, placed.width, placed.height, _("Package state flowchart"),
                     description, placed.loose_top, placed.crossings)
