"""Run Alembic migrations programmatically (every start migrates from wherever the database is)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from citygrid.db.engine import engine_for

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
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
    command.upgrade(alembic_config(url), "head")
