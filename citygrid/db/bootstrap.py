"""Bring a database to a usable state: migrate from wherever it is, sync the catalog."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from citygrid.db.engine import engine_for
from citygrid.db.migrate import upgrade
from citygrid.db.sync import sync_catalog


def prepare(url: str) -> Engine:
    upgrade(url)
    engine = engine_for(url)
    sync_catalog(engine)
    return engine
