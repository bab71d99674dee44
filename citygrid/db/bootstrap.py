"""Bring a database to a usable state: migrate from wherever it is, sync the catalog, encrypt personal fields left
in plaintext from before migration 0015 (citygrid/security/crypto.py: the keys live with the application), and
make sure the application role can log in (citygrid/db/roles.py)."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql
from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from citygrid.db.engine import engine_for
from citygrid.db.migrate import upgrade
from citygrid.db.roles import APP_LOGIN
from citygrid.db.sync import sync_catalog
from citygrid.settings import get_settings

log = logging.getLogger(__name__)


class AppRoleError(RuntimeError):
    """The application role cannot log in; the message says what to set or run."""


def prepare(url: str) -> Engine:
    from citygrid.security.crypto import seal_leftovers

    upgrade(url)
    engine = engine_for(url)
    sync_catalog(engine)
    seal_leftovers(engine)
    _set_app_password(engine)
    return engine


def _set_app_password(owner: Engine) -> None:
    """When CITYGRID_APP_DATABASE_URL carries a password, give it to the role (docker-compose needs nothing else);
    an owner that may not alter roles leaves that to its DBA."""
    given = get_settings().app_database_url
    password = make_url(given).password if given else None
    if not password:
        return
    try:
        with owner.begin() as c:
            raw = c.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            # the SCRAM verifier, computed here by libpq: the password itself never reaches the server's logs (pgaudit
            # logs role statements); a utility statement takes no parameters, so the driver quotes the literal
            verifier = raw.pgconn.encrypt_password(password.encode(), APP_LOGIN.encode(), b"scram-sha-256").decode()
            raw.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(APP_LOGIN), sql.Literal(verifier)))
    except Exception as exc:  # noqa: BLE001 - a DBA may have set it already
        log.warning("could not set the password of %s (%s); set it as a superuser if logins fail", APP_LOGIN, exc)


def check_app_login(engine: Engine) -> Engine:
    """Fail at start, with what to do, when the application role cannot connect."""
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise AppRoleError(
            f"the application role {APP_LOGIN} cannot connect to {engine.url.render_as_string(hide_password=True)} "
            f"({str(exc.orig).strip()}). Set CITYGRID_APP_DATABASE_URL to a URL with its password (and, as a "
            f"superuser, ALTER ROLE {APP_LOGIN} PASSWORD '...'), or put the password in ~/.pgpass."
        ) from exc
    return engine
