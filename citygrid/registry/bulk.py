"""Bulk creation for imports and the demo: one code block, one COPY, one history statement.

Creating objects one by one costs several round trips each; a county import of 100k objects must not.
Everything still happens in the caller's transaction, with the same validation and the same history.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.catalog import get_catalog
from citygrid.coding.allocator import allocate
from citygrid.coding.scheme import component_scheme
from citygrid.db import failures
from citygrid.db.engine import driver_connection
from citygrid.errors import CitygridError, E, Problem
from citygrid.geo import check_geometry
from citygrid.grid.assign import assign_objects
from citygrid.grid.h3cells import cell_of
from citygrid.security import audit, rules
from citygrid.security.principal import Principal


@dataclass
class BulkItem:
    geom: BaseGeometry  # already in EPSG:4490
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    township_code: str | None = None
    village_code: str | None = None


def _esc(v: str | None) -> str:
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def bulk_create(s: Session, p: Principal, class_code: str, county: str, items: list[BulkItem], *,
                batch: str | None = None, validate: bool = True, reviewed: str | None = None,
                reasons: list[str | None] | None = None) -> list[str]:
    """Create all items or none, as `p` (who must be allowed to edit the class at every item's place);
    returns their codes in input order.

    `reviewed` (a submission id): rows of a survey submission approved by `p`, whose right is the reviewer's at
    each item's township (citygrid/survey/intake.py); `reasons` go to each object's history. The rows then reach
    `city_object` through a temporary table and INSERT … SELECT, since PostgreSQL refuses COPY into a table under
    row-level security (the reviewer's transaction is area-scoped)."""
    if not items:
        return []
    cls = get_catalog().get(class_code)
    if cls is None:
        raise E.class_unknown("class_code", code=class_code)
    for place in {rules.place_of(it.village_code, it.township_code, county) for it in items}:
        if reviewed is None:
            rules.require_edit_class(p, cls, place, "批量登记对象", "creating objects in bulk")
        else:
            rules.require_review(p, place or county)
    by = p.name
    if validate:
        problems: list[Problem] = []
        for i, it in enumerate(items):
            problems += [Problem(p.error_code, p.message_zh, p.message_en, f"attrs.{p.field}", i)
                         for p in cls.validate_attrs(it.attrs)]
            try:
                check_geometry(it.geom, cls.geometry, row=i)
            except CitygridError as e:
                problems += e.problems
            if len(problems) > 1000:
                break
        if problems:
            raise CitygridError(problems, "unprocessable")
    codes = allocate(s, p, county, class_code, len(items), batch=batch, state="assigned", checked=reviewed is not None)
    comp: list[str | None] = [None] * len(items)
    if cls.component_code:
        end = s.execute(
            text("INSERT INTO code_counter (division_code, class_code, next_serial) VALUES (:d, :c, :n + 1) "
                 "ON CONFLICT (division_code, class_code) DO UPDATE SET next_serial = code_counter.next_serial + :n "
                 "RETURNING next_serial"),
            {"d": county, "c": "c" + cls.component_code, "n": len(items)},
        ).scalar_one()
        first = int(end) - len(items)
        sch = component_scheme()
        limit = 10 ** sch.segment("serial").length - 1
        if int(end) - 1 > limit:
            raise E.alloc_exhausted("class_code", division=county, series="c" + cls.component_code, limit=limit)
        comp = [sch.encode(division=county, major=cls.component_code[:2], minor=cls.component_code[2:], serial=first + i)
                for i in range(len(items))]
    failures.check([by, *((it.name, it.attrs) for it in items)])  # COPY skips the engine's parameter check
    buf = io.StringIO()
    for code, cc, it in zip(codes, comp, items, strict=True):
        buf.write("\t".join([
            str(uuid.uuid4()), code, class_code, county, _esc(it.township_code), _esc(it.village_code), _esc(cc),
            _esc(it.name), "SRID=4490;" + it.geom.wkb_hex, str(cell_of(it.geom)), _esc(json.dumps(it.attrs, ensure_ascii=False)), _esc(by),
            _esc(by),
        ]) + "\n")
    columns = ("uid, code, class_code, division_code, township_code, village_code, component_code, name, geom, h3, "
               "attrs, created_by, updated_by")
    target = "city_object"
    if reviewed is not None:
        target = "bulk_city_object"
        s.execute(text(f"CREATE TEMPORARY TABLE {target} ON COMMIT DROP AS SELECT {columns} FROM city_object "
                       "WITH NO DATA"))
    raw = driver_connection(s.connection())
    with raw.cursor() as cur, cur.copy(f"COPY {target} ({columns}) FROM STDIN") as cp:
        cp.write(buf.getvalue())
    if reviewed is not None:
        s.execute(text(f"INSERT INTO city_object ({columns}) SELECT {columns} FROM {target}; DROP TABLE {target}"))
    s.execute(text(
        "INSERT INTO city_object_history (uid, version, code, op, name, geom, attrs, status, division_code, "
        "changed_by, changed_at, reason) SELECT o.uid, o.version, o.code, 'create', o.name, o.geom, o.attrs, o.status, "
        "o.division_code, o.created_by, o.created_at, r.reason FROM city_object o "
        "JOIN unnest(CAST(:codes AS text[]), CAST(:reasons AS text[])) AS r(code, reason) ON r.code = o.code"),
        {"codes": codes, "reasons": reasons or [None] * len(codes)})
    if s.execute(text("SELECT EXISTS (SELECT 1 FROM grid WHERE code LIKE :p)"), {"p": county + "%"}).scalar_one():
        assign_objects(s.connection(), codes=codes)  # grids exist: every object knows its grids from the start
    audit.record(s, p, "bulk_create", class_code, detail={"count": len(codes), "county": county, "batch": batch,
                                                            "first": codes[0], "last": codes[-1]}
                 | ({"submission": reviewed} if reviewed else {}))
    return codes
