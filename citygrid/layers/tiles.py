"""Mapbox vector tiles from PostGIS (`ST_AsMVT`), WebMercator tiles over SRID 4490 data.

Each tile carries at most `cap` features; below zoom `THIN_BELOW`, features are thinned to one per H3 cell
of about 4 pixels (the object's stored cell, DISTINCT ON its parent) so a county at z10 stays light. Tiles
are cached in process (`citygrid.layers.cache`) with the layer's data version; a write to the layer bumps
`layer_version` (statement triggers) and the next request misses the cache and gets a new strong ETag.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import get_catalog
from citygrid.errors import CitygridError
from citygrid.grid.h3cells import STORED_RES, parent_sql
from citygrid.layers.cache import VersionedCache, layer_version
from citygrid.settings import get_settings

EXTENT, BUFFER = 4096, 64
DEFAULT_CAP = 20_000
THIN_BELOW = 15
MAX_ZOOM = 22
WORLD = 40075016.68557849  # WebMercator extent, m


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str
    version: int


CACHE: VersionedCache[Tile] = VersionedCache(max_items=20_000, max_bytes=256 << 20)
# Building a tile is CPU work in PostgreSQL; sixteen at once on two cores made each slower and the tail long.
# A request for a tile being built by another waits for it and takes it from the cache.
RENDERS = threading.BoundedSemaphore(get_settings().tile_renders)


def check_tile(z: int, x: int, y: int) -> None:
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise CitygridError.one("tile_out_of_range", f"瓦片坐标超出范围：{z}/{x}/{y}",
                                f"tile {z}/{x}/{y} is outside the tile matrix", "z")


def layer_exists(conn: Connection, layer: str) -> bool:
    """Object classes of the catalog, divisions, door plates, and each grid system present in the database."""
    if layer in ("divisions", "doorplates"):
        return True
    if layer.startswith("grids-"):
        return conn.execute(text("SELECT EXISTS (SELECT 1 FROM grid WHERE system = :s)"), {"s": layer[6:]}).scalar_one()
    return layer.startswith("class-") and get_catalog().get(layer[6:]) is not None


def thin_res(z: int) -> int:
    """H3 resolution whose cells are about 4 pixels wide at zoom z (edge ×2.65 per resolution, ×2 per zoom):
    res 8 (edge ≈ 530 m) at z10, res 11 (≈ 29 m) at z14."""
    return max(0, min(STORED_RES, round(8 + (z - 10) * 0.71)))


def _sql(layer: str, z: int) -> tuple[str, dict]:
    thin = z < THIN_BELOW
    if layer == "divisions":
        level = 3 if z < 9 else 4 if z < 11 else 5
        return (
            "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
            "f AS (SELECT ST_AsMVTGeom(ST_Transform(d.geom, 3857), b.e, :ext, :buf, true) AS geom, d.code, d.name, "
            "d.level FROM division d, b WHERE d.level = :lvl AND d.geom IS NOT NULL "
            "AND d.geom && ST_Transform(b.e, 4490) LIMIT :cap) "
            "SELECT ST_AsMVT(f.*, :layer, :ext, 'geom') FROM f WHERE geom IS NOT NULL",
            {"lvl": level},
        )
    if layer.startswith("grids-"):
        return (
            "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
            "f AS (SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), b.e, :ext, :buf, true) AS geom, g.code, g.name, "
            "g.kind, g.households FROM grid g, b WHERE g.system = :sys AND g.geom && ST_Transform(b.e, 4490) "
            "LIMIT :cap) SELECT ST_AsMVT(f.*, :layer, :ext, 'geom') FROM f WHERE geom IS NOT NULL",
            {"sys": layer[6:]},
        )
    if layer == "doorplates":  # points only: thinning on a pixel grid in WebMercator is cheap enough
        snap = "ST_SnapToGrid(ST_Transform(a.point, 3857), :cell)"
        inner = (f"SELECT DISTINCT ON ({snap}) a.point, a.code, a.name, a.full_name FROM addr_node a, b "
                 "WHERE a.level = 'door' AND a.status = 'active' AND a.point && ST_Transform(b.e, 4490) "
                 f"ORDER BY {snap}, a.code" if thin else
                 "SELECT a.point, a.code, a.name, a.full_name FROM addr_node a, b WHERE a.level = 'door' "
                 "AND a.status = 'active' AND a.point && ST_Transform(b.e, 4490)")
        return (
            f"WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), src AS ({inner} LIMIT :cap), "
            "f AS (SELECT ST_AsMVTGeom(ST_Transform(src.point, 3857), b.e, :ext, :buf, true) AS geom, src.code, "
            "src.name, src.full_name FROM src, b) SELECT ST_AsMVT(f.*, :layer, :ext, 'geom') FROM f "
            "WHERE geom IS NOT NULL",
            {"cell": WORLD / 2**z / 256 * 4},  # about 4 screen pixels
        )
    props = "o.code, o.name, o.attrs->>'state' AS state, o.township_code, o.village_code"
    if thin:
        # one object per H3 cell of a few pixels, from the cell stored at write time: a bit operation per row
        # instead of a point-on-surface and a transform (z10 over the demo town: 61 → 27 ms)
        cell = f"coalesce({parent_sql('o.h3', thin_res(z))}, hashtextextended(o.code, 0))"
        inner = (f"SELECT DISTINCT ON ({cell}) o.geom, {props} FROM city_object o, b WHERE o.class_code=:cls "
                 f"AND o.status='active' AND o.geom && ST_Transform(b.e, 4490) ORDER BY {cell}, o.code")
    else:
        inner = (f"SELECT o.geom, {props} FROM city_object o, b WHERE o.class_code=:cls AND o.status='active' "
                 "AND o.geom && ST_Transform(b.e, 4490)")
    return (
        "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
        f"src AS ({inner} LIMIT :cap), "
        "f AS (SELECT ST_AsMVTGeom(ST_Transform(src.geom, 3857), b.e, :ext, :buf, true) AS geom, src.code, src.name, "
        "src.state, src.township_code, src.village_code FROM src, b) "
        "SELECT ST_AsMVT(f.*, :layer, :ext, 'geom') FROM f WHERE geom IS NOT NULL",
        {"cls": layer[6:]},
    )


def tile(conn: Connection, layer: str, z: int, x: int, y: int, cap: int = DEFAULT_CAP,
         cache: VersionedCache[Tile] | None = CACHE) -> Tile:
    check_tile(z, x, y)
    version = layer_version(conn, layer)
    key = (layer, z, x, y)
    if cache is not None:  # only tiles of existing layers are ever cached, and a write bumps the version
        hit = cache.get(key, version)
        if hit is not None:
            return hit
    if not layer_exists(conn, layer):
        raise CitygridError.one("layer_not_found", f"图层 {layer} 不存在", f"layer {layer} not found", "layer",
                                kind="not_found")
    sql, extra = _sql(layer, z)
    with RENDERS:
        if cache is not None:
            hit = cache.get(key, version)
            if hit is not None:
                return hit
        data = conn.execute(text(sql), {"z": z, "x": x, "y": y, "ext": EXTENT, "buf": BUFFER, "cap": cap,
                                        "layer": layer} | extra).scalar()
    t = Tile(bytes(data or b""), f'"{layer}-v{version}-{z}-{x}-{y}"', version)
    if cache is not None:
        cache.put(key, version, t, len(t.data) + 200)
    return t


_COLORS = {"01": "#1f77b4", "02": "#ff7f0e", "03": "#2ca02c", "04": "#17becf", "05": "#9467bd", "06": "#1e90ff",
           "07": "#d62728", "08": "#8c564b", "99": "#7f7f7f"}


def style(layer: str, tiles_url: str) -> dict:
    """A MapLibre style for one layer, drawn by geometry type and coloured by 大类."""
    if layer == "divisions":
        gtype, color, name = "Polygon", "#555555", "行政区划"
    elif layer.startswith("grids-"):
        gtype, color, name = "Polygon", "#e377c2", f"网格 {layer[6:]}"
    elif layer == "doorplates":
        gtype, color, name = "Point", "#bcbd22", "门牌"
    else:
        cls = get_catalog().get(layer[6:])
        if cls is None:
            raise CitygridError.one("layer_not_found", f"图层 {layer} 不存在", f"layer {layer} not found", "layer",
                                    kind="not_found")
        gtype, color, name = cls.geometry, _COLORS.get(cls.major, "#333333"), cls.name
    src = {"type": "vector", "tiles": [tiles_url], "minzoom": 0, "maxzoom": 16}
    if "Point" in gtype:
        layers = [{"id": layer, "type": "circle", "source": layer, "source-layer": layer,
                   "paint": {"circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 1.5, 16, 5],
                             "circle-color": color, "circle-stroke-color": "#ffffff", "circle-stroke-width": 0.5}}]
    elif "Line" in gtype:
        layers = [{"id": layer, "type": "line", "source": layer, "source-layer": layer,
                   "paint": {"line-color": color, "line-width": ["interpolate", ["linear"], ["zoom"], 10, 0.5, 16, 3]}}]
    else:
        layers = [{"id": f"{layer}-fill", "type": "fill", "source": layer, "source-layer": layer,
                   "paint": {"fill-color": color, "fill-opacity": 0.25}},
                  {"id": f"{layer}-line", "type": "line", "source": layer, "source-layer": layer,
                   "paint": {"line-color": color, "line-width": 1}}]
    return {"version": 8, "name": name, "sources": {layer: src}, "layers": layers}
