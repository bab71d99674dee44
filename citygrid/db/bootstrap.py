"""Bring a database to a usable state: migrate from wherever it is, sync the catalog, encrypt personal fields left
in plaintext from before migration 0015 (citygrid/security/crypto.py: the keys live with the application)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from citygrid.db.engine import engine_for
from citygrid.db.migrate import upgrade
from citygrid.db.sync import sync_catalog


def prepare(url: str) -> Engine:
    from citygrid.security.crypto import seal_leftovers

    upgrade(url)
    engine = engine_for(url)
    sync_catalog(engine)
    seal_leftovers(engine)
    return engine
