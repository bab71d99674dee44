"""Geometry intake: parse GeoJSON, reproject to CGCS2000 (EPSG:4490), check type and validity."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

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


@lru_cache(maxsize=32)
def transformer_to_4490(crs: str) -> Transformer | None:
    src = CRS.from_user_input(crs)
    if src.to_epsg() == SRID:
        return None
    return Transformer.from_crs(src, CRS.from_epsg(SRID), always_xy=True)


def parse_crs(crs: str | None) -> str:
    if crs is None or crs == "":
        return f"EPSG:{SRID}"
    c = crs.strip()
    if c.startswith("http://www.opengis.net/def/crs/EPSG/0/"):
        c = "EPSG:" + c.rsplit("/", 1)[1]
    if c.endswith("/OGC/1.3/CRS84") or c.upper() == "CRS84":
        c = "OGC:CRS84"
    try:
        CRS.from_user_input(c)
    except CRSError as exc:
        raise E.crs_unknown("crs", crs=crs) from exc
    return c


def parse_geometry(data: Any, crs: str | None = None, field: str = "geometry", row: int | None = None) -> BaseGeometry:
    """GeoJSON geometry (dict) in `crs` -> shapely geometry in EPSG:4490, with clear errors."""
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
    tr = transformer_to_4490(parse_crs(crs))
    if tr is not None:
        geom = shapely.transform(geom, lambda xy: _apply(tr, xy))
    x0, y0, x1, y1 = geom.bounds
    if x0 < 73 or x1 > 136 or y0 < 3 or y1 > 54:
        raise E.geom_out_of_range(field, row, bounds=geom.bounds)
    return geom


def _apply(tr: Transformer, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y = tr.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def check_geometry(geom: BaseGeometry, expected: str, field: str = "geometry", row: int | None = None) -> None:
    allowed = COMPATIBLE.get(expected, {expected})
    if geom.geom_type not in allowed:
        raise E.geom_type(field, row, expected_zh=expected, expected_en=expected, actual=geom.geom_type)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise E.geom_invalid(field, row, reason=reason)


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    return dict(mapping(geom))


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
