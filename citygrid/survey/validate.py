"""Cells → values the registry stores, and every problem at once, each naming the row, the field, the value and
what to do, in Chinese with an English twin.

Tolerant of what people type: full-width digits and punctuation (NFKC), trailing spaces, 是/否/√/×, dates as
2024年3月5日, 2024.3.5, 2024/3/5 or Excel serials, numbers with thousands separators; enumerations matched
after the same normalisation, else the nearest allowed value is offered. The catalog then checks ranges,
lengths and patterns (`ObjectClass.validate_attrs`), so the rules live in one place.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from rapidfuzz import process as fuzz_process
from shapely import wkt
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from citygrid import crs as gcj
from citygrid.catalog import Attribute, ObjectClass
from citygrid.errors import CitygridError, E, Problem, detail
from citygrid.geo import check_geometry
from citygrid.survey.columns import columns, crs_of, is_point

TRUE_WORDS = frozenset({"是", "√", "✓", "✔", "y", "yes", "true", "t", "1", "对", "有", "on"})
FALSE_WORDS = frozenset({"否", "×", "✗", "✘", "x", "n", "no", "false", "f", "0", "错", "无", "off"})
_DATE = re.compile(r"(\d{4})\s*[年./\-]\s*(\d{1,2})\s*[月./\-]\s*(\d{1,2})\s*日?")
_EXCEL_EPOCH = dt.date(1899, 12, 30)
Resolver = Callable[[str], dict[str, Any]]  # an address → the resolver's answer (citygrid/address/resolve.py)


@dataclass
class Row:
    row: int
    cells: dict[str, Any]
    name: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    geom: BaseGeometry | None = None
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    xy: tuple[float, float] | None = None  # a point's numbers as written, before `_place_points`
    xy_crs: str = "CGCS2000"
    declared: str = "CGCS2000"  # the coordinate system the row's location was declared in
    xy_storage: tuple[float, float] | None = None  # a point's storage lon/lat

    def cells_json(self) -> dict[str, Any]:
        return {k: v if isinstance(v, str | int) else _jsonable(v) for k, v in self.cells.items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime | dt.time):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def clean(v: Any) -> Any:
    """Strings NFKC-normalised (full-width → half-width) and stripped; blank → None."""
    if isinstance(v, str):
        t = unicodedata.normalize("NFKC", v).strip()
        return t or None
    return v


def _shown(v: Any) -> str:
    t = v.isoformat() if isinstance(v, dt.date) else str(v)
    return t if len(t) <= 40 else t[:39] + "…"


def _unit(a: Attribute) -> tuple[str, str]:
    return (f"（单位 {a.unit}）", f" (unit {a.unit})") if a.unit else ("", "")


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            f = float(v.replace(",", "").replace("，", ""))
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _date(v: Any) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date() if v.time() == dt.time() else None
    if isinstance(v, dt.date):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v < 2958466 and float(v).is_integer():
        return _EXCEL_EPOCH + dt.timedelta(days=int(v))
    if isinstance(v, str):
        m = _DATE.fullmatch(v)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
        if v.isdigit() and 20000 <= int(v) <= 80000:
            return _EXCEL_EPOCH + dt.timedelta(days=int(v))
    return None


def convert(a: Attribute, v: Any, row: int) -> tuple[Any, Problem | None]:
    """One cell as the attribute's type; a problem (and the cell unchanged) when it cannot be."""
    label = {"label_zh": a.label, "label_en": f"{a.label} ({a.field})"}
    value = {"value": _shown(v)} if a.level not in ("L3", "L4") else {"value": "…"}
    if a.type == "integer":
        f = _number(v)
        if f is None or not f.is_integer():
            uz, ue = _unit(a)
            return v, E.cell_integer.problem(a.field, row, **label, **value, unit_zh=uz, unit_en=ue)
        return int(f), None
    if a.type == "number":
        f = _number(v)
        if f is None:
            uz, ue = _unit(a)
            return v, E.cell_number.problem(a.field, row, **label, **value, unit_zh=uz, unit_en=ue)
        return (int(f) if f.is_integer() and isinstance(v, int) else f), None
    if a.type == "boolean":
        if isinstance(v, bool):
            return v, None
        t = str(v).strip().lower() if not isinstance(v, float) else str(int(v)) if v.is_integer() else str(v)
        if t in TRUE_WORDS:
            return True, None
        if t in FALSE_WORDS:
            return False, None
        return v, E.cell_boolean.problem(a.field, row, **label, **value)
    if a.type == "date":
        d = _date(v)
        if d is None:
            return v, E.cell_date.problem(a.field, row, **label, **value)
        return d.isoformat(), None
    if a.type == "enum" and a.enum:
        t = str(v)
        if t in a.enum:
            return t, None
        norm = {unicodedata.normalize("NFKC", e).lower().replace(" ", ""): e for e in a.enum}
        key = t.lower().replace(" ", "")
        if key in norm:
            return norm[key], None
        best = fuzz_process.extractOne(t, a.enum)
        hint_zh, hint_en = (f"，是否应为“{best[0]}”？", f"; did you mean '{best[0]}'?") if best else ("", "")
        return v, E.cell_enum.problem(a.field, row, **label, **value, choices_zh="、".join(a.enum),
                                      choices_en=", ".join(a.enum), hint_zh=hint_zh, hint_en=hint_en)
    if a.type == "string" and not isinstance(v, str):
        if isinstance(v, float) and v.is_integer():
            return str(int(v)), None
        return _shown(v), None
    return v, None


def _in_china(lon: float, lat: float) -> bool:
    return 73 <= lon <= 136 and 3 <= lat <= 54


def _transformer(crs: str) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """Coordinates in `crs` (a key `columns.crs_of` gives) → storage lon/lat; None when they are storage already."""
    if crs == "GCJ-02":
        return gcj.from_gcj02
    c = gcj.lookup("WGS84" if crs == "WGS84" else crs, any_epsg=True) if crs != "CGCS2000" else None
    if c is None or c.is_storage:
        return None
    return c.to_storage


def _to_4490(g: BaseGeometry, crs: str) -> BaseGeometry:
    fn = _transformer(crs)
    if fn is None:
        return g
    return shapely.transform(g, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))


def gk_system(x: float, y: float, declared: str | None, home_cm: int | None) -> tuple[float, float, int] | None:
    """Gauss-Krüger (easting, northing, EPSG code) from two numbers in either order: the northing of China is
    1,000,000-6,000,000 m; an easting is 8 digits with its 3° zone in front (38512345.67: zone 38, CM 114°E,
    EPSG:4526) or 6 digits without (512345.67), whose meridian is declared (`GK:114`, `EPSG:4547`) or, failing
    that, the village's (`home_cm`). None when the numbers are no Gauss-Krüger pair."""
    north = [v for v in (x, y) if 1_000_000 <= v <= 6_100_000]
    east = [v for v in (x, y) if 10_000_000 <= v < 46_000_000 or 100_000 <= v < 900_000]
    if len(north) != 1 or len(east) != 1 or north[0] == east[0]:
        return None
    e, n = east[0], north[0]
    if e >= 10_000_000:
        zone = int(e // 1_000_000)
        return (e, n, 4513 + zone - 25) if 25 <= zone <= 45 else None
    cm = None
    if declared and declared.startswith("GK:"):
        cm = int(declared[3:])
    elif declared and declared.startswith("EPSG:"):
        srid = int(declared[5:])
        cm = 75 + 3 * (srid - 4534) if srid >= 4534 else 3 * (srid - 4513 + 25)
    cm = cm or home_cm
    return (e, n, 4534 + (cm - 75) // 3) if cm is not None and 75 <= cm <= 135 else None


def _point(r: Row, crs: str, resolve: Resolver | None, home_cm: int | None) -> None:
    """The row's coordinates as numbers (r.xy, in r.xy_crs), transformed later in one call per system; or its
    address resolved; or a problem."""
    got = {k: clean(r.cells.get(k)) for k in ("loc_lon", "loc_lat", "loc_x", "loc_y", "loc_address")}
    pair = [("loc_lon", got["loc_lon"], "经度"), ("loc_lat", got["loc_lat"], "纬度")]
    if got["loc_lon"] is None and got["loc_lat"] is None:
        pair = [("loc_x", got["loc_x"], "X坐标"), ("loc_y", got["loc_y"], "Y坐标")]
    if pair[0][1] is None and pair[1][1] is None:
        address = got["loc_address"]
        if address is None:
            r.problems.append(E.location_missing.problem("loc_lon", r.row))
            return
        answer = resolve(str(address)) if resolve is not None else {"candidates": []}
        best = (answer.get("candidates") or [None])[0]
        if best and best.get("point") and best.get("level") in ("door", "building", "unit", "floor", "room",
                                                                  "compound"):
            r.xy, r.xy_crs = (float(best["point"]["lon"]), float(best["point"]["lat"])), "CGCS2000"
            return
        hint = best.get("address") if best else None
        r.problems.append(E.address_unresolved.problem(
            "loc_address", r.row, value=_shown(address), hint_zh=f"，最接近的是“{hint}”" if hint else "，请检查路名和门牌号",
            hint_en=f"; the closest is '{hint}'" if hint else "; check the road name and number"))
        return
    coords: list[float] = []
    for key, v, label in pair:
        f = _number(str(v).rstrip("°ENSensw") if isinstance(v, str) else v) if v is not None else None
        if f is None:
            r.problems.append(E.location_number.problem(key, r.row, label_zh=label, label_en=key.removeprefix("loc_"),
                                                        value=_shown(v) if v is not None else ""))
        else:
            coords.append(f)
    if len(coords) < 2:
        return
    lon, lat = coords
    if abs(lon) > 180 or abs(lat) > 180:  # metres: Gauss-Krüger
        gk = gk_system(lon, lat, crs, home_cm)
        if gk is None:
            r.problems.append(E.location_gk.problem(pair[0][0], r.row, x=lon, y=lat))
            return
        r.xy, r.xy_crs = (gk[0], gk[1]), f"EPSG:{gk[2]}"
        return
    if not _in_china(lon, lat):
        if _in_china(lat, lon):
            r.problems.append(E.location_swapped.problem(pair[0][0], r.row, lon=lon, lat=lat))
        else:
            r.problems.append(E.location_outside_china.problem(pair[0][0], r.row, lon=lon, lat=lat))
        return
    r.xy, r.xy_crs = (lon, lat), crs if crs in ("CGCS2000", "WGS84", "GCJ-02") else "CGCS2000"


def _place_points(rows: list[Row]) -> None:
    """Every row's numbers to storage points: one transform per coordinate system, one `shapely.points` call."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if r.xy is not None:
            groups.setdefault(r.xy_crs, []).append(r)
    for crs, group in groups.items():
        xs = np.fromiter((r.xy[0] for r in group if r.xy), dtype=np.float64, count=len(group))
        ys = np.fromiter((r.xy[1] for r in group if r.xy), dtype=np.float64, count=len(group))
        fn = _transformer(crs)
        if fn is not None:
            xs, ys = (np.asarray(v, dtype=np.float64) for v in fn(xs, ys))
        points: list[BaseGeometry] = np.asarray(shapely.points(np.column_stack([xs, ys])), dtype=object).tolist()
        for r, x, y, p in zip(group, xs.tolist(), ys.tolist(), points, strict=True):
            if not (math.isfinite(x) and math.isfinite(y) and _in_china(x, y)):
                r.problems.append(E.location_outside_china.problem(
                    "loc_x" if r.cells.get("loc_x") is not None else "loc_lon", r.row,
                    lon=round(x, 6) if math.isfinite(x) else "-", lat=round(y, 6) if math.isfinite(y) else "-"))
                continue
            r.geom, r.xy_storage = p, (x, y)


def _geometry(r: Row, cls: ObjectClass, crs: str, home_cm: int | None = None) -> None:
    v = clean(r.cells.get("loc_geometry"))
    if v is None:
        r.problems.append(E.location_missing.problem("loc_geometry", r.row))
        return
    text = str(v)
    try:
        g = shape(json.loads(text)) if text.lstrip().startswith("{") else wkt.loads(text)
    except Exception as exc:  # shapely and json raise several kinds for malformed text
        r.problems.append(E.location_geometry.problem("loc_geometry", r.row, value=_shown(text),
                                                      **detail(f"（{str(exc)[:80]}）", f" ({str(exc)[:80]})")))
        return
    x0, y0, x1, y1 = g.bounds
    if not g.is_empty and max(abs(x0), abs(y0), abs(x1), abs(y1)) > 180:  # metres: Gauss-Krüger
        gk = gk_system(x0, y0, crs, home_cm)
        if gk is None:
            r.problems.append(E.location_gk.problem("loc_geometry", r.row, x=x0, y=y0))
            return
        if gk[0] != x0:  # northing written first: swap every coordinate
            g = shapely.transform(g, lambda xy: xy[:, ::-1].copy())
        g = _to_4490(g, f"EPSG:{gk[2]}")
        crs = "CGCS2000"
        x0, y0, x1, y1 = g.bounds
    elif crs.startswith(("GK:", "EPSG:")):  # degrees under a projected declaration: they are degrees
        crs = "CGCS2000"
    if g.is_empty or not (_in_china(x0, y0) and _in_china(x1, y1)):
        r.problems.append(E.location_outside_china.problem("loc_geometry", r.row, lon=round(x0, 6), lat=round(y0, 6)))
        return
    g = _to_4490(g, crs)
    try:
        check_geometry(g, cls.geometry, "loc_geometry", r.row)
    except CitygridError as e:  # wrong type, or invalid (self-intersection: the reason says where)
        r.problems += e.problems
        return
    r.geom = g


def check(cls: ObjectClass, cells: list[tuple[int, dict[str, Any]]], file_crs: str | None = None,
          resolve: Resolver | None = None, home_lon: float | None = None) -> list[Row]:
    """Every row converted and checked on its own and against the others (duplicates); places are checked by
    `intake` against the database. `home_lon`: the village's longitude, whose 3° zone Gauss-Krüger eastings
    without a zone prefix or declaration are taken in."""
    cols = [(key, col.attribute) for key, col in ((c.key, c) for c in columns(cls)) if col.attribute is not None]
    default_crs = (crs_of(file_crs) if file_crs else None) or "CGCS2000"
    home_cm = 3 * round(home_lon / 3) if home_lon is not None else None
    point_class = is_point(cls)
    out: list[Row] = []
    for n, raw in cells:
        r = Row(n, raw)
        cleaned = {k: clean(v) for k, v in raw.items()}
        name = cleaned.get("name")
        r.name = str(name)[:200] if name is not None else None
        crs = default_crs
        if cleaned.get("loc_crs") is not None:
            c = crs_of(str(cleaned["loc_crs"]))
            if c is None:
                r.problems.append(E.location_crs.problem("loc_crs", n, value=_shown(cleaned["loc_crs"])))
            else:
                crs = c
        r.declared = crs
        if point_class and not (cleaned.get("loc_geometry") is not None and all(
                cleaned.get(k) is None for k in ("loc_lon", "loc_lat", "loc_x", "loc_y"))):
            _point(r, crs, resolve, home_cm)
        else:
            _geometry(r, cls, crs, home_cm)
        for key, a in cols:
            v = cleaned.get(key)
            if v is None:
                continue
            value, problem = convert(a, v, n)
            if problem is not None:
                r.problems.append(problem)
            else:
                r.attrs[key] = value
        bad = {p.field for p in r.problems}
        for fp in cls.validate_attrs(r.attrs):
            if fp.field not in bad:
                r.problems.append(Problem(fp.error_code, fp.message_zh, fp.message_en, fp.field, n))
        out.append(r)
    _place_points(out)
    return out


def file_duplicates(rows: list[Row]) -> None:
    """Rows that repeat an earlier row of the file (same name, place and attributes): `row_duplicate`."""
    seen: dict[str, int] = {}
    for r in rows:
        if r.geom is None:
            continue
        where = (round(r.xy_storage[0], 7), round(r.xy_storage[1], 7)) if r.xy_storage else r.geom.wkb_hex
        key = json.dumps([r.name, where, r.attrs], ensure_ascii=False, sort_keys=True, default=str)
        if key in seen:
            r.problems.append(E.row_duplicate.problem(None, r.row, other=seen[key]))
        seen.setdefault(key, r.row)
