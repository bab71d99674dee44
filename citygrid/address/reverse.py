"""Reverse geocoding: a point → the nearest door plate, the building it stands in, the nearest road, and its
county, township and village.

Unlike forward geocoding (citygrid/address/resolve.py, an in-memory index) this asks PostGIS directly: the
spatial indexes on `addr_node.point`, `city_object.geom` and `division.geom` answer nearest-neighbour and
point-in-polygon questions faster than anything kept in memory, and the answer follows every write at once.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid import crs as crsmod
from citygrid.errors import E


def reverse(c: Connection, x: float, y: float, crs: str | None = None, radius: float = 100) -> dict[str, Any]:
    """What lies at (x, y) in `crs` (default CGCS2000 lon/lat; GCJ-02 and BD-09 too, see `citygrid.crs`): door plate
    and road within `radius` metres, the building containing the point, its divisions; `reason` says why the door
    (or everything) is missing. `point` is the query point in CGCS2000 (what was searched), the door's `point` is
    in `crs`. A GCJ-02/BD-09 point outside China is a coded 400, never a search at a wrong place."""
    cr = crsmod.lookup(crs, "crs", any_epsg=True)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise E.point_out_of_range("x")
    lon_a, lat_a = cr.into_storage(x, y, "x")
    lon, lat = float(lon_a), float(lat_a)
    if not (73 <= lon <= 136 and 3 <= lat <= 54):
        raise E.point_out_of_range("x")
    p = "ST_SetSRID(ST_Point(:lon, :lat), 4490)"
    near = c.execute(text(
        f"SELECT code, full_name, level, object_code, ST_X(point) AS px, ST_Y(point) AS py, ST_Distance(point::geography, {p}::geography) AS d FROM addr_node "
        f"WHERE level='door' AND ST_DWithin(point::geography, {p}::geography, :r) ORDER BY point <-> {p} LIMIT 1"),
        {"lon": lon, "lat": lat, "r": radius}).first()
    road = c.execute(text(
        f"SELECT o.code, o.name, ST_Distance(o.geom::geography, {p}::geography) AS d FROM city_object o "
        f"JOIN object_class k ON k.code=o.class_code WHERE k.name='道路' AND o.status='active' "
        f"AND ST_DWithin(o.geom::geography, {p}::geography, :r) ORDER BY o.geom <-> {p} LIMIT 1"),
        {"lon": lon, "lat": lat, "r": radius}).first()
    bld = c.execute(text(
        f"SELECT o.code, o.name FROM city_object o JOIN object_class k ON k.code=o.class_code WHERE k.name='建筑物' "
        f"AND o.status='active' AND ST_Intersects(o.geom, {p}) LIMIT 1"), {"lon": lon, "lat": lat}).first()
    divs = c.execute(text(f"SELECT code, name, level FROM division WHERE level IN (3, 4, 5) AND geom IS NOT NULL "
                          f"AND ST_Intersects(geom, {p}) ORDER BY level"), {"lon": lon, "lat": lat}).all()
    by = {r.level: {"code": r.code, "name": r.name} for r in divs}
    out = {"point": {"lon": lon, "lat": lat, "crs": "EPSG:4490"},
           "door": {"address_code": near.code, "address": near.full_name, "object_code": near.object_code,
                    "distance_m": round(near.d, 1), "point": cr.point(near.px, near.py)} if near else None,
           "building": {"code": bld.code, "name": bld.name} if bld else None,
           "road": {"code": road.code, "name": road.name, "distance_m": round(road.d, 1)} if road else None,
           "county": by.get(3), "township": by.get(4), "village": by.get(5), "grid": None}
    if not any(out[k] for k in ("door", "building", "road", "county")):
        out["reason"] = {"zh": f"{radius:g} 米内没有门牌、建筑或道路，且不在已知行政区内",
                         "en": f"nothing within {radius:g} m and outside known divisions"}
    elif not near:
        out["reason"] = {"zh": f"{radius:g} 米内没有门牌", "en": f"no door plate within {radius:g} m"}
    return out
