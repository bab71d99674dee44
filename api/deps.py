"""Shared request dependencies: the engine, the address index and who is calling."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool

from citygrid.address.index import AddressIndexCache
from citygrid.errors import E
from citygrid.security import credentials, rules, tokens
from citygrid.security.credentials import API_KEY_PREFIX
from citygrid.security.principal import ANONYMOUS, Principal


def engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine  # app.state is untyped: set in the app's lifespan (api/main.py)
    return e


def conn(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as c:
        yield c


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


async def current_principal(request: Request, token: str | None = Depends(_bearer),
                            api_key: str | None = Depends(_api_key)) -> Principal:
    """Who is calling: the principal of a bearer token or an API key, else the anonymous public. Credentials that
    are present but wrong, expired, revoked or disabled are a 401, never a silent fall back to anonymous.

    Async, so the public's requests (most of them: the map, tiles) cost no trip through the thread pool; only
    loading a principal, which queries the database, takes one."""
    if not token and not api_key:
        request.state.principal = ANONYMOUS
        return ANONYMOUS
    p = await run_in_threadpool(_authenticate, request.app.state.engine, token, api_key)
    request.state.principal = p
    return p


def _authenticate(engine: Engine, token: str | None, api_key: str | None) -> Principal:
    with engine.connect() as c:
        if api_key or (token or "").startswith(API_KEY_PREFIX):  # clients that only speak Bearer send keys there
            p = credentials.authenticate_key(c, api_key or token or "")
        else:
            p = credentials.load(c, tokens.subject(token or ""), via="token")
    if p is None:
        raise E.token_invalid("Authorization")
    return p


async def acting_principal(p: Principal = Depends(current_principal)) -> Principal:
    """The caller of a route that writes (or does bulk work). Anonymous callers get their 401 here, before the
    body is even validated: `rules.require_login` decides, the core checks every other right itself."""
    rules.require_login(p, "写入或批量操作", "writing or bulk work")
    return p


def not_modified(request: Request, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of entity tags, or `*`; weak comparison (W/ prefixes ignored)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags
