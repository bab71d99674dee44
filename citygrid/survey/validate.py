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
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from citygrid import crs as gcj
from citygrid.catalog import Attribute, ObjectClass
from citygrid.errors import CitygridError, E, Problem, detail
from citygrid.geo import check_geometry
from citygrid.survey.columns import Column, columns, crs_of, is_point

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

    def cells_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.cells.items()}


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


def _to_4490(g: BaseGeometry, crs: str) -> BaseGeometry:
    if crs == "GCJ-02":
        return shapely.transform(g, lambda xy: np.column_stack(gcj.from_gcj02(xy[:, 0], xy[:, 1])))
    c = gcj.lookup(crs) if crs == "WGS84" else None  # the one CRS registry (citygrid/crs.py)
    if c is None or c.is_storage:
        return g
    return shapely.transform(g, lambda xy: np.column_stack(c.into_storage(xy[:, 0], xy[:, 1])))


def _in_china(lon: float, lat: float) -> bool:
    return 73 <= lon <= 136 and 3 <= lat <= 54


def _point(r: Row, crs: str, resolve: Resolver | None) -> None:
    lon_raw, lat_raw, address = clean(r.cells.get("loc_lon")), clean(r.cells.get("loc_lat")), clean(
        r.cells.get("loc_address"))
    if lon_raw is None and lat_raw is None:
        if address is None:
            r.problems.append(E.location_missing.problem("loc_lon", r.row))
            return
        answer = resolve(str(address)) if resolve is not None else {"candidates": []}
        best = (answer.get("candidates") or [None])[0]
        if best and best.get("point") and best.get("level") in ("door", "building", "unit", "floor", "room",
                                                                  "compound"):
            r.geom = Point(best["point"]["lon"], best["point"]["lat"])
            return
        hint = best.get("address") if best else None
        r.problems.append(E.address_unresolved.problem(
            "loc_address", r.row, value=_shown(address), hint_zh=f"，最接近的是“{hint}”" if hint else "，请检查路名和门牌号",
            hint_en=f"; the closest is '{hint}'" if hint else "; check the road name and number"))
        return
    coords: list[float] = []
    for key, v, label in (("loc_lon", lon_raw, "经度"), ("loc_lat", lat_raw, "纬度")):
        f = _number(str(v).rstrip("°ENSensw") if isinstance(v, str) else v)
        if f is None:
            r.problems.append(E.location_number.problem(key, r.row, label_zh=label, label_en=key.removeprefix("loc_"), value=_shown(v)))
        else:
            coords.append(f)
    if len(coords) < 2:
        return
    lon, lat = coords
    if not _in_china(lon, lat):
        if _in_china(lat, lon):
            r.problems.append(E.location_swapped.problem("loc_lon", r.row, lon=lon, lat=lat))
        else:
            r.problems.append(E.location_outside_china.problem("loc_lon", r.row, lon=lon, lat=lat))
        return
    r.geom = _to_4490(Point(lon, lat), crs)


def _geometry(r: Row, cls: ObjectClass, crs: str) -> None:
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
          resolve: Resolver | None = None) -> list[Row]:
    """Every row converted and checked on its own and against the others (duplicates); places are checked by
    `intake` against the database."""
    cols: dict[str, Column] = {c.key: c for c in columns(cls)}
    default_crs = crs_of(file_crs) if file_crs else "CGCS2000"
    out: list[Row] = []
    seen: dict[str, int] = {}
    for n, raw in cells:
        r = Row(n, raw)
        cleaned = {k: clean(v) for k, v in raw.items()}
        name = cleaned.get("name")
        r.name = str(name)[:200] if name is not None else None
        crs = default_crs or "CGCS2000"
        if cleaned.get("loc_crs") is not None:
            c = crs_of(str(cleaned["loc_crs"]))
            if c is None:
                r.problems.append(E.location_crs.problem("loc_crs", n, value=_shown(cleaned["loc_crs"])))
            else:
                crs = c
        if is_point(cls):
            _point(r, crs, resolve)
        else:
            _geometry(r, cls, crs)
        for key, col in cols.items():
            a = col.attribute
            if a is None:
                continue
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
        key = json.dumps([r.name, r.geom.wkt if r.geom is not None else None, r.attrs], ensure_ascii=False,
                         sort_keys=True, default=str)
        if r.geom is not None and key in seen:
            r.problems.append(E.row_duplicate.problem(None, n, other=seen[key]))
        seen.setdefault(key, n)
        out.append(r)
    return out
