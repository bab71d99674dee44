"""The demo's buildings and what hangs on them: door plates, building tags, compounds, greens, land parcels.

Frontage rows along block edges, residential slabs, old-town houses, industrial sheds, village houses along
lanes; rectangles rotated to the road they face. Door plates are numbered along each road, odd on the left side
and even on the right; compounds get 院落门牌 and their buildings 楼牌 (building tags). Blocks are the faces of
the street grids in `roads.py`; greens are laid out first and win over buildings that would overlap them, and
land parcels over homestead plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from citygrid.demo.common import stream
from citygrid.demo.geometry import frame, polygonal, rects
from citygrid.demo.names import Names, village_group, village_label, village_stem
from citygrid.demo.objects import Generated, component_attrs, dates, pick, rounded
from citygrid.demo.partition import Partition
from citygrid.demo.roads import Network, Road, StreetGrid
from citygrid.jobs import Progress


@dataclass
class _Buildings:
    """Buildings laid out so far (before overlaps are resolved), each with where its plate would hang."""

    polys: list[BaseGeometry] = field(default_factory=list)
    attrs: list[dict[str, Any]] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    plate: list[np.ndarray | None] = field(default_factory=list)  # front point for a street door plate
    plate_kind: list[str] = field(default_factory=list)  # street | village | tag (楼牌) | none
    plate_road: list[tuple[str, str] | None] = field(default_factory=list)  # village plates: (village, group)
    tag: list[str | None] = field(default_factory=list)  # 楼牌 building_no
    plot: list[BaseGeometry | None] = field(default_factory=list)  # rural homestead plot


_USES = ["residential", "commercial", "public", "park", "industrial", "old"]
_USE_P = [0.46, 0.14, 0.08, 0.08, 0.07, 0.17]
_LAND = {  # block use -> (land_use, land_use_code, right_type, acquisition)
    "residential": ("住宅用地", "0701", "国有建设用地使用权", "出让"),
    "old": ("住宅用地", "0701", "国有建设用地使用权", "划拨"),
    "commercial": ("商服用地", "0505", "国有建设用地使用权", "出让"),
    "public": ("公共管理与公共服务用地", "0803", "国有建设用地使用权", "划拨"),
    "park": ("公共管理与公共服务用地", "0810", "国有建设用地使用权", "划拨"),
    "industrial": ("工矿仓储用地", "0601", "国有建设用地使用权", "出让"),
}


def _building_attrs(rng: np.random.Generator, footprint: np.ndarray, uses: Sequence[str], floors: np.ndarray,
                    structure: Sequence[str] | None = None, year: tuple[int, int] = (1985, 2023)) -> list[dict[str, Any]]:
    n = len(footprint)
    if n == 0:
        return []
    floors = np.asarray(floors)
    if structure is None:
        structure = np.where(floors >= 7, "钢筋混凝土结构",
                             np.where(rng.random(n) < 0.7, "混合结构", "钢筋混凝土结构")).tolist()
    years = rng.integers(year[0], year[1] + 1, n).tolist()
    status = pick(rng, ["使用中", "空置", "在建"], n, [0.93, 0.05, 0.02])
    height = np.round(floors * 3.0 + rng.uniform(0.3, 2.5, n), 1).tolist()
    area = np.round(np.asarray(footprint) * floors, 1).tolist()
    below = rng.integers(1, 3, n).tolist()
    fl = floors.tolist()
    out = []
    for i in range(n):
        d = {"floors_above": int(fl[i]), "structure": structure[i], "main_use": uses[i], "height": height[i],
             "floor_area": area[i], "year_built": years[i], "use_status": status[i]}
        if fl[i] >= 11:
            d["floors_below"] = below[i]
        out.append(d)
    return out


@dataclass
class _Row:
    """A row of rectangles facing their lines, with the geometry the plates and plots are derived from."""

    polys: np.ndarray
    w: np.ndarray
    d: np.ndarray
    centre: np.ndarray
    front: np.ndarray
    normal: np.ndarray  # unit vector from the road towards the buildings
    ang: np.ndarray

    def __len__(self) -> int:
        return len(self.polys)


def _slots(lo: float, hi: float, rng: np.random.Generator, w: tuple[float, float], dpt: tuple[float, float],
           gap: tuple[float, float], occupancy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (centre distance along a line), widths and depths of a row of buildings between lo and hi."""
    m = max(0, int((hi - lo) / (w[0] + gap[0])) + 2) if hi - lo >= w[0] else 0
    ws = rng.uniform(*w, m)
    gs = rng.uniform(*gap, m)
    ds = rng.uniform(*dpt, m)
    start = lo + np.concatenate([[0.0], np.cumsum(ws + gs)[:-1]]) if m else np.empty(0)
    keep = (start + ws <= hi) & (rng.random(m) < occupancy)
    return start[keep] + ws[keep] / 2, ws[keep], ds[keep]


def _place(lines: np.ndarray, sc: np.ndarray, side: np.ndarray, setback: float, ws: np.ndarray,
           ds: np.ndarray) -> _Row:
    """Rectangles facing their line: centred `sc` along it, on `side` (+1 left), `setback` metres off it."""
    if len(sc) == 0:
        z = np.empty((0, 2))
        return _Row(np.empty(0, object), np.empty(0), np.empty(0), z, z, z, np.empty(0))
    p, t, nrm = frame(lines, sc)
    out = nrm * side[:, None]
    centre = p + out * (setback + ds / 2)[:, None]
    front = p + out * max(setback - 0.5, 0.2)
    ang = np.arctan2(t[:, 1], t[:, 0])
    polys = rects(centre[:, 0], centre[:, 1], ang, ws, ds)
    return _Row(polys, ws, ds, centre, front, out, ang)


def _lattice(region: BaseGeometry, theta: float, w: float, d: float, sx: float, sy: float,
             rng: np.random.Generator, jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rectangles w x d on a lattice rotated by theta that fit inside region; returns polys, centres."""
    if region.is_empty or region.area < w * d:
        return np.empty(0, object), np.empty((0, 2))
    c, s = math.cos(theta), math.sin(theta)
    xy = shapely.get_coordinates(region)
    u = xy[:, 0] * c + xy[:, 1] * s
    v = -xy[:, 0] * s + xy[:, 1] * c
    us = np.arange(u.min() + w / 2 + rng.uniform(0, sx * 0.5), u.max(), sx)
    vs = np.arange(v.min() + d / 2 + rng.uniform(0, sy * 0.5), v.max(), sy)
    if len(us) == 0 or len(vs) == 0:
        return np.empty(0, object), np.empty((0, 2))
    mu, mv = np.meshgrid(us, vs)
    gu, gv = mu.ravel(), mv.ravel()
    if jitter:
        gu = gu + rng.uniform(-jitter, jitter, len(gu))
        gv = gv + rng.uniform(-jitter, jitter, len(gv))
    cx, cy = gu * c - gv * s, gu * s + gv * c
    polys = rects(cx, cy, np.full(len(cx), theta), np.full(len(cx), w), np.full(len(cx), d))
    shapely.prepare(region)
    ok = shapely.contains(region, polys)
    return polys[ok], np.column_stack([cx, cy])[ok]


def _split_parcels(net: BaseGeometry, theta: float, k: int) -> list[BaseGeometry]:
    if k <= 1:
        return [net]
    c, s = math.cos(theta), math.sin(theta)
    xy = shapely.get_coordinates(net)
    u = xy[:, 0] * c + xy[:, 1] * s
    v = -xy[:, 0] * s + xy[:, 1] * c
    cuts = np.linspace(u.min(), u.max(), k + 1)
    out: list[BaseGeometry] = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        rect = np.array([(a, v.min() - 10), (b, v.min() - 10), (b, v.max() + 10), (a, v.max() + 10)])
        poly = shapely.Polygon(np.column_stack([rect[:, 0] * c - rect[:, 1] * s, rect[:, 0] * s + rect[:, 1] * c]))
        piece = polygonal(shapely.intersection(net, poly))
        if piece.area > 200:
            out.append(piece)
    return out


@dataclass
class Blocks:
    """What the blocks yield besides buildings: parcels, greens, compounds, their gates, park toilets."""

    parcels: list[tuple[BaseGeometry, str]] = field(default_factory=list)  # polygon, use
    greens: list[tuple[BaseGeometry, str, str | None]] = field(default_factory=list)  # polygon, type, name
    compounds: list[tuple[BaseGeometry, str, str]] = field(default_factory=list)  # polygon, name, type
    gates: list[tuple[np.ndarray, str]] = field(default_factory=list)  # point on the block edge, plate type
    toilets: list[np.ndarray] = field(default_factory=list)


def _fill_blocks(grid: StreetGrid, road_buffers: STRtree, buffers: np.ndarray, bld: _Buildings, blk: Blocks,
                 names: Names, rng: np.random.Generator, scale: float, town: bool) -> None:
    keep_p = min(1.0, scale)
    f_lines: list[LineString] = []
    f_sc: list[np.ndarray] = []
    f_w: list[np.ndarray] = []
    f_d: list[np.ndarray] = []
    f_use: list[str] = []
    for block in grid.blocks:
        near = road_buffers.query(block, predicate="intersects")
        net = block.difference(shapely.union_all(buffers[np.sort(near)])) if len(near) else block
        net = polygonal(net.buffer(-2.0, join_style="mitre"))
        if net.is_empty:
            continue
        if net.geom_type == "MultiPolygon":
            net = max(net.geoms, key=lambda g: g.area)
        if net.area < 2500:
            continue
        net = shapely.orient_polygons(net)
        use = _USES[int(rng.choice(len(_USES), p=_USE_P))] if not town else \
            ["residential", "commercial", "old", "public", "park"][int(rng.choice(5, p=[0.2, 0.2, 0.5, 0.06, 0.04]))]
        k = 1 if use in ("park", "public", "industrial") else int(rng.integers(1, 4))
        for pc in _split_parcels(net, grid.theta, k):
            if rng.random() < keep_p:
                blk.parcels.append((pc, use))
        if use == "park":
            if rng.random() < keep_p:
                blk.greens.append((net, "公园绿地", names.park()))
            if rng.random() < keep_p:
                blk.toilets.append(np.array(net.exterior.interpolate(rng.uniform(0, net.exterior.length)).coords[0]))
            continue
        # frontage along each edge of the block, facing the road outside it
        ring = np.asarray(net.exterior.coords)
        front_depth = 0.0
        if use in ("commercial", "old", "residential"):
            occ = {"commercial": 0.7, "old": 0.5, "residential": 0.2}[use]
            dmax = 18.0 if use != "old" else 14.0
            front_depth = dmax
            for a, b in zip(ring[:-1], ring[1:], strict=True):
                el = float(np.hypot(*(b - a)))
                if el < 40:
                    continue
                sc, ws, ds = _slots(dmax + 2, el - dmax - 2, rng, (10, 30), (10, dmax), (2, 8), occ)
                edge = LineString([a, b])
                f_lines += [edge] * len(sc)
                f_sc.append(sc)
                f_w.append(ws)
                f_d.append(ds)
                f_use += [use] * len(sc)
        inner = net.buffer(-(front_depth + 8.0 if front_depth else 6.0), join_style="mitre")
        if inner.is_empty:
            continue
        if use == "residential":
            cname = names.compound()
            ctype = "住宅小区"
            w, d = rng.uniform(26, 40), rng.uniform(11, 15)
            polys, _ = _lattice(inner, grid.theta, w, d, w + rng.uniform(14, 28), d + rng.uniform(24, 40), rng)
            n = len(polys)
            floors = rng.choice([6, 7, 11, 18, 26, 33], size=n, p=[0.25, 0.15, 0.2, 0.2, 0.12, 0.08])
            floors = np.full(n, floors[0]) if n and rng.random() < 0.6 else floors
            attrs = _building_attrs(rng, np.full(n, w * d), ["住宅"] * n, floors)
            tags = [f"{i + 1}栋" for i in range(n)]
            for a, tg in zip(attrs, tags, strict=True):
                a["building_no"] = tg
                a["building_name"] = f"{cname}{tg}"
            # the tag (楼牌) hangs on the facade facing the lattice's local "south"
            tag_pts: list[np.ndarray | None] = [np.array(p.exterior.interpolate(0.125, normalized=True).coords[0]) for p in polys]
            _add_buildings(bld, polys, attrs, [f"{cname}{t}" for t in tags], tag_pts, "tag", rng, keep_p, tags=tags)
            if rng.random() < keep_p:
                blk.compounds.append((net, cname, ctype))
                blk.gates.append((_gate(net), "院落门牌"))
            if rng.random() < 0.5 * keep_p:
                cx, cy = inner.centroid.x, inner.centroid.y
                side = rng.uniform(30, 55)
                g = rects(np.array([cx]), np.array([cy]), np.array([grid.theta]), np.array([side]),
                          np.array([side * rng.uniform(0.6, 1.0)]))[0]
                if inner.contains(g):
                    blk.greens.append((g, "附属绿地", f"{cname}中心绿地"))
        elif use in ("commercial", "public", "industrial"):
            if use == "industrial":
                w, d = rng.uniform(30, 40), rng.uniform(20, 36)
                gap = rng.uniform(12, 20)
                uses, fl, struct = ["工业", "仓储"], (1, 4), "钢结构"
            elif use == "public":
                w, d = rng.uniform(28, 40), rng.uniform(14, 20)
                gap = rng.uniform(18, 30)
                uses, fl, struct = [["教育", "医疗卫生", "办公", "文化体育"][int(rng.integers(4))]], (3, 7), None
            else:
                w, d = rng.uniform(30, 40), rng.uniform(24, 36)
                gap = rng.uniform(14, 24)
                uses, fl, struct = ["商业服务", "办公", "综合"], (4, 24), None
            polys, _ = _lattice(inner, grid.theta, w, d, w + gap, d + gap, rng)
            n = len(polys)
            floors = rng.integers(fl[0], fl[1] + 1, n)
            main_use = pick(rng, uses, n)
            structure = [struct] * n if struct else None
            attrs = _building_attrs(rng, np.full(n, w * d), main_use, floors, structure)
            _add_buildings(bld, polys, attrs, [None] * n, [None] * n, "none", rng, keep_p)
            if n and rng.random() < keep_p:
                blk.gates.append((_gate(net), "院落门牌"))
                if use != "commercial":
                    blk.compounds.append((net, names.unit(main_use[0] if main_use else use), "单位院落"))
            if use == "public" and rng.random() < keep_p:
                g = polygonal(inner.buffer(-max(w, d) * 0.6))
                if not g.is_empty and g.area > 300:
                    if g.geom_type == "MultiPolygon":
                        g = max(g.geoms, key=lambda x: x.area)
                    blk.greens.append((g, "附属绿地", None))
        else:  # old town: small houses
            polys, _ = _lattice(inner, grid.theta, rng.uniform(8, 13), rng.uniform(8, 11), 28, 25, rng, jitter=2.5)
            keep = rng.random(len(polys)) < 0.5
            polys = polys[keep]
            n = len(polys)
            fp = shapely.area(polys)
            floors = rng.integers(1, 5, n)
            structure = pick(rng, ["混合结构", "砖木结构", "钢筋混凝土结构"], n, [0.6, 0.25, 0.15])
            attrs = _building_attrs(rng, fp, ["住宅"] * n, floors, structure, (1960, 2010))
            _add_buildings(bld, polys, attrs, [None] * n, [None] * n, "none", rng, keep_p)
    if f_lines:  # the frontage rows of all blocks, placed in one go
        n = len(f_lines)
        row = _place(np.array(f_lines, dtype=object), np.concatenate(f_sc), np.ones(n), 1.5, np.concatenate(f_w),
                     np.concatenate(f_d))
        use_arr = np.array(f_use)
        floors = np.where(use_arr == "commercial", rng.integers(2, 12, n), rng.integers(2, 7, n))
        shop = pick(rng, ["商业服务", "综合", "办公"], n, [0.6, 0.3, 0.1])
        old = pick(rng, ["住宅", "商业服务", "综合"], n, [0.5, 0.3, 0.2])
        main_use = [o if u == "old" else sh for u, sh, o in zip(f_use, shop, old, strict=True)]
        attrs = _building_attrs(rng, row.w * row.d, main_use, floors)
        _add_buildings(bld, row.polys, attrs, [None] * n, list(row.front), "street", rng, keep_p)


def _gate(net: Polygon) -> np.ndarray:
    ring = np.asarray(net.exterior.coords)
    seg = np.hypot(*(ring[1:] - ring[:-1]).T)
    k = int(np.argmax(seg))
    mid: np.ndarray = (ring[k] + ring[k + 1]) / 2
    return mid


def _add_buildings(bld: _Buildings, polys: np.ndarray, attrs: list[dict[str, Any]], names: list[str | None],
                   fronts: list[np.ndarray | None], kind: str, rng: np.random.Generator, keep_p: float,
                   tags: list[str] | None = None, plate_road: list[tuple[str, str]] | None = None,
                   plots: list[BaseGeometry | None] | None = None) -> None:
    keep = rng.random(len(polys)) < keep_p
    for i in np.flatnonzero(keep):
        bld.polys.append(polys[i])
        bld.attrs.append(attrs[i])
        bld.names.append(names[i])
        bld.plate.append(fronts[i])
        bld.plate_kind.append(kind)
        bld.tag.append(tags[i] if tags else None)
        bld.plate_road.append(plate_road[i] if plate_road else None)
        bld.plot.append(plots[i] if plots else None)


def _village_houses(part: Partition, per_village: dict[str, tuple[Road | None, Road | None]], bld: _Buildings,
                    rng: np.random.Generator, scale: float) -> None:
    """Houses on both sides of each village's road (near the centre) and lane, with their homestead plots."""
    lines: list[LineString] = []
    scs: list[np.ndarray] = []
    sides: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    ds: list[np.ndarray] = []
    groups: list[tuple[str, str]] = []
    for v in part.villages:
        if v.code not in per_village:
            continue
        main, lane = per_village[v.code]
        base = village_label(v.name)
        n_groups = int(rng.integers(2, 7))
        for r in (main, lane):
            if r is None:
                continue
            line = r.line
            at = line.project(Point(v.centre))
            lo, hi = (max(10.0, at - 220), min(line.length - 10, at + 220)) if r is main else (10.0, line.length - 10)
            for side in (1.0, -1.0):
                sc, w, d = _slots(lo, hi, rng, (10, 16), (8, 12), (6, 18), 0.25)
                lines += [line] * len(sc)
                scs.append(sc)
                sides.append(np.full(len(sc), side))
                ws.append(w)
                ds.append(d)
                groups += [(v.code, village_group(base, int(g))) for g in rng.integers(0, n_groups, len(sc))]
    n = len(lines)
    if n == 0:
        return
    row = _place(np.array(lines, dtype=object), np.concatenate(scs), np.concatenate(sides), 6.0,
                 np.concatenate(ws), np.concatenate(ds))
    floors = rng.choice([1, 2, 3, 4], size=n, p=[0.1, 0.45, 0.4, 0.05])
    structure = pick(rng, ["混合结构", "砖木结构", "钢筋混凝土结构"], n, [0.7, 0.15, 0.15])
    uses = pick(rng, ["住宅", "住宅", "住宅", "商业服务", "农业生产"], n)
    attrs = _building_attrs(rng, row.w * row.d, uses, floors, structure, (1975, 2023))
    # homestead plot: the house plus 2 m each side, 1 m in front and a yard behind
    pc = row.centre + row.normal * 3.5
    plots = list(rects(pc[:, 0], pc[:, 1], row.ang, row.w + 4.0, row.d + 9.0))
    _add_buildings(bld, row.polys, attrs, [None] * n, list(row.front), "village", rng, min(1.0, scale),
                   plate_road=groups, plots=plots)


def _greedy(polys: list[BaseGeometry], priority: np.ndarray, blockers: STRtree | None) -> np.ndarray:
    """Keep polygons that do not overlap a kept earlier one (priority ones first) nor any blocker."""
    n = len(polys)
    keep = np.ones(n, bool)
    if n == 0:
        return keep
    arr = np.array(polys, dtype=object)
    if blockers is not None:
        hit = blockers.query(arr, predicate="intersects")
        keep[np.unique(hit[0])] = False
    order = np.concatenate([np.flatnonzero(priority), np.flatnonzero(~priority)])
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    tree = STRtree(arr)
    a, b = tree.query(arr, predicate="intersects")
    m = a != b
    a, b = a[m], b[m]
    if len(a):
        area = shapely.area(shapely.intersection(arr[a], arr[b]))
        m = area > 0.5
        a, b = a[m], b[m]
    first = np.where(rank[a] < rank[b], a, b)
    second = np.where(rank[a] < rank[b], b, a)
    conflicts: dict[int, list[int]] = {}
    for x, y in zip(first.tolist(), second.tolist(), strict=True):
        conflicts.setdefault(x, []).append(y)
    for i in order:
        if not keep[i]:
            continue
        for j in conflicts.get(int(i), ()):
            keep[j] = False
    return keep


def build_buildings(out: Generated, part: Partition, net: Network, names: Names, seed: int, scale: float,
                    progress: Progress) -> Blocks:
    """Buildings, door plates, building tags, compounds, greens and parcels of the county, added to `out`.

    Returns the blocks' leftovers the components stage still needs (park toilets).
    """
    roads = net.roads
    progress("demo: buildings", 0, None)
    buffers = np.array([r.line.buffer(r.hw + 1.0, cap_style="flat") for r in roads], dtype=object)
    buf_tree = STRtree(buffers)
    bld = _Buildings()
    blk = Blocks()
    brng = stream(seed, "blocks")
    for gi, g in enumerate(net.grids):
        _fill_blocks(g, buf_tree, buffers, bld, blk, names, brng, scale, town=gi > 0)
    _village_houses(part, net.per_village, bld, stream(seed, "village-houses"), scale)
    _village_greens(part, net.per_village, blk, stream(seed, "village-greens"), scale)
    greens = blk.greens
    allpolys = [g for g, _, _ in greens] + bld.polys
    prio = np.array([True] * len(greens) + [False] * len(bld.polys))
    keep = _greedy(allpolys, prio, buf_tree)
    gkeep, bkeep = keep[:len(greens)], keep[len(greens):]
    greens = [g for g, k in zip(greens, gkeep, strict=True) if k]
    bidx = np.flatnonzero(bkeep)
    out.add("建筑物", [bld.polys[i] for i in bidx], [bld.attrs[i] for i in bidx], [bld.names[i] for i in bidx])
    progress("demo: buildings", len(bidx), len(bidx))
    _add_plates(out, roads, bld, bidx, blk)
    out.add("小区院落", [g for g, _, _ in blk.compounds],
            [{"compound_name": n, "compound_type": t} for _, n, t in blk.compounds], [n for _, n, _ in blk.compounds])
    gattrs = component_attrs(out, "绿地", len(greens), {
        "green_type": [t for _, t, _ in greens], "green_name": [n for _, _, n in greens],
        "area": [rounded(g.area) for g, _, _ in greens],
        "maintenance_grade": pick(out.rng, ["一级", "二级", "三级"], len(greens), [0.3, 0.5, 0.2])})
    out.add("绿地", [g for g, _, _ in greens], gattrs, [n for _, _, n in greens])
    _add_parcels(out, bld, bidx, blk)
    return blk


def _village_greens(part: Partition, per_village: dict[str, tuple[Road | None, Road | None]], blk: Blocks,
                    vrng: np.random.Generator, scale: float) -> None:
    """A small park (游园) beside the lane or road of some villages."""
    for v in part.villages:
        if v.code in per_village and vrng.random() < 0.4 * min(1.0, scale):
            main, lane = per_village[v.code]
            ref = lane or main
            if ref is None:
                continue
            sc = ref.line.project(Point(v.centre))
            p, t, n = frame(np.array([ref.line], dtype=object), np.array([sc]))
            side = vrng.uniform(22, 30) * (1 if vrng.random() < 0.5 else -1)
            cxy = p[0] + n[0] * side
            sz = vrng.uniform(18, 34)
            g = rects(np.array([cxy[0]]), np.array([cxy[1]]), np.array([math.atan2(t[0][1], t[0][0])]),
                      np.array([sz]), np.array([sz * 0.8]))[0]
            blk.greens.append((g, "公园绿地", f"{village_stem(village_label(v.name))}游园"))


def _add_plates(out: Generated, roads: list[Road], bld: _Buildings, bidx: np.ndarray, blk: Blocks) -> None:
    """Door plates of the kept buildings and compound gates, and the tags (楼牌) of compound buildings.

    Street plates are numbered along the nearest street, odd left / even right; village plates per group.
    """
    street_roads = [i for i, r in enumerate(roads) if r.kind in ("urban", "town")]
    sr_tree = STRtree([roads[i].line for i in street_roads])
    plates: list[tuple[np.ndarray, int, str]] = []  # point, road index, plate type
    for i in bidx:
        if bld.plate_kind[i] == "street" and bld.plate[i] is not None:
            plates.append((bld.plate[i], -1, "街路巷门牌"))
    for pt, kind in blk.gates:
        plates.append((pt, -1, kind))
    if plates:
        pxy = np.array([p for p, _, _ in plates])
        near = sr_tree.query_nearest(shapely.points(pxy), return_distance=False)
        road_of = np.full(len(plates), -1)
        road_of[near[0]] = [street_roads[j] for j in near[1]]
        _number_plates(out, roads, pxy, road_of, [k for _, _, k in plates])
    vp = [i for i in bidx if bld.plate_kind[i] == "village" and bld.plate[i] is not None]
    if vp:
        groups: dict[tuple[str, str], int] = {}
        geoms, attrs, pnames = [], [], []
        mat = pick(out.rng, ["铝合金", "搪瓷", "不锈钢", "反光膜"], len(vp), [0.5, 0.2, 0.2, 0.1])
        installed = dates(out.rng, len(vp), 2012, 2025)
        for k, i in enumerate(vp):
            key = bld.plate_road[i] or ("", "一组")
            grp = key[1]
            groups[key] = groups.get(key, 0) + 1
            geoms.append(Point(bld.plate[i]))
            attrs.append({"road_name": grp, "number": groups[key], "plate_type": "村组门牌",
                          "plate_material": mat[k], "install_date": installed[k]})
            pnames.append(f"{grp}{groups[key]}号")
        out.add("门牌", geoms, attrs, pnames)
    tags = [i for i in bidx if bld.plate_kind[i] == "tag" and bld.plate[i] is not None]
    out.add("楼牌", [Point(bld.plate[i]) for i in tags], [{"building_no": bld.tag[i]} for i in tags],
            [bld.names[i] for i in tags])


def _add_parcels(out: Generated, bld: _Buildings, bidx: np.ndarray, blk: Blocks) -> None:
    """Land parcels (宗地): the blocks' parcels, then the homestead plots of kept village houses that fit."""
    parcels = [(g, use) for g, use in blk.parcels]
    plot_idx = [i for i in bidx if bld.plot[i] is not None]
    plots = [bld.plot[i] for i in plot_idx]
    allp = [g for g, _ in parcels] + plots
    pk = _greedy(allp, np.array([True] * len(parcels) + [False] * len(plots)), None) if allp else np.array([], bool)
    pgeoms, pattrs = [], []
    for (g, use), k in zip(parcels, pk[:len(parcels)], strict=True):
        if k:
            lu, code, right, acq = _LAND[use]
            pgeoms.append(g)
            pattrs.append({"land_use": lu, "land_use_code": code, "area": rounded(g.area), "right_type": right,
                           "acquisition": acq, "_feature": "GB"})
    for g, k in zip(plots, pk[len(parcels):], strict=True):
        if k:
            pgeoms.append(g)
            pattrs.append({"land_use": "住宅用地", "land_use_code": "0702", "area": rounded(g.area),
                           "right_type": "宅基地使用权", "acquisition": "其他", "_feature": "JC"})
    out.add("宗地", pgeoms, pattrs)


def _number_plates(out: Generated, roads: list[Road], pxy: np.ndarray, road_of: np.ndarray, kinds: list[str]) -> None:
    """Number street door plates along each named road: odd on the left, even on the right, from its start.

    A street cut into pieces (by the county border) keeps one name and one sequence, measured along the
    direction of its first piece (grid streets are straight).
    """
    geoms, attrs, pnames = [], [], []
    mat = pick(out.rng, ["铝合金", "搪瓷", "不锈钢", "反光膜"], len(pxy), [0.6, 0.1, 0.2, 0.1])
    installed = dates(out.rng, len(pxy), 2010, 2025)
    by_name: dict[str, list[int]] = {}
    first_piece: dict[str, int] = {}
    for i in range(len(pxy)):
        ri = int(road_of[i])
        if ri < 0:
            continue
        name = roads[ri].name
        by_name.setdefault(name, []).append(i)
        first_piece[name] = min(first_piece.get(name, ri), ri)
    for name, idx in by_name.items():
        xy = shapely.get_coordinates(roads[first_piece[name]].line)
        origin, d = xy[0], xy[-1] - xy[0]
        d = d / max(float(np.hypot(*d)), 1e-9)
        rel = pxy[idx] - origin
        along = rel @ d
        left = (d[0] * rel[:, 1] - d[1] * rel[:, 0]) > 0
        for is_left, first in ((True, 1), (False, 2)):
            num = first
            for k in np.argsort(along, kind="stable"):
                if bool(left[k]) != is_left:
                    continue
                i = idx[k]
                geoms.append(Point(pxy[i]))
                attrs.append({"road_name": name, "number": num, "plate_type": kinds[i], "plate_material": mat[i],
                              "install_date": installed[i]})
                pnames.append(f"{name}{num}号")
                num += 2
    out.add("门牌", geoms, attrs, pnames)
