"""Feature collections over PostGIS for OGC API – Features (Part 1 core + Part 2 CRS + Part 3
filtering, whose CQL2 is compiled in `cql2`).

Paging is keyset on the object code (`cursor` for next, `before` for prev), so page 10,000 costs the
same as page 1. Output axis order follows the CRS definition, as Part 2 requires: EPSG:4326 and
EPSG:4490 are latitude-first, CRS84 is longitude-first, the Gauss-Krüger zones are northing-first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid import crs as crsmod
from citygrid.crs import Crs
from citygrid.db import aio
from citygrid.db.versions import VERSION_SQL, VersionedCache
from citygrid.errors import E
from citygrid.geo import geojson_in, geojson_many_in, parse_bbox
from citygrid.layers import cql2, sources
from citygrid.layers import extent as extentmod
from citygrid.layers.sources import Layer, View
from citygrid.security.principal import Principal

CRS84 = crsmod.CRS84_URI
MAX_LIMIT = 10_000


def crs_uri(srid: int | None) -> str:
    return CRS84 if srid is None else f"{crsmod.EPSG_URI}{srid}"


def supported_crs() -> list[str]:
    """Every CRS items can be asked in (`crs`, `bbox-crs`): the registry's URIs, GCJ-02 and BD-09 included."""
    return crsmod.uris()


def parse_crs_uri(value: str | None, field: str) -> Crs:
    """The CRS a `crs`/`bbox-crs` parameter names (default CRS84: lon/lat in EPSG:4490 numbers), from the registry
    (`citygrid.crs`); an unlisted one is a coded 400."""
    return crsmod.lookup(value, field, default=crsmod.CRS84)


@dataclass
class Collection:
    id: str
    title: str
    description: str
    class_code: str | None
    count: int
    geometry_type: str
    extent: dict[str, Any] | None = None  # OGC `extent` of what the caller sees (`citygrid.layers.extent`)


def _describe(conn: Connection, layer: Layer, n: int, view: View | None = None,
              extent: extentmod.Extent | None = None) -> Collection:
    """The collection; with `view`, its extent as that view sees it (documents only: items need none)."""
    if extent is None and view is not None:
        extent = extentmod.of(conn, layer, view)
    return Collection(layer.id, layer.title(conn), layer.description(conn), layer.class_code, n, layer.geometry_type,
                      extent.ogc() if extent is not None else None)


def collections(conn: Connection, p: Principal) -> list[Collection]:
    listed = [(layer, n, view) for layer, n in sources.listing(conn, p) if (view := layer.view(p)) is not None]
    extents = extentmod.many(conn, [(layer, view) for layer, _, view in listed])
    return [_describe(conn, layer, n, extent=e) for (layer, n, _), e in zip(listed, extents, strict=True)]


def collection(conn: Connection, p: Principal, cid: str, count: bool = False) -> Collection:
    """One collection with its extent; cheap (no count over the table) unless `count` is asked for."""
    return _resolve(conn, p, cid, count, extent=True)[1]


def _resolve(conn: Connection, p: Principal, cid: str, count: bool = False, extent: bool = False
             ) -> tuple[Layer, Collection, View]:
    """The layer, its collection and what `p` sees of it. An empty layer is not a collection, except divisions
    (every map's base)."""
    layer, view = _layer_view(p, cid)
    n = layer.count(conn, at_least_one=not count, view=view)
    if n or layer.listed_when_empty:
        return layer, _describe(conn, layer, n, view if extent else None), view
    raise E.collection_not_found("collectionId", collection=cid)


def _layer_view(p: Principal, cid: str) -> tuple[Layer, View]:
    """The layer an id names and what `p` sees of it (no database access): a layer the caller may not see is
    answered like one that does not exist, so its existence does not leak."""
    layer = sources.find(cid)
    view = layer.view(p) if layer is not None else None
    if layer is None or view is None:
        raise E.collection_not_found("collectionId", collection=cid)
    return layer, view


def _bbox(bbox: str | None, c: Crs, params: dict[str, Any]) -> str | None:
    """The bbox as SQL over bound parameters (one statement text per kind of bbox-crs, so it is prepared once).
    EPSG systems are transformed by PostGIS; a published offset (GCJ-02, BD-09) is not known to PostGIS, so its
    box is carried into CGCS2000 here, edges densified, and bound as a polygon."""
    vals = parse_bbox(bbox)
    if vals is None:
        return None
    if c.northing_first:
        vals = (vals[1], vals[0], vals[3], vals[2])
    if c.srid is None and not c.is_storage:
        ring = crsmod.bbox_to_storage(vals, c, field="bbox")
        params["bwkt"] = "POLYGON((" + ",".join(f"{x!r} {y!r}" for x, y in ring) + "))"
        return "ST_GeomFromText(:bwkt, 4490)"
    params |= dict(zip(("bx0", "by0", "bx1", "by1"), vals, strict=True))
    src = 4490 if c.srid is None else c.srid
    env = f"ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, {int(src)})"
    return env if src == 4490 else f"ST_Transform({env}, 4490)"


def _datetime(value: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    if not value:
        return None

    def one(v: str) -> dt.datetime | None:
        if v in ("..", ""):
            return None
        try:
            d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as exc:
            raise E.datetime_invalid("datetime", value=v) from exc
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)

    if "/" in value:
        a, b = value.split("/", 1)
        return one(a), one(b)
    d = one(value)
    return d, d


# Pages as served, by collection and query, valid while the collection's layer version stands (`citygrid.db.versions`).
PAGES: VersionedCache[dict[str, Any]] = VersionedCache(max_items=5_000, max_bytes=128 << 20)


def items(conn: Connection, p: Principal, cid: str, *, limit: int = 100, cursor: str | None = None, before: str | None = None,
          bbox: str | None = None, bbox_crs: str | None = None, crs: str | None = None,
          datetime_: str | None = None, props: dict[str, str] | None = None, filter_: str | None = None,
          filter_lang: str | None = None, filter_crs: str | None = None,
          cache: VersionedCache[dict[str, Any]] | None = PAGES) -> dict[str, Any]:
    """A page of features with numberMatched and next/prev keys, and `etag` (strong, from the layer version).

    Map clients ask for the same pages again and again (each pan of a QGIS canvas); a page is rebuilt only
    after a write to its layer. Pages are kept per what the caller sees of the layer (`View.key`: its scope
    and the attributes its clearance shows), so callers with the same view share them.
    """
    return aio.run(conn, items_steps(p, cid, limit=limit, cursor=cursor, before=before, bbox=bbox, bbox_crs=bbox_crs,
                                     crs=crs, datetime_=datetime_, props=props, filter_=filter_,
                                     filter_lang=filter_lang, filter_crs=filter_crs, cache=cache))


async def items_async(engine: Engine, p: Principal, cid: str, **kw: Any) -> dict[str, Any]:
    """`items` on the async read path (`citygrid.db.aio`): an uncached page is one round trip."""
    return await aio.run_async(engine, p, items_steps(p, cid, **kw))


def items_steps(p: Principal, cid: str, *, limit: int = 100, cursor: str | None = None, before: str | None = None,
                bbox: str | None = None, bbox_crs: str | None = None, crs: str | None = None,
                datetime_: str | None = None, props: dict[str, str] | None = None, filter_: str | None = None,
                filter_lang: str | None = None, filter_crs: str | None = None,
                cache: VersionedCache[dict[str, Any]] | None = PAGES) -> aio.Steps[dict[str, Any]]:
    """The statements of `items` (`citygrid.db.aio`). The version is read before the data
    (`citygrid.db.versions`); when the cache keeps a page for the query, that alone is read first and the page
    built only when stale, else version, the collection's existence and the page go in one batch."""
    layer, view = _layer_view(p, cid)
    args = (cid, view.key, limit, cursor, before, bbox, bbox_crs, crs, datetime_,
            tuple(sorted((props or {}).items())), filter_, filter_lang, filter_crs)
    q = _items_query(p, layer, view, cid, limit=limit, cursor=cursor, before=before, bbox=bbox, bbox_crs=bbox_crs,
                     crs=crs, datetime_=datetime_, props=props, filter_=filter_, filter_lang=filter_lang,
                     filter_crs=filter_crs)
    exists_sql, exists_params = layer.count_sql(at_least_one=True, view=view)
    meta: aio.Stmt = (f"SELECT {VERSION_SQL}, ({exists_sql})", exists_params | {"version_of": cid})
    if cache is not None and cache.holds(args):
        ((version, n),), = yield [meta]
        hit = cache.get(args, version)
        if hit is not None:
            return hit
        rows = (yield [q.page])[0] if n or layer.listed_when_empty else []
    else:
        ((version, n),), rows = yield [meta, q.page]
    if not n and not layer.listed_when_empty:  # an empty layer is not a collection, except divisions
        raise E.collection_not_found("collectionId", collection=cid)
    if rows:
        matched = rows[0][1]
    else:  # an empty page (past the end): the window had no row to carry the count
        matched = (yield [q.count])[0][0][0]
    page = _page(rows, int(matched), q)
    digest = hashlib.blake2b(repr(args).encode(), digest_size=8).hexdigest()
    page["etag"] = f'"{cid}-v{version}-{digest}"'
    if cache is not None:
        cache.put(args, int(version), page, sum(len(f) for f in page["features_json"]) + 500)
    return page


@dataclass(frozen=True)
class _Query:
    page: aio.Stmt  # rows (id, numberMatched, feature JSON) of the page and the one after it
    count: aio.Stmt  # numberMatched when the page is empty
    limit: int
    cursor: bool  # a cursor key was given
    before: bool  # a before key was given
    out: Crs


def _items_query(p: Principal, layer: Layer, view: View, cid: str, *, limit: int, cursor: str | None,
                 before: str | None, bbox: str | None, bbox_crs: str | None, crs: str | None, datetime_: str | None,
                 props: dict[str, str] | None, filter_: str | None, filter_lang: str | None,
                 filter_crs: str | None) -> _Query:
    """A page's statements from the request (no database access; bad parameters are coded 400s here)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise E.limit_invalid("limit", max=MAX_LIMIT)
    out = parse_crs_uri(crs, "crs")
    table, key, geom, props_sql = layer.table, "o.code", layer.geom, view.props_sql
    base, base_params = layer.where()
    where: list[str] = [*base, *view.where]
    params: dict[str, Any] = dict(base_params) | dict(view.params)
    queryables = layer.queryables(p)
    env = _bbox(bbox, parse_crs_uri(bbox_crs, "bbox-crs"), params)
    for i, (k, v) in enumerate((props or {}).items()):  # simple equality on a queryable (Part 1 §7.15.9)
        q = queryables.get(k)
        if q is None or q.kind == "geom":
            raise E.property_unknown(k, name=k, collection=cid)
        where.append(f"CAST({q.sql} AS text) = :pv{i}")
        params[f"pv{i}"] = v
    interval = _datetime(datetime_)
    if interval and not layer.valid_time:
        raise E.datetime_unsupported("datetime", collection=cid)
    if interval:
        start, end = interval
        if end is not None:
            where.append("o.valid_from <= :dt_end")
            params["dt_end"] = end
        if start is not None:
            where.append("(o.valid_to IS NULL OR o.valid_to >= :dt_start)")
            params["dt_start"] = start
    if env:
        where.append(f"{geom} && {env} AND ST_Intersects({geom}, {env})")
    if filter_ is not None:  # CQL2 (Part 3): literals are bind parameters named cql_N
        frag, fparams = cql2.compile_filter(filter_, filter_lang, queryables, collection=cid,
                                            crs=parse_crs_uri(filter_crs, "filter-crs"))
        where.append(frag)
        params |= fparams
    base_where = " AND ".join(where) or "TRUE"
    page_cond, order = "TRUE", "id ASC"
    if cursor:
        page_cond = "id > :cursor"
        params["cursor"] = cursor
    elif before:
        page_cond = "id < :before"
        params["before"] = before
        order = "id DESC"
    g, digits = _output_geometry(geom, out)
    # One scan gives both numberMatched (a window count) and the page's row ids; only the page's rows are then
    # read back by ctid and serialised, by PostgreSQL (parsing and re-encoding features in Python was most of
    # the time). What the caller may not see is taken out in that same SQL (`View.props_sql`).
    feature_sql = (f"json_build_object('type', 'Feature', 'id', {key}, 'geometry', ST_AsGeoJSON({g}, {digits}, 0)::json, "
                   f"'properties', {props_sql})::text")
    page_sql = (f"WITH m AS (SELECT o.ctid AS rid, {key} AS id, count(*) OVER () AS n FROM {table} WHERE {base_where}), "
                f"p AS (SELECT rid, id, n FROM m WHERE {page_cond} ORDER BY {order} LIMIT :lim) "
                f"SELECT p.id, p.n, {feature_sql} AS f FROM p JOIN {table} ON o.ctid = p.rid ORDER BY p.{order}")
    return _Query((page_sql, params | {"lim": limit + 1}), (f"SELECT count(*) FROM {table} WHERE {base_where}", params),
                  limit, bool(cursor), bool(before), out)


def _page(rows: list[tuple[Any, ...]], matched: int, q: _Query) -> dict[str, Any]:
    """The page of `items` from the rows of `_Query.page`."""
    has_more = len(rows) > q.limit
    rows = rows[:q.limit]
    if q.before:
        rows = list(reversed(rows))
    feats = [r[2] for r in rows]
    raw = feats if q.out.srid is not None or q.out.is_storage else _rewrite(feats, q.out)
    first_id = rows[0][0] if rows else None
    last_id = rows[-1][0] if rows else None
    nxt = last_id if rows and (has_more if not q.before else True) else None
    prv = first_id if rows and (q.cursor or (q.before and has_more)) else None
    return {"features_json": raw, "numberMatched": matched, "numberReturned": len(raw), "next": nxt, "prev": prv,
            "crs": q.out.uri}


def _rewrite(features_json: list[str], out: Crs) -> list[str]:
    """Features PostgreSQL wrote in storage lon/lat, their geometries rewritten in a CRS PostGIS does not know
    (one transform for the page)."""
    feats = [json.loads(f) for f in features_json]
    for f, g in zip(feats, geojson_many_in([f.get("geometry") for f in feats], out), strict=True):
        f["geometry"] = g
    return [json.dumps(f, ensure_ascii=False) for f in feats]


def queryables(conn: Connection, p: Principal, cid: str, schema_id: str) -> dict[str, Any]:
    """Part 3 queryables of a collection as JSON Schema: what the caller may see and filter on (never personal
    data, never attributes above its clearance)."""
    layer, col, _ = _resolve(conn, p, cid)
    return cql2.queryables_schema(layer.queryables(p), schema_id, col.title)


def item(conn: Connection, p: Principal, cid: str, fid: str, crs: str | None = None) -> dict[str, Any]:
    layer, _, view = _resolve(conn, p, cid)
    out = parse_crs_uri(crs, "crs")
    g, digits = _output_geometry(layer.geom, out)
    where, params, extra_props = layer.item_where()
    state = ", o.version AS v, o.updated_at AS u" if layer.opens_object else ", NULL AS v, NULL AS u"
    r = conn.execute(text(f"SELECT o.code AS id, ST_AsGeoJSON({g}, {digits}, 0) AS g, {view.props_sql}{extra_props} AS p"
                          f"{state} FROM {layer.table} WHERE o.code = :f AND {' AND '.join((*where, *view.where))}"),
                     params | dict(view.params) | {"f": fid}).first()
    if r is None:
        raise E.feature_not_found("featureId", feature=fid)
    geometry = json.loads(r.g)
    if out.srid is None and not out.is_storage:
        geometry = geojson_in(geometry, out)
    return {"type": "Feature", "id": r.id, "geometry": geometry, "properties": r.p, "crs": out.uri,
            "etag": etag(r.v, r.u) if r.v is not None else None, "last_modified": r.u}


def etag(version: int, updated_at: dt.datetime) -> str:
    """The strong entity tag of a registry object's state (OGC API – Features Part 4, optimistic locking): its
    version, which every write bumps, and the time of that write, so a tag never matches another state even
    across a database restored from a backup. The same for every CRS and every caller's view of the object,
    because If-Match compares states: an edit made from a reprojected or redacted copy still names its base."""
    return f'"v{int(version)}-{int(updated_at.timestamp() * 1_000_000):x}"'


def _output_geometry(geom: str, out: Crs) -> tuple[str, int]:
    """SQL of the geometry in the output CRS and axis order, and the decimals to write (mm in metres, ~1 cm in
    degrees). A CRS PostGIS does not know (GCJ-02, BD-09) is written in storage lon/lat with 9 decimals and
    rewritten in Python (`_rewrite`)."""
    if out.srid is None:
        return geom, 7 if out.is_storage else 9
    g = geom if out.srid == 4490 else f"ST_Transform({geom}, {out.srid})"
    if out.northing_first:
        g = f"ST_FlipCoordinates({g})"
    return g, 7 if out.geographic else 3
