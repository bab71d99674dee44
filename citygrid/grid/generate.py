"""Unit grids and governance grids for the demo county, generated from its roads and households.

Unit grids (单元网格, GB/T 30428.1) cover the built-up communities of the urban 街道: each community is cut
along road centre lines into blocks, blocks larger than ~2 ha are cut into ~1 ha cells, slivers merge into a
neighbour, and cells are numbered west→east then north→south within their community (15-digit codes:
county 6 + street 3 + community 3 + grid 3). Cells never cross their community, and they tile it: no gaps,
no overlaps. Governance grids (网格化服务管理) tile every village/community into cells of about 300–500
households (weighted k-means on household points, Voronoi of the centres clipped to the community); code =
community's 12-digit code + 3-digit serial.
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import numpy as np
import shapely
from pyproj import Transformer
from shapely import wkb
from shapely.geometry import GeometryCollection, MultiPoint, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.grid.assign import assign_objects
from citygrid.jobs import Progress

TO_M = Transformer.from_crs(4490, 4547, always_xy=True)
TO_DEG = Transformer.from_crs(4547, 4490, always_xy=True)
CELL = 100.0  # m: ~1 ha cells
HOUSEHOLDS_PER_GRID = 400


def _m(g: BaseGeometry) -> BaseGeometry:
    return shapely.transform(g, lambda xy: np.column_stack(TO_M.transform(xy[:, 0], xy[:, 1])))


def _deg(g: BaseGeometry) -> BaseGeometry:
    return shapely.transform(g, lambda xy: np.column_stack(TO_DEG.transform(xy[:, 0], xy[:, 1])))


def _polys(g: BaseGeometry) -> list[Polygon]:
    if g.is_empty:
        return []
    if isinstance(g, Polygon):
        return [g]
    return [p for p in getattr(g, "geoms", []) for p in _polys(p)]


def _multi(g: BaseGeometry) -> MultiPolygon:
    return MultiPolygon(_polys(g))


def _order(cells: list[BaseGeometry]) -> list[BaseGeometry]:
    """North→south rows of ~CELL height, west→east within a row."""
    return sorted(cells, key=lambda c: (-math.floor(c.centroid.y / CELL), c.centroid.x))


def unit_cells(community: BaseGeometry, roads: list[BaseGeometry]) -> list[BaseGeometry]:
    """Tile a community (metres) into blocks cut by roads, then ~1 ha cells; slivers merged."""
    lines = [r.intersection(community) for r in roads if r.intersects(community)]
    noded = shapely.unary_union([community.boundary, *lines])
    # one collection: the stubs cannot tell that a 1-D array of parts reduces to a single geometry
    polygons = cast(GeometryCollection, shapely.polygonize(shapely.get_parts(noded)))
    faces = [f for f in polygons.geoms if community.contains(f.representative_point())]
    covered = shapely.unary_union(faces) if faces else Polygon()
    rest = community.difference(covered)  # faces polygonize may miss (dangles): keep coverage exact
    faces += [p for p in _polys(rest) if p.area > 1.0]
    cells: list[BaseGeometry] = []
    for f in faces:
        if f.area <= 2 * CELL * CELL:
            cells.append(f)
            continue
        x0, y0, x1, y1 = f.bounds
        pieces = []
        for x in np.arange(x0, x1, CELL):
            for y in np.arange(y0, y1, CELL):
                part = f.intersection(box(x, y, x + CELL, y + CELL))
                if not part.is_empty and part.area > 0.5:
                    pieces.extend(_polys(part))
        big: list[BaseGeometry] = [p for p in pieces if p.area >= 0.25 * CELL * CELL]
        small = [p for p in pieces if p.area < 0.25 * CELL * CELL]
        if not big:
            cells.append(f)
            continue
        for s in small:  # merge each sliver into the big piece it shares most boundary with
            k = max(range(len(big)), key=lambda i: big[i].boundary.intersection(s.boundary).length)
            big[k] = shapely.union(big[k], s)
        cells.extend(big)
    return _order([c.buffer(0) for c in cells])


def governance_cells(community: BaseGeometry, pts: np.ndarray, weights: np.ndarray,
                     rng: np.random.Generator) -> list[tuple[BaseGeometry, int]]:
    total = int(weights.sum())
    k = max(1, round(total / HOUSEHOLDS_PER_GRID)) if total else 1
    if k == 1 or len(pts) < k:
        return [(community, total)]
    centres = pts[rng.choice(len(pts), size=k, replace=False, p=weights / weights.sum())]
    for _ in range(15):  # weighted Lloyd iterations
        d = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        lab = d.argmin(1)
        for j in range(k):
            m = lab == j
            if m.any():
                centres[j] = (pts[m] * weights[m, None]).sum(0) / weights[m].sum()
    sites = cast(MultiPoint, shapely.multipoints(centres))  # one MultiPoint from a 2-D array of coordinates
    vor = shapely.voronoi_polygons(sites, extend_to=community.envelope.buffer(1000))
    cells = []
    for cell in vor.geoms:
        part = cell.intersection(community)
        if part.is_empty or part.area < 1:
            continue
        inside = shapely.contains_xy(part, pts[:, 0], pts[:, 1])
        cells.append((part, int(weights[inside].sum())))
    return cells


def generate(engine: Engine, county: str = "420281", seed: int = 42, progress: Progress | None = None
             ) -> dict[str, Any]:
    """(Re)generate the demo county's unit and governance grids and assign every object to them."""
    progress = progress or (lambda s, d, t: None)
    rng = np.random.default_rng(seed)
    with Session(engine) as s, s.begin():
        c = s.connection()
        c.execute(text("DELETE FROM grid_membership WHERE grid_code LIKE :p"), {"p": county + "%"})
        c.execute(text("DELETE FROM grid WHERE system IN ('unit', 'governance') AND code LIKE :p"), {"p": county + "%"})
        comms = c.execute(text(
            "SELECT v.code, v.name, ST_AsBinary(v.geom), t.name LIKE '%街道' AS urban FROM division v "
            "JOIN division t ON t.code = v.parent_code WHERE v.level = 5 AND v.code LIKE :p AND v.geom IS NOT NULL "
            "ORDER BY v.code"), {"p": county + "%"}).all()
        roads = [_m(wkb.loads(bytes(g))) for (g,) in c.execute(text(
            "SELECT ST_AsBinary(o.geom) FROM city_object o JOIN object_class k ON k.code=o.class_code "
            "WHERE k.name='道路' AND o.division_code=:c AND o.status='active'"), {"c": county}).all()]
        road_tree = shapely.STRtree(roads) if roads else None
        # households: village door plates count 1, residential buildings floors × 4 (2 units × 2 rooms)
        hh = c.execute(text(
            "SELECT ST_X(ST_PointOnSurface(o.geom)), ST_Y(ST_PointOnSurface(o.geom)), o.village_code, "
            "CASE WHEN k.name='门牌' THEN 1 ELSE greatest(1, coalesce((o.attrs->>'floors_above')::int, 1)) * 4 END "
            "FROM city_object o JOIN object_class k ON k.code=o.class_code WHERE o.division_code=:c AND o.status='active' "
            "AND (k.name='门牌' AND o.attrs->>'plate_type'='村组门牌' OR k.name='建筑物' AND o.attrs->>'main_use' LIKE '%住%')"),
            {"c": county}).all()
        by_village: dict[str, list[tuple[float, float, int]]] = {}
        for x, y, v, w in hh:
            if v:
                by_village.setdefault(v, []).append((x, y, w))
        rows: list[dict[str, Any]] = []
        for i, (vcode, vname, g, urban) in enumerate(comms):
            progress("grids", i, len(comms))
            poly = _m(wkb.loads(bytes(g)))
            if urban and road_tree is not None:
                near = [roads[j] for j in road_tree.query(poly)]
                for n, cell in enumerate(unit_cells(poly, near), start=1):
                    code = f"{county}{vcode[6:9]}{vcode[9:12]}{n:03d}"
                    rows.append({"code": code, "system": "unit", "kind": "unit", "d": vcode, "t": vcode[:9],
                                 "n": f"{vname}第{n}单元网格", "h": None, "g": _multi(_deg(cell)).wkb,
                                 "a": json.dumps({"area_m2": round(cell.area, 1), "generated": True})})
            pts_w = by_village.get(vcode, [])
            if pts_w:
                arr = np.array([(p[0], p[1]) for p in pts_w])
                xy = np.column_stack(TO_M.transform(arr[:, 0], arr[:, 1]))
                w = np.array([p[2] for p in pts_w], dtype=float)
            else:
                xy, w = np.zeros((0, 2)), np.zeros(0)
            cells = governance_cells(poly, xy, w, rng)
            cells = sorted(cells, key=lambda cw: (-math.floor(cw[0].centroid.y / 500), cw[0].centroid.x))
            for n, (cell, households) in enumerate(cells, start=1):
                rows.append({"code": f"{vcode}{n:03d}", "system": "governance", "kind": "governance", "d": vcode,
                             "t": vcode[:9], "n": f"{vname}第{n}网格", "h": households,
                             "g": _multi(_deg(cell)).wkb, "a": json.dumps({"generated": True})})
        c.execute(text("INSERT INTO grid (code, system, kind, division_code, township_code, name, households, attrs, "
                       "geom) VALUES (:code, :system, :kind, :d, :t, :n, :h, CAST(:a AS jsonb), "
                       "ST_Multi(ST_GeomFromWKB(:g, 4490)))"), rows)
        c.execute(text("ANALYZE grid"))  # fresh rows: without statistics the spatial join is planned as a scan
        progress("grids: assign objects", 0, None)
        assigned = assign_objects(c, county=county)
        counts: dict[str, int] = dict(
            c.execute(text("SELECT system, count(*) FROM grid WHERE code LIKE :p GROUP BY system"),
                      {"p": county + "%"}).tuples().all())
        detail = {"grids": counts, "objects_assigned": assigned, "seed": seed}
        c.execute(text("INSERT INTO data_source (name, edition, detail) VALUES (:n, :e, CAST(:d AS jsonb)) "
                       "ON CONFLICT (name) DO UPDATE SET edition=:e, detail=CAST(:d AS jsonb), loaded_at=now()"),
                  {"n": f"grids-{county}", "e": f"seed={seed}", "d": json.dumps(detail)})
    return detail
