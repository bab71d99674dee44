"""Every object class as a GeoParquet file (1.1.0): what a province's big-data platform (大数据能力平台) ingests
and what the Spark jobs read (`citygrid.export.spark`).

One file per class, `<out>/class-<code>.parquet`: the object's columns (code, names of its places, its H3 cell at
resolution 12 as a 64-bit integer, its Beidou grid code at level 10, its grids, version, validity) and its
attributes as JSON text, cut to the level asked for (`--level`, default L1 公开: a file that leaves the county is
shared, and what a recipient may see is decided here, once). Classes the catalog keeps off public layers
(`public: false`) are left out unless asked for. Geometry is WKB in CGCS2000 (EPSG:4490, longitude first, as
GeoParquet requires whatever the CRS's own axis order), with the CRS as PROJJSON, the geometry types and the
bounding box in the file's `geo` metadata. Rows stream from a server-side cursor in batches, so memory stays flat
at any county size.

pyarrow writes the files; the `geo` metadata (types and extent from one aggregate query first, so it can sit in
the schema where every reader looks) is written here because it is a small JSON document fixed by the
specification, and geopandas would add pandas and a copy of every batch for nothing else.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import ObjectClass, get_catalog
from citygrid.security import classification
from citygrid.security.principal import LEVELS, Level

GEOPARQUET_VERSION = "1.1.0"
BATCH = 20_000
SCHEMA = pa.schema([
    ("code", pa.string()), ("name", pa.string()), ("class_code", pa.string()), ("division_code", pa.string()),
    ("township_code", pa.string()), ("village_code", pa.string()), ("component_code", pa.string()),
    ("h3", pa.int64()), ("bgc", pa.string()), ("unit_grid", pa.string()), ("gov_grid", pa.string()),
    ("version", pa.int32()), ("valid_from", pa.timestamp("us", tz="UTC")), ("updated_at", pa.timestamp("us", tz="UTC")),
    ("attrs", pa.string()), ("geometry", pa.binary()),
])
_GEOJSON_TYPES = {"POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon", "MULTIPOINT": "MultiPoint",
                  "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon",
                  "GEOMETRYCOLLECTION": "GeometryCollection"}


@dataclass(frozen=True)
class Written:
    layer: str
    path: Path
    rows: int


def _geo_metadata(types: set[str], bbox: list[float] | None) -> bytes:
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": sorted(types),
                              "crs": pyproj.CRS.from_epsg(4490).to_json_dict(), "edges": "planar"}
    if bbox is not None:
        column["bbox"] = bbox
    return json.dumps({"version": GEOPARQUET_VERSION, "primary_column": "geometry",
                       "columns": {"geometry": column}}, ensure_ascii=False).encode()


def export_class(engine: Engine, cls: ObjectClass, out: Path, level: Level = "L1",
                 division: str | None = None, progress: Callable[[int], None] | None = None) -> Written:
    """One class's active objects (in `division`, by code prefix, when given) into `<out>/class-<code>.parquet`."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    attrs_sql, params = classification.plan(cls, level, personal=False).sql("o.attrs", "ex_")
    where = "o.class_code = :cls AND o.status = 'active'"
    if division:
        where += " AND o.division_code LIKE :div"
        params = params | {"div": division[:6] + "%"}
    cols_sql = ("o.code, o.name, o.class_code, o.division_code, o.township_code, o.village_code, o.component_code, "
                "o.h3, o.bgc, o.unit_grid, o.gov_grid, o.version, o.valid_from, o.updated_at, "
                f"({attrs_sql})::text AS attrs, ST_AsBinary(o.geom) AS geometry")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"class-{cls.code}.parquet"
    tmp = path.with_suffix(".parquet.part")
    names = SCHEMA.names
    rows = 0
    with engine.connect() as c:
        # the `geo` metadata (types, extent) goes in the schema every reader looks at, so it is known first
        types, *box = c.execute(text(
            "SELECT t, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT array_agg(DISTINCT "
            f"GeometryType(o.geom)) AS t, ST_Extent(o.geom) AS e FROM city_object o WHERE {where}) x"),
            params | {"cls": cls.code}).one()
        bbox = [float(v) for v in box] if box[0] is not None else None
        geo = _geo_metadata({_GEOJSON_TYPES.get(t, t) for t in types or []}, bbox)
        schema = SCHEMA.with_metadata({"geo": geo})
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            result = c.execution_options(stream_results=True, yield_per=BATCH).execute(
                text(f"SELECT {cols_sql} FROM city_object o WHERE {where} ORDER BY o.code"), params | {"cls": cls.code})
            for part in result.partitions():
                cols: dict[str, list[Any]] = {n: [] for n in names}
                for r in part:
                    for n, v in zip(names, r, strict=True):
                        cols[n].append(bytes(v) if n == "geometry" else v)
                w.write_table(pa.table(cols, schema=schema))
                rows += len(part)
                if progress is not None:
                    progress(rows)
    tmp.replace(path)
    return Written(f"class-{cls.code}", path, rows)


def export_all(engine: Engine, out: Path, level: Level = "L1", division: str | None = None,
               restricted: bool = False, progress: Callable[[str, int], None] | None = None) -> list[Written]:
    """Every class with active objects (public ones only, unless `restricted`)."""
    with engine.connect() as c:
        present = set(c.execute(text("SELECT DISTINCT class_code FROM city_object WHERE status = 'active'")).scalars())
    done = []
    for cls in sorted(get_catalog().classes.values(), key=lambda k: k.code):
        if cls.code not in present or not (cls.public or restricted):
            continue
        done.append(export_class(engine, cls, out, level, division,
                                 functools.partial(progress, cls.name) if progress else None))
    return done


def read_geometries(path: Path) -> list[shapely.Geometry]:
    """The geometries of an exported file (for checks and small consumers)."""
    return list(shapely.from_wkb(pq.read_table(path, columns=["geometry"]).column("geometry").to_pylist()))
