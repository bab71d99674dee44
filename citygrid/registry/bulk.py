"""Bulk registration: the one path for file imports (`citygrid import`), survey approvals, the demo and benchmarks.

Registering objects one by one (`objects.create`) costs a dozen statements each; a county import of 1M objects
must not. Here the same checks run over the whole input first (the class's attribute table, name and geometry,
per row, every bad row reported with its row number), then everything is set-based in the caller's transaction:
one code block from the allocator (the ledger stays gapless: a failure rolls the block back with the rest),
one COPY into a staging table, one statement that refuses rows outside the county, one INSERT … SELECT that places
each object (township, village, unit and governance grid by its representative point, the same SQL as
`grid.assign`; H3 and the Beidou code are computed here, the latter over the whole batch with numpy, so the
row trigger that computes it for other writers is skipped), one history statement (whose
statement trigger writes the change feed), one audit row per object (`audit.record_each`, the rows the single
path writes) plus one for the act. The trigger-kept counts (agg_h3, agg_grid, layer versions) are statement
triggers on transition tables, so they cost one pass per statement, not per row.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.catalog import ObjectClass, get_catalog
from citygrid.coding.allocator import allocate
from citygrid.db import failures
from citygrid.db.engine import copy_text, driver_connection
from citygrid.errors import CitygridError, E, Problem
from citygrid.geo import check_geometry
from citygrid.grid import beidou
from citygrid.grid.assign import staged_placement_sql
from citygrid.grid.h3cells import cell_of
from citygrid.registry.objects import attr_problems, component_codes, name_problems
from citygrid.security import audit, rules
from citygrid.security.principal import Principal

_STAGE = "bulk_stage"
_STAGE_COLUMNS = "row, uid, code, component_code, township_code, village_code, name, geom, pt, h3, bgc, attrs, reason"


@dataclass
class BulkItem:
    geom: BaseGeometry  # already in EPSG:4490
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    township_code: str | None = None  # None: placed by its outline (when outlines exist)
    village_code: str | None = None
    row: int | None = None  # the row problems are reported with (a file's row); None: its index in the input


def problems_of(cls: ObjectClass, items: list[BulkItem]) -> list[Problem]:
    """Every problem of every item, with the single path's rules and answers (`objects.attr_problems`,
    `name_problems`, `check_geometry`)."""
    problems: list[Problem] = []
    for i, it in enumerate(items):
        row = i if it.row is None else it.row
        problems += attr_problems(cls, it.attrs, row)
        try:
            check_geometry(it.geom, cls.geometry, row=row)
        except CitygridError as e:
            problems += e.problems
        problems += name_problems(it.name, row)
    return problems


def bulk_create(s: Session, p: Principal, class_code: str, county: str, items: list[BulkItem], *,
                batch: str | None = None, validate: bool = True, reviewed: str | None = None,
                reasons: list[str | None] | None = None, refuse_outside: bool = True) -> list[str]:
    """Create all items or none, as `p` (who must be allowed to edit the class at every item's place, the county
    for items without one); returns their codes in input order.

    `reviewed` (a submission id): rows of a survey submission approved by `p`, whose right is the reviewer's at
    each item's township (citygrid/survey/intake.py); `reasons` go to each object's history. `refuse_outside`:
    items whose point lies outside the county are refused as the single path refuses them; False keeps them at
    county level, unplaced (synthetic test and benchmark data spread over a bounding box). Rows reach
    `city_object` through the staging table and INSERT … SELECT, which row-level security allows (COPY into a
    table under RLS is refused, and the reviewer's transaction is area-scoped)."""
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
        problems = problems_of(cls, items)
        if problems:
            raise CitygridError(problems, "unprocessable")
    failures.check([by, *((it.name, it.attrs) for it in items), reasons])  # COPY skips the engine's check
    codes = allocate(s, p, county, class_code, len(items), batch=batch, state="assigned", checked=reviewed is not None)
    comp = component_codes(s, cls, county, len(items))
    _stage(s, items, codes, comp, reasons)
    if refuse_outside:
        _refuse_outside(s, county)
    grids = bool(s.execute(text("SELECT EXISTS (SELECT 1 FROM grid WHERE code LIKE :p)"), {"p": county + "%"})
                 .scalar_one())
    s.execute(text(f"CREATE INDEX ON {_STAGE} USING gist (pt); ANALYZE {_STAGE}"))
    s.execute(text("SET LOCAL jit = off"))  # many short index probes: compiling costs more than it saves
    s.execute(text(
        "INSERT INTO city_object (uid, code, class_code, division_code, township_code, village_code, component_code, "
        "name, geom, h3, bgc, attrs, created_by, updated_by, unit_grid, gov_grid) "
        "SELECT st.uid, st.code, CAST(:cls AS text), CAST(:county AS text), pl.township_code, pl.village_code, "
        "st.component_code, st.name, st.geom, st.h3, st.bgc, st.attrs, CAST(:by AS text), CAST(:by AS text), pl.unit_grid, "
        f"pl.gov_grid FROM {_STAGE} st JOIN ({staged_placement_sql(_STAGE, grids)}) pl ON pl.row = st.row "
        "ORDER BY st.row"),
        {"cls": class_code, "county": county, "by": by})
    s.execute(text(
        "INSERT INTO city_object_history (uid, version, code, op, name, geom, attrs, status, division_code, "
        "changed_by, changed_at, reason) SELECT o.uid, o.version, o.code, 'create', o.name, o.geom, o.attrs, o.status, "
        f"o.division_code, o.created_by, o.updated_at, st.reason FROM {_STAGE} st JOIN city_object o ON o.uid = st.uid "
        f"ORDER BY st.row; DROP TABLE {_STAGE}"))
    audit.record_each(s, p, "create", codes, [list(it.attrs) for it in items], detail={"class": class_code})
    audit.record(s, p, "bulk_create", class_code, detail={"count": len(codes), "county": county, "batch": batch,
                                                            "first": codes[0], "last": codes[-1]}
                 | ({"submission": reviewed} if reviewed else {}))
    return codes


def _stage(s: Session, items: list[BulkItem], codes: list[str], comp: list[str | None],
           reasons: list[str | None] | None) -> None:
    """The rows, with their codes, representative points (GEOS's point on surface, as PostGIS's) and H3 cells,
    COPied into a staging table dropped at the end of the call; geometries encoded in one vectorised pass."""
    s.execute(text(f"CREATE TEMPORARY TABLE {_STAGE} (row int, uid uuid, code text, component_code text, "
                   "township_code text, village_code text, name text, geom geometry(Geometry, 4490), "
                   "pt geometry(Point, 4490), h3 bigint, bgc text, attrs jsonb, reason text) ON COMMIT DROP"))
    geoms = shapely.set_srid(np.array([it.geom for it in items], dtype=object), 4490)
    pts = shapely.point_on_surface(geoms)
    ghex = shapely.to_wkb(geoms, hex=True, include_srid=True)
    phex = shapely.to_wkb(pts, hex=True, include_srid=True)
    bgcs = beidou.encode_many(shapely.get_x(pts), shapely.get_y(pts))
    buf = io.StringIO()
    for i, (code, cc, it) in enumerate(zip(codes, comp, items, strict=True)):
        buf.write("\t".join([
            str(i if it.row is None else it.row), str(uuid.uuid4()), code, copy_text(cc), copy_text(it.township_code),
            copy_text(it.village_code), copy_text(it.name), ghex[i], phex[i], str(cell_of(pts[i])), copy_text(bgcs[i]),
            copy_text(json.dumps(it.attrs, ensure_ascii=False)), copy_text(reasons[i] if reasons else None),
        ]) + "\n")
    raw = driver_connection(s.connection())
    with raw.cursor() as cur, cur.copy(f"COPY {_STAGE} ({_STAGE_COLUMNS}) FROM STDIN") as cp:
        cp.write(buf.getvalue())


def _refuse_outside(s: Session, county: str) -> None:
    """Rows whose representative point lies outside the county's outline (when it has one): the single path's
    `geom_outside_division`, for every such row at once."""
    out = s.execute(text(
        f"SELECT st.row, d.name FROM {_STAGE} st JOIN division d ON d.code = :c AND d.geom IS NOT NULL "
        "WHERE NOT ST_Intersects(d.geom, st.pt) ORDER BY st.row"), {"c": county}).all()
    if out:
        raise CitygridError([E.geom_outside_division.problem("geometry", r.row, name_zh=r.name, county=county)
                             for r in out], "unprocessable")
