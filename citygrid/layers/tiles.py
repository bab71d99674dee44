"""Mapbox vector tiles from PostGIS (`ST_AsMVT`), WebMercator tiles over SRID 4490 data; TileJSON and styles.

Each layer's tile SQL is its own (`citygrid.layers.sources`): at most `cap` features per tile, thinned below
zoom `sources.THIN_BELOW` to one per few pixels so a county at z10 stays light. This module owns what is the
same for every layer: the tile matrix check, the cache, TileJSON and the MapLibre style, and a tile's statements,
written once as steps (`citygrid.db.aio`): run on a connection, or by the server on the async read path, where an
uncached tile is one round trip.
Tiles are cached in process (`citygrid.db.versions`) with the layer's data version; a write to the layer
bumps `layer_version` (statement triggers) and the next request misses the cache and gets a new strong ETag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from citygrid.db import aio
from citygrid.db.versions import VERSION_SQL, VersionedCache
from citygrid.errors import E
from citygrid.layers import sources
from citygrid.layers.sources import TILE_BUFFER, TILE_EXTENT, Layer, View
from citygrid.security.principal import Principal

DEFAULT_CAP = 20_000
MAX_ZOOM = 22


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str
    version: int


CACHE: VersionedCache[Tile] = VersionedCache(max_items=20_000, max_bytes=256 << 20)


def check_tile(z: int, x: int, y: int) -> None:
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise E.tile_out_of_range("z", z=z, x=x, y=y)


def _visible(p: Principal, layer_id: str) -> tuple[Layer, View]:
    """The layer and what `p` sees of it, or the same coded 404 for a layer that does not exist and one the
    caller may not see (no database access)."""
    layer = sources.find(layer_id)
    view = layer.view(p) if layer is not None else None
    if layer is None or view is None:
        raise E.layer_not_found("layer", layer=layer_id)
    return layer, view


def find_layer(conn: Connection, p: Principal, layer_id: str) -> Layer:
    """The layer a tile, TileJSON or style request names, or a coded 404."""
    layer, _ = _visible(p, layer_id)
    if not layer.exists(conn):
        raise E.layer_not_found("layer", layer=layer_id)
    return layer


def tile(conn: Connection, p: Principal, layer: str, z: int, x: int, y: int, cap: int = DEFAULT_CAP,
         cache: VersionedCache[Tile] | None = CACHE) -> Tile:
    """One tile of what `p` may see: L1 properties only, so callers who see the same rows share it."""
    return aio.run(conn, tile_steps(p, layer, z, x, y, cap, cache))


async def tile_async(engine: Engine, p: Principal, layer: str, z: int, x: int, y: int, cap: int = DEFAULT_CAP,
                     cache: VersionedCache[Tile] | None = CACHE) -> Tile:
    """`tile` on the async read path (`citygrid.db.aio`): an uncached tile is one round trip."""
    return await aio.run_async(engine, p, tile_steps(p, layer, z, x, y, cap, cache))


def tile_steps(p: Principal, layer: str, z: int, x: int, y: int, cap: int = DEFAULT_CAP,
               cache: VersionedCache[Tile] | None = CACHE) -> aio.Steps[Tile]:
    """The statements of a tile (`citygrid.db.aio`). The version is read before the data (`citygrid.db.versions`);
    when the cache keeps a tile for the key, that alone is read first and the tile built only when stale, else
    version, existence and tile go in one batch (an absent layer's tile is empty and thrown away)."""
    check_tile(z, x, y)
    found, view = _visible(p, layer)
    key = (layer, z, x, y, view.scope_key)
    cond, cparams = found.exists_sql()
    meta: aio.Stmt = (f"SELECT {VERSION_SQL}, {cond}", {"version_of": layer} | cparams)
    sql, extra = found.tile_sql(z, view)
    render: aio.Stmt = (sql, {"z": z, "x": x, "y": y, "ext": TILE_EXTENT, "buf": TILE_BUFFER, "cap": cap,
                              "layer": layer} | extra)
    if cache is not None and cache.holds(key):
        ((version, exists),), = yield [meta]
        hit = cache.get(key, version)
        if hit is not None:
            return hit
        rows = [] if not exists else (yield [render])[0]
    else:
        ((version, exists),), rows = yield [meta, render]
    if not exists:
        raise E.layer_not_found("layer", layer=layer)
    data = rows[0][0] if rows else None
    scope = "-s" + hashlib.blake2b(repr(view.scope_key).encode(), digest_size=4).hexdigest() if view.scope_key else ""
    t = Tile(bytes(data or b""), f'"{layer}-v{version}{scope}-{z}-{x}-{y}"', int(version))
    if cache is not None:  # only tiles of existing layers are ever cached, and a write bumps the version
        cache.put(key, t.version, t, len(t.data) + 200)
    return t


def tilejson(layer: Layer, tiles_url: str) -> dict[str, Any]:
    """TileJSON 3.0 of a layer."""
    return {"tilejson": "3.0.0", "name": layer.short_name(), "tiles": [tiles_url], "minzoom": 0, "maxzoom": 16,
            "bounds": [73.0, 3.0, 136.0, 54.0], "vector_layers": [{"id": layer.id, "fields": layer.tile_fields}]}


def style(layer_: Layer, tiles_url: str) -> dict[str, Any]:
    """A MapLibre style for one layer, drawn by geometry type in the layer's colour (classes: by 大类)."""
    layer, gtype, color, name = layer_.id, layer_.geometry_type, layer_.color, layer_.short_name()
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


def layer_list(conn: Connection, p: Principal, root: str) -> list[dict[str, Any]]:
    """Every layer with data the caller may see, as the web map lists it (`GET /layers`): the map keeps no rules
    of its own about layer ids."""
    out = []
    for layer, n in sources.listing(conn, p):
        g = layer.map_group
        out.append({
            "id": layer.id, "kind": layer.kind, "title": layer.title(conn), "description": layer.description(conn),
            "geometry_type": layer.geometry_type, "class_code": layer.class_code, "count": n,
            "group": {"key": g.key, "name": g.name, "name_en": g.name_en} if g else None,
            "opens_object": layer.opens_object,
            "tiles": f"{root}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.mvt", "tilejson": f"{root}/tiles/{layer.id}.json",
            "style": f"{root}/styles/{layer.id}.json",
        })
    return out
