"""The flowchart of setup step 13 fits a tablet: a layered layout with no overlapping labels and no edge through a box.

The layout (portal/packages/flow_layout.py) is checked on the flow the migrations install, on the vendor's
first flow, and on made-up flows with cycles and many commands.
"""
from __future__ import annotations

import random
from itertools import combinations

import pytest

from portal.extensions import db
from portal.packages import flow_editor, flow_layout, flowchart
from portal.packages.flow import VENDOR_FLOW_V1
from portal.packages.models import Transition
from portal.packages.states import STATES

PORTRAIT_CONTENT_WIDTH = 700  # the page column of a 768 px wide tablet


def made_up(rows) -> list[Transition]:
    """Transient transitions from (name, source, destination) rows."""
    return [Transition(id=n, position=n, slug=f"t-{n}", name=name, command_code="X", source_state=int(source),
                       destination_state=None if destination is None else int(destination), visibility=["OMS_WEB"],
                       configuration={}, is_active=True)
            for n, (name, source, destination) in enumerate(rows, start=1)]


def vendor_v1() -> list[Transition]:
    """The vendor's first flow, as rows."""
    return made_up([(name, src, dst) for _slug, name, _code, src, dst, _vis in VENDOR_FLOW_V1])


def random_flow(seed: int, count: int) -> list[Transition]:
    """A made-up flow: `count` commands between random states, names reused so some commands join many states."""
    rng = random.Random(seed)
    codes = sorted(STATES)
    names = [f"Command number {n} with a long name" for n in range(count // 3 + 1)]
    rows = []
    while len(rows) < count:
        source, destination = rng.sample(codes, 2)
        rows.append((rng.choice(names), source, destination))
    return rows and made_up(rows)


def assert_readable(chart: flowchart.Flowchart) -> None:
    """No two labels overlap, each label lies inside its box, boxes are touch-sized, no edge runs through a box."""
    labels = [(box.key, box.label_box()) for box in chart.boxes]
    for (key_a, (xa, ya, wa, ha)), (key_b, (xb, yb, wb, hb)) in combinations(labels, 2):
        assert not (xa < xb + wb and xb < xa + wa and ya < yb + hb and yb < ya + ha), (key_a, key_b)
    for box in chart.boxes:
        x, y, w, h = box.label_box()
        assert box.x <= x and x + w <= box.x + box.w and box.y <= y and y + h <= box.y + box.h, box.key
        assert box.h >= 44 and box.w >= 44, box.key
    for a, b in combinations(chart.boxes, 2):
        assert not (a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h), (a.key, b.key)


def assert_edges_avoid_boxes(specs, edges, result: flow_layout.Layout) -> None:
    """Every point of every drawn edge is outside every box but the two it joins."""
    ends = {edge.key: (edge.source, edge.target) for edge in edges}
    for route in result.routes:
        for px, py in route.samples():
            for key, box in result.nodes.items():
                if key in ends[route.key]:
                    continue
                inside = box.x + 1 < px < box.x + box.w - 1 and box.y + 1 < py < box.y + box.h - 1
                assert not inside, (route.key, key, px, py)


def test_the_installed_flow_fits_a_portrait_tablet_and_no_labels_overlap(app):
    transitions = flow_editor.list_transitions(db.session)
    assert any(t.destination_state == 100 for t in transitions)  # "Reschedule" leads back: a cycle
    with app.test_request_context():
        chart = flowchart.build(transitions, {100: 12, 550: 1234})

    assert chart.width <= flowchart.MAX_WIDTH < PORTRAIT_CONTENT_WIDTH
    assert_readable(chart)
    # Every state and every distinct command is drawn once; the counts are written on their states.
    assert {b.state_code for b in chart.boxes if b.kind == "state"} == set(STATES)
    assert len([b for b in chart.boxes if b.kind == "command"]) == len(
        {(t.name, t.destination_state) for t in transitions if t.is_active})
    assert next(b for b in chart.boxes if b.state_code == 550).note == "1234 packages"
    # The cycle's arrow is drawn pointing back up.
    assert any(edge.reversed for edge in chart.edges)


def test_the_vendor_flow_fits_and_keeps_crossings_few(app):
    with app.test_request_context():
        chart = flowchart.build(vendor_v1())
    assert chart.width <= flowchart.MAX_WIDTH
    assert_readable(chart)
    # The six "Block" arrows into one box cross a few others; the first draft, in state-code order, crossed 31.
    assert chart.crossings <= 12
    unused = [b for b in chart.boxes if b.kind == "state" and b.y >= (chart.loose_top or chart.height)]
    assert {b.state_code for b in unused} == {300, 920, 950, 960, 1100}  # nothing leads to or from them


@pytest.mark.parametrize("seed", range(6))
def test_made_up_flows_never_overlap_and_edges_never_cross_a_box(app, seed):
    with app.test_request_context():
        chart = flowchart.build(random_flow(seed, 12 + 4 * seed))
    assert_readable(chart)


@pytest.mark.parametrize("seed", range(6))
def test_the_layout_routes_every_edge_around_the_boxes(seed):
    rng = random.Random(seed)
    specs = [flow_layout.NodeSpec(f"n{i}", rng.randint(60, 160), rng.randint(44, 70)) for i in range(14)]
    edges = []
    for n in range(22):
        a, b = rng.sample(specs, 2)
        edges.append(flow_layout.EdgeSpec(f"e{n}", a.key, b.key))
    result = flow_layout.layout(specs, edges, max_width=660)

    assert_edges_avoid_boxes(specs, edges, result)
    placed = list(result.nodes.values())
    for a, b in combinations(placed, 2):
        assert not a.overlaps(b), (a.key, b.key)
    # Edges go down a layer at a time, except the ones that closed a cycle, which point back up.
    layer = {p.key: p.layer for p in placed}
    for edge, route in zip(edges, result.routes, strict=True):
        down = layer[edge.target] > layer[edge.source] if not route.reversed else layer[edge.source] > layer[edge.target]
        assert down, edge


def test_a_tree_is_drawn_without_crossings_even_when_given_in_a_tangled_order():
    # Listed so that the first order would cross: a's children and b's children interleaved.
    specs = [flow_layout.NodeSpec(k, 80, 44) for k in ("root", "a", "b", "b1", "a1", "b2", "a2")]
    edges = [flow_layout.EdgeSpec(f"{s}-{t}", s, t) for s, t in
             (("root", "a"), ("root", "b"), ("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2"))]
    result = flow_layout.layout(specs, edges, max_width=660)
    assert result.crossings == 0
    bottom = result.layers[2]
    assert abs(bottom.index("a1") - bottom.index("a2")) == 1 and abs(bottom.index("b1") - bottom.index("b2")) == 1
    assert result.width <= 660


def test_a_layer_too_wide_for_the_width_still_never_overlaps():
    specs = [flow_layout.NodeSpec("top", 80, 44)] + [flow_layout.NodeSpec(f"c{i}", 150, 44) for i in range(8)]
    edges = [flow_layout.EdgeSpec(f"e{i}", "top", f"c{i}") for i in range(8)]
    result = flow_layout.layout(specs, edges, max_width=400)
    row = sorted((p for p in result.nodes.values() if p.layer == 1), key=lambda p: p.x)
    assert all(b.x >= a.x + a.w for a, b in zip(row, row[1:], strict=False))
    assert result.width >= 8 * 150


def test_an_edge_to_an_unknown_box_or_to_itself_is_refused():
    specs = [flow_layout.NodeSpec("a", 80, 44)]
    with pytest.raises(ValueError):
        flow_layout.layout(specs, [flow_layout.EdgeSpec("e", "a", "nowhere")])
    with pytest.raises(ValueError):
        flow_layout.layout(specs, [flow_layout.EdgeSpec("e", "a", "a")])
