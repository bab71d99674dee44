"""Read grid cells for the API: listing by system, community or box; one cell with its base-grid mapping.

The cells themselves are written by `citygrid/grid/generate.py` (unit and governance grids) and
`citygrid/grid/multi.py` (imported department systems); `api/routers/grids.py` only shapes these answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.crs import Crs
from citygrid.geo import bbox_condition, geojson_many_in
from citygrid.security import classification, rules
from citygrid.security.principal import Principal


@dataclass
class Cell:
    """One grid cell: its columns, outline, the base cells it maps onto (多网合一) and its active objects."""

    properties: dict[str, Any]
    geometry: dict[str, Any]
    base: list[dict[str, Any]]
    objects: int


def features(conn: Connection, p: Principal, system: str, division: str | None = None,
             box: tuple[float, float, float, float] | None = None, limit: int = 1000, crs: Crs | None = None
             ) -> list[dict[str, Any]]:
    """GeoJSON features of one system's cells, by code; `division` matches the community or the code prefix.
    Household counts below k are hidden from callers not cleared for them."""
    cleared = rules.may_see_small_counts(p)
    where, params = ["system = :s"], {"s": system, "l": limit}
    if division:
        where.append("(division_code LIKE :d OR code LIKE :d)")
        params["d"] = division + "%"
    if box:
        where.append(bbox_condition("geom", box, params))
    rows = conn.execute(text(f"SELECT code, system, kind, name, division_code, households, attrs, "
                             f"ST_AsGeoJSON(geom, 7, 0) g FROM grid WHERE {' AND '.join(where)} ORDER BY code LIMIT :l"),
                        params).all()
    geoms: list[dict[str, Any] | None] = [json.loads(r.g) for r in rows]
    if crs is not None:
        geoms = geojson_many_in(geoms, crs)
    return [{"type": "Feature", "id": r.code, "geometry": g,
             "properties": {"code": r.code, "system": r.system, "kind": r.kind, "name": r.name,
                            "division_code": r.division_code,
                            "households": classification.small_count(r.households, cleared)}
                            | classification.free_attrs_at(p, r.division_code).apply(r.attrs)}
            for r, g in zip(rows, geoms, strict=True)]


def systems(conn: Connection) -> list[dict[str, Any]]:
    """Every grid system with its kind and cell count, side by side."""
    rows = conn.execute(text("SELECT system, kind, count(*) n FROM grid GROUP BY system, kind ORDER BY system")).all()
    return [dict(r._mapping) for r in rows]


def cell(conn: Connection, p: Principal, system: str, code: str) -> Cell | None:
    """One cell, or None when the system has no such code."""
    r = conn.execute(text("SELECT code, system, kind, name, division_code, township_code, households, attrs, "
                          "ST_AsGeoJSON(geom, 7, 0) g FROM grid WHERE system=:s AND code=:c"),
                     {"s": system, "c": code}).first()
    if r is None:
        return None
    members = conn.execute(text("SELECT base_system, base_code, overlap_ratio FROM grid_membership WHERE system=:s "
                                "AND grid_code=:c ORDER BY overlap_ratio DESC"), {"s": system, "c": code}).all()
    # objects carry the codes of their unit and governance cells (citygrid/grid/assign.py), not the system
    objects = conn.execute(text("SELECT count(*) FROM city_object WHERE (unit_grid=:c OR gov_grid=:c) "
                                "AND status='active'"), {"c": code}).scalar_one()
    props = {k: v for k, v in r._mapping.items() if k != "g"}
    props["households"] = classification.small_count(r.households, rules.may_see_small_counts(p))
    props["attrs"] = classification.free_attrs_at(p, r.division_code).apply(r.attrs)
    return Cell(properties=props, geometry=json.loads(r.g),
                base=[{"system": m.base_system, "code": m.base_code, "overlap_ratio": round(m.overlap_ratio, 4)}
                      for m in members],
                objects=objects)
