"""Which grids an object or door plate is in: set at write time from its representative point."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def assign_objects(conn: Connection, codes: list[str] | None = None, county: str | None = None) -> int:
    """Set unit_grid/gov_grid of the given objects (or all of a county) in one pass: one new row version each.

    Objects registered at county level (bulk imports, files without a village column) also get the township
    and village whose outline holds them, when outlines exist, so counts by township and village see them.
    A township or village the submitter gave is kept.
    """
    where, params = ("o.code = ANY(:codes)", {"codes": codes}) if codes is not None else (
        "o.division_code = :c", {"c": county})
    conn.execute(text("SET LOCAL jit = off"))  # many short index probes: compiling costs more than it saves
    sub = ("(SELECT g.code FROM grid g WHERE g.system = '{s}' AND ST_Intersects(g.geom, p.pt) ORDER BY g.code "
           "LIMIT 1)")
    div = ("(SELECT d.code FROM division d WHERE d.level = {lvl} AND d.geom IS NOT NULL AND d.code LIKE {prefix} || '%' "
           "AND ST_Intersects(d.geom, p.pt) ORDER BY d.code LIMIT 1)")
    township = f"coalesce(o.township_code, {div.format(lvl=4, prefix='o.division_code')})"
    village = f"coalesce(o.village_code, {div.format(lvl=5, prefix='coalesce(o.township_code, o.division_code)')})"
    res = conn.execute(text(
        f"UPDATE city_object o SET unit_grid = {sub.format(s='unit')}, gov_grid = {sub.format(s='governance')}, "
        f"township_code = {township}, village_code = {village} "
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
