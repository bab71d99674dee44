"""Run Alembic migrations programmatically (every start migrates from wherever the database is)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from citygrid.db import failures
from citygrid.db.engine import engine_for

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class SchemaError(RuntimeError):
    """The database's schema is not one this code can migrate from; the message says what to do."""


def check_revision(url: str) -> str | None:
    """The database's migration revision (None: not migrated yet); refuses a revision this code does not know,
    that is a database migrated by a newer citygrid, rather than letting Alembic fail half-way with its own words.
    (A half-applied migration cannot be left: all migrations of a start run in one transaction, env.py.)"""
    from alembic.script import ScriptDirectory

    with engine_for(url).connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if exists else None
    if current is None:
        return None
    scripts = ScriptDirectory.from_config(alembic_config(url))
    if current not in {s.revision for s in scripts.walk_revisions()}:
        raise SchemaError(
            f"the database is at migration {current}, which this citygrid does not know (its newest is "
            f"{scripts.get_current_head()}): it was migrated by a newer version. Run that version, or restore a backup "
            f"taken before it; citygrid will not start against a schema it does not know.")
    return str(current)


def extensions(url: str) -> None:
    """The extensions migrations assume, and what a dump cannot carry (a restore calls this too): pgaudit where the
    server preloads it, PostGIS's && marked LEAKPROOF."""
    with engine_for(url).begin() as conn:
        # Extensions first: migrations assume them. Needs a superuser or trusted extensions.
        superuser = bool(conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar())
        # pgaudit is the server's business (private cluster, citygrid/db/cluster.py); only a superuser may look
        pgaudit = superuser and "pgaudit" in str(conn.execute(text("SHOW shared_preload_libraries")).scalar())
        if pgaudit:
            conn.execute(text("SET LOCAL pgaudit.log = 'none'"))  # PostGIS refuses to install under pgaudit
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        if pgaudit:  # its event triggers name the objects of DDL statements in the server log
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pgaudit"))
        leakproof = conn.execute(text(
            "SELECT bool_and(proleakproof) FROM pg_proc WHERE proname IN ('geometry_overlaps', 'geography_overlaps')"
        )).scalar()
        if superuser and not leakproof:  # bbox indexes under row-level security (0017 explains); a PostGIS upgrade
            conn.execute(text("ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF"))  # resets them
            conn.execute(text("ALTER FUNCTION geography_overlaps(geography, geography) LEAKPROOF"))
        elif not leakproof:
            print("citygrid: PostGIS's && is not LEAKPROOF and this user may not change it, so bbox queries of "
                  "area-scoped callers scan instead of using the spatial index. As a superuser: ALTER FUNCTION "
                  "geometry_overlaps(geometry, geometry) LEAKPROOF; ALTER FUNCTION geography_overlaps(geography, "
                  "geography) LEAKPROOF; (README: Database roles)", file=sys.stderr)


def _head(url: str) -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config(url)).get_current_head())


def upgrade(url: str) -> None:
    """Migrate to head, then check that the tables and columns of `models.py` are there; a migration that fails, or
    a schema that says it is at a revision whose tables are missing, is refused with a `SchemaError` that says so."""
    before = check_revision(url)
    extensions(url)
    try:
        command.upgrade(alembic_config(url), "head")
    except sa_exc.DBAPIError as exc:
        if failures.unavailable(exc):  # the database went away: not a fault of the schema
            raise
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
        raise SchemaError(
            f"migrating the database from {before or 'nothing'} to {_head(url)} failed ({reason}) and was rolled back: "
            f"it is still at {before or 'no migration'}. Usually objects of a later migration exist already (applied "
            f"by hand, or half-applied by another tool): compare the database with citygrid/db/models.py and remove "
            f"them, or restore a backup (`citygrid restore`). citygrid will not start on a schema it cannot vouch "
            f"for.") from None
    check_schema(url)


def check_schema(url: str) -> None:
    """Refuse a database whose revision is recorded but whose tables or columns (those of `models.py`) are not all
    there: a migration half-applied by hand, or a table dropped since."""
    from citygrid.db.models import Base

    with engine_for(url).connect() as conn:
        have = {(t, c) for t, c in conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"))}
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    tables = {t for t, _ in have}
    missing = [t.name for t in Base.metadata.sorted_tables if t.name not in tables]
    missing += [f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables if t.name in tables
                for c in t.columns if (t.name, c.name) not in have]
    if missing:
        raise SchemaError(
            f"the database says it is at migration {revision}, but {len(missing)} of its tables or columns are "
            f"missing ({', '.join(missing[:8])}{', …' if len(missing) > 8 else ''}): a migration was half-applied or "
            f"the schema was changed by hand. Restore a backup (`citygrid restore`) or re-create what is missing; "
            f"citygrid will not start on a schema it cannot vouch for.")
