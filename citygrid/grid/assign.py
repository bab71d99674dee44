"""Which grids an object or door plate is in: set at write time from its representative point."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def assign_objects(conn: Connection, codes: list[str] | None = None, county: str | None = None) -> int:
    """Set unit_grid/gov_grid of the given objects (or all of a county) in one pass: one new row version each."""
    where, params = ("o.code = ANY(:codes)", {"codes": codes}) if codes is not None else (
        "o.division_code = :c", {"c": county})
    conn.execute(text("SET LOCAL jit = off"))  # many short index probes: compiling costs more than it saves
    sub = ("(SELECT g.code FROM grid g WHERE g.system = '{s}' AND ST_Intersects(g.geom, p.pt) ORDER BY g.code "
           "LIMIT 1)")
    res = conn.execute(text(
        f"UPDATE city_object o SET unit_grid = {sub.format(s='unit')}, gov_grid = {sub.format(s='governance')} "
        f"FROM (SELECT uid, ST_PointOnSurface(geom) AS pt FROM city_object o WHERE {where}) p WHERE o.uid = p.uid"),
        params)
    return res.rowcount


def assign_addresses(conn: Connection, county: str) -> int:
    n = 0
    for system, col in (("unit", "unit_grid"), ("governance", "gov_grid")):
        res = conn.execute(text(
            f"UPDATE addr_node a SET {col} = g.code FROM grid g WHERE a.division_code = :c AND g.system = :s "
            "AND a.point IS NOT NULL AND a.level IN ('door', 'village_group', 'compound', 'building') "
            "AND ST_Intersects(g.geom, a.point)"), {"c": county, "s": system})
        n = max(n, res.rowcount)
    for level in ("unit", "floor", "room"):  # each inherits from its parent: building → unit → floor → room
        conn.execute(text("UPDATE addr_node a SET unit_grid = b.unit_grid, gov_grid = b.gov_grid FROM addr_node b "
                          "WHERE a.division_code = :c AND a.level = :l AND b.id = a.parent_id"), {"c": county, "l": level})
    return n
