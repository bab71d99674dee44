"""Shared request dependencies: the engine and who is calling."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Header, Request
from sqlalchemy.engine import Connection, Engine


def engine(request: Request) -> Engine:
    return request.app.state.engine


def conn(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as c:
        yield c


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
