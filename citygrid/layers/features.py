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
from functools import lru_cache
from typing import Any

from pyproj import CRS
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import get_catalog
from citygrid.errors import CitygridError
from citygrid.geo import parse_bbox
from citygrid.layers import cql2
from citygrid.layers.cache import VersionedCache, layer_version
from citygrid.registry.objects import personal_fields
from citygrid.security.masking import mask_attrs

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
# CGCS2000 geographic, WGS84, and the CGCS2000 3° Gauss-Krüger zones 75°E…135°E (EPSG:4534–4554).
SUPPORTED_SRIDS = [4490, 4326] + list(range(4534, 4555))
MAX_LIMIT = 10_000


def crs_uri(srid: int | None) -> str:
    return CRS84 if srid is None else f"{EPSG}{srid}"


def supported_crs() -> list[str]:
    return [CRS84] + [crs_uri(s) for s in SUPPORTED_SRIDS]


def parse_crs_uri(value: str | None, field: str) -> int | None:
    """None means CRS84 (lon/lat in EPSG:4490 numbers); otherwise an EPSG code from the supported list."""
    if value is None or value in (CRS84, "CRS84", "OGC:CRS84"):
        return None
    v = value.strip().strip("[]")
    srid: int | None = None
    if v.startswith(EPSG):
        v = v[len(EPSG):]
    elif v.upper().startswith("EPSG:"):
        v = v[5:]
    if v.isdigit():
        srid = int(v)
    if srid not in SUPPORTED_SRIDS:
        raise CitygridError.one("crs_unsupported", f"不支持的坐标参考系：{value}",
                                f"unsupported CRS {value}; supported: CRS84, EPSG:4490, 4326, 4534-4554", field)
    return srid


@lru_cache(maxsize=64)
def northing_first(srid: int) -> bool:
    axis = CRS.from_epsg(srid).axis_info
    return bool(axis) and axis[0].direction.lower() in ("north", "south")


@dataclass
class Collection:
    id: str
    title: str
    description: str
    class_code: str | None
    count: int
    geometry_type: str


@dataclass(frozen=True)
class Source:
    """Where a collection's features live: table (aliased `o`, keyed by `o.code`), geometry, base filter, properties."""

    table: str
    geom: str
    where: tuple[str, ...]
    params: tuple[tuple[str, Any], ...]
    props_sql: str
    queryables: dict[str, cql2.Queryable]
    class_code: str | None = None


_OBJ_PROPS = ("jsonb_build_object('code', o.code, 'name', o.name, 'class_code', o.class_code, "
              "'division_code', o.division_code, 'township_code', o.township_code, 'village_code', "
              "o.village_code, 'component_code', o.component_code, 'version', o.version, 'valid_from', "
              "o.valid_from, 'unit_grid', o.unit_grid, 'gov_grid', o.gov_grid) || o.attrs")
_DIV_PROPS = ("jsonb_build_object('code', o.code, 'name', o.name, 'level', o.level, 'kind', o.kind, "
              "'parent_code', o.parent_code, 'geom_source', o.geom_source)")
_GRID_PROPS = ("jsonb_build_object('code', o.code, 'name', o.name, 'system', o.system, 'kind', o.kind, "
               "'division_code', o.division_code, 'township_code', o.township_code, 'households', o.households) "
               "|| o.attrs")
_DOOR_PROPS = ("jsonb_build_object('code', o.code, 'name', o.name, 'full_name', o.full_name, 'number', o.number, "
               "'division_code', o.division_code, 'township_code', o.township_code, 'village_code', o.village_code, "
               "'object_code', o.object_code, 'unit_grid', o.unit_grid, 'gov_grid', o.gov_grid)")
_DOOR_WHERE = ("o.level = 'door'", "o.status = 'active'", "o.point IS NOT NULL")
_KIND_TITLE = {"unit": ("单元网格", "unit grid"), "governance": ("治理网格", "governance grid"),
               "thematic": ("专题网格", "thematic grid")}


def source(cid: str) -> Source | None:
    """The source behind a collection id, or None when the id names nothing (existence is checked later)."""
    if cid.startswith("class-"):
        cls = get_catalog().get(cid[6:])
        if cls is None:
            return None
        return Source("city_object o", "o.geom", ("o.class_code = :cls", "o.status = 'active'"),
                      (("cls", cls.code),), _OBJ_PROPS, cql2.object_queryables(cls.code), cls.code)
    if cid == "divisions":
        return Source("division o", "o.geom", ("o.geom IS NOT NULL",), (), _DIV_PROPS, cql2.division_queryables())
    if cid.startswith("grids-") and len(cid) > 6:
        return Source("grid o", "o.geom", ("o.system = :sys",), (("sys", cid[6:]),), _GRID_PROPS,
                      cql2.grid_queryables())
    if cid == "doorplates":
        return Source("addr_node o", "o.point", _DOOR_WHERE, (), _DOOR_PROPS, cql2.doorplate_queryables())
    return None


def collections(conn: Connection) -> list[Collection]:
    cat = get_catalog()
    # counts kept exact by triggers (agg_h3, migration 0010): no pass over a million objects per listing
    rows = conn.execute(text("SELECT class_code, sum(n) FROM agg_h3 GROUP BY class_code HAVING sum(n) > 0 "
                             "ORDER BY class_code")).all()
    out = []
    for code, n in rows:
        cls = cat.get(code)
        if cls is None:
            continue
        out.append(Collection(f"class-{code}", cls.name, f"{cls.major_name} / {cls.middle_name} / {cls.name} "
                              f"({cls.name_en})", code, int(n), cls.geometry))
    n_div = conn.execute(text("SELECT count(*) FROM division WHERE geom IS NOT NULL")).scalar() or 0
    out.append(Collection("divisions", "行政区划", "administrative divisions with boundaries", None, int(n_div),
                          "MultiPolygon"))
    for system, kind, n in conn.execute(text("SELECT system, min(kind), count(*) FROM grid GROUP BY system "
                                             "ORDER BY system")).all():
        out.append(_grid_collection(system, kind, int(n)))
    n_door = conn.execute(text(f"SELECT count(*) FROM addr_node o WHERE {' AND '.join(_DOOR_WHERE)}")).scalar() or 0
    if n_door:
        out.append(_door_collection(int(n_door)))
    return out


def _grid_collection(system: str, kind: str, n: int) -> Collection:
    zh, en = _KIND_TITLE.get(kind, ("网格", "grid"))
    return Collection(f"grids-{system}", f"{zh}：{system}", f"{en} cells of grid system {system} (多网合一)", None, n,
                      "MultiPolygon")


def _door_collection(n: int) -> Collection:
    return Collection("doorplates", "门牌", "door plates of the standard address base (一标三实)", None, n, "Point")


def collection(conn: Connection, cid: str, count: bool = False) -> Collection:
    """One collection; cheap (no count over the table) unless `count` is asked for."""
    src = source(cid)
    if src is not None:
        where = " AND ".join(src.where)
        if src.class_code:  # every active object has its H3 cell, so the trigger-kept counts are exact
            sql = ("SELECT coalesce(sum(n), 0) FROM agg_h3 WHERE class_code = :cls" if count else
                   "SELECT count(*) FROM (SELECT 1 FROM agg_h3 WHERE class_code = :cls AND n > 0 LIMIT 1) x")
        else:
            sql = (f"SELECT count(*) FROM {src.table} WHERE {where}" if count else
                   f"SELECT count(*) FROM (SELECT 1 FROM {src.table} WHERE {where} LIMIT 1) x")
        n = int(conn.execute(text(sql), dict(src.params)).scalar_one())
        if n or cid == "divisions":
            if src.class_code:
                cls = get_catalog().get(src.class_code)
                assert cls is not None
                return Collection(cid, cls.name, f"{cls.major_name} / {cls.middle_name} / {cls.name} "
                                  f"({cls.name_en})", cls.code, n, cls.geometry)
            if cid == "divisions":
                return Collection("divisions", "行政区划", "administrative divisions with boundaries", None, n,
                                  "MultiPolygon")
            if cid == "doorplates":
                return _door_collection(n)
            kind = conn.execute(text("SELECT min(kind) FROM grid WHERE system = :s"), {"s": cid[6:]}).scalar()
            return _grid_collection(cid[6:], str(kind), n)
    raise CitygridError.one("collection_not_found", f"图层 {cid} 不存在", f"collection {cid} not found", "collectionId",
                            kind="not_found")


def _bbox(bbox: str | None, srid: int | None, params: dict[str, Any]) -> str | None:
    """The bbox as SQL over bound parameters (one statement text for every bbox, so it is prepared once)."""
    vals = parse_bbox(bbox)
    if vals is None:
        return None
    if srid is not None and northing_first(srid):
        vals = (vals[1], vals[0], vals[3], vals[2])
    params |= dict(zip(("bx0", "by0", "bx1", "by1"), vals, strict=True))
    src = 4490 if srid is None else srid
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
            raise CitygridError.one("datetime_invalid", f"datetime 格式错误：{v}", f"invalid datetime {v!r} (RFC 3339)",
                                    "datetime") from exc
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)

    if "/" in value:
        a, b = value.split("/", 1)
        return one(a), one(b)
    d = one(value)
    return d, d


# Pages as served, by collection and query, valid while the collection's layer version stands (see `cache`).
PAGES: VersionedCache[dict[str, Any]] = VersionedCache(max_items=5_000, max_bytes=128 << 20)


def items(conn: Connection, cid: str, *, limit: int = 100, cursor: str | None = None, before: str | None = None,
          bbox: str | None = None, bbox_crs: str | None = None, crs: str | None = None,
          datetime_: str | None = None, props: dict[str, str] | None = None, filter_: str | None = None,
          filter_lang: str | None = None, filter_crs: str | None = None,
          cache: VersionedCache[dict[str, Any]] | None = PAGES) -> dict[str, Any]:
    """A page of features with numberMatched and next/prev keys, and `etag` (strong, from the layer version).

    Map clients ask for the same pages again and again (each pan of a QGIS canvas); a page is rebuilt only
    after a write to its layer.
    """
    args = (cid, limit, cursor, before, bbox, bbox_crs, crs, datetime_, tuple(sorted((props or {}).items())),
            filter_, filter_lang, filter_crs)
    version = layer_version(conn, cid)
    if cache is not None:
        hit = cache.get(args, version)
        if hit is not None:
            return hit
    page = _items(conn, cid, limit=limit, cursor=cursor, before=before, bbox=bbox, bbox_crs=bbox_crs, crs=crs,
                  datetime_=datetime_, props=props, filter_=filter_, filter_lang=filter_lang, filter_crs=filter_crs)
    digest = hashlib.blake2b(repr(args).encode(), digest_size=8).hexdigest()
    page["etag"] = f'"{cid}-v{version}-{digest}"'
    if cache is not None:
        cache.put(args, version, page, sum(len(f) for f in page["features_json"]) + 500)
    return page


def _items(conn: Connection, cid: str, *, limit: int, cursor: str | None, before: str | None, bbox: str | None,
           bbox_crs: str | None, crs: str | None, datetime_: str | None, props: dict[str, str] | None,
           filter_: str | None, filter_lang: str | None, filter_crs: str | None) -> dict[str, Any]:
    col = collection(conn, cid)
    src = source(cid)
    assert src is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise CitygridError.one("limit_invalid", f"limit 应在 1 到 {MAX_LIMIT} 之间", f"limit must be 1..{MAX_LIMIT}",
                                "limit")
    out_srid = parse_crs_uri(crs, "crs")
    table, key, geom, props_sql = src.table, "o.code", src.geom, src.props_sql
    where: list[str] = list(src.where)
    params: dict[str, Any] = dict(src.params)
    env = _bbox(bbox, parse_crs_uri(bbox_crs, "bbox-crs"), params)
    for i, (k, v) in enumerate((props or {}).items()):  # simple equality on a queryable (Part 1 §7.15.9)
        q = src.queryables.get(k)
        if q is None or q.kind == "geom":
            raise CitygridError.one("property_unknown", f"属性 {k} 不是该图层的可查询属性",
                                    f"{k} is not a queryable property of {cid}", k)
        where.append(f"CAST({q.sql} AS text) = :pv{i}")
        params[f"pv{i}"] = v
    interval = _datetime(datetime_)
    if interval and not src.class_code:
        raise CitygridError.one("datetime_unsupported", f"图层 {cid} 没有有效时间，不能按 datetime 筛选",
                                f"collection {cid} has no valid time to filter by datetime", "datetime")
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
        fsrid = parse_crs_uri(filter_crs, "filter-crs")
        frag, fparams = cql2.compile_filter(filter_, filter_lang, src.queryables, srid=fsrid, collection=cid,
                                            swap_axes=fsrid is not None and northing_first(fsrid))
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
    if out_srid is None:
        g = geom
    else:
        g = geom if out_srid == 4490 else f"ST_Transform({geom}, {out_srid})"
        if northing_first(out_srid):
            g = f"ST_FlipCoordinates({g})"
    digits = 3 if out_srid is not None and not CRS.from_epsg(out_srid).is_geographic else 7
    pf = personal_fields(col.class_code) if col.class_code else set()
    # One scan gives both numberMatched (a window count) and the page's row ids; only the page's rows are then
    # read back by ctid and serialised, by PostgreSQL (parsing and re-encoding features in Python was most of
    # the time). Classes with personal fields are masked in Python.
    feature_sql = (f"json_build_object('type', 'Feature', 'id', {key}, 'geometry', ST_AsGeoJSON({g}, {digits})::json, "
                   f"'properties', {props_sql})::text")
    rows = conn.execute(
        text(f"WITH m AS (SELECT o.ctid AS rid, {key} AS id, count(*) OVER () AS n FROM {table} WHERE {base_where}), "
             f"p AS (SELECT rid, id, n FROM m WHERE {page_cond} ORDER BY {order} LIMIT :lim) "
             f"SELECT p.id, p.n, {feature_sql} AS f FROM p JOIN {table} ON o.ctid = p.rid ORDER BY p.{order}"),
        params | {"lim": limit + 1},
    ).all()
    if rows:
        matched = rows[0].n
    else:  # an empty page (past the end): the window had no row to carry the count
        matched = conn.execute(text(f"SELECT count(*) FROM {table} WHERE {base_where}"), params).scalar_one()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if before:
        rows = list(reversed(rows))
    if pf:
        raw = []
        for r in rows:
            f = json.loads(r.f)
            f["properties"] = mask_attrs(f["properties"], pf)
            raw.append(json.dumps(f, ensure_ascii=False))
    else:
        raw = [r.f for r in rows]
    first_id = rows[0].id if rows else None
    last_id = rows[-1].id if rows else None
    nxt = last_id if rows and (has_more if not before else True) else None
    prv = first_id if rows and (cursor or (before and has_more)) else None
    return {"features_json": raw, "numberMatched": int(matched), "numberReturned": len(raw), "next": nxt, "prev": prv,
            "crs": crs_uri(out_srid)}


def queryables(conn: Connection, cid: str, schema_id: str) -> dict[str, Any]:
    """Part 3 queryables of a collection as JSON Schema (personal-data attributes are not queryable)."""
    col = collection(conn, cid)
    src = source(cid)
    assert src is not None
    return cql2.queryables_schema(src.queryables, schema_id, col.title)


def item(conn: Connection, cid: str, fid: str, crs: str | None = None) -> dict[str, Any]:
    col = collection(conn, cid)
    src = source(cid)
    assert src is not None
    out_srid = parse_crs_uri(crs, "crs")
    g = src.geom
    if out_srid is not None:
        g = g if out_srid == 4490 else f"ST_Transform({g}, {out_srid})"
        if northing_first(out_srid):
            g = f"ST_FlipCoordinates({g})"
    digits = 3 if out_srid is not None and not CRS.from_epsg(out_srid).is_geographic else 7
    props = src.props_sql
    if col.class_code:  # retired objects stay addressable by code, with their status
        where = "o.class_code = :cls"
        props = f"{props} || jsonb_build_object('status', o.status)"
    else:
        where = " AND ".join(src.where)
    r = conn.execute(text(f"SELECT o.code AS id, ST_AsGeoJSON({g}, {digits}) AS g, {props} AS p FROM {src.table} "
                          f"WHERE o.code = :f AND {where}"), dict(src.params) | {"f": fid}).first()
    if r is None:
        raise CitygridError.one("feature_not_found", f"要素 {fid} 不存在", f"feature {fid} not found", "featureId",
                                kind="not_found")
    props_out = mask_attrs(r.p, personal_fields(col.class_code)) if col.class_code else r.p
    return {"type": "Feature", "id": r.id, "geometry": json.loads(r.g), "properties": props_out,
            "crs": crs_uri(out_srid)}
