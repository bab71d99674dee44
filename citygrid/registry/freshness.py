"""Data freshness (数据鲜活性): the county's 数据更新目录 as a live report.

Every class has an update period in the catalog (`update_period_days`, mirrored in `object_class`). An active
object is *stale* when it was not created, updated or confirmed (`POST /objects/{code}/confirm`, or
`confirm_area` for a whole area, both in `citygrid.registry.objects`) within its class's period: all three set
`updated_at`, so stale means `greatest(created_at, updated_at) < now() - period`.

`freshness` answers per township and class, in one GROUP BY over the objects the caller may read
(`rules.readable_sql`, the same cut as `/objects`: classes that are not public stay out for the public):

- `objects`: active objects;
- `coded_pct`: objects carrying every code their class calls for — the unified code (always, the registry codes
  at creation) and, for classes with a GB/T 30428.2 component code, the component code;
- `stale` / `stale_pct`: objects older than the period;
- `last_update`: the newest creation, update or confirmation;
- the class's period and its responsible department (责任分工目录).

`by_village` gives stale % per village for the choropleth of the web page, with the same filters and rights.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypedDict

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.regions import query as divisions
from citygrid.security import rules
from citygrid.security.principal import Principal

DEFAULT_PERIOD_DAYS = 365  # the catalog's default (`ObjectClass.update_period_days`) for rows without one
_TOUCHED = "greatest(o.created_at, o.updated_at)"
_STALE = f"{_TOUCHED} < now() - make_interval(days => coalesce(oc.update_period_days, {DEFAULT_PERIOD_DAYS}))"


class FreshnessRow(TypedDict):
    township_code: str | None
    township_name: str | None
    class_code: str
    class_name: str | None
    department: str | None
    department_name: str | None
    update_period_days: int
    objects: int
    coded_pct: float
    stale: int
    stale_pct: float
    last_update: dt.datetime | None


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _filters(conn: Connection, p: Principal, division: str | None, class_code: str | None,
             department: str | None) -> tuple[list[str], dict[str, Any]]:
    """WHERE conditions (active objects the caller may read, in the area, of the class/department asked for)."""
    where = ["o.status = 'active'"]
    params: dict[str, Any] = {}
    readable, rparams = rules.readable_sql(p)
    if readable != "TRUE":
        where.append(readable)
        params |= rparams
    if division:
        d = divisions.get(conn, division)
        if d is None:
            raise E.division_unknown("division", code=division, rule_zh="", rule_en="")
        where.append(f"{rules.PLACE_SQL} LIKE :dp")
        params["dp"] = d.code + "%"
    if class_code:
        if get_catalog().get(class_code) is None:
            raise E.class_unknown("class", code=class_code)
        where.append("o.class_code = :cls")
        params["cls"] = class_code
    if department:
        catalog = get_catalog()
        if department not in catalog.departments:
            raise E.department_unknown("department", department=department)
        where.append("o.class_code = ANY(CAST(:dep_classes AS text[]))")
        params["dep_classes"] = [c.code for c in catalog.classes.values() if c.department.id == department]
    return where, params


def freshness(conn: Connection, p: Principal, division: str | None = None, class_code: str | None = None,
              department: str | None = None) -> list[FreshnessRow]:
    """Per township and class: counts, coded %, stale %, last update and the responsible department, for the
    objects the caller may read (see the module docstring). Ordered by township, then class."""
    where, params = _filters(conn, p, division, class_code, department)
    rows = conn.execute(text(
        "SELECT o.township_code, t.name AS township_name, o.class_code, oc.update_period_days AS period, "
        "count(*) AS objects, "
        "count(*) FILTER (WHERE oc.component_code IS NULL OR o.component_code IS NOT NULL) AS coded, "
        f"count(*) FILTER (WHERE {_STALE}) AS stale, max({_TOUCHED}) AS last_update "
        "FROM city_object o JOIN object_class oc ON oc.code = o.class_code "
        "LEFT JOIN division t ON t.code = o.township_code "
        "WHERE " + " AND ".join(where) + " "
        "GROUP BY o.township_code, t.name, o.class_code, oc.update_period_days "
        "ORDER BY o.township_code NULLS LAST, o.class_code"), params).all()
    catalog = get_catalog()
    out: list[FreshnessRow] = []
    for r in rows:
        cls = catalog.get(r.class_code)
        out.append({
            "township_code": r.township_code, "township_name": r.township_name, "class_code": r.class_code,
            "class_name": cls.name if cls else None,
            "department": cls.department.id if cls else None,
            "department_name": cls.department.name if cls else None,
            "update_period_days": int(r.period or DEFAULT_PERIOD_DAYS), "objects": int(r.objects),
            "coded_pct": _pct(int(r.coded), int(r.objects)), "stale": int(r.stale),
            "stale_pct": _pct(int(r.stale), int(r.objects)), "last_update": r.last_update,
        })
    return out


def by_village(conn: Connection, p: Principal, division: str | None = None, class_code: str | None = None,
               department: str | None = None) -> dict[str, Any]:
    """Stale % per village as a GeoJSON FeatureCollection of village outlines (villages without an outline are
    left out), with the same filters and rights as `freshness`."""
    where, params = _filters(conn, p, division, class_code, department)
    rows = conn.execute(text(
        "WITH v AS (SELECT o.village_code, count(*) AS objects, "
        f"count(*) FILTER (WHERE {_STALE}) AS stale "
        "FROM city_object o JOIN object_class oc ON oc.code = o.class_code "
        "WHERE o.village_code IS NOT NULL AND " + " AND ".join(where) + " GROUP BY o.village_code) "
        "SELECT v.village_code, d.name, v.objects, v.stale, ST_AsGeoJSON(ST_SimplifyPreserveTopology(d.geom, 0.0001), 6) AS g "
        "FROM v JOIN division d ON d.code = v.village_code WHERE d.geom IS NOT NULL ORDER BY v.village_code"),
        params).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r.village_code, "geometry": json.loads(r.g),
         "properties": {"code": r.village_code, "name": r.name, "objects": int(r.objects), "stale": int(r.stale),
                        "stale_pct": _pct(int(r.stale), int(r.objects))}} for r in rows]}
