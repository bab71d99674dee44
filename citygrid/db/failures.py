"""What PostgreSQL cannot take, and what it means when it cannot answer: the two database failures a caller
should hear about as such rather than as an internal error.

**Text PostgreSQL cannot store.** A `text` value cannot hold NUL (U+0000), and UTF-8 has no encoding for an
unpaired surrogate (U+D800–U+DFFF, which JSON's `\\ud800` escapes produce). psycopg refuses both before the
statement is sent, so without a check a NUL in any query parameter or JSON field became a 500. `unstorable`
finds such a character; `install` checks every statement's parameters on an engine (so every text that reaches
SQL through SQLAlchemy is checked in one place) and COPY writers call `check` themselves. The web layer checks
query strings, paths and JSON bodies first, where it can name the field (api/hardening.py).

**An unreachable database.** A refused or dropped connection, a server shutting down or starting, too many
connections, an exhausted pool, a statement timeout, a full disk or a read-only server: `unavailable` turns
those into `E.database_unavailable` (503 with Retry-After) with the reason, instead of a 500. The engines ping
a pooled connection before handing it out when it sat idle for longer than `IDLE_PING` (`ping_idle`), so the first
request after the database returns gets a fresh connection. Not on every checkout (`pool_pre_ping`): under load a
connection comes back to the pool milliseconds before it is handed out again, and a ping per request was one of
a tile's six round trips for nothing; a connection that died under load fails its request with a disconnect, which
invalidates the whole pool (SQLAlchemy), so one request per worker sees the 503, not every one.
"""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from citygrid.errors import CitygridError, E
from citygrid.settings import get_settings

_BAD = re.compile("[\x00\ud800-\udfff]")
_MAX_DEPTH = 32


def unstorable(value: str) -> tuple[str, str] | None:
    """(Chinese, English) naming the first character of `value` PostgreSQL text cannot hold, or None."""
    m = _BAD.search(value)
    if m is None:
        return None
    if m.group() == "\x00":
        return "空字符 NUL，U+0000", "NUL, U+0000"
    return f"未配对的代理字符 U+{ord(m.group()):04X}", f"an unpaired surrogate U+{ord(m.group()):04X}"


def find_unstorable(value: Any, path: str = "", depth: int = 0) -> tuple[str, tuple[str, str]] | None:
    """The first string (dict keys included) in a JSON-like value that PostgreSQL cannot store: (path, names)."""
    if isinstance(value, str):
        found = unstorable(value)
        return (path, found) if found else None
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and (found := unstorable(k)):
                return sub, found
            if (hit := find_unstorable(v, sub, depth + 1)) is not None:
                return hit
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if (hit := find_unstorable(v, f"{path}[{i}]" if path else str(i), depth + 1)) is not None:
                return hit
    return None


def unstorable_error(field: str | None, what: tuple[str, str]) -> CitygridError:
    where_zh, where_en = (f"字段 {field} ", f"{field}") if field else ("文本", "a text value")
    return E.text_unstorable(field, where_zh=where_zh, where_en=where_en, what_zh=what[0], what_en=what[1])


def check(value: Any, field: str | None = None) -> None:
    """Raise `E.text_unstorable` when `value` (a string, or strings inside lists and dicts) cannot be stored."""
    hit = find_unstorable(value)
    if hit is not None:
        path, what = hit
        raise unstorable_error(field if field else (path or None), what)


def _check_parameters(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                      executemany: bool) -> None:
    rows = parameters if executemany and isinstance(parameters, Sequence) else [parameters]
    for row in rows:
        values = row.values() if isinstance(row, Mapping) else row if isinstance(row, (list, tuple)) else ()
        for v in values:
            if isinstance(v, str):
                if _BAD.search(v):
                    check(v)
            elif isinstance(v, (list, tuple, Mapping)):
                check(v)


def install(engine: Engine) -> Engine:
    """Check every statement's parameters on `engine` before they reach the driver (see the module's doc)."""
    if not event.contains(engine, "before_cursor_execute", _check_parameters):
        event.listen(engine, "before_cursor_execute", _check_parameters)
    return engine


IDLE_PING = 1.0  # seconds a pooled connection may sit unused before it is pinged at checkout


def _checked_in(dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    if time.monotonic() - record.info.get("idle_since", 0.0) <= IDLE_PING:
        return
    try:
        dbapi_conn.execute("SELECT 1")
        dbapi_conn.rollback()
    except psycopg.Error as exc:  # the pool discards it and retries with a new connection
        raise sa_exc.DisconnectionError() from exc


def ping_idle(engine: Engine) -> Engine:
    """Ping connections idle for more than `IDLE_PING` when they are checked out (see the module's doc)."""
    if not event.contains(engine.pool, "checkout", _checkout):
        event.listen(engine.pool, "checkin", _checked_in)
        event.listen(engine.pool, "checkout", _checkout)
    return engine


# SQLSTATEs (or their classes) that mean "not now" rather than "wrong": reason in Chinese and English.
_REASONS: dict[str, tuple[str, str]] = {
    "08": ("无法连接数据库", "no connection to the database"),
    "57P01": ("数据库正在关闭", "the database is shutting down"),
    "57P02": ("数据库正在关闭", "the database is shutting down"),
    "57P03": ("数据库正在启动", "the database is starting up"),
    "53300": ("数据库连接数已满", "too many connections"),
    "53100": ("数据库磁盘已满", "the database disk is full"),
    "53200": ("数据库内存不足", "the database is out of memory"),
    "57014": ("数据库语句超时", "statement timeout"),
    "25006": ("数据库只读", "the database is read-only"),
    "40001": ("事务冲突", "serialization conflict"),
    "40P01": ("事务死锁", "deadlock"),
}
_TEXT_STATES = {"22P05", "22021"}  # untranslatable character, character not in repertoire
_NO_CONNECTION = _REASONS["08"]
_FULL = {errno.ENOSPC, errno.EDQUOT}  # a file that cannot grow: the disk (or the quota) is full


def _orig(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, sa_exc.DBAPIError) and isinstance(exc.orig, BaseException) else exc


def pool_full() -> CitygridError:
    """503: every database connection (or every place for a request that holds one, api/deps.py) stayed busy."""
    return _unavailable(("数据库连接池已满", "every database connection is busy"))


def as_error(exc: BaseException) -> CitygridError | None:
    """The caller's error for a failure that is not a bug: 503 when the database cannot answer now (its disk full
    included), 400 for text it cannot store, 507 when a file of ours cannot be written for a full disk; None for
    anything else (an internal error)."""
    if isinstance(exc, CitygridError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _FULL:  # our own disk (uploads, job results): 507
        seconds = get_settings().db_retry_after
        return E.storage_full("file", retry_after=seconds, seconds=seconds)
    if isinstance(exc, sa_exc.TimeoutError):  # the pool: every connection busy for pool_timeout seconds
        return pool_full()
    orig = _orig(exc)
    state = getattr(orig, "sqlstate", None) or ""
    if isinstance(orig, psycopg.DataError) and not state and "NUL" in str(orig):
        return unstorable_error(None, ("空字符 NUL，U+0000", "NUL, U+0000"))
    if isinstance(orig, UnicodeEncodeError) or state in _TEXT_STATES:
        return unstorable_error(None, ("无法编码为 UTF-8 的字符", "not encodable as UTF-8"))
    reason = _REASONS.get(state) or _REASONS.get(state[:2]) if state else None
    if reason is not None:
        return _unavailable(reason)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return _unavailable(_NO_CONNECTION)
    if isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError)) or \
            isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return _unavailable(_NO_CONNECTION)
    return None


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot answer now (a 503), as opposed to a wrong request or a bug."""
    err = as_error(exc)
    return err is not None and err.kind == "unavailable"


def _unavailable(reason: tuple[str, str]) -> CitygridError:
    seconds = get_settings().db_retry_after
    return E.database_unavailable(None, retry_after=seconds, seconds=seconds, reason_zh=reason[0],
                                  reason_en=reason[1])
