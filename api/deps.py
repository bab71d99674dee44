"""Shared request dependencies: the engine, the address index, who is calling, and connections and write
transactions in the caller's database scope (`citygrid.security.scope`)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from citygrid.address.index import AddressIndexCache
from citygrid.db import failures
from citygrid.db.engine import REQUEST_SLOTS, SLOT_WAIT
from citygrid.db.replicas import Replicas, format_lsn, parse_lsn
from citygrid.errors import E
from citygrid.security import caller, credentials, rules
from citygrid.security.principal import ANONYMOUS, SYSTEM, Principal, RequestMeta
from citygrid.security.scope import scoped, scoped_session

log = logging.getLogger("citygrid.api")


def engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine  # app.state is untyped: set in the app's lifespan (api/main.py)
    return e


async def address_indexes(request: Request) -> AddressIndexCache:
    """The process's address index holder, created in the app's lifespan (api/main.py); routes call `.get()` for
    the current index. Async and free of I/O, so FastAPI resolves it without a trip through the thread pool (the
    index's freshness check queries the database, so that runs in the route's own thread)."""
    indexes: AddressIndexCache = request.app.state.address_indexes
    return indexes


# /docs shows an Authorize button for both: the OAuth2 password flow (people) and an API key header (systems).
_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False,
                               description="登录令牌 / bearer token from POST /auth/token (an API key works here too)")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API 密钥 / API key of a department system")


def _meta(request: Request) -> RequestMeta:
    """Where a request comes from, for the audit log."""
    return RequestMeta(client=request.client.host if request.client else None,
                       user_agent=request.headers.get("user-agent"))


async def _slot(request: Request) -> AsyncIterator[None]:
    """A place among the requests that may hold a pooled connection (`REQUEST_SLOTS`), waited for on the event
    loop before a worker thread is taken. Without it, requests that held a connection and wanted a second (a
    write's transaction) or a worker thread could all wait on each other until the pool's timeout. A request that
    finds no place within `SLOT_WAIT` seconds gets the pool's own 503 with Retry-After."""
    slots: asyncio.Semaphore | None = getattr(request.app.state, "conn_slots", None)
    if slots is None:
        slots = request.app.state.conn_slots = asyncio.Semaphore(REQUEST_SLOTS)
    try:
        async with asyncio.timeout(SLOT_WAIT):
            await slots.acquire()
    except TimeoutError:
        raise failures.pool_full() from None
    try:
        yield
    finally:
        slots.release()


def read_conn(request: Request, token: str | None = Depends(_bearer), api_key: str | None = Depends(_api_key),
              _: None = Depends(_slot)) -> Iterator[Connection]:
    """Like `conn`, for the heavy read routes (OGC items, tiles, aggregates): on a read replica when one is
    configured, in the pool and has replayed the caller's own last write (`citygrid.db.replicas`). Credentials
    are checked on the primary, where a key's use is recorded; only the answer's query runs on the replica."""
    replicas: Replicas | None = request.app.state.replicas
    if replicas is None:
        yield from _connect(request, token, api_key)
        return
    p = _authenticated(request, token, api_key)
    engine_ = _route_read(request, replicas, p)
    c = engine_.connect()
    try:
        scoped(c, p)
        yield c
    finally:
        _close(c)


def _authenticated(request: Request, token: str | None, api_key: str | None) -> Principal:
    """The caller of a read route, its credential checked on the primary, where a key's use is recorded."""
    meta = _meta(request)
    if not (token or api_key):
        return replace(ANONYMOUS, meta=meta)
    with request.app.state.engine.connect() as pc:
        p = replace(caller.authenticate(pc, token, api_key), meta=meta)
        pc.commit()
    return p


def _route_read(request: Request, replicas: Replicas, p: Principal) -> Engine:
    """The engine a read of `p` goes to (`citygrid.db.replicas`), noted on the request with its caller."""
    name, engine_ = replicas.for_read(None if p.anonymous else p.name,
                                      parse_lsn(request.headers.get("x-citygrid-min-lsn")))
    request.state.principal = p
    request.state.read_from = name
    return engine_


@dataclass(frozen=True)
class ReadTarget:
    """Who reads and from which database (the primary's or a replica's application engine)."""

    principal: Principal
    engine: Engine


async def read_target(request: Request, token: str | None = Depends(_bearer),
                      api_key: str | None = Depends(_api_key)) -> ReadTarget:
    """`read_conn` for the async read path of OGC items and tiles (`citygrid.db.aio`), holding no connection: an
    anonymous caller costs no trip through the thread pool; a credential is checked on the primary in one (the
    credential cache makes that one statement), and so is the choice of a replica (its health checks query)."""
    if token or api_key:
        p = await run_in_threadpool(_authenticated, request, token, api_key)
    else:
        p = replace(ANONYMOUS, meta=_meta(request))
    replicas: Replicas | None = request.app.state.replicas
    if replicas is None:
        request.state.principal = p
        return ReadTarget(p, request.app.state.engine)
    return ReadTarget(p, await run_in_threadpool(_route_read, request, replicas, p))


async def read_principal(request: Request, c: Connection = Depends(read_conn)) -> Principal:
    """`current_principal` for routes on `read_conn`."""
    p: Principal = request.state.principal
    return p


def conn(request: Request, token: str | None = Depends(_bearer), api_key: str | None = Depends(_api_key),
         _: None = Depends(_slot)) -> Iterator[Connection]:
    """The request's connection in the caller's database scope (`citygrid.security.scope`), and who is calling,
    found on it in the same trip to the thread pool (a known credential costs no extra round trip,
`citygrid.security.caller`):
    `current_principal` reads what this found. Credentials that are present but wrong, expired, revoked or
    disabled are a 401, never a silent fall back to anonymous."""
    yield from _connect(request, token, api_key)


def polling_conn(request: Request, token: str | None = Depends(_bearer), api_key: str | None = Depends(_api_key)
                 ) -> Iterator[Connection]:
    """`conn` for long polls (GET /changes?wait=…), outside the places of `_slot`: a poll holds its connection
    for up to `changes_wait_max` seconds, so a few followers would fill them and stop every other route; it never
    takes a second connection, so it cannot take part in the deadlock the places prevent."""
    yield from _connect(request, token, api_key)


def _connect(request: Request, token: str | None, api_key: str | None) -> Iterator[Connection]:
    meta = _meta(request)
    c = request.app.state.engine.connect()
    try:
        if token or api_key:
            p = replace(caller.authenticate(c, token, api_key), meta=meta)  # puts p's scope on c
        else:
            p = replace(ANONYMOUS, meta=meta)
            scoped(c, p)
        request.state.principal = p
        yield c
    finally:
        _close(c)


def _close(c: Connection) -> None:
    """Give the connection back. When the database went away after the answer was sent, rolling back fails; the
    answer stands and the pool replaces the connection, so that is no error of the request."""
    try:
        c.close()
    except Exception as exc:
        if not failures.unavailable(exc):
            raise
        log.info("connection lost after the answer: %s", type(exc).__name__)


def odk_principal(request: Request, token: str | None = Depends(_bearer), api_key: str | None = Depends(_api_key)
                  ) -> Principal:
    """Who calls an OpenRosa route: ODK Collect sends the server's username and password with HTTP Basic (after a
    401 that challenges for it); a bearer token or an API key works as elsewhere. Anonymous callers get that 401
    (`rules.require_login`); rights are the core's."""
    meta = _meta(request)
    header = request.headers.get("authorization", "")
    p = ANONYMOUS
    with request.app.state.engine.connect() as c:
        scoped(c, SYSTEM)  # checking credentials comes before anyone is known
        if header[:6].lower() == "basic ":
            try:
                username, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise E.token_invalid("Authorization") from exc
            p = credentials.login(c, username, password)
        elif token or api_key:
            p = caller.authenticate(c, token, api_key)
    p = replace(p, meta=meta)
    request.state.principal = p
    rules.require_login(p, "使用 ODK 表单", "using the ODK forms")
    return p



async def polling_principal(request: Request, c: Connection = Depends(polling_conn)) -> Principal:
    """`current_principal` for routes on `polling_conn`."""
    p: Principal = request.state.principal
    return p


async def current_principal(request: Request, c: Connection = Depends(conn)) -> Principal:
    """Who is calling: the principal of a bearer token or an API key, else the anonymous public (`conn` loads it,
    so a route that also reads the database takes one trip to the thread pool for both, not two)."""
    p: Principal = request.state.principal
    return p


async def acting_principal(p: Principal = Depends(current_principal)) -> Principal:
    """The caller of a route that writes (or does bulk work). Anonymous callers get their 401 here, before the
    body is even validated: `rules.require_login` decides, the core checks every other right itself."""
    rules.require_login(p, "写入或批量操作", "writing or bulk work")
    return p


def writing(request: Request) -> AbstractContextManager[Session]:
    """A write transaction in the caller's scope, for routes that depend on `acting_principal` (or
    `current_principal`); without one it is the anonymous public's. With read replicas, the primary's WAL position
    after the commit is remembered for the caller and sent back as `X-Citygrid-LSN` (`citygrid.db.replicas`)."""
    p = getattr(request.state, "principal", ANONYMOUS)
    replicas: Replicas | None = request.app.state.replicas
    if replicas is None:
        return scoped_session(request.app.state.engine, p)
    return _writing_remembered(request, p, replicas)


@contextmanager
def _writing_remembered(request: Request, p: Principal, replicas: Replicas) -> Iterator[Session]:
    with scoped_session(request.app.state.engine, p) as s:
        yield s
    lsn = replicas.wrote(p.name)
    if lsn is not None:
        request.state.lsn = format_lsn(lsn)


def not_modified(request: Request, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of entity tags, or `*`; weak comparison (W/ prefixes ignored)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags
