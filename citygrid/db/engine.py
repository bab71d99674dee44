"""Engine and sessions; one engine per URL per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from citygrid.db.cluster import resolve_database_url
from citygrid.settings import get_settings


def database_url(start: bool = True) -> str:
    s = get_settings()
    return resolve_database_url(s.data_dir, s.database_url, start=start)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, future=True)


def get_engine() -> Engine:
    return engine_for(database_url())


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def driver_connection(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under `conn`, for COPY and for cursors that skip SQLAlchemy's Row objects."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"expected a psycopg connection, got {type(raw).__name__}")
    return raw


def fetch_tuples(conn: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of a `:name`-style statement as the driver's plain tuples, skipping SQLAlchemy's Row objects, which
    cost more than the query itself on answers of tens of thousands of small rows (aggregates)."""
    compiled = text(sql).compile(dialect=conn.dialect)
    values = {k: params.get(k) for k in compiled.params}
    cur = driver_connection(conn).cursor()
    try:
        cur.execute(str(compiled), values)
        return list(cur.fetchall())
    finally:
        cur.close()
