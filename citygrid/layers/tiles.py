"""Mapbox vector tiles from PostGIS (`ST_AsMVT`), WebMercator tiles over SRID 4490 data; TileJSON and styles.

Each layer's tile SQL is its own (`citygrid.layers.sources`), thinned below zoom `sources.THIN_BELOW` to one
feature per few pixels so a county at z10 stays light. This module owns what is the same for every layer: the
tile matrix check, the cache, the per-tile feature cap, TileJSON and the MapLibre style, and a tile's statements,
written once as steps (`citygrid.db.aio`): run on a connection, or by the server on the async read path, where an
uncached tile is one round trip.

A tile never loses features silently. At most `CITYGRID_TILE_FEATURE_CAP` features go into one tile; a tile
with more keeps that many, chosen by a hash of their code (an even sample, the same on every render), and
says so: `X-Citygrid-Tile-Features: kept/total` on every tile, and on a thinned one
`X-Citygrid-Tile-Complete-Zoom: z`, the zoom from which no tile under it holds more than the cap (counted on
the features' centres; the pixel thinning below `THIN_BELOW` only lowers counts, so that zoom is a safe
upper bound). TileJSON states the cap and the headers. The check costs one more row in the normal render;
only a tile over the cap is rendered again and its sub-tiles counted (one more round trip).
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
from citygrid.layers import extent, sources
from citygrid.layers.sources import TILE_BUFFER, TILE_EXTENT, Layer, View
from citygrid.security.principal import Principal
from citygrid.settings import get_settings

MAX_ZOOM = 22
FEATURES_HEADER = "X-Citygrid-Tile-Features"
COMPLETE_HEADER = "X-Citygrid-Tile-Complete-Zoom"


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str
    version: int
    kept: int = 0  # features in the tile
    total: int = 0  # features the tile would hold without the cap
    complete_zoom: int | None = None  # when kept < total: from this zoom on, no tile is over the cap

    def headers(self) -> dict[str, str]:
        """What the answer tells the client about the tile's completeness (see the module's doc)."""
        out = {FEATURES_HEADER: f"{self.kept}/{self.total}"}
        if self.complete_zoom is not None:
            out[COMPLETE_HEADER] = str(self.complete_zoom)
        return out


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


def _existing(conn: Connection, p: Principal, layer_id: str) -> tuple[Layer, View]:
    layer, view = _visible(p, layer_id)
    if not layer.exists(conn):
        raise E.layer_not_found("layer", layer=layer_id)
    return layer, view


def find_layer(conn: Connection, p: Principal, layer_id: str) -> Layer:
    """The layer a tile, TileJSON or style request names, or a coded 404."""
    return _existing(conn, p, layer_id)[0]


def tile(conn: Connection, p: Principal, layer: str, z: int, x: int, y: int, cap: int | None = None,
         cache: VersionedCache[Tile] | None = CACHE) -> Tile:
    """One tile of what `p` may see: L1 properties only, so callers who see the same rows share it; at most
    `cap` features (default `CITYGRID_TILE_FEATURE_CAP`), thinned as the module's doc says when there are more."""
    return aio.run(conn, tile_steps(p, layer, z, x, y, cap, cache))


async def tile_async(engine: Engine, p: Principal, layer: str, z: int, x: int, y: int, cap: int | None = None,
                     cache: VersionedCache[Tile] | None = CACHE) -> Tile:
    """`tile` on the async read path (`citygrid.db.aio`): an uncached tile is one round trip."""
    return await aio.run_async(engine, p, tile_steps(p, layer, z, x, y, cap, cache))


def tile_steps(p: Principal, layer: str, z: int, x: int, y: int, cap: int | None = None,
               cache: VersionedCache[Tile] | None = CACHE) -> aio.Steps[Tile]:
    """The statements of a tile (`citygrid.db.aio`). The version is read before the data (`citygrid.db.versions`);
    when the cache keeps a tile for the key, that alone is read first and the tile built only when stale, else
    version, existence and tile go in one batch (an absent layer's tile is empty and thrown away). A tile over
    the cap costs one more batch: its even sample and the zoom where it is complete."""
    check_tile(z, x, y)
    cap = cap or get_settings().tile_feature_cap
    found, view = _visible(p, layer)
    key = (layer, z, x, y, view.scope_key, cap)
    cond, cparams = found.exists_sql()
    meta: aio.Stmt = (f"SELECT {VERSION_SQL}, {cond}", {"version_of": layer} | cparams)
    params = {"z": z, "x": x, "y": y, "ext": TILE_EXTENT, "buf": TILE_BUFFER, "layer": layer}
    sql, extra = found.tile_sql(z, view)
    render: aio.Stmt = (sql, params | extra | {"cap": cap + 1})
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
    data, n = rows[0] if rows else (None, 0)
    complete = None
    if n > cap:  # too full: keep an even sample of `cap`, count them all, find where they fit
        sql, extra = found.tile_sql(z, view, capped=True)
        sample, zoom = yield [(sql, params | extra | {"cap": cap}), _complete_zoom_sql(found, view, z, x, y, cap)]
        data, total = sample[0]
        dz = zoom[0][0]
        kept, complete = min(cap, int(total)), MAX_ZOOM if dz is None else z + int(dz)
    else:
        kept = total = int(n)
    scope = "-s" + hashlib.blake2b(repr(view.scope_key).encode(), digest_size=4).hexdigest() if view.scope_key else ""
    t = Tile(bytes(data or b""), f'"{layer}-v{version}{scope}-{z}-{x}-{y}-c{cap}"', int(version), kept, int(total),
             complete)
    if cache is not None:  # only tiles of existing layers are ever cached, and a write bumps the version
        cache.put(key, t.version, t, len(t.data) + 200)
    return t


def _complete_zoom_sql(layer: Layer, view: View, z: int, x: int, y: int, cap: int) -> aio.Stmt:
    """How many zooms below z no sub-tile of tile z/x/y holds more than `cap` of its features, counted by their
    centres in WebMercator (NULL when even MAX_ZOOM is too full)."""
    cond, params = layer.rows_where(view)
    sql = ("WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
           "p AS MATERIALIZED (SELECT (ST_X(c) - ST_XMin(b.e)) / (ST_XMax(b.e) - ST_XMin(b.e)) AS u, "
           "(ST_YMax(b.e) - ST_Y(c)) / (ST_YMax(b.e) - ST_YMin(b.e)) AS v FROM b, LATERAL (SELECT "
           f"ST_Transform(ST_Centroid({layer.geom}), 3857) AS c FROM {layer.table} WHERE {cond} "
           f"AND {layer.geom} && ST_Transform(b.e, 4490)) q) "
           "SELECT min(dz) FROM generate_series(1, :span) dz WHERE (SELECT max(n) FROM (SELECT count(*) AS n FROM p "
           "GROUP BY floor(p.u * 2 ^ dz), floor(p.v * 2 ^ dz)) s) <= :cap")
    return sql, params | {"z": z, "x": x, "y": y, "span": MAX_ZOOM - z, "cap": cap}


def tilejson(conn: Connection, p: Principal, layer_id: str, tiles_url: str) -> dict[str, Any]:
    """TileJSON 3.0 of a layer, bounded by the extent of what `p` sees of it (`citygrid.layers.extent`), with the
    feature cap and how a tile says it was thinned."""
    layer, view = _existing(conn, p, layer_id)
    cap = get_settings().tile_feature_cap
    return {"tilejson": "3.0.0", "name": layer.short_name(), "tiles": [tiles_url], "minzoom": 0, "maxzoom": 16,
            "bounds": list(extent.of(conn, layer, view).bbox),
            "description": (f"At most {cap} features per tile: a fuller tile keeps an even sample of {cap} (by a hash "
                            f"of the code) and answers {FEATURES_HEADER}: kept/total and {COMPLETE_HEADER}: the zoom "
                            f"from which tiles hold all their features. Below zoom {sources.THIN_BELOW}, one feature "
                            "per few pixels."),
            "x-citygrid-feature-cap": cap,
            "vector_layers": [{"id": layer.id, "fields": layer.tile_fields}]}


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
