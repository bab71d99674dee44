"""The caller's scope in PostgreSQL: which role a transaction takes and which divisions and personal data its
row-level security lets through (migration 0017, `citygrid/db/roles.py`). The second line of defence: the core
decides rights (`rules.py`); these keep a forgotten WHERE from leaking another township's rows.

`scope_of` is the one place a `Principal` becomes a scope. `scoped(conn, principal)` puts it on the current
transaction with one statement; every connection and session of the web application goes through it
(`api/deps.py`, `scoped_session`), the CLI and jobs use `SYSTEM`. Everything set is transaction-local
(`set_config(…, true)`), so nothing leaks to the next user of a pooled connection, and a pooler in transaction
mode is fine. A transaction that forgot it is refused every table (the login role holds no privilege).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from citygrid.security.principal import Principal
from citygrid.security.rules import may_read_personal

ALL_DIVISIONS = "*"
# The two roles a transaction of the application takes (their grants and policies: citygrid/db/roles.py, which
# imports these names), and the execution option that marks the application's engine (citygrid/db/engine.py).
ALL = "citygrid_all"
AREA = "citygrid_area"
APP_OPTION = "citygrid_app"


@dataclass(frozen=True)
class Scope:
    role: str  # citygrid_all | citygrid_area
    divisions: str  # '*' or a comma list of division code prefixes
    personal: bool  # persons and houses readable (still only inside `divisions`)


def scope_of(p: Principal) -> Scope:
    """Admins and the process: everything. Anonymous callers and principals without roles: the whole county's
    rows (the class-level public filter is the application's) but no personal data. Others: the union of
    their grants' divisions ('*' when one grant covers everywhere), personal data when
    `rules.may_read_personal` says so."""
    personal = may_read_personal(p)
    if p.is_admin:
        return Scope(ALL, ALL_DIVISIONS, personal)
    prefixes = sorted({g.division or ALL_DIVISIONS for g in p.grants})
    if not prefixes:
        return Scope(ALL, ALL_DIVISIONS, False)
    if ALL_DIVISIONS in prefixes:
        return Scope(ALL, ALL_DIVISIONS, personal)
    return Scope(AREA, ",".join(p for p in prefixes if not any(
        p != q and p.startswith(q) for q in prefixes)), personal)


# The version of who may call (migration 0021) comes back from the same round trip, for the credential cache
# (`citygrid.security.cache`); a SECURITY DEFINER function, as privileges are checked before the role is taken.
SET_SQL = ("SELECT set_config('role', %s, true), set_config('citygrid.divisions', %s, true), "
           "set_config('citygrid.personal', %s, true), citygrid_principals_version()")
_VERSION = "citygrid_principals_version"  # in the pooled connection's info, overwritten by every _apply
_OPTION = "citygrid_scope"  # per Connection object, never on the pooled DBAPI connection


def scoped(conn: Connection, p: Principal) -> Connection:
    """Put `p`'s scope on the connection's transaction, and on every later one of this `Connection` (a `commit()`
    in the middle, as logins do, does not drop it); returns `conn`.

    Only connections of the application engine (`engine.app_engine_for`) are scoped: the owner's (migrations,
    CLI loads, tests' fixtures) is not subject to row-level security and may not even take the roles.
    """
    if not conn.get_execution_options().get(APP_OPTION):
        return conn
    params = scope_params(p)
    conn.info.pop(_VERSION, None)
    conn.execution_options(**{_OPTION: params})  # in place (SQLAlchemy 2); later transactions: _on_begin
    if conn.in_transaction():
        _apply(conn, params)
    else:  # begin now: code that reads through the driver's own cursor (fetch_tuples) never autobegins
        conn.begin()
    return conn


def scope_params(p: Principal) -> tuple[str, str, str]:
    """The parameters of `SET_SQL` for `p`: role, divisions, personal. The async read path
    (`citygrid.db.aio`) sends the same statement in front of its own, in the same implicit transaction."""
    s = scope_of(p)
    return s.role, s.divisions, "on" if s.personal else "off"


def _apply(conn: Connection, params: tuple[str, str, str]) -> None:
    # the driver directly: one round trip, none of SQLAlchemy's statement handling (this runs on every request)
    row = conn.connection.driver_connection.execute(SET_SQL, params).fetchone()  # type: ignore[union-attr]
    conn.info[_VERSION] = int(row[3])


def principals_version(conn: Connection) -> int | None:
    """The principals' data version read when the caller's scope was last put on `conn`'s transaction; None on
    connections that are not scoped (the owner's)."""
    v = conn.info.get(_VERSION)
    return int(v) if v is not None else None


@event.listens_for(Engine, "begin")
def _on_begin(conn: Connection) -> None:
    params = conn.get_execution_options().get(_OPTION)
    if params is not None:
        _apply(conn, params)


def scoped_engine(engine: Engine, p: Principal) -> Engine:
    """The same engine (and pool) whose every transaction takes `p`'s scope: for code that opens its own
    connections and knows nothing of principals, such as a job's bookkeeping (`citygrid.jobs`)."""
    if not engine.get_execution_options().get(APP_OPTION):
        return engine
    return engine.execution_options(**{_OPTION: scope_params(p)})


@contextmanager
def scoped_session(engine: Engine, p: Principal) -> Iterator[Session]:
    """A write transaction in `p`'s scope: commits on success, rolls back on any error."""
    with Session(bind=engine, expire_on_commit=False) as s, s.begin():
        scoped(s.connection(), p)
        yield s
