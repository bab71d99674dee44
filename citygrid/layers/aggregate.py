"""Aggregate objects to H3 cells (any resolution ≤ 12) or divisions: count, sum, avg of a numeric attribute.

Personal-data classes (any attribute at level L4) suppress groups smaller than k (k-anonymity, default 5)
for callers without the right: the group is returned without its value, never with a small count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

import h3
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import get_catalog
from citygrid.db.engine import fetch_tuples
from citygrid.db.versions import VersionedCache, layer_version
from citygrid.errors import E
from citygrid.geo import bbox_condition
from citygrid.grid.h3cells import STORED_RES, boundary_geojson, parent_sql
from citygrid.layers.sources import DivisionsLayer, GridSystemLayer, Layer

DIVISION_LEVELS = {"county": (3, "division_code"), "township": (4, "township_code"), "village": (5, "village_code")}
GRID_KINDS = {"unit_grid": ("unit", "unit_grid"), "gov_grid": ("governance", "gov_grid")}
K_DEFAULT = 5


class _Choices(TypedDict):
    choices_zh: str
    choices_en: str


# What `by` may be, for the by_invalid answer: points group by H3 cell or area; area tiles by area only.
_AREAS = [*GRID_KINDS, *DIVISION_LEVELS]
_BY_AREAS: _Choices = {"choices_zh": "、".join(_AREAS[:-1]) + " 或 " + _AREAS[-1],
                       "choices_en": ", ".join(_AREAS[:-1]) + " or " + _AREAS[-1]}
_BY_POINTS: _Choices = {"choices_zh": f"h3:0–{STORED_RES}、" + _BY_AREAS["choices_zh"],
                        "choices_en": f"h3:0..{STORED_RES}, " + _BY_AREAS["choices_en"]}


def is_personal(class_code: str | None, attr: str | None = None) -> bool:
    """A class about people (catalog `personal: true`), or a statistic over an L4 (personal) attribute."""
    cls = get_catalog().get(class_code) if class_code else None
    if cls is None:
        return False
    return cls.personal or any(a.field == attr and a.level == "L4" for a in cls.attributes)


def aggregate(conn: Connection, *, by: str, class_code: str | None = None, attr: str | None = None,
              stat: str = "count", region: str | None = None, bbox: tuple[float, float, float, float] | None = None,
              k: int = K_DEFAULT, may_see_personal: bool = False, with_geometry: bool = True) -> dict[str, Any]:
    if stat not in ("count", "sum", "avg"):
        raise E.stat_invalid("stat")
    cls = None
    if class_code is not None:
        cls = get_catalog().get(class_code)
        if cls is None:
            raise E.class_unknown("class", code=class_code)
    value = "count(*)"
    params: dict[str, Any] = {}
    if stat != "count":
        if not attr or cls is None:
            raise E.attr_required("attr", attr_zh="参数 class 和 attr（sum/avg 需要分类和它的数值属性）",
                                  attr_en="class and attr (sum/avg need a class and its numeric attribute)")
        a = next((x for x in cls.attributes if x.field == attr), None)
        if a is None or a.type not in ("integer", "number"):
            raise E.attr_not_numeric("attr", attr=attr, class_name_zh=cls.name, class_code=cls.code)
        params["attr"] = attr
        num = "CASE WHEN jsonb_typeof(o.attrs->:attr) = 'number' THEN (o.attrs->>:attr)::numeric END"
        value = f"{stat}({num})"
    if by.startswith("h3:"):
        try:
            res = int(by[3:])
        except ValueError as exc:
            raise E.by_invalid("by", by=by, **_BY_POINTS) from exc
        if not 0 <= res <= STORED_RES:
            raise E.by_invalid("by", by=by, **_BY_POINTS)
        key = parent_sql("o.h3", res)
    elif by in DIVISION_LEVELS:
        key = "o." + DIVISION_LEVELS[by][1]
    elif by in GRID_KINDS:
        key = "o." + GRID_KINDS[by][1]
    else:
        raise E.by_invalid("by", by=by, **_BY_POINTS)
    where = ["o.status = 'active'", f"{key} IS NOT NULL"]
    if class_code:
        where.append("o.class_code = :cls")
        params["cls"] = class_code
    if region:
        where.append("(o.division_code = :rg OR o.township_code = :rg OR o.village_code = :rg)")
        params["rg"] = region
    if bbox:
        where.append(bbox_condition("o.geom", bbox, params))
    counted = _counts_sql(by, class_code) if stat == "count" and not region and not bbox else None
    rows: Sequence[tuple[Any, ...]]
    if counted is not None:  # exact counts kept by triggers (migration 0010), not a pass over every object
        # plain tuples from the driver: SQLAlchemy rows cost more than the query for 20k unit grids
        rows = fetch_tuples(conn, counted, {"cls": class_code, "sys": GRID_KINDS.get(by, ("",))[0]})
    else:
        rows = conn.execute(
            text(f"SELECT {key} AS k, count(*) AS n, {value} AS v FROM city_object o WHERE {' AND '.join(where)} "
                 "GROUP BY 1 ORDER BY 1"), params).tuples().all()
    suppress = is_personal(class_code, attr) and not may_see_personal
    feats = []
    suppressed = 0
    geoms: dict[str, dict[str, Any]] = {}
    if with_geometry and rows and by in DIVISION_LEVELS:
        geoms = _area_geometries(conn, DivisionsLayer("divisions"), [r[0] for r in rows])
    elif with_geometry and rows and by in GRID_KINDS:
        system = GRID_KINDS[by][0]
        geoms = _area_geometries(conn, GridSystemLayer(system), [r[0] for r in rows])
    is_h3 = by.startswith("h3:")
    for key_, n_, v_ in rows:  # rows are (k, n, v); one tight loop (20k unit grids)
        n = int(n_)
        hidden = suppress and n < k
        suppressed += hidden
        props = {"key": str(key_), "value": None if hidden or v_ is None else float(v_),
                 "count": None if hidden else n, "suppressed": hidden}
        if is_h3:
            cell = int(key_)
            props["h3"] = h3.int_to_str(cell)
            geom = boundary_geojson(cell) if with_geometry else None
        else:
            geom = geoms.get(key_)
        feats.append({"type": "Feature", "id": props["key"], "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": feats,
            "meta": {"by": by, "class": class_code, "stat": stat, "attr": attr, "groups": len(feats),
                     "suppressed": suppressed, "k": k if suppress else None}}


COUNTS_RES = 9

# Outlines of grids and divisions as parsed GeoJSON, per layer, valid while the layer's version stands (grid and
# division writes bump it): 20k unit-grid polygons cost 1.4 s to serialise and parse, and they rarely change.
# One entry per layer, a dict that fills lazily with the codes asked for.
_OUTLINES: VersionedCache[dict[str, dict[str, Any]]] = VersionedCache(max_items=64, max_bytes=1 << 40)


def _area_geometries(conn: Connection, layer: Layer, codes: list[str]) -> dict[str, dict[str, Any]]:
    """GeoJSON geometry per code; fetched once per layer version, only for the codes ever asked for."""
    version = layer_version(conn, layer.id)
    got = _OUTLINES.get(layer.id, version)
    if got is None:
        got = {}
        _OUTLINES.put(layer.id, version, got, 1)
    missing = [c for c in codes if c not in got]
    if missing:
        sql, params = layer.outlines_sql()
        fetched = {code: json.loads(g) for code, g in conn.execute(text(sql), params | {"c": missing}).all()}
        got.update(fetched)  # one dict per version: readers see it fill, never change
    return got


def _counts_sql(by: str, class_code: str | None) -> str | None:
    """SQL over the trigger-kept counts (`agg_h3`, `agg_grid`) for this grouping, or None when they cannot
    answer it. Rows are (k, n, v); zero counts (everything there retired or moved) are skipped."""
    cls = "class_code = :cls" if class_code else "TRUE"
    if by in GRID_KINDS:
        if class_code:  # one row per grid already: an index-only scan of the primary key, no grouping
            return ("SELECT code AS k, n, n AS v FROM agg_grid WHERE class_code = :cls AND system = :sys "
                    "AND n > 0 ORDER BY code")
        return ("SELECT code AS k, sum(n) AS n, sum(n) AS v FROM agg_grid WHERE system = :sys GROUP BY code "
                "HAVING sum(n) > 0 ORDER BY code")
    if by.startswith("h3:") and int(by[3:]) <= COUNTS_RES:
        res = int(by[3:])
        key = "h3_9" if res == COUNTS_RES else parent_sql("h3_9", res)
        return (f"SELECT {key} AS k, sum(n) AS n, sum(n) AS v FROM agg_h3 WHERE {cls} GROUP BY 1 HAVING sum(n) > 0 "
                "ORDER BY 1")
    return None


def res_for_zoom(z: int) -> int:
    """H3 resolution whose cells are a few pixels at zoom z (res 8 ≈ 0.7 km² at about z12)."""
    return max(3, min(STORED_RES, round(z * 0.75 - 1)))


def heat_tile(conn: Connection, z: int, x: int, y: int, class_code: str | None = None, k: int = K_DEFAULT,
              may_see_personal: bool = False) -> bytes:
    """MVT of weighted points (one per H3 cell, at the mean position of its objects) for heat maps.

    Personal classes drop cells below k, so a heat map never shows where a single household is.
    """
    res = res_for_zoom(z)
    key = parent_sql("o.h3", res)
    params: dict[str, Any] = {"z": z, "x": x, "y": y}
    where = ["o.status = 'active'", "o.h3 IS NOT NULL", "o.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)"]
    if class_code:
        where.append("o.class_code = :cls")
        params["cls"] = class_code
    having = "HAVING count(*) >= :k" if is_personal(class_code) and not may_see_personal else ""
    params["k"] = k
    sql = (
        f"WITH cells AS (SELECT {key} AS cell, count(*) AS n, ST_SetSRID(ST_Point(avg(ST_X(ST_PointOnSurface(o.geom))), "
        f"avg(ST_Y(ST_PointOnSurface(o.geom)))), 4490) AS pt FROM city_object o WHERE {' AND '.join(where)} "
        f"GROUP BY 1 {having}), f AS (SELECT ST_AsMVTGeom(ST_Transform(pt, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, "
        "true) AS geom, n AS count, cell::text AS h3 FROM cells) "
        "SELECT ST_AsMVT(f.*, 'heat', 4096, 'geom') FROM f WHERE geom IS NOT NULL"
    )
    return bytes(conn.execute(text(sql), params).scalar() or b"")


def area_tile(conn: Connection, z: int, x: int, y: int, by: str, class_code: str | None = None,
              k: int = K_DEFAULT, may_see_personal: bool = False) -> bytes:
    """MVT of grid or division polygons in the tile with their object counts (layer 'aggregate'), for choropleths.

    Counts for grids come from `agg_grid`, restricted to the grids in the tile; divisions count objects by
    their stored division codes. Cells of personal classes below k carry `suppressed` and no count.
    """
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "cls": class_code, "k": k}
    if by in GRID_KINDS:
        params["sys"] = GRID_KINDS[by][0]
        areas = "SELECT g.code, g.name, g.geom FROM grid g, b WHERE g.system = :sys AND g.geom && b.e4490"
        counts = ("SELECT r.code, sum(r.n)::bigint AS n FROM agg_grid r WHERE r.system = :sys AND r.code IN "
                  "(SELECT code FROM areas) AND (CAST(:cls AS text) IS NULL OR r.class_code = :cls) GROUP BY 1 "
                  "HAVING sum(r.n) > 0")
    elif by in DIVISION_LEVELS:
        level, col = DIVISION_LEVELS[by]
        params["lvl"] = level
        areas = "SELECT d.code, d.name, d.geom FROM division d, b WHERE d.level = :lvl AND d.geom && b.e4490"
        counts = (f"SELECT o.{col} AS code, count(*)::bigint AS n FROM city_object o WHERE o.{col} IN "
                  "(SELECT code FROM areas) AND o.status = 'active' "
                  "AND (CAST(:cls AS text) IS NULL OR o.class_code = :cls) GROUP BY 1")
    else:
        raise E.by_invalid("by", by=by, **_BY_AREAS)
    hide = is_personal(class_code) and not may_see_personal
    count = "CASE WHEN c.n < :k THEN NULL ELSE c.n END" if hide else "c.n"
    sql = (
        "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490) AS e4490), "
        f"areas AS MATERIALIZED ({areas}), c AS ({counts}), "
        f"f AS (SELECT ST_AsMVTGeom(ST_Transform(a.geom, 3857), b.e, 4096, 64, true) AS geom, a.code AS key, a.name, "
        f"{count} AS count, {'c.n < :k' if hide else 'false'} AS suppressed FROM areas a JOIN c ON c.code = a.code, b) "
        "SELECT ST_AsMVT(f.*, 'aggregate', 4096, 'geom') FROM f WHERE geom IS NOT NULL"
    )
    return bytes(conn.execute(text(sql), params).scalar() or b"")
