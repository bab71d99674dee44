"""The async read path of the hot routes (OGC items, vector tiles): one round trip per request, no thread pool.

Through the sync path an uncached tile cost five round trips (BEGIN, the caller's scope, the layer version, the
tile, ROLLBACK) and three trips through the thread pool, where sixteen clients queued (issue 15). Here a request
takes an autocommit connection from a small pool of the running event loop and sends the caller's scope and its
statements in one pipeline: everything before the pipeline's Sync is one implicit transaction, so the scope
(`citygrid.security.scope.SET_SQL`, transaction-local as everywhere) holds for those statements and for nothing
after them. psycopg prepares a statement on a connection after a few runs, so the same tile SQL is planned once.

Logic that reads is written once, as steps (`Steps`): a generator that yields batches of statements and gets back
their rows. `run` drives it on a SQLAlchemy connection (the sync path: tests, CLI, benches), `run_async` on this
pool; a batch costs one round trip here.

Why not psycopg_pool: it hides a failed connect behind background reconnection (a caller waits up to its timeout),
while citygrid answers 503 at once while the database is away (`citygrid.db.failures`). This pool, like
SQLAlchemy's, connects on demand and lets the error through, and pings a connection idle for longer than
`failures.IDLE_PING` before handing it out.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Connection, Engine

from citygrid.db import failures
from citygrid.db.engine import connect_kwargs
from citygrid.security.principal import Principal
from citygrid.security.scope import APP_OPTION, SET_SQL, scope_params
from citygrid.settings import get_settings

Stmt = tuple[str, Mapping[str, Any]]  # SQL with :name parameters (as `sqlalchemy.text`), and their values
Rows = list[tuple[Any, ...]]
T = TypeVar("T")
Steps = Generator[Sequence[Stmt], list[Rows], T]  # yields batches of statements, is sent their rows, returns T

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


@lru_cache(maxsize=4096)
def _compiled(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` SQL as psycopg's `%(name)s`, and the names it binds (one compilation per statement text)."""
    c = text(sql).compile(dialect=_DIALECT)
    return str(c), tuple(c.params)


def _bound(stmt: Stmt) -> tuple[str, dict[str, Any]]:
    sql, names = _compiled(stmt[0])
    values = {k: stmt[1].get(k) for k in names}
    failures.check(list(values.values()))  # what the engine's event checks on the sync path
    return sql, values


def run(conn: Connection, steps: Steps[T]) -> T:
    """Drive `steps` on a SQLAlchemy connection (already in its caller's scope), a statement at a time."""
    try:
        batch = next(steps)
        while True:
            rows = [[tuple(r) for r in conn.execute(text(sql), dict(params)).all()] for sql, params in batch]
            batch = steps.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result


class AsyncPool:
    """At most `size` autocommit connections of one database for one event loop (see the module's doc)."""

    def __init__(self, kwargs: dict[str, Any], size: int) -> None:
        self._kwargs = kwargs
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._slots = asyncio.Semaphore(size)
        self.size = size

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            conn, since = self._idle.pop()
            if conn.closed:
                continue
            if time.monotonic() - since <= failures.IDLE_PING:
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except psycopg.Error:  # died while idle (a restart): try the next one, or a new one
                await conn.close()
        return await psycopg.AsyncConnection.connect(autocommit=True, **self._kwargs)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = await self._take()
            try:
                yield conn
            finally:
                # kept only when idle between transactions; a request cancelled mid-pipeline leaves it busy
                if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
                    self._idle.append((conn, time.monotonic()))
                else:
                    await conn.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await conn.close()


# One pool per (event loop, database): connections belong to the loop that opened them. A server has one loop;
# a test client without a lifespan runs each request on a new one, whose pools go with it.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncPool]] = weakref.WeakKeyDictionary()


def pool_for(engine: Engine) -> AsyncPool:
    """The running loop's pool for the database and login of `engine` (the primary's or a replica's)."""
    pools = _POOLS.setdefault(asyncio.get_running_loop(), {})
    key = engine.url.render_as_string(hide_password=False)
    pool = pools.get(key)
    if pool is None:
        kwargs = connect_kwargs(engine)
        kwargs.pop("context", None)  # SQLAlchemy's adapters: these statements need psycopg's own
        pool = pools[key] = AsyncPool(kwargs, get_settings().db_async_pool)
    return pool


async def close_pools() -> None:
    """Close the running loop's pools (the app's shutdown)."""
    for pool in _POOLS.pop(asyncio.get_running_loop(), {}).values():
        await pool.close()


async def run_async(engine: Engine, p: Principal, steps: Steps[T]) -> T:
    """Drive `steps` on the async pool of `engine`: each batch in one pipeline behind `p`'s scope (when `engine`
    is the application's, as `scope.scoped` does), one round trip."""
    scoped = bool(engine.get_execution_options().get(APP_OPTION))
    pool = pool_for(engine)
    try:
        batch = next(steps)
        while True:
            bound = [_bound(s) for s in batch]
            async with pool.connection() as conn:
                cursors = []
                async with conn.pipeline():
                    if scoped:
                        await conn.execute(SET_SQL, scope_params(p))
                    for sql, values in bound:
                        cursors.append(await conn.execute(sql, values))
                rows = [await c.fetchall() for c in cursors]
            batch = steps.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result
