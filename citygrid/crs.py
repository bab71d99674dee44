"""GCJ-02 and BD-09: the coordinates Chinese web maps speak (Amap, Tencent and most mini-programs use GCJ-02,
Baidu uses BD-09). Neither is an EPSG system: GCJ-02 is a published obfuscation of WGS84 (the "Krasovsky"
formula below, constants from the shared reference vectors `data/crs/gcj02_test_vectors.json`), BD-09 is a
further rotation of GCJ-02. pyproj cannot do them, so they are here; everything EPSG stays in pyproj
(`citygrid/geo.py`).

CGCS2000 (EPSG:4490, what citygrid stores) and WGS84 differ by a few centimetres, far below the accuracy of
these offsets, so GCJ-02 is applied to CGCS2000 coordinates as if they were WGS84 (what every Chinese GIS does).

The offset is defined only inside China: outside the country's rough box the formulas are undefined, and
`to_gcj02`/`from_gcj02` refuse (a coded 400) rather than return an unshifted point that looks shifted.
The inverse has no closed form: one step of the forward map is within 5 m; `from_gcj02` iterates the
correction to below 1e-9° (sub-millimetre), so a round trip is exact for every practical purpose.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from citygrid.errors import E

A = 6378245.0  # Krasovsky 1940 semi-major axis, m
EE = 0.006693421622965943  # its first eccentricity squared
X_PI = math.pi * 3000.0 / 180.0
BD_DLNG, BD_DLAT = 0.0065, 0.006
CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)  # lng/lat box inside which the offset is defined
INVERSE_TOL = 1e-9
INVERSE_STEPS = 30

Array = NDArray[np.float64]


def _arrays(lng: ArrayLike, lat: ArrayLike, field: str) -> tuple[Array, Array]:
    x = np.asarray(lng, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise E.crs_offset_outside("x", crs=field)
    x0, y0, x1, y1 = CHINA_BOX
    if ((x < x0) | (x > x1) | (y < y0) | (y > y1)).any():
        raise E.crs_offset_outside("x", crs=field)
    return x, y


def _delta(x: Array, y: Array) -> tuple[Array, Array]:
    """The GCJ-02 offset in degrees at WGS84 (x=lng, y=lat)."""
    dx, dy = x - 105.0, y - 35.0
    t_lat = (-100.0 + 2.0 * dx + 3.0 * dy + 0.2 * dy * dy + 0.1 * dx * dy + 0.2 * np.sqrt(np.abs(dx))
             + (20.0 * np.sin(6.0 * dx * math.pi) + 20.0 * np.sin(2.0 * dx * math.pi)) * 2.0 / 3.0
             + (20.0 * np.sin(dy * math.pi) + 40.0 * np.sin(dy / 3.0 * math.pi)) * 2.0 / 3.0
             + (160.0 * np.sin(dy / 12.0 * math.pi) + 320.0 * np.sin(dy * math.pi / 30.0)) * 2.0 / 3.0)
    t_lng = (300.0 + dx + 2.0 * dy + 0.1 * dx * dx + 0.1 * dx * dy + 0.1 * np.sqrt(np.abs(dx))
             + (20.0 * np.sin(6.0 * dx * math.pi) + 20.0 * np.sin(2.0 * dx * math.pi)) * 2.0 / 3.0
             + (20.0 * np.sin(dx * math.pi) + 40.0 * np.sin(dx / 3.0 * math.pi)) * 2.0 / 3.0
             + (150.0 * np.sin(dx / 12.0 * math.pi) + 300.0 * np.sin(dx / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = y / 180.0 * math.pi
    magic = 1.0 - EE * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    d_lat = (t_lat * 180.0) / ((A * (1.0 - EE)) / (magic * sq) * math.pi)
    d_lng = (t_lng * 180.0) / (A / sq * np.cos(rad) * math.pi)
    return d_lng, d_lat


def to_gcj02(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """WGS84/CGCS2000 → GCJ-02 (arrays or scalars)."""
    x, y = _arrays(lng, lat, "GCJ-02")
    d_lng, d_lat = _delta(x, y)
    return x + d_lng, y + d_lat


def from_gcj02(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """GCJ-02 → WGS84/CGCS2000, by fixed-point iteration on the forward map (< 1e-9°)."""
    gx, gy = _arrays(lng, lat, "GCJ-02")
    x, y = gx.copy(), gy.copy()
    for _ in range(INVERSE_STEPS):
        d_lng, d_lat = _delta(x, y)
        ex, ey = x + d_lng - gx, y + d_lat - gy
        x, y = x - ex, y - ey
        if max(float(np.abs(ex).max(initial=0.0)), float(np.abs(ey).max(initial=0.0))) < INVERSE_TOL:
            break
    return x, y


def gcj02_to_bd09(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    x, y = (np.asarray(v, dtype=np.float64) for v in (lng, lat))
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * X_PI)
    return z * np.cos(theta) + BD_DLNG, z * np.sin(theta) + BD_DLAT


def bd09_to_gcj02(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """The published closed form is only good to ~1e-6° (5 cm); a few fixed-point steps on the forward map make
    the round trip exact."""
    bx, by = np.asarray(lng, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    x, y = bx - BD_DLNG, by - BD_DLAT
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * X_PI)
    gx, gy = z * np.cos(theta), z * np.sin(theta)
    for _ in range(INVERSE_STEPS):
        fx, fy = gcj02_to_bd09(gx, gy)
        ex, ey = fx - bx, fy - by
        gx, gy = gx - ex, gy - ey
        if max(float(np.abs(ex).max(initial=0.0)), float(np.abs(ey).max(initial=0.0))) < INVERSE_TOL:
            break
    return gx, gy


def to_bd09(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """WGS84/CGCS2000 → BD-09."""
    return gcj02_to_bd09(*to_gcj02(lng, lat))


def from_bd09(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """BD-09 → WGS84/CGCS2000 (both steps inverted iteratively)."""
    return from_gcj02(*bd09_to_gcj02(*_arrays(lng, lat, "BD-09")))
