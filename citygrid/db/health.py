"""What `/health` reports beyond "up": the database answers, and how much is loaded in it (api/main.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection


def loaded(conn: Connection) -> dict[str, Any]:
    """Divisions per level and objects in the registry; an empty table here means a load was skipped."""
    counts: dict[int, int] = dict(
        conn.execute(text("SELECT level, count(*) FROM division GROUP BY level")).tuples().all())
    objs = conn.execute(text("SELECT count(*) FROM city_object")).scalar()
    return {"divisions_by_level": counts, "objects": objs}
