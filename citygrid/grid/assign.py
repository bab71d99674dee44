"""Which grids an object or door plate is in: set at write time from its representative point."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def placement_sql(pt: str, county: str, township: str, village: str, grids: bool = True) -> dict[str, str]:
    """SQL expressions for the columns an object's place decides — unit_grid, gov_grid, township_code,
    village_code — from its representative point `pt` and the given county/township/village (column
    expressions): one formula for the update of existing objects (`assign_objects`) and the bulk insert
    (`citygrid.registry.bulk`). A township or village already given is kept; without `grids` the grid
    columns are NULL (a county without grids: no index probes)."""
    sub = ("(SELECT g.code FROM grid g WHERE g.system = '{s}' AND ST_Intersects(g.geom, {pt}) ORDER BY g.code "
           "LIMIT 1)")
    div = ("(SELECT d.code FROM division d WHERE d.level = {lvl} AND d.geom IS NOT NULL AND d.code LIKE {prefix} || '%' "
           "AND ST_Intersects(d.geom, {pt}) ORDER BY d.code LIMIT 1)")
    return {
        "unit_grid": sub.format(s="unit", pt=pt) if grids else "NULL",
        "gov_grid": sub.format(s="governance", pt=pt) if grids else "NULL",
        "township_code": f"coalesce({township}, {div.format(lvl=4, prefix=county, pt=pt)})",
        "village_code": f"coalesce({village}, {div.format(lvl=5, prefix=f'coalesce({township}, {county})', pt=pt)})",
    }


def staged_placement_sql(stage: str, grids: bool = True) -> str:
    """The same rule as `placement_sql`, as joins for a staged set of new objects (bulk registration): a SELECT of
    (row, township_code, village_code, unit_grid, gov_grid) for every row of `stage` (a table with row, pt,
    township_code, village_code and a GiST index on pt; the county is the parameter :county).

    Why a second form: `placement_sql`'s per-row subqueries probe the outlines once per object, and PostGIS
    caches a prepared polygon only while the same polygon comes back call after call; here each township or
    village can be the outer side and test the staged points under it, so its prepared form is reused (tens of
    times faster for 50k points). Ties (a point on a shared edge) go to the smallest code in both forms."""
    grid = ("SELECT st.row, min(g.code) AS code FROM {stage} st JOIN grid g ON g.system = '{s}' "
            "AND ST_Intersects(g.geom, st.pt) GROUP BY st.row")
    none = "SELECT NULL::int AS row, NULL::text AS code WHERE false"
    return (
        f"WITH t AS (SELECT st.row, min(d.code) AS code FROM {stage} st JOIN division d ON d.level = 4 "
        "AND d.geom IS NOT NULL AND d.code LIKE CAST(:county AS text) || '%' AND ST_Intersects(d.geom, st.pt) "
        "WHERE st.township_code IS NULL GROUP BY st.row), "
        f"v AS (SELECT st.row, d.code FROM {stage} st JOIN division d ON d.level = 5 AND d.geom IS NOT NULL "
        "AND d.code LIKE CAST(:county AS text) || '%' AND ST_Intersects(d.geom, st.pt) WHERE st.village_code IS NULL), "
        f"u AS ({grid.format(stage=stage, s='unit') if grids else none}), "
        f"g AS ({grid.format(stage=stage, s='governance') if grids else none}) "
        "SELECT st.row, coalesce(st.township_code, t.code) AS township_code, coalesce(st.village_code, min(v.code) "
        "FILTER (WHERE v.code LIKE coalesce(st.township_code, t.code, CAST(:county AS text)) || '%')) AS village_code, "
        f"u.code AS unit_grid, g.code AS gov_grid FROM {stage} st LEFT JOIN t ON t.row = st.row "
        "LEFT JOIN v ON v.row = st.row LEFT JOIN u ON u.row = st.row LEFT JOIN g ON g.row = st.row "
        "GROUP BY st.row, st.township_code, st.village_code, t.code, u.code, g.code")


def assign_objects(conn: Connection, codes: list[str] | None = None, county: str | None = None) -> int:
    """Set unit_grid/gov_grid of the given objects (or all of a county) in one pass: one new row version each.

    Objects registered at county level (bulk imports, files without a village column) also get the township
    and village whose outline holds them, when outlines exist, so counts by township and village see them.
    A township or village the submitter gave is kept.
    """
    where, params = ("o.code = ANY(:codes)", {"codes": codes}) if codes is not None else (
        "o.division_code = :c", {"c": county})
    conn.execute(text("SET LOCAL jit = off"))  # many short index probes: compiling costs more than it saves
    cols = placement_sql("p.pt", "o.division_code", "o.township_code", "o.village_code")
    res = conn.execute(text(
        "UPDATE city_object o SET " + ", ".join(f"{k} = {v}" for k, v in cols.items()) + " "
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
                          "WHERE a.division_code = :c AND a.level = :l AND b.id = a.parent_id "
                          "AND b.division_code = a.division_code"), {"c": county, "l": level})
    return n
