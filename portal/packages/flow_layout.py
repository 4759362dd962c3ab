"""A layered (Sugiyama-style) layout for small directed graphs, computed on the server: no JavaScript, no binary.

The flowchart of setup step 13 draws states and the commands between them as boxes, and this module
places the boxes: it breaks cycles, puts every box on a layer (top to bottom, each edge going down),
threads edges that skip layers through narrow "dummy" slots so no line crosses a box, orders each layer
to keep crossings few (barycentre sweeps) and spaces the boxes so that none overlap and the drawing
stays within a maximum width where it can. Boxes without any edge go on rows of their own at the bottom.

Everything here is plain geometry on plain data: it knows nothing of packages or Flask.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

DUMMY_W = 4.0  # a long edge's slot in a layer it passes through
GAP_X = 20.0  # between two boxes of a layer
GAP_DUMMY = 6.0  # beside an edge slot
GAP_Y = 34.0  # between two layers: where the edges bend
PAD = 12.0  # around the drawing
SWEEPS = 12


@dataclass(frozen=True)
class NodeSpec:
    """A box to place: its key and size (the caller measures its text)."""

    key: str
    w: float
    h: float


@dataclass(frozen=True)
class EdgeSpec:
    """An edge from one box to another (keys of NodeSpecs)."""

    key: str
    source: str
    target: str


@dataclass
class Placed:
    """A placed box: top-left corner and size, and its layer (None for the rows of boxes without edges)."""

    key: str
    x: float
    y: float
    w: float
    h: float
    layer: int | None

    @property
    def cx(self) -> float:
        """Centre x."""
        return self.x + self.w / 2

    def overlaps(self, other: Placed, margin: float = 0.0) -> bool:
        """True when the two boxes, each grown by margin, overlap."""
        return (self.x - margin < other.x + other.w + margin and other.x - margin < self.x + self.w + margin
                and self.y - margin < other.y + other.h + margin and other.y - margin < self.y + self.h + margin)


@dataclass
class Route:
    """An edge's way: points from the source box's bottom to the target box's top, through the layers it skips.

    Segments alternate: a bend between two layers (even index), then a straight run down through a layer
    (odd index). `reversed` means the edge points up (it closed a cycle): the arrow belongs at the start.
    """

    key: str
    points: list[tuple[float, float]]
    reversed: bool = False

    def path(self) -> str:
        """The SVG path: vertical-tangent curves between layers, straight lines through them."""
        (x0, y0), rest = self.points[0], self.points[1:]
        parts = [f"M{_fmt(x0)},{_fmt(y0)}"]
        px, py = x0, y0
        for i, (x, y) in enumerate(rest):
            if i % 2 == 0:
                mid = (py + y) / 2
                parts.append(f"C{_fmt(px)},{_fmt(mid)} {_fmt(x)},{_fmt(mid)} {_fmt(x)},{_fmt(y)}")
            else:
                parts.append(f"L{_fmt(x)},{_fmt(y)}")
            px, py = x, y
        return " ".join(parts)

    def samples(self, steps: int = 16) -> list[tuple[float, float]]:
        """Points along the drawn path (for checks: no edge runs through a box)."""
        out = [self.points[0]]
        (px, py) = self.points[0]
        for i, (x, y) in enumerate(self.points[1:]):
            for n in range(1, steps + 1):
                t = n / steps
                if i % 2 == 0:  # cubic with vertical tangents: x eases from px to x, y from py to y
                    mid = (py + y) / 2
                    bx = (1 - t) ** 3 * px + 3 * (1 - t) ** 2 * t * px + 3 * (1 - t) * t ** 2 * x + t ** 3 * x
                    by = (1 - t) ** 3 * py + 3 * (1 - t) ** 2 * t * mid + 3 * (1 - t) * t ** 2 * mid + t ** 3 * y
                    out.append((bx, by))
                else:
                    out.append((px + (x - px) * t, py + (y - py) * t))
            px, py = x, y
        return out


@dataclass
class Layout:
    """Where every box and edge goes, and the drawing's size."""

    nodes: dict[str, Placed]
    routes: list[Route]
    width: float
    height: float
    crossings: int
    loose_top: float | None = None  # where the rows of boxes without edges start, if any
    layers: list[list[str]] = field(default_factory=list)


def _fmt(value: float) -> str:
    """A coordinate with one decimal at most."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass
class _Slot:
    """A box or a dummy in a layer, while the layout is computed."""

    key: str
    w: float
    h: float
    dummy: bool
    x: float = 0.0


def _break_cycles(order: Sequence[str], edges: Sequence[EdgeSpec]) -> set[str]:
    """The keys of edges to turn round so the graph has no cycle (depth-first, in the given node order)."""
    out: dict[str, list[EdgeSpec]] = defaultdict(list)
    for edge in edges:
        out[edge.source].append(edge)
    state: dict[str, int] = {}  # 1 on the stack, 2 finished
    turned: set[str] = set()
    for root in order:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(out[node]):
                stack[-1] = (node, i + 1)
                edge = out[node][i]
                seen = state.get(edge.target)
                if seen == 1:
                    turned.add(edge.key)
                elif seen is None:
                    state[edge.target] = 1
                    stack.append((edge.target, 0))
            else:
                state[node] = 2
                stack.pop()
    return turned


def _layers(order: Sequence[str], pairs: Sequence[tuple[str, str]]) -> dict[str, int]:
    """A layer per node: longest path from the sources, then sources pulled down next to their first successor."""
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for source, target in pairs:
        preds[target].append(source)
        succs[source].append(target)
    topo: list[str] = []
    indegree = {n: len(preds[n]) for n in order}
    ready = [n for n in order if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        topo.append(node)
        for nxt in succs[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    layer: dict[str, int] = {}
    for node in topo:
        layer[node] = max((layer[p] + 1 for p in preds[node]), default=0)
    # A source far from the start (a delivery that failed, say) sits just above what it leads to.
    for node in reversed(topo):
        if not preds[node] and succs[node]:
            layer[node] = max(min(layer[s] for s in succs[node]) - 1, 0)
    return layer


def _crossings(upper: list[_Slot], lower: list[_Slot], links: list[tuple[str, str]]) -> int:
    """How many of the links between two adjacent layers cross."""
    up = {s.key: i for i, s in enumerate(upper)}
    low = {s.key: i for i, s in enumerate(lower)}
    ends = sorted((up[a], low[b]) for a, b in links if a in up and b in low)
    count = 0
    for i, (a1, b1) in enumerate(ends):
        for a2, b2 in ends[i + 1:]:
            if a1 != a2 and b1 > b2:
                count += 1
    return count


def _spacing(left: _Slot, right: _Slot) -> float:
    """The least distance between the centres of two neighbours in a layer."""
    gap = GAP_X if not (left.dummy or right.dummy) else GAP_DUMMY
    return left.w / 2 + gap + right.w / 2


def _pack(slots: list[_Slot], desired: list[float], lo: float, hi: float) -> None:
    """Set each slot's centre near its desired x, in order, never closer than _spacing, within [lo, hi] if they fit.

    Neighbours that would overlap are merged into blocks placed at their mean wish (least squares).
    """
    offsets = [0.0]
    for a, b in zip(slots, slots[1:], strict=False):
        offsets.append(offsets[-1] + _spacing(a, b))
    blocks: list[list[int]] = []  # [first, last]
    starts: list[float] = []
    for i in range(len(slots)):
        blocks.append([i, i])
        starts.append(desired[i] - offsets[i])
        while len(blocks) > 1:
            first, last = blocks[-2]
            # The earlier block's last centre plus spacing must not pass this block's first centre.
            if starts[-2] + offsets[last] + _spacing(slots[last], slots[last + 1]) - offsets[last + 1] <= starts[-1]:
                break
            merged = [blocks[-2][0], blocks[-1][1]]
            members = range(merged[0], merged[1] + 1)
            start = sum(desired[j] - offsets[j] for j in members) / len(members)
            blocks[-2:] = [merged]
            starts[-2:] = [start]
    for (first, last), start in zip(blocks, starts, strict=True):
        for j in range(first, last + 1):
            slots[j].x = start + offsets[j]
    # Keep inside the bounds where the layer fits: push right from the left edge, then left from the right edge.
    for i, slot in enumerate(slots):
        floor = lo + slot.w / 2 if i == 0 else slots[i - 1].x + _spacing(slots[i - 1], slot)
        slot.x = max(slot.x, floor)
    for i in range(len(slots) - 1, -1, -1):
        ceiling = hi - slots[i].w / 2 if i == len(slots) - 1 else slots[i + 1].x - _spacing(slots[i], slots[i + 1])
        slots[i].x = min(slots[i].x, ceiling)
    for i in range(1, len(slots)):
        slots[i].x = max(slots[i].x, slots[i - 1].x + _spacing(slots[i - 1], slots[i]))
    if slots and slots[0].x - slots[0].w / 2 < lo:
        shift = lo - (slots[0].x - slots[0].w / 2)
        for slot in slots:
            slot.x += shift


def layout(nodes: Sequence[NodeSpec], edges: Sequence[EdgeSpec], *, max_width: float = 660.0) -> Layout:
    """Place the boxes and route the edges; boxes keep their given order where nothing better is found.

    Boxes that no edge touches go on rows below the graph, wrapped at max_width. Raises ValueError for an
    edge naming an unknown box or a box that leads to itself.
    """
    spec = {n.key: n for n in nodes}
    for edge in edges:
        if edge.source not in spec or edge.target not in spec:
            raise ValueError(f"edge {edge.key} names an unknown box")
        if edge.source == edge.target:
            raise ValueError(f"edge {edge.key} leads back to its own box")
    linked = {e.source for e in edges} | {e.target for e in edges}
    order = [n.key for n in nodes if n.key in linked]
    loose = [n for n in nodes if n.key not in linked]

    turned = _break_cycles(order, edges)
    directed = [(e.target, e.source) if e.key in turned else (e.source, e.target) for e in edges]
    layer_of = _layers(order, directed)
    depth = max(layer_of.values(), default=-1) + 1
    rows: list[list[_Slot]] = [[] for _ in range(depth)]
    for key in order:
        rows[layer_of[key]].append(_Slot(key, spec[key].w, spec[key].h, False))
    # Each edge becomes a chain of links between adjacent layers, through one dummy per skipped layer.
    chains: dict[str, list[str]] = {}
    links: list[list[tuple[str, str]]] = [[] for _ in range(max(depth - 1, 0))]
    for edge, (source, target) in zip(edges, directed, strict=True):
        chain = [source]
        for layer in range(layer_of[source] + 1, layer_of[target]):
            dummy = f"\0{edge.key}\0{layer}"
            rows[layer].append(_Slot(dummy, DUMMY_W, 0.0, True))
            chain.append(dummy)
        chain.append(target)
        chains[edge.key] = chain
        for a, b in zip(chain, chain[1:], strict=False):
            links[layer_of[source] + chain.index(a)].append((a, b))

    _order_layers(rows, links)
    crossings = sum(_crossings(rows[i], rows[i + 1], links[i]) for i in range(len(links)))
    _place_x(rows, links, max_width)

    # Vertical: each layer is as tall as its tallest box; boxes are centred in it.
    placed: dict[str, Placed] = {}
    slot_at: dict[str, tuple[_Slot, float, float]] = {}
    y = PAD
    for index, row in enumerate(rows):
        band = max((s.h for s in row if not s.dummy), default=0.0)
        for slot in row:
            slot_at[slot.key] = (slot, y, y + band)
            if not slot.dummy:
                placed[slot.key] = Placed(slot.key, slot.x - slot.w / 2, y + (band - slot.h) / 2, slot.w, slot.h, index)
        y += band + GAP_Y
    routes = _routes(edges, turned, chains, slot_at, placed)

    width = max((p.x + p.w for p in placed.values()), default=PAD) + PAD
    height = y - GAP_Y + PAD if rows else PAD
    loose_top = None
    if loose:
        loose_top = height + (GAP_Y if rows else 0.0)
        width = max(width, min(max_width, PAD * 2 + sum(n.w for n in loose) + GAP_X * (len(loose) - 1)))
        height = _place_loose(loose, placed, loose_top, width) + PAD
    return Layout(placed, routes, width, height, crossings, loose_top, [[s.key for s in row if not s.dummy]
                                                                          for row in rows])


def _order_layers(rows: list[list[_Slot]], links: list[list[tuple[str, str]]]) -> None:
    """Barycentre sweeps down and up; keeps the order with the fewest crossings."""
    def total() -> int:
        return sum(_crossings(rows[i], rows[i + 1], links[i]) for i in range(len(links)))

    best = [list(row) for row in rows]
    best_count = total()
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for i in indices:
            fixed = rows[i - 1] if down else rows[i + 1]
            where = {s.key: n for n, s in enumerate(fixed)}
            pairs = links[i - 1] if down else links[i]
            neighbours: dict[str, list[int]] = defaultdict(list)
            for a, b in pairs:
                if down and a in where:
                    neighbours[b].append(where[a])
                elif not down and b in where:
                    neighbours[a].append(where[b])
            current = {s.key: n for n, s in enumerate(rows[i])}

            def barycentre(slot: _Slot, neighbours=neighbours, current=current) -> tuple[float, int]:
                """The mean position of the slot's neighbours in the fixed layer (its own place if none)."""
                seen = neighbours.get(slot.key)
                return (sum(seen) / len(seen) if seen else float(current[slot.key])), current[slot.key]
            rows[i].sort(key=barycentre)
        count = total()
        if count < best_count:
            best, best_count = [list(row) for row in rows], count
    rows[:] = best
    _transpose(rows, links)


def _transpose(rows: list[list[_Slot]], links: list[list[tuple[str, str]]]) -> None:
    """Swap neighbours in a layer while a swap lowers the crossings with the layers above and below."""
    def local(i: int) -> int:
        above = _crossings(rows[i - 1], rows[i], links[i - 1]) if i > 0 else 0
        below = _crossings(rows[i], rows[i + 1], links[i]) if i < len(links) else 0
        return above + below

    improved = True
    while improved:
        improved = False
        for i, row in enumerate(rows):
            for j in range(len(row) - 1):
                before = local(i)
                row[j], row[j + 1] = row[j + 1], row[j]
                if local(i) < before:
                    improved = True
                else:
                    row[j], row[j + 1] = row[j + 1], row[j]


def _place_x(rows: list[list[_Slot]], links: list[list[tuple[str, str]]], max_width: float) -> None:
    """Centres for every slot: packed first, then pulled towards their neighbours' mean a few times."""
    lo, hi = PAD, max_width - PAD
    for row in rows:
        _pack(row, [lo] * len(row), lo, hi)
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for layer_links in links:
        for a, b in layer_links:
            down[a].append(b)
            up[b].append(a)
    position = {s.key: s for row in rows for s in row}
    # Centre the widest layer, then align the others to it, down and up in turn.
    for rounds in range(4):
        order = range(1, len(rows)) if rounds % 2 == 0 else range(len(rows) - 2, -1, -1)
        for i in order:
            row = rows[i]
            wishes = []
            for slot in row:
                near = up[slot.key] if rounds % 2 == 0 else down[slot.key]
                near = near or up[slot.key] or down[slot.key]
                wishes.append(sum(position[k].x for k in near) / len(near) if near else slot.x)
            _pack(row, wishes, lo, hi)


def _routes(edges: Sequence[EdgeSpec], turned: set[str], chains: dict[str, list[str]],
            slot_at: dict[str, tuple[_Slot, float, float]], placed: dict[str, Placed]) -> list[Route]:
    """Points for every edge: ports spread along the boxes' bottoms and tops, ordered to avoid crossings there."""
    outgoing: dict[str, list[tuple[str, float]]] = defaultdict(list)
    incoming: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for edge in edges:
        chain = chains[edge.key]
        outgoing[chain[0]].append((edge.key, slot_at[chain[1]][0].x))
        incoming[chain[-1]].append((edge.key, slot_at[chain[-2]][0].x))

    def ports(groups: dict[str, list[tuple[str, float]]]) -> dict[tuple[str, str], float]:
        """x of each edge's port on a box, spread over the middle of its side in the order of the far ends."""
        found = {}
        for node, ends in groups.items():
            box = placed[node]
            ends.sort(key=lambda item: item[1])
            span = box.w * 0.6
            for n, (key, _x) in enumerate(ends):
                found[(node, key)] = box.cx if len(ends) == 1 else box.cx - span / 2 + span * n / (len(ends) - 1)
        return found

    out_ports, in_ports = ports(outgoing), ports(incoming)
    routes = []
    for edge in edges:
        chain = chains[edge.key]
        first, last = placed[chain[0]], placed[chain[-1]]
        points = [(out_ports[(chain[0], edge.key)], first.y + first.h)]
        for key in chain[1:-1]:
            slot, top, bottom = slot_at[key]
            points += [(slot.x, top), (slot.x, bottom)]
        points.append((in_ports[(chain[-1], edge.key)], last.y))
        routes.append(Route(edge.key, points, edge.key in turned))
    return routes


def _place_loose(loose: Sequence[NodeSpec], placed: dict[str, Placed], top: float, width: float) -> float:
    """Rows of the boxes without edges, wrapped at the drawing's width; returns the bottom of the last row."""
    x, y, row_h = PAD, top, 0.0
    for node in loose:
        if x > PAD and x + node.w > width - PAD:
            x, y, row_h = PAD, y + row_h + GAP_X, 0.0
        placed[node.key] = Placed(node.key, x, y, node.w, node.h, None)
        x += node.w + GAP_X
        row_h = max(row_h, node.h)
    return y + row_h
