"""`citygrid/db/models.py` is the picture of the migrated database; these tests keep the picture true.

The session database is built by running every migration (tests/conftest.py, through its template), so it is
the Alembic head. Three checks, each covering what the one before cannot see:

1. Alembic autogenerate finds no difference: tables, columns, types (geometry type and SRID included),
   nullability, server defaults, primary keys, foreign keys, unique constraints, index names and columns.
2. Autogenerate does not compare an index's method (GiST, GIN), its WHERE clause, INCLUDE columns or
   operator classes, nor CHECK constraints. So the models are also created in a scratch schema, inside a
   transaction that is rolled back, and every column, constraint and index is compared as PostgreSQL itself
   prints it (`pg_get_indexdef`, `pg_get_constraintdef`).
3. Triggers and their functions are not models: the list in the models' docstring must be exactly what the
   database has.

Ignored, by name: `spatial_ref_sys`, the table PostGIS creates with its extension (not ours, no migration makes
it). `alembic_version` is skipped by Alembic itself and left out of check 2 for the same reason.
"""

from __future__ import annotations

import re
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid.db import models
from citygrid.db.models import Base

NOT_OURS = ("spatial_ref_sys", "alembic_version")
SCRATCH = "models_check"


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in NOT_OURS)


def test_models_match_the_migrated_database(engine: Engine) -> None:
    with engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"compare_type": True, "compare_server_default": True,
                                                  "include_object": _ours})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], "citygrid/db/models.py differs from the migrations' head:\n" + "\n".join(map(str, diff))


DEFINITIONS = """
SELECT format('column %s.%s %s%s%s', t.relname, a.attname, format_type(a.atttypid, a.atttypmod),
              CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
              ' default ' || pg_get_expr(d.adbin, d.adrelid))
FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = :s AND t.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND t.relname <> ALL(:skip)
UNION ALL
SELECT format('constraint %s.%s %s', t.relname, k.conname, pg_get_constraintdef(k.oid))
FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = :s AND t.relname <> ALL(:skip)
UNION ALL
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = :s AND t.relname <> ALL(:skip) AND NOT i.indisprimary
"""


def _definitions(c: Connection, schema: str) -> set[str]:
    rows = c.execute(text(DEFINITIONS), {"s": schema, "skip": list(NOT_OURS)}).scalars()
    return {re.sub(rf"\b({schema}|public)\.", "", r) for r in rows}


def test_every_index_and_constraint_is_declared_as_migrated(engine: Engine) -> None:
    with engine.connect() as c, c.begin() as tx:
        c.execute(text(f"CREATE SCHEMA {SCRATCH}"))
        Base.metadata.create_all(c.execution_options(schema_translate_map={None: SCRATCH}))
        declared = _definitions(c, SCRATCH)
        migrated = _definitions(c, "public")
        tx.rollback()
    assert sorted(migrated - declared) == [], "in the migrated database, not in citygrid/db/models.py"
    assert sorted(declared - migrated) == [], "in citygrid/db/models.py, not in the migrated database"


LISTED = re.compile(r"``(\w+)`` on (\w+) → ``(\w+)\(\)``")


def test_triggers_and_functions_are_the_listed_ones(engine: Engine) -> None:
    listed = set(LISTED.findall(models.__doc__ or ""))
    with engine.connect() as c:
        triggers = {tuple(r) for r in c.execute(text(
            "SELECT g.tgname, t.relname, p.proname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_proc p ON p.oid = g.tgfoid "
            "WHERE n.nspname = 'public' AND NOT g.tgisinternal"))}
        # PL/pgSQL functions of ours: PostGIS brings some too, but those belong to its extension
        functions = set(c.execute(text(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "JOIN pg_language l ON l.oid = p.prolang WHERE n.nspname = 'public' AND l.lanname = 'plpgsql' "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
            "AND d.objid = p.oid AND d.deptype = 'e')")).scalars())
    assert triggers == listed, "the trigger list in citygrid/db/models.py's docstring is out of date"
    # and PL/pgSQL functions that are no trigger's, each named in the docstring as ``name(args)`` (PL/pgSQL
    plain = set(re.findall(r"``(\w+)\([^`]*\)`` \(PL/pgSQL", models.__doc__ or ""))
    assert functions == {f for _, _, f in listed} | plain
