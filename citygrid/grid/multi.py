"""多网合一: a department's own grid system imported beside the base grids, mapped onto them with overlap
ratios, and a report of where it disagrees (cells crossing communities, gaps, overlaps)."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.errors import CitygridError, Problem
from citygrid.geo import parse_geometry

RESERVED = {"unit", "governance"}
SYSTEM_RE = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


def import_system(conn: Connection, system: str, fc: Any, code_field: str = "code", name_field: str = "name",
                  crs: str | None = None, base: str = "unit") -> dict[str, Any]:
    """Replace `system`'s cells with the features of a GeoJSON FeatureCollection; map them onto `base`."""
    if not SYSTEM_RE.match(system or "") or system in RESERVED:
        raise CitygridError.one("system_invalid", "网格体系名称应为小写字母开头的字母、数字、-、_（不能是 unit/governance）",
                                "system must be a lowercase slug other than unit/governance", "system")
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection" or not isinstance(fc.get("features"), list):
        raise CitygridError.one("geojson_invalid", "需要 GeoJSON FeatureCollection", "a GeoJSON FeatureCollection is required",
                                "file")
    if base not in RESERVED:
        raise CitygridError.one("base_invalid", "基础网格只能是 unit 或 governance", "base must be unit or governance", "base")
    problems: list[Problem] = []
    rows = []
    seen: set[str] = set()
    for i, f in enumerate(fc["features"]):
        props = (f or {}).get("properties") or {}
        code = str(props.get(code_field, "")).strip()
        if not code or len(code) > 24:
            problems.append(Problem("grid_code_missing", f"第 {i + 1} 个要素缺少网格编码字段 {code_field}",
                                    f"feature {i + 1} has no {code_field}", code_field, i))
            continue
        if code in seen:
            problems.append(Problem("grid_code_duplicate", f"网格编码 {code} 重复", f"duplicate grid code {code}",
                                    code_field, i))
            continue
        seen.add(code)
        try:
            g = parse_geometry((f or {}).get("geometry"), crs, row=i)
        except CitygridError as e:
            problems += e.problems
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon") or not g.is_valid:
            problems.append(Problem("geom_type", f"第 {i + 1} 个网格应为有效的面", f"feature {i + 1} must be a valid polygon",
                                    "geometry", i))
            continue
        rows.append({"s": system, "c": code, "n": str(props.get(name_field) or code), "g": g.wkb,
                     "a": json.dumps({k: v for k, v in props.items() if k not in (code_field, name_field)},
                                     ensure_ascii=False, default=str)})
    if problems:
        raise CitygridError(problems[:200], "unprocessable")
    if not rows:
        raise CitygridError.one("geojson_empty", "文件中没有网格", "no grid cells in the file", "file")
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
    return {"system": system, "cells": len(rows), "base": base} | {"report": report(conn, system)}


def report(conn: Connection, system: str) -> dict[str, Any]:
    """Where the system disagrees with the base: cells crossing communities, overlaps, gaps."""
    n = conn.execute(text("SELECT count(*) FROM grid WHERE system=:s"), {"s": system}).scalar_one()
    if not n:
        raise CitygridError.one("system_not_found", f"网格体系 {system} 不存在", f"grid system {system} not found",
                                "system", kind="not_found")
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
