"""Aggregate objects to H3 cells (any resolution ≤ 12), Beidou grid cells (levels 1–10, GB/T 39409-2020), grids or
divisions: count, sum, avg of a numeric attribute.

Who may count what is `citygrid.security.rules` (classified classes only where the caller may read them, 404
elsewhere; attributes only up to its clearance); how small counts are hidden is
`citygrid.security.classification` (k-anonymity). Classes about people (`personal: true`: households) are
counted for callers not cleared for small counts (`rules.may_see_small_counts`) like this:

- a group (cell, grid, division) with fewer than k objects is returned without its count or value;
- a bbox or region selects whole groups and each group is counted whole, objects outside the box included.
  Counting only the objects inside the box would let two overlapping boxes differ by fewer than k objects:
  the difference of two answers would isolate a household. With whole groups, two answers agree on every
  group they share, so their difference is made of whole groups, each at least k or hidden.
- an all-classes count leaves personal (and restricted) classes out, so subtracting a public class's count
  from it cannot isolate them either.

Not covered: differences between nested groupings (a township's count minus its visible villages' counts
gives the sum of its hidden villages), which needs complementary suppression or noise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

import h3
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import ObjectClass, get_catalog
from citygrid.crs import CGCS2000, Crs
from citygrid.db.engine import fetch_tuples
from citygrid.db.versions import VersionedCache, layer_version
from citygrid.errors import E
from citygrid.geo import bbox_condition, geojson_many_in
from citygrid.grid import beidou
from citygrid.grid.h3cells import STORED_RES, boundary_geojson, parent_sql
from citygrid.layers.sources import DivisionsLayer, GridSystemLayer, Layer
from citygrid.security import classification, rules
from citygrid.security.principal import LEVELS, Principal

DIVISION_LEVELS = {"county": (3, "division_code"), "township": (4, "township_code"), "village": (5, "village_code")}
GRID_KINDS = {"unit_grid": ("unit", "unit_grid"), "gov_grid": ("governance", "gov_grid")}


class _Choices(TypedDict):
    choices_zh: str
    choices_en: str


# What `by` may be, for the by_invalid answer: points group by H3 cell or area; area tiles by area only.
_AREAS = [*GRID_KINDS, *DIVISION_LEVELS]
_BY_AREAS: _Choices = {"choices_zh": "、".join(_AREAS[:-1]) + " 或 " + _AREAS[-1],
                       "choices_en": ", ".join(_AREAS[:-1]) + " or " + _AREAS[-1]}
_BY_POINTS: _Choices = {"choices_zh": f"h3:0–{STORED_RES}、bgc:1–10（北斗网格位置码）、" + _BY_AREAS["choices_zh"],
                        "choices_en": f"h3:0..{STORED_RES}, bgc:1..10 (Beidou grid code), " + _BY_AREAS["choices_en"]}


def _counted(p: Principal, class_code: str | None) -> tuple[ObjectClass | None, rules.Scope, list[str], bool]:
    """The class asked for (a coded 404 when the caller may not count it), where it may be counted, the classes
    an all-classes count leaves out for this caller, and whether small groups are hidden."""
    cleared = rules.may_see_small_counts(p)
    if class_code is None:
        left_out = [c.code for c in get_catalog().classes.values()
                    if rules.aggregate_scopes(p, c) is not None or (c.personal and not cleared)]
        return None, None, left_out, False
    cls = get_catalog().get(class_code)
    if cls is None:
        raise E.class_unknown("class", code=class_code)
    scope = rules.aggregate_scopes(p, cls)
    if scope == ():
        raise E.class_not_found("class", code=class_code)
    return cls, scope, [], cls.personal and not cleared


def _class_conditions(cls: ObjectClass | None, scope: rules.Scope, left_out: list[str], params: dict[str, Any],
                      ) -> list[str]:
    where = []
    if cls is not None:
        where.append("o.class_code = :cls")
        params["cls"] = cls.code
    if left_out:
        where.append("o.class_code <> ALL(CAST(:left_out AS text[]))")
        params["left_out"] = left_out
    if scope:
        where.append(f"{rules.PLACE_SQL} LIKE ANY(CAST(:agg_scope AS text[]))")
        params["agg_scope"] = [s + "%" for s in scope]
    return where


def aggregate(conn: Connection, p: Principal, *, by: str, class_code: str | None = None, attr: str | None = None,
              stat: str = "count", region: str | None = None, bbox: tuple[float, float, float, float] | None = None,
              with_geometry: bool = True, crs: Crs | None = None) -> dict[str, Any]:
    """Groups of objects with their count or statistic; geometries in `crs` (default CGCS2000 lon/lat)."""
    if stat not in ("count", "sum", "avg"):
        raise E.stat_invalid("stat")
    cls, scope, left_out, suppress = _counted(p, class_code)
    value = "count(*)"
    params: dict[str, Any] = {}
    if stat != "count":
        if not attr or cls is None:
            raise E.attr_required("attr", attr_zh="参数 class 和 attr（sum/avg 需要分类和它的数值属性）",
                                  attr_en="class and attr (sum/avg need a class and its numeric attribute)")
        a = next((x for x in cls.attributes if x.field == attr), None)
        if a is None or a.type not in ("integer", "number"):
            raise E.attr_not_numeric("attr", attr=attr, class_name_zh=cls.name, class_code=cls.code)
        if LEVELS.index(a.level) > LEVELS.index(classification.queryable_level(p)):
            raise E.attr_withheld("attr", attr=attr, level=a.level)
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
    elif by.startswith("bgc:"):  # Beidou grid code: a level's code is the prefix of the stored level-10 code
        level = int(by[4:]) if by[4:].isdigit() else 0
        if level not in beidou.LEVELS:
            raise E.by_invalid("by", by=by, **_BY_POINTS)
        key = f"left(o.bgc, {beidou.LENGTHS[level]})"
    elif by in DIVISION_LEVELS:
        key = "o." + DIVISION_LEVELS[by][1]
    elif by in GRID_KINDS:
        key = "o." + GRID_KINDS[by][1]
    else:
        raise E.by_invalid("by", by=by, **_BY_POINTS)
    where = ["o.status = 'active'", f"{key} IS NOT NULL", *_class_conditions(cls, scope, left_out, params)]
    filters = []
    if region:
        filters.append("(o.division_code = :rg OR o.township_code = :rg OR o.village_code = :rg)")
        params["rg"] = region
    if bbox:
        filters.append(bbox_condition("o.geom", bbox, params))
    counted = _counts_sql(by, class_code, bool(left_out)) if stat == "count" and not filters and not scope else None
    rows: Sequence[tuple[Any, ...]]
    if counted is not None:  # exact counts kept by triggers (migration 0010), not a pass over every object
        # plain tuples from the driver: SQLAlchemy rows cost more than the query for 20k unit grids
        rows = fetch_tuples(conn, counted, {"cls": class_code, "sys": GRID_KINDS.get(by, ("",))[0],
                                            "left_out": left_out})
    else:
        groups = " AND ".join(where + filters)
        if suppress and filters:  # whole groups: the filters choose groups, never objects within a group
            groups = (" AND ".join(where) + f" AND {key} IN (SELECT {key} FROM city_object o WHERE "
                      + " AND ".join(where + filters) + ")")
        rows = conn.execute(
            text(f"SELECT {key} AS k, count(*) AS n, {value} AS v FROM city_object o WHERE {groups} "
                 "GROUP BY 1 ORDER BY 1"), params).tuples().all()
    k = classification.k_anonymity()
    feats: list[dict[str, Any]] = []
    suppressed = 0
    geoms: dict[str, dict[str, Any]] = {}
    if with_geometry and rows and by in DIVISION_LEVELS:
        geoms = _area_geometries(conn, DivisionsLayer("divisions"), [r[0] for r in rows])
    elif with_geometry and rows and by in GRID_KINDS:
        system = GRID_KINDS[by][0]
        geoms = _area_geometries(conn, GridSystemLayer(system), [r[0] for r in rows])
    is_h3, is_bgc = by.startswith("h3:"), by.startswith("bgc:")
    for key_, n_, v_ in rows:  # rows are (k, n, v); one tight loop (20k unit grids)
        n = classification.small_count(int(n_), not suppress)
        hidden = n is None
        suppressed += hidden
        props = {"key": str(key_), "value": None if hidden or v_ is None else float(v_),
                 "count": n, "suppressed": hidden}
        if is_h3:
            cell = int(key_)
            props["h3"] = h3.int_to_str(cell)
            geom = boundary_geojson(cell) if with_geometry else None
        elif is_bgc:
            geom = beidou.outline(key_) if with_geometry else None
        else:
            geom = geoms.get(key_)
        feats.append({"type": "Feature", "id": props["key"], "geometry": geom, "properties": props})
    if crs is not None and with_geometry and not crs.is_storage:
        for f, g in zip(feats, geojson_many_in([f["geometry"] for f in feats], crs), strict=True):
            f["geometry"] = g
    return {"type": "FeatureCollection", "features": feats,
            "meta": {"by": by, "class": class_code, "stat": stat, "attr": attr, "groups": len(feats),
                     "suppressed": suppressed, "k": k if suppress else None,
                     "whole_groups": bool(suppress and filters), "crs": (crs or CGCS2000).uri}}


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


def _counts_sql(by: str, class_code: str | None, left_out: bool = False) -> str | None:
    """SQL over the trigger-kept counts (`agg_h3`, `agg_grid`) for this grouping, or None when they cannot
    answer it. Rows are (k, n, v); zero counts (everything there retired or moved) are skipped. `left_out`:
    leave the classes bound as :left_out out of an all-classes count."""
    cls = "class_code = :cls" if class_code else "TRUE"
    if left_out:
        cls += " AND class_code <> ALL(CAST(:left_out AS text[]))"
    if by in GRID_KINDS:
        if class_code:  # one row per grid already: an index-only scan of the primary key, no grouping
            return ("SELECT code AS k, n, n AS v FROM agg_grid WHERE class_code = :cls AND system = :sys "
                    "AND n > 0 ORDER BY code")
        return (f"SELECT code AS k, sum(n) AS n, sum(n) AS v FROM agg_grid WHERE system = :sys AND {cls} "
                "GROUP BY code HAVING sum(n) > 0 ORDER BY code")
    if by.startswith("h3:") and int(by[3:]) <= COUNTS_RES:
        res = int(by[3:])
        key = "h3_9" if res == COUNTS_RES else parent_sql("h3_9", res)
        return (f"SELECT {key} AS k, sum(n) AS n, sum(n) AS v FROM agg_h3 WHERE {cls} GROUP BY 1 HAVING sum(n) > 0 "
                "ORDER BY 1")
    return None


def res_for_zoom(z: int) -> int:
    """H3 resolution whose cells are a few pixels at zoom z (res 8 ≈ 0.7 km² at about z12)."""
    return max(3, min(STORED_RES, round(z * 0.75 - 1)))


def heat_tile(conn: Connection, p: Principal, z: int, x: int, y: int, class_code: str | None = None) -> bytes:
    """MVT of weighted points (one per H3 cell, at the mean position of its objects) for heat maps.

    For callers not cleared for small counts, personal classes drop cells below k, so a heat map never shows
    where a single household is, and a cell on the tile's edge is counted whole in both tiles (the tile picks
    cells, not objects: two neighbouring tiles cannot be subtracted).
    """
    cls, scope, left_out, suppress = _counted(p, class_code)
    res = res_for_zoom(z)
    key = parent_sql("o.h3", res)
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "k_anon": classification.k_anonymity()}
    where = ["o.status = 'active'", "o.h3 IS NOT NULL", *_class_conditions(cls, scope, left_out, params)]
    in_tile = "o.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)"
    if suppress:
        chosen = f"{key} IN (SELECT {key} FROM city_object o WHERE {' AND '.join([*where, in_tile])})"
        where.append(chosen)
    else:
        where.append(in_tile)
    having = f"HAVING {classification.count_sql('count(*)', False)} IS NOT NULL" if suppress else ""
    sql = (
        f"WITH cells AS (SELECT {key} AS cell, count(*) AS n, ST_SetSRID(ST_Point(avg(ST_X(ST_PointOnSurface(o.geom))), "
        f"avg(ST_Y(ST_PointOnSurface(o.geom)))), 4490) AS pt FROM city_object o WHERE {' AND '.join(where)} "
        f"GROUP BY 1 {having}), f AS (SELECT ST_AsMVTGeom(ST_Transform(pt, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, "
        "true) AS geom, n AS count, cell::text AS h3 FROM cells) "
        "SELECT ST_AsMVT(f.*, 'heat', 4096, 'geom') FROM f"
    )
    return bytes(conn.execute(text(sql), params).scalar() or b"")


def area_tile(conn: Connection, p: Principal, z: int, x: int, y: int, by: str, class_code: str | None = None
              ) -> bytes:
    """MVT of grid or division polygons in the tile with their object counts (layer 'aggregate'), for choropleths.

    Counts for grids come from `agg_grid`, restricted to the grids in the tile; divisions count objects by
    their stored division codes. Both count each area whole. Cells of personal classes below k carry
    `suppressed` and no count, for callers not cleared for small counts.
    """
    cls, scope, left_out, suppress = _counted(p, class_code)
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "cls": class_code, "k_anon": classification.k_anonymity(),
                              "left_out": left_out}
    others = " AND r.class_code <> ALL(CAST(:left_out AS text[]))" if left_out else ""
    if by in GRID_KINDS and not scope:
        params["sys"] = GRID_KINDS[by][0]
        areas = "SELECT g.code, g.name, g.geom FROM grid g, b WHERE g.system = :sys AND g.geom && b.e4490"
        counts = ("SELECT r.code, sum(r.n)::bigint AS n FROM agg_grid r WHERE r.system = :sys AND r.code IN "
                  f"(SELECT code FROM areas) AND (CAST(:cls AS text) IS NULL OR r.class_code = :cls){others} "
                  "GROUP BY 1 HAVING sum(r.n) > 0")
    elif by in GRID_KINDS or by in DIVISION_LEVELS:
        col = GRID_KINDS[by][1] if by in GRID_KINDS else DIVISION_LEVELS[by][1]
        if by in GRID_KINDS:
            params["sys"] = GRID_KINDS[by][0]
            areas = "SELECT g.code, g.name, g.geom FROM grid g, b WHERE g.system = :sys AND g.geom && b.e4490"
        else:
            params["lvl"] = DIVISION_LEVELS[by][0]
            areas = "SELECT d.code, d.name, d.geom FROM division d, b WHERE d.level = :lvl AND d.geom && b.e4490"
        cond = " AND ".join(["o.status = 'active'", *_class_conditions(cls, scope, left_out, params)])
        counts = (f"SELECT o.{col} AS code, count(*)::bigint AS n FROM city_object o WHERE o.{col} IN "
                  f"(SELECT code FROM areas) AND {cond} GROUP BY 1")
    else:
        raise E.by_invalid("by", by=by, **_BY_AREAS)
    count = classification.count_sql("c.n", not suppress)
    sql = (
        "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490) AS e4490), "
        f"areas AS MATERIALIZED ({areas}), c AS ({counts}), "
        f"f AS (SELECT ST_AsMVTGeom(ST_Transform(a.geom, 3857), b.e, 4096, 64, true) AS geom, a.code AS key, a.name, "
        f"{count} AS count, {f'{count} IS NULL' if suppress else 'false'} AS suppressed FROM areas a "
        "JOIN c ON c.code = a.code, b) "
        "SELECT ST_AsMVT(f.*, 'aggregate', 4096, 'geom') FROM f"
    )
    return bytes(conn.execute(text(sql), params).scalar() or b"")
