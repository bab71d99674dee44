"""Mirror the catalog from `schemas/` into the database at start, so rows can reference classes by key and the
row-level security policies know which classes stay out of public layers (`object_class.public`, migration 0017)."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog


def sync_catalog(engine: Engine) -> dict[str, int]:
    cat = get_catalog()
    with engine.begin() as conn:
        for d in cat.departments.values():
            conn.execute(
                text("INSERT INTO department (id, name, name_en) VALUES (:i, :n, :e) "
                     "ON CONFLICT (id) DO UPDATE SET name=:n, name_en=:e"),
                {"i": d.id, "n": d.name, "e": d.name_en},
            )
        for c in cat.classes.values():
            conn.execute(
                text("INSERT INTO object_class (code, name, geometry_type, department_id, component_code, "
                     "attribute_schema, update_period_days, public) VALUES (:c, :n, :g, :d, :cc, CAST(:a AS jsonb), :u, :p) "
                     "ON CONFLICT (code) DO UPDATE SET name=:n, geometry_type=:g, department_id=:d, "
                     "component_code=:cc, attribute_schema=CAST(:a AS jsonb), update_period_days=:u, public=:p"),
                {"c": c.code, "n": c.name, "g": c.geometry, "d": c.department.id, "cc": c.component_code,
                 "a": json.dumps(c.to_dict(), ensure_ascii=False), "u": c.update_period_days, "p": c.public},
            )
    return {"departments": len(cat.departments), "classes": len(cat.classes)}
