"""`citygrid import FILE --class …`: a department's or operator's whole file registered at once, without the
village-by-village review of survey intake (a county's existing inventory moving in, a province's export).

The file is read and checked exactly as an upload is (`read`, `validate.check`: the class's template columns, xlsx,
CSV or GIS files, coordinates in any CRS the intake accepts), every problem of every row reported with its row in
the file, and nothing registered unless every row is good; then all rows go through the one bulk path
(`registry.bulk.bulk_create`) in one transaction: all or nothing, one code block.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.catalog import get_catalog
from citygrid.errors import CitygridError, E, Problem
from citygrid.jobs import Progress
from citygrid.regions import query as divisions
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import Principal
from citygrid.survey import read, validate

MAX_ROWS = 5_000_000  # a county's inventory; uploads keep read.MAX_ROWS
CHUNK = 50_000  # rows per bulk_create call (one COPY buffer in memory at a time), all in one transaction


def import_file(engine: Engine, p: Principal, class_code: str, data: bytes, *, county: str | None = None,
                crs: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Register every row of the file, or none (a CitygridError listing every bad row); the codes' range."""
    progress = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    cls = get_catalog().get(class_code)
    if cls is None:
        raise E.class_unknown("class_code", code=class_code)
    table = read.read(cls, data, max_rows=MAX_ROWS)
    progress("import: check rows", 0, len(table.rows))
    rows = validate.check(cls, table.rows, crs)
    problems: list[Problem] = [pr for r in rows for pr in r.problems]
    if problems:
        raise CitygridError(problems, "unprocessable")
    progress("import: check rows", len(rows), len(rows))
    items = [BulkItem(r.geom, r.attrs, r.name, row=r.row) for r in rows if r.geom is not None]
    with Session(engine) as s, s.begin():
        if county is None:  # the county of the first row; rows elsewhere are refused by the bulk path
            county = divisions.containing(s.connection(), items[0].geom.representative_point().wkt, 3)
            if county is None:
                raise E.division_required("division_code", items[0].row)
        elif (d := divisions.get(s.connection(), county)) is None or d.level != 3:
            raise E.division_unknown("division_code", code=county, rule_zh="或不是县级", rule_en=" or is not a county")
        codes: list[str] = []
        for start in range(0, len(items), CHUNK):
            codes += bulk_create(s, p, cls.code, county, items[start:start + CHUNK], batch=f"import:{class_code}")
            progress("import: register", len(codes), len(items))
    elapsed = time.perf_counter() - t0
    return {"class_code": cls.code, "county": county, "objects": len(codes), "first": codes[0], "last": codes[-1],
            "elapsed_s": round(elapsed, 2), "objects_per_s": round(len(codes) / elapsed)}
