"""Geometry intake: parse GeoJSON, reproject to CGCS2000 (EPSG:4490), check type and validity."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from citygrid import crs as crsmod
from citygrid.crs import Crs
from citygrid.errors import E, detail

SRID = 4490
# Multi-part variants are accepted for single-part classes (a building with two wings is one object).
COMPATIBLE = {
    "Point": {"Point"},
    "MultiPoint": {"MultiPoint", "Point"},
    "LineString": {"LineString", "MultiLineString"},
    "MultiLineString": {"MultiLineString", "LineString"},
    "Polygon": {"Polygon", "MultiPolygon"},
    "MultiPolygon": {"MultiPolygon", "Polygon"},
}


def parse_geometry(data: Any, crs: str | None = None, field: str = "geometry", row: int | None = None) -> BaseGeometry:
    """GeoJSON geometry (dict) in `crs` (any name `citygrid.crs.lookup` knows, GCJ-02 and BD-09 included, or any
EPSG system pyproj knows) -> shapely geometry in EPSG:4490, with clear errors."""
    if not isinstance(data, dict) or "type" not in data:
        raise E.geom_missing(field, row)
    try:
        geom = shape(data)
    except Exception as exc:  # shapely raises several types for malformed input
        raise E.geom_malformed(field, row, **detail(str(exc))) from exc
    if geom.is_empty:
        raise E.geom_empty(field, row)
    coords = shapely.get_coordinates(geom)
    if not shapely.is_valid_input(geom) or not (coords == coords).all():  # NaN check
        raise E.geom_malformed(field, row, **detail("坐标包含非数值", "coordinates contain NaN"))
    c = crsmod.lookup(crs, "crs", any_epsg=True)
    if not c.is_storage:
        geom = shapely.transform(geom, lambda xy: _apply(c, xy, field, row))
    x0, y0, x1, y1 = geom.bounds
    if x0 < 73 or x1 > 136 or y0 < 3 or y1 > 54:
        raise E.geom_out_of_range(field, row, bounds=geom.bounds)
    return geom


def _apply(c: Crs, xy: NDArray[np.float64], field: str, row: int | None) -> NDArray[np.float64]:
    x, y = c.into_storage(xy[:, 0], xy[:, 1], field, row)
    return np.column_stack([x, y])


def check_geometry(geom: BaseGeometry, expected: str, field: str = "geometry", row: int | None = None) -> None:
    allowed = COMPATIBLE.get(expected, {expected})
    if geom.geom_type not in allowed:
        raise E.geom_type(field, row, expected_zh=expected, expected_en=expected, actual=geom.geom_type)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise E.geom_invalid(field, row, reason=reason)


def to_geojson(geom: BaseGeometry, crs: Crs | None = None) -> dict[str, Any]:
    """A stored geometry as GeoJSON, in `crs` when given (x = longitude or easting first, as GeoJSON writes;
    7 decimals in degrees, 3 in metres)."""
    if crs is not None and not crs.is_storage:
        digits = 7 if crs.geographic else 3

        def out(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            x, y = crs.out_of_storage(xy[:, 0], xy[:, 1])
            return np.asarray(np.round(np.column_stack([x, y]), digits), dtype=np.float64)

        geom = shapely.transform(geom, out)
    return dict(mapping(geom))


def geojson_in(data: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """A GeoJSON geometry in storage lon/lat (as PostGIS wrote it) rewritten in `crs`."""
    return geojson_many_in([data], crs)[0] or {}


def geojson_many_in(data: list[dict[str, Any] | None], crs: Crs) -> list[dict[str, Any] | None]:
    """Many GeoJSON geometries in storage lon/lat rewritten in `crs` with one transform over all their coordinates
    (a page of features: per-geometry numpy calls would cost more than the transform)."""
    idx = [i for i, d in enumerate(data) if d]
    out: list[dict[str, Any] | None] = list(data)
    if not idx or crs.is_storage:
        return out
    geoms = shapely.from_geojson([json.dumps(data[i]) for i in idx])
    digits = 7 if crs.geographic else 3

    def fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = crs.out_of_storage(xy[:, 0], xy[:, 1])
        return np.asarray(np.round(np.column_stack([x, y]), digits), dtype=np.float64)

    for i, text in zip(idx, shapely.to_geojson(shapely.transform(geoms, fn)), strict=True):
        out[i] = json.loads(text)
    return out


def bbox_condition(column: str, bbox: tuple[float, float, float, float], params: dict[str, Any]) -> str:
    """`column && envelope` in EPSG:4490 over bound parameters (`:x0 … :y1`, added to `params`): one statement text
    for every bbox, so PostgreSQL plans it once."""
    params |= dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True))
    return f"{column} && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"


def parse_bbox(value: str | None, field: str = "bbox") -> tuple[float, float, float, float] | None:
    """`minx,miny,maxx,maxy` → a tuple, or a coded 4xx naming the field."""
    if not value:
        return None
    try:
        vals = tuple(float(v) for v in value.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4 or vals[0] > vals[2] or vals[1] > vals[3] or any(v != v for v in vals):
        raise E.bbox_invalid(field)
    return vals


def parse_bbox_in(value: str | None, crs: str | None, field: str = "bbox", crs_field: str = "bbox-crs"
                  ) -> tuple[float, float, float, float] | None:
    """`minx,miny,maxx,maxy` in the CRS `crs` names (x = longitude or easting first; default CGCS2000) → the
    CGCS2000 box that covers it (its edges densified, so GCJ-02's varying offset or a projection's curvature is
    covered), or a coded 4xx (GCJ-02/BD-09 outside China: crs_offset_outside)."""
    vals = parse_bbox(value, field)
    if vals is None:
        return None
    c = crsmod.lookup(crs, crs_field)
    if c.is_storage:
        return vals
    ring = np.array(crsmod.bbox_to_storage(vals, c, field=field))
    return (float(ring[:, 0].min()), float(ring[:, 1].min()), float(ring[:, 0].max()), float(ring[:, 1].max()))
