"""The demo's road network: a grid city around the county seat, grids in town centres, highways, village roads.

A grid city around the county seat, small grids in every town centre, highways between neighbouring centres
(Delaunay edges) and a road from every village to the network, plus a lane through each village. Buildings
(`buildings.py`) front these roads and components (`components.py`) stand along them, so the network, its
intersections and the roads serving each village are handed on as one `Network`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import STRtree
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from citygrid.demo.common import stream
from citygrid.demo.names import Names, town_stem, village_label, village_stem
from citygrid.demo.objects import Generated, rounded
from citygrid.demo.partition import Division, Partition
from citygrid.jobs import Progress


def _chaikin(xy: np.ndarray, rounds: int = 2) -> np.ndarray:
    for _ in range(rounds):
        q = 0.75 * xy[:-1] + 0.25 * xy[1:]
        r = 0.25 * xy[:-1] + 0.75 * xy[1:]
        mid = np.empty((2 * len(q), 2))
        mid[0::2], mid[1::2] = q, r
        xy = np.vstack([xy[:1], mid, xy[-1:]])
    return xy


def _meander(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, dev: float, k: int = 9) -> LineString:
    d = b - a
    length = float(np.hypot(*d))
    t = np.linspace(0, 1, k)
    nrm = np.array([-d[1], d[0]]) / max(length, 1e-9)
    off = rng.normal(0, dev * length, k)
    off = np.convolve(off, [0.25, 0.5, 0.25], mode="same")
    off *= np.sin(np.pi * t)
    xy = a + t[:, None] * d + off[:, None] * nrm
    return LineString(_chaikin(xy, 2))


def _longest(g: BaseGeometry, min_len: float = 0.0) -> LineString | None:
    parts: list[LineString] = [p for p in shapely.get_parts(g)
                               if p.geom_type == "LineString" and p.length >= max(min_len, 1e-6)]
    if not parts:
        return None
    return max(parts, key=lambda p: p.length)


def _line_parts(g: BaseGeometry, min_len: float) -> list[LineString]:
    return [p for p in shapely.get_parts(shapely.line_merge(g) if g.geom_type == "MultiLineString" else g)
            if p.geom_type == "LineString" and p.length >= min_len]


_GRADE = {  # grade -> (width m, lanes, surface)
    "主干路": (40.0, 6, "沥青混凝土"), "次干路": (24.0, 4, "沥青混凝土"), "支路": (14.0, 2, "沥青混凝土"),
    "一级公路": (24.5, 4, "沥青混凝土"), "二级公路": (12.0, 2, "沥青混凝土"), "三级公路": (8.5, 2, "水泥混凝土"),
    "四级公路": (5.0, 1, "水泥混凝土"), "等外公路": (3.5, 1, "水泥混凝土"),
}


@dataclass
class Road:
    """One road (or a piece of one cut by the county border) in the local plane, with its 道路 attributes."""

    line: LineString
    name: str
    kind: str  # urban | town | highway | village | lane
    grade: str
    road_kind: str
    width: float
    lanes: int
    surface: str
    route_code: str | None = None
    start_point: str | None = None
    end_point: str | None = None
    year: int = 2010
    hub: str | None = None  # village or town code it serves

    @property
    def hw(self) -> float:
        return self.width / 2


@dataclass
class StreetGrid:
    """The streets of one grid (the county seat's or a town's), their crossings and the blocks between them."""

    roads: list[Road]
    hull: BaseGeometry
    theta: float
    nodes: list[tuple[np.ndarray, int, int]]  # point, road index i, road index j (indices into roads)
    blocks: list[BaseGeometry]


def _grid_lines(centre: np.ndarray, theta: float, half_u: float, half_v: float, sp: tuple[float, float],
                rng: np.random.Generator) -> list[tuple[LineString, int, float]]:
    """Straight streets of a rotated grid, trimmed to a rough ellipse; (line, axis, offset)."""
    c, s = math.cos(theta), math.sin(theta)
    out: list[tuple[LineString, int, float]] = []
    for axis, (ha, hb) in enumerate(((half_u, half_v), (half_v, half_u))):
        pos = -hb + rng.uniform(0.2, 0.8) * sp[0]
        while pos <= hb:
            frac = max(0.0, 1 - (pos / hb) ** 2)
            hl = ha * math.sqrt(frac) * rng.uniform(0.92, 1.06)
            if hl > 250:
                a, b = -hl * rng.uniform(0.85, 1.0), hl * rng.uniform(0.85, 1.0)
                pts = [(a, pos), (b, pos)] if axis == 0 else [(pos, a), (pos, b)]
                xy = np.array([(centre[0] + x * c - y * s, centre[1] + x * s + y * c) for x, y in pts])
                out.append((LineString(xy), axis, pos))
            pos += rng.uniform(*sp)
    return out


def _finish_grid(roads: list[Road], theta: float) -> StreetGrid:
    lines = np.array([r.line for r in roads], dtype=object)
    tree = STRtree(lines)
    pairs = tree.query(lines, predicate="crosses")
    nodes: list[tuple[np.ndarray, int, int]] = []
    for i, j in sorted({(int(min(a, b)), int(max(a, b))) for a, b in pairs.T}):
        x = shapely.intersection(lines[i], lines[j])
        for p in shapely.get_parts(x):
            if p.geom_type == "Point":
                nodes.append((np.array(p.coords[0]), i, j))
    noded = shapely.union_all(lines)
    blocks = [b for b in shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))) if b.area > 4000]
    blocks.sort(key=lambda b: (round(b.centroid.x, 1), round(b.centroid.y, 1)))
    hull = shapely.convex_hull(noded).buffer(60)
    return StreetGrid(roads, hull, theta, nodes, blocks)


def _urban_grid(part: Partition, clip: BaseGeometry, names: Names, rng: np.random.Generator) -> StreetGrid:
    theta = rng.uniform(-0.22, 0.22)
    raw = _grid_lines(part.seat, theta, 4000, 2800, (270, 400), rng)
    phase = [int(rng.integers(3)), int(rng.integers(3))]
    roads: list[Road] = []
    count = [0, 0]
    for line, axis, _pos in raw:
        k = count[axis]
        count[axis] += 1
        grade = "主干路" if (k + phase[axis]) % 3 == 0 else ("次干路" if rng.random() < 0.5 else "支路")
        name = names.street(grade)
        w, lanes, surf = _GRADE[grade]
        year = int(rng.integers(1985, 2022))
        for piece in _line_parts(shapely.intersection(line, clip), 150):
            roads.append(Road(piece, name, "urban", grade, "城市道路", w, lanes, surf, year=year))
    return _finish_grid(roads, theta)


def _town_grid(t: Division, clip: BaseGeometry, names: Names, rng: np.random.Generator) -> StreetGrid | None:
    theta = rng.uniform(-math.pi / 4, math.pi / 4)
    raw = _grid_lines(t.centre, theta, rng.uniform(500, 850), rng.uniform(350, 600), (180, 260), rng)
    short = town_stem(t)
    roads: list[Road] = []
    mains = {ax: min((abs(pos), i) for i, (_, a, pos) in enumerate(raw) if a == ax)[1]
             for ax in (0, 1) if any(a == ax for _, a, _ in raw)}
    for i, (line, _axis, _pos) in enumerate(raw):
        grade = "次干路" if i in mains.values() else "支路"
        w, lanes, surf = (18.0, 4, "沥青混凝土") if grade == "次干路" else (10.0, 2, "水泥混凝土")
        name = names.town_street(short, rng)
        year = int(rng.integers(1990, 2022))
        for piece in _line_parts(shapely.intersection(line, clip), 120):
            roads.append(Road(piece, name, "town", grade, "城市道路", w, lanes, surf, year=year, hub=t.code))
    if not roads:
        return None
    return _finish_grid(roads, theta)


def _highways(part: Partition, grids: list[StreetGrid], clip: BaseGeometry, names: Names,
              rng: np.random.Generator) -> list[Road]:
    rural = [t for t in part.townships if t.code not in part.urban]
    nodes = [part.seat] + [t.centre for t in rural]
    labels = [f"{part.county.short}城区"] + [t.name for t in rural]
    shorts = [part.county.short] + [town_stem(t) for t in rural]
    edges = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(np.array(nodes)), only_edges=True))
    index = {tuple(np.round(p, 6)): i for i, p in enumerate(nodes)}
    pairs = []
    for e in edges:
        c = shapely.get_coordinates(e)
        a, b = index.get(tuple(np.round(c[0], 6))), index.get(tuple(np.round(c[-1], 6)))
        if a is None or b is None:
            continue
        pairs.append((min(a, b), max(a, b)))
    pairs = sorted(set(pairs))
    # stop a little inside each town's outermost streets, so the highway meets them instead of ending short
    hulls = shapely.union_all([g.hull.buffer(-100) for g in grids])
    used_routes: set[str] = set()
    roads: list[Road] = []
    for a, b in pairs:
        pa, pb = np.asarray(nodes[a]), np.asarray(nodes[b])
        length = float(np.hypot(*(pb - pa)))
        if length > 30000:
            continue
        line = _meander(pa, pb, rng, 0.05)
        inside = shapely.intersection(line, clip).length
        if inside < 0.8 * line.length:
            continue
        piece = _longest(shapely.intersection(shapely.difference(line, hulls), clip), 1000)
        if piece is None:
            continue
        grade = "一级公路" if a == 0 else ("二级公路" if rng.random() < 0.6 else "三级公路")
        w, lanes, surf = _GRADE[grade]
        prefix = "S" if a == 0 else "X"

        def route(prefix: str = prefix) -> str:
            lo, hi = (201, 399) if prefix == "S" else (1, 99)
            return f"{prefix}{int(rng.integers(lo, hi + 1)):03d}"

        code = route()
        while code in used_routes:
            code = route()
        used_routes.add(code)
        sa, sb = shorts[a], shorts[b]
        name = names.highway(sa, sb, rng)
        roads.append(Road(piece, name, "highway", grade, "公路", w, lanes, surf, route_code=code,
                          start_point=labels[a], end_point=labels[b], year=int(rng.integers(1995, 2020))))
    return roads


def _village_roads(part: Partition, network: list[Road], hulls: BaseGeometry, clip: BaseGeometry,
                   rng: np.random.Generator) -> tuple[list[Road], dict[str, tuple[Road | None, Road | None]]]:
    """A road from every village outside the town grids to the network, grown like a tree (Prim's order).

    The village nearest to the network connects first; its road and lane join the network, so villages farther
    away branch off their neighbours' roads rather than each running straight to a town.
    """
    shapely.prepare(hulls)
    cand = [v for v in part.villages if not hulls.contains(Point(v.centre))]
    roads: list[Road] = []
    per_village: dict[str, tuple[Road | None, Road | None]] = {}
    if not cand:
        return roads, per_village
    pts = cast(NDArray[np.object_], shapely.points(np.array([v.centre for v in cand])))  # (n, 2): n points
    net_lines = np.array([r.line for r in network], dtype=object)
    near = STRtree(net_lines).query_nearest(pts, all_matches=False)
    best_line = np.empty(len(cand), dtype=object)
    best_line[near[0]] = net_lines[near[1]]
    best_d = shapely.distance(pts, best_line)
    todo = np.ones(len(cand), bool)
    serial = 0
    for _ in range(len(cand)):
        k = int(np.flatnonzero(todo)[np.argmin(best_d[todo])])
        todo[k] = False
        v = cand[k]
        c = np.asarray(v.centre, float)
        line = best_line[k]
        p = np.array(line.interpolate(line.project(Point(c))).coords[0])
        d = c - p
        dist = float(np.hypot(*d))
        if dist > 1e-6:
            direction = d / dist
        else:
            a = rng.uniform(0, 2 * math.pi)
            direction = np.array([math.cos(a), math.sin(a)])
        turn = rng.uniform(-0.5, 0.5)
        ext_dir = np.array([direction[0] * math.cos(turn) - direction[1] * math.sin(turn),
                            direction[0] * math.sin(turn) + direction[1] * math.cos(turn)])
        tail = c + ext_dir * rng.uniform(150, 300)
        base = village_stem(village_label(v.name))
        if dist > 80:
            xy = np.vstack([shapely.get_coordinates(_meander(p, c, rng, 0.08, k=6)), tail])
        else:
            xy = np.vstack([c - ext_dir * 150, c, tail])
        main = lane = None
        piece = _longest(shapely.intersection(LineString(xy), clip), 60)
        if piece is not None:
            serial += 1
            main = Road(piece, f"{base}村道", "village", "四级公路", "公路", *_GRADE["四级公路"],
                        route_code=f"C{serial:03d}", end_point=village_label(v.name),
                        year=int(rng.integers(2005, 2021)), hub=v.code)
            roads.append(main)
        perp = np.array([-ext_dir[1], ext_dir[0]])
        half = rng.uniform(130, 230)
        lane_xy = np.array([c - perp * half, c + ext_dir * rng.uniform(-25, 25), c + perp * half])
        lane_piece = _longest(shapely.intersection(LineString(_chaikin(lane_xy, 2)), clip), 60)
        if lane_piece is not None:
            lane = Road(lane_piece, f"{base}村巷", "lane", "等外公路", "公路", *_GRADE["等外公路"],
                        year=int(rng.integers(2008, 2022)), hub=v.code)
            roads.append(lane)
        per_village[v.code] = (main, lane)
        rest = np.flatnonzero(todo)
        for r in (main, lane):  # the new roads are now part of the network
            if r is not None and len(rest):
                dn = shapely.distance(pts[rest], r.line)
                closer = dn < best_d[rest]
                best_d[rest[closer]] = dn[closer]
                best_line[rest[closer]] = r.line
    return roads, per_village


def _road_attrs(r: Road) -> dict[str, Any]:
    d: dict[str, Any] = {"road_name": r.name, "road_kind": r.road_kind, "grade": r.grade, "width": r.width,
                         "lanes": r.lanes, "surface": r.surface, "length": rounded(r.line.length), "year_built": r.year,
                         "one_way": False}
    if r.route_code:
        d["route_code"] = r.route_code
    if r.start_point:
        d["start_point"] = r.start_point
    if r.end_point:
        d["end_point"] = r.end_point
    return d


@dataclass
class Network:
    """Every road of the county, the street grids they came from, their intersections, each village's roads."""

    roads: list[Road]
    grids: list[StreetGrid]  # the county seat's first, then the towns'
    per_village: dict[str, tuple[Road | None, Road | None]]  # village code -> (its road, its lane)
    nodes: list[tuple[np.ndarray, int, int]]  # grid intersections: point, road index i, road index j
    node_xy: np.ndarray  # the intersection points, (n, 2)


def build_roads(out: Generated, part: Partition, names: Names, seed: int, progress: Progress) -> Network:
    """Lay out every road of the county and add them to `out` as 道路 objects."""
    clip = part.outline.buffer(-40)
    shapely.prepare(clip)
    progress("demo: roads", 0, None)
    urban = _urban_grid(part, clip, names, stream(seed, "urban-grid"))
    grids = [urban]
    grid_rng = stream(seed, "town-grids")
    for t in part.townships:
        if t.code in part.urban:
            continue
        g = _town_grid(t, clip, names, grid_rng)
        if g is not None:
            grids.append(g)
    highways = _highways(part, grids, clip, names, stream(seed, "highways"))
    grid_roads = [r for g in grids for r in g.roads]
    hulls = shapely.union_all([g.hull for g in grids])
    vroads, per_village = _village_roads(part, grid_roads + highways, hulls, clip, stream(seed, "village-roads"))
    roads: list[Road] = grid_roads + highways + vroads
    progress("demo: roads", len(roads), len(roads))
    nodes: list[tuple[np.ndarray, int, int]] = []
    offset = 0
    for g in grids:
        nodes += [(p, i + offset, j + offset) for p, i, j in g.nodes]
        offset += len(g.roads)
    node_xy = np.array([p for p, _, _ in nodes]) if nodes else np.empty((0, 2))
    out.add("道路", [r.line for r in roads], [_road_attrs(r) for r in roads], [r.name for r in roads])
    return Network(roads, grids, per_village, nodes, node_xy)
