"""Engines and sessions; one engine per URL per process.

Two kinds: the owner's (`engine_for`: migrations, CLI loads, tests' fixtures) and the web application's
(`app_engine_for`), which logs in as the role `citygrid_app` (not the owner, no superuser, no privilege of its
own; `citygrid/db/roles.py`) and whose every transaction takes its caller's scope
(`citygrid.security.scope.scoped`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from citygrid.db import failures
from citygrid.db.cluster import resolve_database_url
from citygrid.db.roles import APP_LOGIN
from citygrid.security.scope import APP_OPTION  # marks the application's engine: its connections are scoped
from citygrid.settings import get_settings


def database_url(start: bool = True) -> str:
    s = get_settings()
    return resolve_database_url(s.data_dir, s.database_url, start=start)


def app_database_url(owner_url: str) -> str:
    """The application's URL: `CITYGRID_APP_DATABASE_URL` when set, else the owner's with the user `citygrid_app`
    and no password (trust on the private cluster; elsewhere ~/.pgpass, or set the variable)."""
    given = get_settings().app_database_url
    if given:
        return "postgresql+psycopg://" + given.removeprefix("postgresql://") if given.startswith("postgresql://") \
            else given
    return make_url(owner_url).set(username=APP_LOGIN, password=None).render_as_string(hide_password=False)


def _connect_args() -> dict[str, Any]:
    # a database host that does not answer fails a request after this long instead of hanging its worker
    return {"connect_timeout": get_settings().db_connect_timeout}


POOL_SIZE, POOL_OVERFLOW = 10, 20  # connections per engine and process: kept open, and opened when busy
# Requests that may hold a pooled connection at once (api/deps.py): a write holds its caller's connection and
# takes a second for its transaction, so at most half the pool's connections may be held that way, or every
# request can hold one and wait for a second until the pool times out (seen at 128 clients: 503s and 60 s stalls)
REQUEST_SLOTS = (POOL_SIZE + POOL_OVERFLOW) // 2
SLOT_WAIT = 30.0  # seconds a request waits for one of those places: the pool's own timeout (SQLAlchemy's default)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    # a pooled connection that died with the server is replaced before use (citygrid/db/failures.py)
    return failures.ping_idle(failures.install(create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                                                             future=True, connect_args=_connect_args())))


def app_connect_args() -> dict[str, Any]:
    """What the web application's connections are opened with, sync (`app_engine_for`) and async (`citygrid.db.aio`)."""
    args = _connect_args()
    if (limit := get_settings().db_statement_timeout) > 0:  # a runaway query cannot hold a worker for ever
        args["options"] = f"-c statement_timeout={limit * 1000}"
    return args


def connect_kwargs(engine: Engine) -> dict[str, Any]:
    """psycopg.connect() keywords that open a connection like `engine`'s (the async read path's pool)."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    extra = app_connect_args() if engine.get_execution_options().get(APP_OPTION) else _connect_args()
    return dict(kwargs) | extra


@lru_cache(maxsize=8)
def app_engine_for(url: str) -> Engine:
    """The web application's engine for an application URL (`app_database_url`)."""
    return failures.ping_idle(failures.install(create_engine(
        url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, future=True, connect_args=app_connect_args(),
        execution_options={APP_OPTION: True})))


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


def copy_text(v: str | None) -> str:
    """A value for COPY's text format: NULL as \\N, backslash, tab and line breaks escaped."""
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def fetch_tuples(conn: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of a `:name`-style statement as the driver's plain tuples, skipping SQLAlchemy's Row objects, which
    cost more than the query itself on answers of tens of thousands of small rows (aggregates)."""
    compiled = text(sql).compile(dialect=conn.dialect)
    values = {k: params.get(k) for k in compiled.params}
    failures.check(list(values.values()))  # the driver's cursor skips the engine's check
    cur = driver_connection(conn).cursor()
    try:
        cur.execute(str(compiled), values)
        return list(cur.fetchall())
    finally:
        cur.close()
