"""Shared request dependencies: the engine, the address index and who is calling."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Header, Request
from sqlalchemy.engine import Connection, Engine

from citygrid.address.index import AddressIndexCache


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


def principal(x_citygrid_user: str | None = Header(default=None, max_length=100)) -> str:
    """Who is writing, for history and audit. Authentication arrives with the security issue."""
    return (x_citygrid_user or "anonymous").strip() or "anonymous"


def not_modified(request: Request, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of entity tags, or `*`; weak comparison (W/ prefixes ignored)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags
