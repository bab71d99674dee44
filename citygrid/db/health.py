"""What `/health` reports beyond "up": the database answers, and how much is loaded in it (api/main.py); and
readiness for load balancers (`/readyz`): the database answers now and the address index is in memory.
Liveness (`/healthz`) needs nothing of this: a process that answers HTTP is alive, and restarting it because
the database is down would not help."""

from __future__ import annotations

import os
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid.errors import E
from citygrid.security.principal import ANONYMOUS
from citygrid.security.scope import scoped
from citygrid.settings import get_settings


def loaded(conn: Connection) -> dict[str, Any]:
    """Divisions per level and objects in the registry; an empty table here means a load was skipped."""
    counts: dict[int, int] = dict(
        conn.execute(text("SELECT level, count(*) FROM division GROUP BY level")).tuples().all())
    objs = conn.execute(text("SELECT count(*) FROM city_object")).scalar()
    return {"divisions_by_level": counts, "objects": objs}


class Warmable(Protocol):
    """What readiness needs of the address index holder (`citygrid.address.index.AddressIndexCache`; typed by
    its shape, as `address` depends on `db` and not the other way round)."""

    def state(self) -> str: ...

    def warm(self) -> None: ...


def readiness(engine: Engine, indexes: Warmable) -> dict[str, Any]:
    """What is ready, or `E.not_ready` (503) naming what is not; a database that cannot be reached raises its
    own 503 (`citygrid.db.failures`). An index not yet loaded starts loading in the background, so the probe
    that finds it missing is the one that fixes it."""
    with engine.connect() as c:
        scoped(c, ANONYMOUS)
        c.execute(text("SELECT 1")).scalar_one()
    state = indexes.state()
    if state in ("not_loaded", "loading"):
        indexes.warm()
        seconds = get_settings().db_retry_after
        raise E.not_ready(None, retry_after=seconds, seconds=seconds, reason_zh="地址索引正在载入",
                          reason_en="the address index is loading")
    return {"status": "ready", "database": "ok", "address_index": state, "pid": os.getpid()}
