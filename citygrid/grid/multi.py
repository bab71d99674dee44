"""多网合一: a department's own grid system imported beside the base grids, mapped onto them with overlap
ratios, and a report of where it disagrees (cells crossing communities, gaps, overlaps)."""

from __future__ import annotations

import json
import re
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.errors import CitygridError, E, Problem, detail
from citygrid.geo import parse_geometry
from citygrid.security import audit, rules
from citygrid.security.principal import Principal

RESERVED = {"unit", "governance"}
SYSTEM_RE = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


def import_system(conn: Connection, p: Principal, system: str, fc: Any, code_field: str = "code",
                  name_field: str = "name", crs: str | None = None, base: str = "unit") -> dict[str, Any]:
    """Replace `system`'s cells with the features of a GeoJSON FeatureCollection; map them onto `base`.
    Admins only: an import replaces a department's whole system."""
    rules.require_admin(p, "导入网格体系", "importing grid systems")
    if not SYSTEM_RE.match(system or "") or system in RESERVED:
        raise E.system_invalid("system")
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection" or not isinstance(fc.get("features"), list):
        raise E.geojson_invalid("file", **detail(None))
    if base not in RESERVED:
        raise E.base_invalid("base")
    problems: list[Problem] = []
    rows = []
    seen: set[str] = set()
    for i, f in enumerate(fc["features"]):
        props = (f or {}).get("properties") or {}
        code = str(props.get(code_field, "")).strip()
        if not code or len(code) > 24:
            problems.append(E.grid_code_missing.problem(code_field, i, n=i + 1, code_field=code_field))
            continue
        if code in seen:
            problems.append(E.grid_code_duplicate.problem(code_field, i, code=code))
            continue
        seen.add(code)
        try:
            g = parse_geometry((f or {}).get("geometry"), crs, row=i)
        except CitygridError as e:
            problems += e.problems
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon") or not g.is_valid:
            actual = g.geom_type if g.is_valid else f"{g.geom_type} ({shapely.is_valid_reason(g)})"
            problems.append(E.geom_type.problem("geometry", i, expected_zh="有效的面（Polygon 或 MultiPolygon）",
                                                expected_en="a valid Polygon or MultiPolygon", actual=actual))
            continue
        rows.append({"s": system, "c": code, "n": str(props.get(name_field) or code), "g": g.wkb,
                     "a": json.dumps({k: v for k, v in props.items() if k not in (code_field, name_field)},
                                     ensure_ascii=False, default=str)})
    if problems:
        raise CitygridError(problems[:200], "unprocessable")
    if not rows:
        raise E.geojson_empty("file")
    conn.execute(text("DELETE FROM grid_membership WHERE system=:s"), {"s": system})
    conn.execute(text("DELETE FROM grid WHERE system=:s"), {"s": system})
    conn.execute(text("INSERT INTO grid (code, system, kind, name, attrs, geom) VALUES (:c, :s, 'thematic', :n, "
                      "CAST(:a AS jsonb), ST_Multi(ST_GeomFromWKB(:g, 4490)))"), rows)
    conn.execute(text(
        "UPDATE grid g SET division_code = d.code, township_code = d.parent_code FROM division d "
        "WHERE g.system = :s AND d.level = 5 AND d.geom IS NOT NULL AND ST_Intersects(d.geom, ST_PointOnSurface(g.geom))"),
        {"s": system})
    conn.execute(text(
        "INSERT INTO grid_membership (system, grid_code, base_system, base_code, overlap_ratio) "
        "SELECT t.system, t.code, b.system, b.code, "
        "ST_Area(ST_Intersection(t.geom, b.geom)::geography) / nullif(ST_Area(t.geom::geography), 0) "
        "FROM grid t JOIN grid b ON b.system = :b AND ST_Intersects(t.geom, b.geom) "
        "WHERE t.system = :s AND ST_Area(ST_Intersection(t.geom, b.geom)::geography) > 0.5"),
        {"s": system, "b": base})
    audit.record(conn, p, "grid_import", system, detail={"cells": len(rows), "base": base})
    return {"system": system, "cells": len(rows), "base": base} | {"report": report(conn, system)}


def report(conn: Connection, system: str) -> dict[str, Any]:
    """Where the system disagrees with the base: cells crossing communities, overlaps, gaps."""
    n = conn.execute(text("SELECT count(*) FROM grid WHERE system=:s"), {"s": system}).scalar_one()
    if not n:
        raise E.system_not_found("system", system=system)
    crossing = conn.execute(text(
        "SELECT g.code, array_agg(d.code ORDER BY d.code) AS communities FROM grid g JOIN division d ON d.level = 5 "
        "AND d.geom IS NOT NULL AND ST_Intersects(d.geom, g.geom) "
        "AND ST_Area(ST_Intersection(d.geom, g.geom)::geography) > 0.01 * ST_Area(g.geom::geography) "
        "WHERE g.system = :s GROUP BY g.code HAVING count(*) > 1 ORDER BY g.code"), {"s": system}).all()
    overlaps = conn.execute(text(
        "SELECT a.code AS a, b.code AS b, ST_Area(ST_Intersection(a.geom, b.geom)::geography) AS m2 FROM grid a "
        "JOIN grid b ON b.system = a.system AND a.code < b.code AND ST_Intersects(a.geom, b.geom) "
        "WHERE a.system = :s AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1 ORDER BY a.code, b.code"),
        {"s": system}).all()
    gaps = conn.execute(text(
        "WITH cov AS (SELECT d.code, d.geom, ST_Union(g.geom) AS u FROM division d JOIN grid g ON g.system = :s "
        "AND ST_Intersects(d.geom, g.geom) WHERE d.level = 5 AND d.geom IS NOT NULL GROUP BY d.code, d.geom) "
        "SELECT code, ST_Area(ST_Difference(geom, u)::geography) AS m2, "
        "ST_Area(ST_Difference(geom, u)::geography) / ST_Area(geom::geography) AS ratio FROM cov "
        "WHERE ST_Area(ST_Difference(geom, u)::geography) > 1 ORDER BY code"), {"s": system}).all()
    split = conn.execute(text(
        "SELECT grid_code, count(*) AS n FROM grid_membership WHERE system = :s AND overlap_ratio < 0.99 "
        "GROUP BY grid_code HAVING count(*) > 1"), {"s": system}).all()
    return {
        "cells": n,
        "crossing_communities": [{"code": r.code, "communities": list(r.communities)} for r in crossing],
        "overlaps": [{"a": r.a, "b": r.b, "area_m2": round(r.m2, 1)} for r in overlaps],
        "gaps": [{"community": r.code, "area_m2": round(r.m2, 1), "ratio": round(r.ratio, 4)} for r in gaps],
        "split_over_base_cells": len(split),
    }
