"""Every kind of layer citygrid serves, described once: object classes, divisions, grid systems, door plates.

A `Layer` carries what every consumer needs to know about its features: the id pattern, the table (aliased
`o`, keyed by `o.code`), geometry, base filter, properties SQL, CQL2 queryables, tile SQL and tile fields,
title, description, map group and style colour. OGC items (`features`), tiles and TileJSON/styles
(`tiles`), queryables, aggregate outlines (`citygrid.layers.aggregate`) and the web map's layer list
(`GET /layers`) all ask it, so adding a kind of layer is one subclass here, listed in `KINDS`, and a test.
This is tipg's `Collection` idea (one object per source, asked by every endpoint).

A layer's id is also its key in `layer_version`, written by the triggers of migrations 0002 and 0009
(`class-<code>`, `divisions`, `grids-<system>`, `doorplates`); `citygrid.db.versions` explains how caches
use it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import ObjectClass, get_catalog
from citygrid.grid.h3cells import STORED_RES, parent_sql
from citygrid.layers.cql2 import Queryable
from citygrid.security import classification, rules
from citygrid.security.principal import Level, Principal

TILE_EXTENT, TILE_BUFFER = 4096, 64
THIN_BELOW = 15  # below this zoom, tiles keep one feature per few pixels (see `thin_res`)
WORLD = 40075016.68557849  # WebMercator extent, m

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GEOM_FORMAT = {"Point": "geometry-point", "LineString": "geometry-linestring", "Polygon": "geometry-polygon",
                "MultiPoint": "geometry-multipoint", "MultiLineString": "geometry-multilinestring",
                "MultiPolygon": "geometry-multipolygon"}
ColumnSchemas = dict[str, tuple[str, dict[str, Any]]]  # column -> (queryable kind, JSON Schema)


@dataclass(frozen=True)
class MapGroup:
    """Where the web map lists a layer: the 大类 of a class, or the base group of grids and door plates."""

    key: str
    name: str
    name_en: str


BASE_GROUP = MapGroup("base", "网格与门牌", "grids · door plates")


@dataclass(frozen=True)
class View:
    """What one caller gets of a layer: extra row conditions (its read scope), the properties SQL with its bind
    parameters (attributes by its clearance, `citygrid.security.classification`), and a key naming both for
    caches of pages and tiles."""

    where: tuple[str, ...]
    props_sql: str
    params: tuple[tuple[str, Any], ...]
    key: tuple[Any, ...]
    scope_key: tuple[Any, ...] = ()  # the part of `key` tiles depend on (they carry no withheld attributes)


def _scope_condition(scope: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    return ((f"{rules.PLACE_SQL} LIKE ANY(CAST(:vw_scope AS text[]))",),
            (("vw_scope", [s + "%" for s in scope]),))


def thin_res(z: int) -> int:
    """H3 resolution whose cells are about 4 pixels wide at zoom z (edge ×2.65 per resolution, ×2 per zoom):
    res 8 (edge ≈ 530 m) at z10, res 11 (≈ 29 m) at z14."""
    return max(0, min(STORED_RES, round(8 + (z - 10) * 0.71)))


def _mvt(inner: str, fields: str, capped: bool = False, stored: bool = False) -> str:
    """Tile SQL around `inner` (rows `src` with a 4490 geometry `g`, a `code` and the tile's fields), answering
    (the tile, its feature count).

    The first render binds :cap one above the per-tile cap (`citygrid.layers.tiles`): a count above the cap means
    the tile is too full. Then `capped` renders it again keeping :cap features chosen by a hash of their code (an
    even, deterministic sample: the same tile keeps the same features) and counts all of them.

    With `stored` (object classes, migration 0031), `inner` gives each row's Web-Mercator geometry as `g3`
    (`city_object.geom_3857`) instead of `g`, and its `clr` (`city_object.geom_clearance`): a feature
    wholly inside the tile whose clearance is over 1.5 tile units is only mapped to tile units and snapped to the
    grid, which cannot make it invalid or collapse it; ST_AsMVTGeom's wagyu pass (clip and repair) is kept for the
    others. Same geometry, rings in the same orientation; a z14 tile of buildings costs the database 4.0 µs a
    feature instead of 7.1. 111,319.49 m per degree is Web Mercator's smallest scale, so the clearance in tile
    units is never overestimated.

    No `WHERE geom IS NOT NULL` on the clipped rows: ST_AsMVT skips rows whose geometry is NULL by itself, and
    the planner inlines `f`, so the filter computed ST_AsMVTGeom twice per row (z10 56 → 35 ms, z16 4.6 → 2.8 ms
    per tile in process, same bytes)."""
    if capped:
        src = (f"SELECT a.*, count(*) OVER () AS n_all FROM ({inner}) a "
               "ORDER BY hashtextextended(a.code, 0), a.code LIMIT :cap")
        total = "coalesce((SELECT max(n_all) FROM src), 0)"
    else:
        src, total = f"{inner} LIMIT :cap", "count(*)"
    cols = ", ".join("s." + f for f in fields.split(", "))
    if stored:
        geom = ("CASE WHEN b.e ~ s.g3 AND s.clr * b.sx * 111319.49 > 1.5 "
                "THEN ST_SnapToGrid(ST_Affine(ST_ForcePolygonCW(s.g3), b.sx, 0, 0, b.sy, -b.x0 * b.sx, -b.y1 * b.sy), 1) "
                "ELSE ST_AsMVTGeom(s.g3, b.e, :ext, :buf, true) END")
    else:
        geom = "ST_AsMVTGeom(s.g3, b.e, :ext, :buf, true)"
    return ("WITH b AS (SELECT e, CAST(:ext AS float8) / (ST_XMax(e) - ST_XMin(e)) AS sx, "
            "-CAST(:ext AS float8) / (ST_YMax(e) - ST_YMin(e)) AS sy, ST_XMin(e) AS x0, ST_YMax(e) AS y1 "
            "FROM (SELECT ST_TileEnvelope(:z, :x, :y) AS e) t), "
            f"src AS ({src}), "
            # OFFSET 0 keeps the transform to one per row: inlined, each use of g3 in `geom` would redo it
            f"f AS (SELECT {geom} AS geom, {cols} FROM "
            f"{'src' if stored else '(SELECT ST_Transform(src.g, 3857) AS g3, src.* FROM src OFFSET 0)'} s, b) "
            f"SELECT ST_AsMVT(f.*, :layer, :ext, 'geom'), {total} FROM f")


def _geom_queryable(geometry_type: str | None, alias: str, sql: str) -> Queryable:
    return Queryable(alias, "geom", sql, {"title": "几何 / geometry", "x-ogc-role": "primary-geometry",
                                          "format": _GEOM_FORMAT.get(geometry_type or "", "geometry-any")})


def _with_geometry(out: dict[str, Queryable], geometry_type: str | None, geom_sql: str) -> dict[str, Queryable]:
    out["geom"] = _geom_queryable(geometry_type, "geom", geom_sql)
    out["geometry"] = _geom_queryable(geometry_type, "geometry", geom_sql)
    return out


def column_queryables(schemas: ColumnSchemas, geometry_type: str, geom_sql: str = "o.geom") -> dict[str, Queryable]:
    """Queryables of a table whose filterable properties are plain columns, plus its geometry."""
    return _with_geometry({k: Queryable(k, kind, f"o.{k}", sch) for k, (kind, sch) in schemas.items()},
                          geometry_type, geom_sql)


class Layer(ABC):
    """One servable layer. Subclasses fill the class attributes and the few methods that differ."""

    kind: ClassVar[str]  # a stable name of the kind: class | divisions | grids | doorplates
    table: ClassVar[str]  # FROM item, aliased `o`; features are keyed by `o.code`
    geom: ClassVar[str] = "o.geom"
    props_sql: ClassVar[str]  # jsonb of a feature's properties
    tile_fields: ClassVar[dict[str, str]]  # TileJSON vector_layers fields
    valid_time: ClassVar[bool] = False  # whether `datetime` filters apply
    area_outlines: ClassVar[bool] = False  # areas keyed by code, which aggregates draw as polygons
    listed_when_empty: ClassVar[bool] = False  # a collection even without features
    opens_object: ClassVar[bool] = False  # features are registry objects (`/objects/{code}`)

    def __init__(self, layer_id: str) -> None:
        self.id = layer_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    # --- identity -------------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def parse(cls, layer_id: str) -> Layer | None:
        """The layer this id names when it has this kind's pattern (existence is checked by `exists`)."""

    @classmethod
    @abstractmethod
    def listing(cls, conn: Connection) -> list[tuple[Layer, int]]:
        """Every non-empty layer of this kind with its feature count."""

    @property
    def class_code(self) -> str | None:
        return None

    # Properties, so a class layer can answer from its catalogue class; other kinds override with a constant.
    @property
    def geometry_type(self) -> str:
        return "MultiPolygon"

    @property
    def color(self) -> str:
        return "#333333"

    # --- what it is -----------------------------------------------------------------------------------------
    def where(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The base filter (SQL over `o`) and its parameters."""
        return (), {}

    def view(self, p: Principal) -> View | None:
        """What `p` gets of the layer; None when it may not see the layer at all (answered as not found)."""
        return View((), self.props_sql, (), ())

    @abstractmethod
    def title(self, conn: Connection) -> str: ...

    @abstractmethod
    def description(self, conn: Connection) -> str: ...

    @property
    def map_group(self) -> MapGroup | None:
        """None for layers the map draws as its base (divisions), not in the layer list."""
        return BASE_GROUP

    @abstractmethod
    def queryables(self, p: Principal) -> dict[str, Queryable]:
        """What `p` may filter on (never what it may not see: a filter would tell it)."""

    def exists_sql(self) -> tuple[str, dict[str, Any]]:
        """A SQL condition true when the layer exists (its pattern alone may name one that does not), with its
        parameters; read in the same trip as a tile (`citygrid.layers.tiles`)."""
        return "TRUE", {}

    def exists(self, conn: Connection) -> bool:
        sql, params = self.exists_sql()
        return sql == "TRUE" or bool(conn.execute(text(f"SELECT {sql}"), params).scalar_one())

    def rows_where(self, view: View | None = None) -> tuple[str, dict[str, Any]]:
        """The condition (SQL over `o`) selecting the layer's features that `view` sees, and its parameters."""
        where, params = self.where()
        if view is not None and view.where:
            where, params = where + view.where, params | dict(view.params)
        return " AND ".join(where) or "TRUE", params

    def count(self, conn: Connection, at_least_one: bool = False, view: View | None = None) -> int:
        """Features in the layer (those of `view`); with `at_least_one`, 0 or 1 (cheap existence of data)."""
        sql, params = self.count_sql(at_least_one, view)
        return int(conn.execute(text(sql), params).scalar_one())

    def count_sql(self, at_least_one: bool = False, view: View | None = None) -> tuple[str, dict[str, Any]]:
        """`count`'s statement and parameters (read in the same trip as a page of items, `citygrid.layers.features`)."""
        cond, params = self.rows_where(view)
        sql = (f"SELECT count(*) FROM (SELECT 1 FROM {self.table} WHERE {cond} LIMIT 1) x" if at_least_one
               else f"SELECT count(*) FROM {self.table} WHERE {cond}")
        return sql, params

    def extent_sql(self, view: View) -> tuple[str, dict[str, Any]]:
        """One row (xmin, ymin, xmax, ymax in EPSG:4490 = CRS84 numbers, earliest valid_from or NULL) over the
        features `view` sees, NULLs when there are none: the extent of the collection (`citygrid.layers.extent`).
        Only the caller's rows, so the box of a restricted class never tells where objects out of its scope lie."""
        cond, params = self.rows_where(view)
        start = "min(o.valid_from)" if self.valid_time else "NULL::timestamptz"
        return (f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t FROM (SELECT ST_Extent({self.geom}) AS e, "
                f"{start} AS t FROM {self.table} WHERE {cond}) x"), params

    def item_where(self) -> tuple[tuple[str, ...], dict[str, Any], str]:
        """Filter and extra properties SQL for one feature by code (objects stay addressable when retired)."""
        where, params = self.where()
        return where, params, ""

    # --- tiles and styles -----------------------------------------------------------------------------------
    @abstractmethod
    def tile_sql(self, z: int, view: View, capped: bool = False) -> tuple[str, dict[str, Any]]:
        """ST_AsMVT SQL (`_mvt`: the tile and its feature count) for a tile at zoom z of what `view` sees, with
        :z :x :y :ext :buf :cap :layer bound by the caller. Tiles carry L1 properties only, the same for every
        caller who may see the layer."""

    @abstractmethod
    def short_name(self) -> str:
        """The name in TileJSON and styles (no database access)."""

    # --- aggregation ----------------------------------------------------------------------------------------
    def outlines_sql(self) -> tuple[str, dict[str, Any]]:
        """`SELECT code, GeoJSON` of the layer's areas for the codes bound as :c (area layers only), and its
        other parameters."""
        raise NotImplementedError(f"{self.id} has no area outlines")


class ObjectClassLayer(Layer):
    """The active objects of one 小类 of the catalog: `class-<code6>`."""

    kind = "class"
    table = "city_object o"
    prefix = "class-"
    _COLUMNS_SQL = ("jsonb_build_object('code', o.code, 'name', o.name, 'class_code', o.class_code, "
                    "'division_code', o.division_code, 'township_code', o.township_code, 'village_code', "
                    "o.village_code, 'component_code', o.component_code, 'version', o.version, 'valid_from', "
                    "o.valid_from, 'unit_grid', o.unit_grid, 'gov_grid', o.gov_grid)")
    props_sql = _COLUMNS_SQL + " || o.attrs"  # everything; callers get theirs from `view`
    tile_fields = {"code": "String", "name": "String", "state": "String", "township_code": "String",
                   "village_code": "String"}
    valid_time = True
    opens_object = True
    _COLORS: ClassVar[dict[str, str]] = {"01": "#1f77b4", "02": "#ff7f0e", "03": "#2ca02c", "04": "#17becf",
                                         "05": "#9467bd", "06": "#1e90ff", "07": "#d62728", "08": "#8c564b",
                                         "99": "#7f7f7f"}
    _COLUMNS: ClassVar[ColumnSchemas] = {
        "code": ("text", {"type": "string", "title": "对象编码 / object code"}),
        "name": ("text", {"type": "string", "title": "名称 / name"}),
        "class_code": ("text", {"type": "string", "title": "分类代码 / class code"}),
        "division_code": ("text", {"type": "string", "title": "县级区划代码 / county code"}),
        "township_code": ("text", {"type": "string", "title": "乡镇代码 / township code"}),
        "village_code": ("text", {"type": "string", "title": "村社区代码 / village code"}),
        "valid_from": ("ts", {"type": "string", "format": "date-time", "title": "生效时间 / valid from"}),
        "version": ("num", {"type": "integer", "title": "版本 / version"}),
    }

    def __init__(self, cls: ObjectClass) -> None:
        super().__init__(self.prefix + cls.code)
        self.cls = cls

    @classmethod
    def parse(cls, layer_id: str) -> Layer | None:
        if not layer_id.startswith(cls.prefix):
            return None
        found = get_catalog().get(layer_id[len(cls.prefix):])
        return cls(found) if found is not None else None

    @classmethod
    def listing(cls, conn: Connection) -> list[tuple[Layer, int]]:
        # counts kept exact by triggers (agg_h3, migration 0010): no pass over a million objects per listing
        rows = conn.execute(text("SELECT class_code, sum(n) FROM agg_h3 GROUP BY class_code HAVING sum(n) > 0 "
                                 "ORDER BY class_code")).all()
        cat = get_catalog()
        return [(cls(c), int(n)) for code, n in rows if (c := cat.get(code)) is not None]

    @property
    def class_code(self) -> str | None:
        return self.cls.code

    @property
    def geometry_type(self) -> str:
        return self.cls.geometry

    @property
    def color(self) -> str:
        return self._COLORS.get(self.cls.major, "#333333")

    def where(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        return ("o.class_code = :cls", "o.status = 'active'"), {"cls": self.cls.code}

    def view(self, p: Principal) -> View | None:
        scope = rules.read_scopes(p, self.cls)
        if scope == ():
            return None
        where, params = _scope_condition(scope) if scope is not None else ((), ())
        attrs, aparams, akey = classification.attrs_sql(p, self.cls)
        return View(where, f"{self._COLUMNS_SQL} || {attrs}", params + tuple(sorted(aparams.items())),
                    (scope, akey), (scope,))

    def item_where(self) -> tuple[tuple[str, ...], dict[str, Any], str]:
        return ("o.class_code = :cls",), {"cls": self.cls.code}, " || jsonb_build_object('status', o.status)"

    def title(self, conn: Connection | None = None) -> str:
        return self.cls.name

    def description(self, conn: Connection | None = None) -> str:
        c = self.cls
        return f"{c.major_name} / {c.middle_name} / {c.name} ({c.name_en})"

    @property
    def map_group(self) -> MapGroup | None:
        return MapGroup(self.cls.major, self.cls.major_name, self.cls.major)

    def count_sql(self, at_least_one: bool = False, view: View | None = None) -> tuple[str, dict[str, Any]]:
        if view is not None and view.where:  # a caller who sees part of a restricted class counts that part
            return super().count_sql(at_least_one, view)
        # every active object has its H3 cell, so the trigger-kept counts are exact
        sql = ("SELECT count(*) FROM (SELECT 1 FROM agg_h3 WHERE class_code = :cls AND n > 0 LIMIT 1) x"
               if at_least_one else "SELECT coalesce(sum(n), 0) FROM agg_h3 WHERE class_code = :cls")
        return sql, {"cls": self.cls.code}

    def queryables(self, p: Principal) -> dict[str, Queryable]:
        return _object_queryables(self.cls.code, classification.queryable_level(p))

    def tile_sql(self, z: int, view: View, capped: bool = False) -> tuple[str, dict[str, Any]]:
        state = "o.attrs->>'state'" if "state" in classification.tile_attributes(self.cls) else "NULL::text"
        props = f"o.code, o.name, {state} AS state, o.township_code, o.village_code"
        base = " AND ".join(("o.class_code = :cls AND o.status = 'active' AND o.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)",
                             *view.where))
        if z < THIN_BELOW:
            # one object per H3 cell of a few pixels, from the cell stored at write time: a bit operation per row
            # instead of a point-on-surface and a transform (z10 over the demo town: 61 → 27 ms)
            cell = f"coalesce({parent_sql('o.h3', thin_res(z))}, hashtextextended(o.code, 0))"
            inner = (f"SELECT DISTINCT ON ({cell}) o.geom_3857 AS g3, o.geom_clearance AS clr, {props} "
                     "FROM city_object o, b "
                     f"WHERE {base} "
                     f"ORDER BY {cell}, o.code")
        else:
            inner = f"SELECT o.geom_3857 AS g3, o.geom_clearance AS clr, {props} FROM city_object o, b WHERE {base}"
        return (_mvt(inner, "code, name, state, township_code, village_code", capped, stored=True),
                {"cls": self.cls.code} | dict(view.params))

    def short_name(self) -> str:
        return self.cls.name


@lru_cache(maxsize=1024)
def _object_queryables(class_code: str, level: Level) -> dict[str, Queryable]:
    """Catalog attributes a caller cleared to `level` may filter on (`classification.may_query`: never L4),
    object columns and the geometry."""
    cls = get_catalog().get(class_code)
    out = {k: Queryable(k, kind, f"o.{k}", sch) for k, (kind, sch) in ObjectClassLayer._COLUMNS.items()}
    for a in cls.attributes if cls else []:
        if not classification.may_query(a, level) or not _IDENT.match(a.field):
            continue  # odd names are never pasted into SQL
        ref = f"o.attrs->'{a.field}'"
        sch: dict[str, Any] = {"title": a.label}
        if a.description:
            sch["description"] = a.description
        if a.type in ("number", "integer"):
            kind = "num"
            sql = f"(CASE WHEN jsonb_typeof({ref}) = 'number' THEN CAST(o.attrs->>'{a.field}' AS numeric) END)"
            sch["type"] = a.type
            if a.min is not None:
                sch["minimum"] = a.min
            if a.max is not None:
                sch["maximum"] = a.max
            if a.unit:
                sch["x-unit"] = a.unit
        elif a.type == "boolean":
            kind = "bool"
            sql = f"(CASE WHEN jsonb_typeof({ref}) = 'boolean' THEN CAST(o.attrs->>'{a.field}' AS boolean) END)"
            sch["type"] = "boolean"
        else:
            kind = "date" if a.type == "date" else "text"
            sql = f"(CASE WHEN jsonb_typeof({ref}) = 'string' THEN o.attrs->>'{a.field}' END)"
            sch["type"] = "string"
            if a.type == "date":
                sch["format"] = "date"
            if a.enum:
                sch["enum"] = list(a.enum)
            if a.max_length:
                sch["maxLength"] = a.max_length
        out[a.field] = Queryable(a.field, kind, sql, sch)
    return _with_geometry(out, cls.geometry if cls else None, "o.geom")


class DivisionsLayer(Layer):
    """Administrative divisions with outlines: `divisions`; tiles show counties, townships or villages by zoom."""

    kind = "divisions"
    table = "division o"
    props_sql = ("jsonb_build_object('code', o.code, 'name', o.name, 'level', o.level, 'kind', o.kind, "
                 "'parent_code', o.parent_code, 'geom_source', o.geom_source)")
    tile_fields = {"code": "String", "name": "String", "short_name": "String", "level": "Number"}
    color = "#555555"
    area_outlines = True
    listed_when_empty = True  # the base every map draws
    _COLUMNS: ClassVar[ColumnSchemas] = {
        "code": ("text", {"type": "string", "title": "区划代码 / division code"}),
        "name": ("text", {"type": "string", "title": "名称 / name"}),
        "level": ("num", {"type": "integer", "minimum": 1, "maximum": 5, "title": "级别 / level"}),
        "kind": ("text", {"type": "string", "title": "类型 / kind"}),
        "parent_code": ("text", {"type": "string", "title": "上级代码 / parent code"}),
    }

    @classmethod
    def parse(cls, layer_id: str) -> Layer | None:
        return cls(layer_id) if layer_id == "divisions" else None

    @classmethod
    def listing(cls, conn: Connection) -> list[tuple[Layer, int]]:
        layer = cls("divisions")
        return [(layer, layer.count(conn))]  # listed even when empty: the map's base

    def where(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        return ("o.geom IS NOT NULL",), {}

    def title(self, conn: Connection | None = None) -> str:
        return "行政区划"

    def description(self, conn: Connection | None = None) -> str:
        return "administrative divisions with boundaries"

    @property
    def map_group(self) -> MapGroup | None:
        return None

    def queryables(self, p: Principal) -> dict[str, Queryable]:
        return _division_queryables()

    def tile_sql(self, z: int, view: View, capped: bool = False) -> tuple[str, dict[str, Any]]:
        # counties below z9; from z9 (a county fills the screen) townships and villages together, so the map
        # opens on a county with both outlines and names (the style tells them apart by `level`)
        inner = ("SELECT o.geom AS g, o.code, o.name, o.short_name, o.level FROM division o, b "
                 "WHERE o.level BETWEEN :lv_from AND :lv_to AND o.geom IS NOT NULL "
                 "AND o.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)")
        levels = (3, 3) if z < 9 else (4, 5)
        return _mvt(inner, "code, name, short_name, level", capped), {"lv_from": levels[0], "lv_to": levels[1]}

    def short_name(self) -> str:
        return "行政区划"

    def outlines_sql(self) -> tuple[str, dict[str, Any]]:
        return "SELECT code, ST_AsGeoJSON(geom, 6, 0) FROM division WHERE code = ANY(:c) AND geom IS NOT NULL", {}


@lru_cache(maxsize=1)
def _division_queryables() -> dict[str, Queryable]:
    return column_queryables(DivisionsLayer._COLUMNS, "MultiPolygon")


class GridSystemLayer(Layer):
    """The cells of one grid system (unit, governance, or a department's imported one): `grids-<system>`."""

    kind = "grids"
    table = "grid o"
    prefix = "grids-"
    _COLUMNS_SQL = ("jsonb_build_object('code', o.code, 'name', o.name, 'system', o.system, 'kind', o.kind, "
                    "'division_code', o.division_code, 'township_code', o.township_code, 'households', {households})")
    props_sql = _COLUMNS_SQL.format(households="o.households") + " || o.attrs"  # everything
    tile_fields = {"code": "String", "name": "String", "kind": "String", "households": "Number"}
    color = "#e377c2"
    area_outlines = True
    _KIND_TITLE: ClassVar[dict[str, tuple[str, str]]] = {
        "unit": ("单元网格", "unit grid"), "governance": ("治理网格", "governance grid"),
        "thematic": ("专题网格", "thematic grid")}
    _COLUMNS: ClassVar[ColumnSchemas] = {
        "code": ("text", {"type": "string", "title": "网格编码 / grid code"}),
        "name": ("text", {"type": "string", "title": "名称 / name"}),
        "kind": ("text", {"type": "string", "enum": ["unit", "governance", "thematic"], "title": "网格类型 / kind"}),
        "division_code": ("text", {"type": "string", "title": "区划代码 / division code"}),
        "township_code": ("text", {"type": "string", "title": "乡镇代码 / township code"}),
        "households": ("num", {"type": "integer", "title": "户数 / households"}),
    }

    def __init__(self, system: str, grid_kind: str | None = None) -> None:
        super().__init__(self.prefix + system)
        self.system = system
        self._grid_kind = grid_kind

    @classmethod
    def parse(cls, layer_id: str) -> Layer | None:
        if layer_id.startswith(cls.prefix) and len(layer_id) > len(cls.prefix):
            return cls(layer_id[len(cls.prefix):])
        return None

    @classmethod
    def listing(cls, conn: Connection) -> list[tuple[Layer, int]]:
        rows = conn.execute(text("SELECT system, min(kind), count(*) FROM grid GROUP BY system ORDER BY system")).all()
        return [(cls(system, kind), int(n)) for system, kind, n in rows]

    def grid_kind(self, conn: Connection) -> str:
        if self._grid_kind is None:
            self._grid_kind = str(conn.execute(text("SELECT min(kind) FROM grid WHERE system = :s"),
                                               {"s": self.system}).scalar())
        return self._grid_kind

    def where(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        return ("o.system = :sys",), {"sys": self.system}

    def view(self, p: Principal) -> View | None:
        """Household counts below k hidden unless cleared; imported attributes as no catalog describes them."""
        cleared = rules.may_see_small_counts(p)
        attrs, params, akey = classification.attrs_sql(p, None, place_sql="o.division_code")
        props = self._COLUMNS_SQL.format(households=classification.count_sql("o.households", cleared))
        return View((), f"{props} || {attrs}", tuple(sorted((params | {"k_anon": classification.k_anonymity()}).items())),
                    (cleared, akey))

    def title(self, conn: Connection) -> str:
        return f"{self._KIND_TITLE.get(self.grid_kind(conn), ('网格', 'grid'))[0]}：{self.system}"

    def description(self, conn: Connection) -> str:
        en = self._KIND_TITLE.get(self.grid_kind(conn), ("网格", "grid"))[1]
        return f"{en} cells of grid system {self.system} (多网合一)"

    def exists_sql(self) -> tuple[str, dict[str, Any]]:
        return "EXISTS (SELECT 1 FROM grid WHERE system = :exists_system)", {"exists_system": self.system}

    def queryables(self, p: Principal) -> dict[str, Queryable]:
        q = _grid_queryables()
        # filtering on households would tell which grids have fewer than k
        return q if rules.may_see_small_counts(p) else {k: v for k, v in q.items() if k != "households"}

    def tile_sql(self, z: int, view: View, capped: bool = False) -> tuple[str, dict[str, Any]]:
        households = classification.count_sql("o.households", False)  # tiles: one product for every caller
        inner = (f"SELECT o.geom AS g, o.code, o.name, o.kind, {households} AS households FROM grid o, b "
                 "WHERE o.system = :sys AND o.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)")
        return (_mvt(inner, "code, name, kind, households", capped),
                {"sys": self.system, "k_anon": classification.k_anonymity()})

    def short_name(self) -> str:
        return f"网格 {self.system}"

    def outlines_sql(self) -> tuple[str, dict[str, Any]]:
        return "SELECT code, ST_AsGeoJSON(geom, 7, 0) FROM grid WHERE system = :sys AND code = ANY(:c)", {"sys": self.system}


@lru_cache(maxsize=1)
def _grid_queryables() -> dict[str, Queryable]:
    return column_queryables(GridSystemLayer._COLUMNS, "MultiPolygon")


class DoorPlatesLayer(Layer):
    """Door plates of the standard address base (一标三实): `doorplates`, points of active `door` nodes."""

    kind = "doorplates"
    table = "addr_node o"
    geom = "o.point"
    geometry_type = "Point"
    props_sql = ("jsonb_build_object('code', o.code, 'name', o.name, 'full_name', o.full_name, 'number', o.number, "
                 "'division_code', o.division_code, 'township_code', o.township_code, 'village_code', o.village_code, "
                 "'object_code', o.object_code, 'unit_grid', o.unit_grid, 'gov_grid', o.gov_grid)")
    tile_fields = {"code": "String", "name": "String", "full_name": "String"}
    color = "#bcbd22"
    _WHERE = ("o.level = 'door'", "o.status = 'active'", "o.point IS NOT NULL")
    _COLUMNS: ClassVar[ColumnSchemas] = {
        "code": ("text", {"type": "string", "title": "地址编码 / address code"}),
        "name": ("text", {"type": "string", "title": "门牌 / door plate"}),
        "full_name": ("text", {"type": "string", "title": "标准地址 / standard address"}),
        "number": ("num", {"type": "integer", "title": "门牌号 / number"}),
        "township_code": ("text", {"type": "string", "title": "乡镇代码 / township code"}),
        "village_code": ("text", {"type": "string", "title": "村社区代码 / village code"}),
        "object_code": ("text", {"type": "string", "title": "建筑物编码 / building object code"}),
        "unit_grid": ("text", {"type": "string", "title": "单元网格 / unit grid"}),
        "gov_grid": ("text", {"type": "string", "title": "治理网格 / governance grid"}),
    }

    @classmethod
    def parse(cls, layer_id: str) -> Layer | None:
        return cls(layer_id) if layer_id == "doorplates" else None

    @classmethod
    def listing(cls, conn: Connection) -> list[tuple[Layer, int]]:
        layer = cls("doorplates")
        n = layer.count(conn)
        return [(layer, n)] if n else []

    def where(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        return self._WHERE, {}

    def title(self, conn: Connection | None = None) -> str:
        return "门牌"

    def description(self, conn: Connection | None = None) -> str:
        return "door plates of the standard address base (一标三实)"

    def queryables(self, p: Principal) -> dict[str, Queryable]:
        return _doorplate_queryables()

    def tile_sql(self, z: int, view: View, capped: bool = False) -> tuple[str, dict[str, Any]]:
        base = ("SELECT {d} o.point AS g, o.code, o.name, o.full_name FROM addr_node o, b WHERE o.level = 'door' "
                "AND o.status = 'active' AND o.point && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)")
        if z < THIN_BELOW:  # points only: thinning on a pixel grid in WebMercator is cheap enough
            snap = "ST_SnapToGrid(ST_Transform(o.point, 3857), :cell)"
            inner = base.format(d=f"DISTINCT ON ({snap})") + f" ORDER BY {snap}, o.code"
        else:
            inner = base.format(d="")
        return _mvt(inner, "code, name, full_name", capped), {"cell": WORLD / 2**z / 256 * 4}  # about 4 screen pixels

    def short_name(self) -> str:
        return "门牌"


@lru_cache(maxsize=1)
def _doorplate_queryables() -> dict[str, Queryable]:
    return column_queryables(DoorPlatesLayer._COLUMNS, "Point", "o.point")


# Every kind of layer, in the order collections are listed.
KINDS: tuple[type[Layer], ...] = (ObjectClassLayer, DivisionsLayer, GridSystemLayer, DoorPlatesLayer)


def find(layer_id: str) -> Layer | None:
    """The layer an id names by its pattern, or None (no database access; see `Layer.exists`)."""
    for kind in KINDS:
        layer = kind.parse(layer_id)
        if layer is not None:
            return layer
    return None


def listing(conn: Connection, p: Principal) -> list[tuple[Layer, int]]:
    """Every layer with data (divisions always) that `p` may see, with the count of what it sees: restricted
    classes are left out for callers who may not read them, and counted in their scope for the others."""
    out = []
    for kind in KINDS:
        for layer, n in kind.listing(conn):
            view = layer.view(p)
            if view is None:
                continue
            if view.where:
                n = layer.count(conn, view=view)
                if not n:
                    continue
            out.append((layer, n))
    return out
