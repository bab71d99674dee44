"""Start-up against a schema citygrid cannot vouch for, and a database that cannot take writes, for real on a
scratch database of the suite's cluster:

- migrated by a newer citygrid, half-applied (the recorded revision is behind objects that exist), or missing a
  table or column at the recorded revision: `citygrid migrate` and `citygrid serve` refuse with the reason and exit
  code 2 (no traceback), the app refuses to start, and the database is left as it was;
- read-only (`default_transaction_read_only`, as after a failover to a standby) or a statement over its time: a
  write is a 503 `database_unavailable` naming the reason, reads (authenticated ones too) keep answering, and the
  ledger is exactly as before."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from citygrid.db.engine import app_database_url, app_engine_for, engine_for
from citygrid.db.migrate import SchemaError, check_schema, upgrade
from citygrid.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
CITYGRID = str(Path(sys.executable).parent / "citygrid")
SHAPE = {"error_code", "message_zh", "message_en", "field", "row", "errors"}


@pytest.fixture(scope="module")
def scratch(database_url: str) -> Iterator[str]:
    """A database of its own (a copy of the suite's template: migrated, divisions loaded)."""
    name = f"citygrid_start_{os.getpid()}"
    suite = make_url(database_url)
    admin = suite.set(database="postgres").render_as_string(hide_password=False)
    with _psql(admin) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name} TEMPLATE citygrid_tmpl")
    url = suite.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        for u in (url, url + "?application_name=cg-timeout"):
            engine_for(u).dispose()
            app_engine_for(app_database_url(u)).dispose()
        with _psql(admin) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _psql(url: str) -> psycopg.Connection[Any]:
    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True)


def _admin(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CITYGRID, *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "DATABASE_URL": url})


def _refused(r: subprocess.CompletedProcess[str], *words: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "refuses to start" in out and "Traceback" not in out, out
    flat = " ".join(out.split())  # rich wraps long lines
    for w in words:
        assert w in flat, (w, out)


def _revision(url: str) -> str:
    with _psql(url) as c:
        row = c.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_a_schema_newer_than_the_code_is_refused_by_the_cli_the_server_and_the_app(scratch: str) -> None:
    from api.main import create_app

    head = _revision(scratch)
    with _psql(scratch) as c:
        c.execute("UPDATE alembic_version SET version_num = '9999'")
    try:
        _refused(_cli(scratch, "migrate"), "migration 9999", "newer version")
        _refused(_cli(scratch, "serve", "--no-demo", "--port", _free_port()), "migration 9999")
        with pytest.raises(SchemaError, match="9999"), TestClient(create_app(scratch)):
            pass
        assert _revision(scratch) == "9999"  # refused, not "repaired"
    finally:
        with _psql(scratch) as c:
            c.execute("UPDATE alembic_version SET version_num = %s", (head,))


def test_a_half_applied_migration_is_refused_and_rolled_back(scratch: str) -> None:
    """The recorded revision is one behind while the newest migration's objects exist (applied by hand, or half by
    another tool): the migration fails on them, is rolled back whole, and citygrid says what to do."""
    from alembic.script import ScriptDirectory

    from citygrid.db.migrate import alembic_config

    head = _revision(scratch)
    previous = ScriptDirectory.from_config(alembic_config(scratch)).get_revision(head).down_revision
    assert isinstance(previous, str)
    with _psql(scratch) as c:
        c.execute("UPDATE alembic_version SET version_num = %s", (previous,))
        tables = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    try:
        _refused(_cli(scratch, "migrate"), f"from {previous} to {head} failed", "rolled back",
                 f"still at {previous}", "citygrid restore")
        assert _revision(scratch) == previous
        with _psql(scratch) as c:
            assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == tables
    finally:
        with _psql(scratch) as c:
            c.execute("UPDATE alembic_version SET version_num = %s", (head,))


def test_a_recorded_revision_whose_tables_or_columns_are_missing_is_refused(scratch: str) -> None:
    check_schema(scratch)  # as migrated: nothing to say
    with _psql(scratch) as c:
        c.execute("ALTER TABLE webhook_dead RENAME TO webhook_dead_moved")
        c.execute("ALTER TABLE link RENAME COLUMN payload TO payload_moved")
    try:
        with pytest.raises(SchemaError, match=r"2 of its tables or columns are missing \(webhook_dead, link.payload\)"):
            check_schema(scratch)
        _refused(_cli(scratch, "migrate"), "half-applied", "webhook_dead", "link.payload")
    finally:
        with _psql(scratch) as c:
            c.execute("ALTER TABLE webhook_dead_moved RENAME TO webhook_dead")
            c.execute("ALTER TABLE link RENAME COLUMN payload_moved TO payload")
    check_schema(scratch)


@pytest.fixture(scope="module")
def headers(scratch: str) -> dict[str, str]:
    """An admin's API key on the scratch database."""
    from citygrid.security import credentials

    with engine_for(scratch).begin() as c:
        credentials.add_principal(c, "start-admin", kind="service", clearance="L4",
                                  grants=[credentials.parse_grant("admin")])
        return {"X-API-Key": credentials.create_api_key(c, "start-admin", "test")["key"]}


def _ledger(url: str) -> tuple[Any, ...]:
    with _psql(url) as c:
        return (c.execute("SELECT count(*), max(serial) FROM issued_code").fetchone(),
                c.execute("SELECT * FROM code_counter ORDER BY 1, 2").fetchall())


def _unavailable(r: Any, reason: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json") and r.headers["retry-after"] == "5"
    body = r.json()
    assert set(body) == SHAPE and body["error_code"] == "database_unavailable", body
    assert reason in body["message_en"] and "SELECT" not in r.text and "INSERT" not in r.text


BLOCK = {"division_code": "420281", "class_code": "010101", "count": 5}


def test_a_read_only_database_answers_writes_503_and_keeps_reading(scratch: str, headers: dict[str, str]) -> None:
    from api.main import create_app
    from citygrid.security import credentials

    name = make_url(scratch).database
    with TestClient(create_app(scratch)) as client:
        assert client.post("/codes/blocks", json=BLOCK, headers=headers).status_code == 201
        before = _ledger(scratch)
        with engine_for(scratch).begin() as c:
            fresh_key = str(credentials.create_api_key(c, "start-admin", "read-only")["key"])
        with _psql(_admin(scratch)) as c:  # as after a failover to a standby: every new session is read-only
            c.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        try:
            client.app.state.engine.dispose()  # type: ignore[attr-defined]
            _unavailable(client.post("/codes/blocks", json=BLOCK, headers=headers), "read-only")
            # an authenticated read with a key never used before, whose first use is written down (last_used_at)
            r = client.get("/divisions", params={"name": "大冶"}, headers={"X-API-Key": fresh_key})
            assert r.status_code == 200, r.text
            assert client.get("/divisions", params={"name": "大冶"}).status_code == 200
            assert _ledger(scratch) == before
        finally:
            with _psql(_admin(scratch)) as c:
                c.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
        client.app.state.engine.dispose()  # type: ignore[attr-defined]
        assert client.post("/codes/blocks", json=BLOCK, headers=headers).status_code == 201


def test_a_write_over_the_statement_timeout_is_a_503_and_leaves_nothing(
        scratch: str, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """CITYGRID_DB_STATEMENT_TIMEOUT=1 and the code counter locked by someone else: the allocation is cancelled
    after a second and answered 503 saying so; nothing of it is in the ledger."""
    from api.main import create_app

    monkeypatch.setenv("CITYGRID_DB_STATEMENT_TIMEOUT", "1")
    get_settings.cache_clear()
    url = scratch + "?application_name=cg-timeout"  # an engine of its own, with this timeout
    try:
        with TestClient(create_app(url)) as client, _psql(scratch) as lock:
            before = _ledger(scratch)
            lock.execute("BEGIN")
            lock.execute("LOCK TABLE code_counter IN EXCLUSIVE MODE")
            _unavailable(client.post("/codes/blocks", json=BLOCK, headers=headers), "statement timeout")
            lock.execute("COMMIT")
            assert _ledger(scratch) == before
            assert client.post("/codes/blocks", json=BLOCK, headers=headers).status_code == 201
    finally:
        monkeypatch.delenv("CITYGRID_DB_STATEMENT_TIMEOUT")
        get_settings.cache_clear()

