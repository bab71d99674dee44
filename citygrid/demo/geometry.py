"""The demo's metric plane and the shape helpers more than one stage uses.

Generation happens in the county's CGCS2000 3-degree Gauss-Krüger zone (大冶: CM 114°E, EPSG:4547; metres), where lengths, widths and
setbacks are plain numbers; only the result goes back to EPSG:4490. Helpers that only one stage needs stay
private to that stage's module (`partition.py`, `roads.py`, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

LOCAL_CRS = "EPSG:4547"  # CGCS2000 / 3-degree Gauss-Kruger CM 114E: 大冶's, the default


@lru_cache(maxsize=32)
def _transformers(crs: str) -> tuple[Transformer, Transformer]:
    return (Transformer.from_crs("EPSG:4490", crs, always_xy=True),
            Transformer.from_crs(crs, "EPSG:4490", always_xy=True))


_PLANE: ContextVar[str] = ContextVar("demo_local_plane", default=LOCAL_CRS)


@contextmanager
def local_plane(crs: str) -> Iterator[None]:
    """Generate in this plane (the county's Gauss-Krüger zone) inside the block; a context variable, so loads of
    two counties in two threads do not mix."""
    token = _PLANE.set(crs)
    try:
        yield
    finally:
        _PLANE.reset(token)


def to_local(geoms: Any) -> Any:
    """EPSG:4490 geometries (or an array of them) into the local plane."""
    fwd = _transformers(_PLANE.get())[0]
    return shapely.transform(geoms, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))


def to_4490(geoms: Any) -> Any:
    """Local-plane geometries (or an array of them) back to EPSG:4490."""
    inv = _transformers(_PLANE.get())[1]
    return shapely.transform(geoms, lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1])))


def lonlat_to_local(lon: float, lat: float) -> np.ndarray:
    """One longitude/latitude (EPSG:4490) as a point of the local plane."""
    return np.array(_transformers(_PLANE.get())[0].transform(lon, lat))


def polygonal(g: BaseGeometry) -> Polygon | MultiPolygon:
    """The (multi)polygon part of `g`, made valid; an empty polygon when there is none."""
    if g is None or g.is_empty:
        return shapely.Polygon()
    if not g.is_valid:
        g = shapely.make_valid(g)
    if isinstance(g, Polygon | MultiPolygon):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return cast(Polygon | MultiPolygon, shapely.union_all(parts)) if parts else shapely.Polygon()


def rects(cx: np.ndarray, cy: np.ndarray, ang: np.ndarray, w: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rectangles centred at (cx, cy), `w` along direction `ang`, `d` across it."""
    lx = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    ly = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    px, py = lx[None, :] * w[:, None], ly[None, :] * d[:, None]
    xs = cx[:, None] + px * c - py * s
    ys = cy[:, None] + px * s + py * c
    if len(cx) == 0:
        return np.empty(0, dtype=object)
    return cast(NDArray[np.object_], shapely.polygons(np.stack([xs, ys], axis=-1)))  # (n, 5, 2): n polygons


def frame(line_geoms: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point, unit tangent and unit left normal at distance s along each line."""
    p = shapely.get_coordinates(shapely.line_interpolate_point(line_geoms, s))
    lens = shapely.length(line_geoms)
    a = shapely.get_coordinates(shapely.line_interpolate_point(line_geoms, np.clip(s - 1.0, 0, lens)))
    b = shapely.get_coordinates(shapely.line_interpolate_point(line_geoms, np.clip(s + 1.0, 0, lens)))
    t = b - a
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    n = np.column_stack([-t[:, 1], t[:, 0]])
    return p, t, n
