"""The extent of a layer as one caller sees it: the box OGC collection documents and TileJSON `bounds` report,
which QGIS and MapLibre zoom to (it used to be all of China for every collection).

One aggregate per layer and scope (`Layer.extent_sql`: ST_Extent and the earliest `valid_from` over the rows the
caller's view sees, so a restricted class never shows where objects out of the caller's scope lie), kept in a
`VersionedCache` under the layer's version: the collections list pays for a layer's extent once after each
write to that layer, and a write that moves the extent is seen by the next request. bench/extent.py on the demo
county (69k objects; load average 8–9 on 2 CPUs, so noisy): cold, 8–200 ms per layer (the largest class, 16,616
buildings, the most), about 350–900 ms for all 28 layers after a restart; warm, the collections list costs what it
did without extents (43 vs 46 ms), the layers' versions being read in one statement (`many`). A layer without features the caller sees gets the outline of the county the deployment serves (the
counties whose township outlines are loaded), and without those all of China.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.crs import CRS84_URI
from citygrid.db.versions import VersionedCache, layer_version, layer_versions
from citygrid.layers.sources import Layer, View

CHINA = (73.0, 3.0, 136.0, 54.0)  # the last resort: no data and no county outline
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
_HOME_SQL = ("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(c.geom) AS e FROM "
             "division c WHERE c.geom IS NOT NULL AND c.level = 3 AND c.code IN (SELECT t.parent_code FROM division t "
             "WHERE t.level = 4 AND t.geom IS NOT NULL)) x")


@dataclass(frozen=True)
class Extent:
    bbox: tuple[float, float, float, float]  # CRS84 (EPSG:4490 longitude/latitude numbers)
    start: dt.datetime | None  # earliest valid_from of the features (layers with valid time)
    fallback: bool  # no features: the county outline (or China)

    def ogc(self) -> dict[str, Any]:
        """The `extent` member of an OGC API – Features collection (Part 1 §7.14): open-ended in time, as the
        features are valid until they change."""
        out: dict[str, Any] = {"spatial": {"bbox": [list(self.bbox)], "crs": CRS84_URI}}
        if self.start is not None:
            out["temporal"] = {"interval": [[self.start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"), None]],
                               "trs": GREGORIAN}
        return out


CACHE: VersionedCache[Extent] = VersionedCache(max_items=4_000, max_bytes=4 << 20)


def _box(row: Any) -> tuple[float, float, float, float] | None:
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def home(conn: Connection) -> tuple[float, float, float, float]:
    """The box of the county (counties) this deployment serves, else China; cached while divisions stand."""
    version = layer_version(conn, "divisions")
    hit = CACHE.get(("home",), version)
    if hit is None:
        box = _box(conn.execute(text(_HOME_SQL)).first())
        hit = Extent(box or CHINA, None, True)
        CACHE.put(("home",), version, hit, 200)
    return hit.bbox


def of(conn: Connection, layer: Layer, view: View) -> Extent:
    """The extent of what `view` sees of `layer` (see the module's doc)."""
    return many(conn, [(layer, view)])[0]


def many(conn: Connection, layers: list[tuple[Layer, View]]) -> list[Extent]:
    """The extents of several layers, their versions read in one statement (the collections list: one round trip
    when every extent is cached, instead of one per layer)."""
    versions = layer_versions(conn, [layer.id for layer, _ in layers])
    out = []
    for layer, view in layers:
        version = versions[layer.id]
        key = (layer.id, view.scope_key)
        hit = CACHE.get(key, version)
        if hit is None:
            sql, params = layer.extent_sql(view)
            row = conn.execute(text(sql), params).first()
            box = _box(row)
            start = row[4] if row is not None and box is not None else None
            hit = Extent(box, start, False) if box is not None else Extent(home(conn), None, True)
            CACHE.put(key, version, hit, 200)
        out.append(hit)
    return out
