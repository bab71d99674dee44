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

Below the formulas is the **registry** of every CRS citygrid speaks (`lookup`, `Crs`): the one place that knows
names, URIs, axis order and how to go to and from storage (CGCS2000 lon/lat). Routers and domain modules ask it;
none of them branches on CRS names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from pyproj.exceptions import CRSError

from citygrid.errors import CitygridError, E

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
    return gcj02_to_bd09(*to_gcj02(*_arrays(lng, lat, "BD-09")))


def from_bd09(lng: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """BD-09 → WGS84/CGCS2000 (both steps inverted iteratively)."""
    return from_gcj02(*bd09_to_gcj02(*_arrays(lng, lat, "BD-09")))


# --- the registry --------------------------------------------------------------------------------------------------

STORAGE_SRID = 4490
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
# GCJ-02 and BD-09 have no EPSG code and no OGC URI: they are named in citygrid's own namespace (OGC API – Features
# Part 2 allows any URI); both are longitude-first, like CRS84.
CITYGRID_URI = "https://citygrid.dev/def/crs/"
# CGCS2000 geographic, WGS84, and the CGCS2000 3° Gauss-Krüger zones 75°E…135°E (EPSG:4534–4554).
SUPPORTED_SRIDS = [4490, 4326, *range(4534, 4555)]

XY = tuple[Array, Array]
Transform = Callable[[ArrayLike, ArrayLike], XY]


def _identity(x: ArrayLike, y: ArrayLike) -> XY:
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


@lru_cache(maxsize=64)
def _transformer(src: int | str, dst: int | str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _pyproj(src: int | str, dst: int | str) -> Transform:
    def run(x: ArrayLike, y: ArrayLike) -> XY:
        a, b = _transformer(src, dst).transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return run


@dataclass(frozen=True)
class Crs:
    """One coordinate reference system: how to name it and how to go to and from storage (CGCS2000 lon/lat).

    `to_storage`/`from_storage` take and give x = longitude or easting first, whatever the CRS's official axis
    order; `northing_first` is that official order (OGC API – Features Part 2 writes it), `geographic` whether
    coordinates are degrees (answers name them lon/lat) or metres (x/y). A China-only CRS (GCJ-02, BD-09) raises
    the coded 400 `crs_offset_outside` for coordinates outside China instead of answering a wrong point.
    """

    key: str  # the short name answers carry: "EPSG:4490", "GCJ-02" …
    uri: str  # the OGC URI (or citygrid's, for GCJ-02 and BD-09)
    title: str
    srid: int | None  # what pyproj/PostGIS know it as; None for a published offset that is no EPSG system
    geographic: bool
    northing_first: bool
    to_storage: Transform = field(repr=False)
    from_storage: Transform = field(repr=False)
    aliases: tuple[str, ...] = ()
    china_only: bool = False

    @property
    def is_storage(self) -> bool:
        """Coordinates are storage coordinates as they are (CGCS2000 or CRS84 with CGCS2000 numbers)."""
        return self.to_storage is _identity

    def into_storage(self, x: ArrayLike, y: ArrayLike, field: str = "crs", row: int | None = None) -> XY:
        """Coordinates in this CRS → storage lon/lat; a refusal (outside China) names `field` (and `row`)."""
        return _named(self.to_storage, x, y, field, row)

    def out_of_storage(self, lon: ArrayLike, lat: ArrayLike, field: str = "crs") -> XY:
        """Storage lon/lat → this CRS; a refusal (outside China) names `field`."""
        return _named(self.from_storage, lon, lat, field, None)

    def point(self, lon: float, lat: float, digits: int | None = None) -> dict[str, object]:
        """A storage point as an answer names it in this CRS: {lon, lat, crs} or, projected, {x, y, crs}."""
        x, y = (float(v) for v in self.out_of_storage(lon, lat))
        nd = digits if digits is not None else (7 if self.geographic else 3)
        names = ("lon", "lat") if self.geographic else ("x", "y")
        return {names[0]: round(x, nd), names[1]: round(y, nd), "crs": self.key}


def _named(fn: Transform, x: ArrayLike, y: ArrayLike, field: str, row: int | None) -> XY:
    try:
        return fn(x, y)
    except CitygridError as e:
        e.problems[0].field, e.problems[0].row = field, row
        raise


def _epsg(srid: int, title: str, aliases: tuple[str, ...] = ()) -> Crs:
    pc = ProjCRS.from_epsg(srid)
    axis = pc.axis_info
    north = bool(axis) and axis[0].direction.lower() in ("north", "south")
    same = srid == STORAGE_SRID
    return Crs(f"EPSG:{srid}", f"{EPSG_URI}{srid}", title, srid, bool(pc.is_geographic), north,
               _identity if same else _pyproj(srid, STORAGE_SRID), _identity if same else _pyproj(STORAGE_SRID, srid),
               aliases)


CRS84 = Crs("OGC:CRS84", CRS84_URI, "CGCS2000 longitude/latitude (CRS84 axis order)", None, True, False,
            _identity, _identity, ("CRS84", "OGC:CRS84"))
CGCS2000 = _epsg(4490, "CGCS2000 (China Geodetic Coordinate System 2000), storage", ("CGCS2000",))
GCJ02 = Crs("GCJ-02", f"{CITYGRID_URI}GCJ-02", "GCJ-02 (国测局坐标: Amap, Tencent, most mini-programs), China only",
            None, True, False, from_gcj02, to_gcj02, ("GCJ02", "GCJ-02", "gcj02"), china_only=True)
BD09 = Crs("BD-09", f"{CITYGRID_URI}BD-09", "BD-09 (百度坐标: Baidu maps), China only", None, True, False,
           from_bd09, to_bd09, ("BD09", "BD-09", "bd09", "BD09LL"), china_only=True)

_GK = {s: _epsg(s, f"CGCS2000 3° Gauss-Krüger CM {75 + 3 * (s - 4534)}°E") for s in range(4534, 4555)}
REGISTRY: list[Crs] = [CRS84, CGCS2000, _epsg(4326, "WGS 84", ("WGS84",)), *_GK.values(), GCJ02, BD09]
_BY_NAME: dict[str, Crs] = {}
for _c in REGISTRY:
    for _n in (_c.key, _c.uri, *_c.aliases, *((str(_c.srid), f"{EPSG_URI}{_c.srid}") if _c.srid else ())):
        _BY_NAME.setdefault(_n.upper(), _c)


def gauss_kruger_srid(lon: float) -> int:
    """The CGCS2000 3° Gauss-Krüger zone (EPSG:4534 at 75°E … EPSG:4554 at 135°E) whose meridian is nearest."""
    cm = min(max(3 * round(lon / 3), 75), 135)
    return 4534 + (cm - 75) // 3


def uris() -> list[str]:
    """Every supported CRS as a URI, CRS84 first (the `crs` lists of OGC collections)."""
    return [c.uri for c in REGISTRY]


def names() -> str:
    return ", ".join(["CRS84", "CGCS2000 (EPSG:4490)", "EPSG:4326", "EPSG:4534–4554", "GCJ-02 (gcj02)", "BD-09 (bd09)"])


def lookup(value: str | None, field: str = "crs", *, default: Crs = CGCS2000, any_epsg: bool = False) -> Crs:
    """The CRS a request names: a short name (`gcj02`, `bd09`, `CGCS2000`, `WGS84`, `CRS84`), `EPSG:n`, an
    OGC/citygrid URI, or nothing (`default`). An unlisted EPSG system is accepted only with `any_epsg` (geometry
    intake keeps accepting whatever pyproj knows); otherwise a coded 400 naming `field`."""
    if value is None or not value.strip():
        return default
    v = value.strip().strip("[]").strip()
    hit = _BY_NAME.get(v.upper()) or _BY_NAME.get(v.upper().replace("EPSG::", "EPSG:"))
    if hit is not None:
        return hit
    if any_epsg:
        return _any(v, value, field)
    raise E.crs_unsupported(field, crs=value, supported=names())


@lru_cache(maxsize=32)
def _any_cached(v: str) -> Crs | None:
    try:
        pc = ProjCRS.from_user_input("EPSG:" + v.rsplit("/", 1)[1] if v.startswith(EPSG_URI) else v)
    except CRSError:
        return None
    epsg = pc.to_epsg()
    if epsg is not None and epsg in (4490,):
        return CGCS2000
    src = pc.to_wkt()
    axis = pc.axis_info
    return Crs(f"EPSG:{epsg}" if epsg else pc.name, f"{EPSG_URI}{epsg}" if epsg else pc.name, pc.name, epsg,
               bool(pc.is_geographic), bool(axis) and axis[0].direction.lower() in ("north", "south"),
               _pyproj(src, STORAGE_SRID), _pyproj(STORAGE_SRID, src))


def _any(v: str, value: str, field: str) -> Crs:
    c = _any_cached(v)
    if c is None:
        raise E.crs_unknown(field, crs=value)
    return c


def bbox_to_storage(bbox: tuple[float, float, float, float], c: Crs, steps: int = 16, field: str = "bbox"
                    ) -> list[tuple[float, float]]:
    """A bbox given in `c` (x/lon first) as the ring it covers in storage lon/lat, its edges densified so that a
    curved image (GCJ-02's offset varies over the box) is followed, not cut."""
    x0, y0, x1, y1 = bbox
    t = np.linspace(0.0, 1.0, steps + 1)[:-1]
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t])
    lon, lat = c.into_storage(xs, ys, field)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise E.bbox_invalid(field)
    ring = list(zip(lon.tolist(), lat.tolist(), strict=True))
    return [*ring, ring[0]]
