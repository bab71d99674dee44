"""The audit log nobody can rewrite (migration 0016, `citygrid/security/audit.py`): writes and personal reads are
recorded with who, roles, what, from where and the outcome; the hash chain verifies; the application role cannot
UPDATE, DELETE or TRUNCATE it (grants) and nobody can without switching triggers off; a superuser who does is
caught by `verify` and by `citygrid audit verify`; concurrent writers never fork the chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session

from citygrid.address import nodes
from citygrid.catalog import get_catalog
from citygrid.coding.allocator import allocate
from citygrid.db.engine import app_database_url, app_engine_for
from citygrid.grid import multi
from citygrid.registry import objects
from citygrid.security import audit, credentials
from citygrid.security.principal import ANONYMOUS, SYSTEM, Grant, Principal, RequestMeta
from citygrid.security.scope import scoped, scoped_session

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Principal(kind="user", name="audit-admin", id=uuid.uuid4(), grants=(Grant("admin"),), clearance="L4",
                  personal=True, meta=RequestMeta(client="203.0.113.7", user_agent="pytest-audit/1.0"))


@pytest.fixture(scope="module")
def app_engine(database_url: str) -> Engine:
    """The engine the web application uses: logged in as citygrid_app."""
    return app_engine_for(app_database_url(database_url))


def _last(engine: Engine, **where: str) -> Any:
    cond = " AND ".join(f"{k} = :{k}" for k in where) or "TRUE"
    with engine.connect() as c:
        return c.execute(text(f"SELECT * FROM audit_log WHERE {cond} ORDER BY seq DESC LIMIT 1"), where).first()


def _verify(engine: Engine) -> audit.Report:
    with engine.connect() as c:
        return audit.verify(c)


def test_a_record_carries_who_what_where_and_the_chain_verifies(app_engine: Engine, engine: Engine) -> None:
    target = f"t-{uuid.uuid4().hex[:8]}"
    with scoped_session(app_engine, ADMIN) as s:
        audit.record(s, ADMIN, "update", target, fields=["phone", "name", "name"], detail={"why": "test"})
        assert _last(engine, target=target) is None  # a session's rows are written as it commits
    row = _last(engine, target=target)
    assert (row.principal, row.principal_id, row.roles, row.action, row.fields, row.detail) == (
        "audit-admin", ADMIN.id, ["admin"], "update", ["name", "phone"], {"why": "test"})
    assert (row.client_addr, row.user_agent, row.outcome, row.error_code) == (
        "203.0.113.7", "pytest-audit/1.0", "ok", None)
    before = _last(engine)
    assert row.seq == before.seq and len(bytes(row.hash)) == 32
    report = _verify(engine)
    assert report.ok and report.rows >= 1 and report.head_seq == row.seq and report.head_hash == bytes(row.hash).hex()


def test_a_rolled_back_act_leaves_no_record_and_no_gap(app_engine: Engine, engine: Engine) -> None:
    head = _verify(engine).head_seq
    with pytest.raises(RuntimeError), scoped_session(app_engine, ADMIN) as s:
        audit.record(s, ADMIN, "create", "never")
        raise RuntimeError("the act failed")
    with app_engine.connect() as c:  # a connection's record is written at once, and rolled back with it
        scoped(c, ADMIN)
        audit.record(c, ADMIN, "create", "never")
        c.rollback()
    s = Session(app_engine)  # a session closed without committing, then used again: its old row stays out
    scoped(s.connection(), ADMIN)
    audit.record(s, ADMIN, "create", "never")
    s.close()
    with s.begin():
        scoped(s.connection(), ADMIN)
    audit.record_apart(app_engine, ADMIN, "create", "kept")
    assert _last(engine).seq == head + 1 and _last(engine, target="never") is None and _verify(engine).ok


def test_object_writes_are_recorded_with_their_fields(app_engine: Engine, engine: Engine) -> None:
    lamp = next(c for c in get_catalog().classes.values() if c.name == "路灯")
    with scoped_session(app_engine, ADMIN) as s:
        made = objects.create(s, ADMIN, objects.NewObject(lamp.code, {"type": "Point", "coordinates": [114.97, 30.10]},
                                                          {"state": "完好"}, division_code="420281"))
    with scoped_session(app_engine, ADMIN) as s:
        objects.update(s, ADMIN, made["code"], attrs={"state": "破损"})
    with engine.connect() as c:
        rows = c.execute(text("SELECT action, fields, principal FROM audit_log WHERE target = :t ORDER BY seq"),
                         {"t": made["code"]}).all()
    assert [tuple(r) for r in rows] == [("create", ["state"], "audit-admin"), ("update", ["state"], "audit-admin")]
    assert _verify(engine).ok


def test_grid_imports_and_code_blocks_are_recorded(app_engine: Engine, engine: Engine, demo_county: dict) -> None:
    lamp = next(c for c in get_catalog().classes.values() if c.name == "路灯")
    square = [[[114.970, 30.090], [114.975, 30.090], [114.975, 30.095], [114.970, 30.095], [114.970, 30.090]]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "A1", "name": "审计网格"},
         "geometry": {"type": "Polygon", "coordinates": square}}]}
    with scoped_session(app_engine, ADMIN) as s:
        multi.import_system(s.connection(), ADMIN, "auditgrid", fc)
        block = allocate(s, ADMIN, "420281", lamp.code, 3)
    grid, codes = _last(engine, target="auditgrid"), _last(engine, target=lamp.code, action="reserve_codes")
    assert (grid.action, grid.principal, grid.detail["cells"]) == ("grid_import", "audit-admin", 1)
    assert codes.detail["count"] == 3 and codes.detail["first"] == block[0] and _verify(engine).ok


def test_the_app_role_cannot_update_delete_or_truncate(app_engine: Engine) -> None:
    audit.record_apart(app_engine, SYSTEM, "probe", "append-only")
    for statement in ("UPDATE audit_log SET detail = '{}' WHERE target = 'append-only'",
                      "DELETE FROM audit_log WHERE target = 'append-only'", "TRUNCATE audit_log",
                      "UPDATE audit_head SET seq = 0", "INSERT INTO audit_head (one, seq, hash) VALUES (false, 0, '')"):
        with app_engine.connect() as c:
            scoped(c, SYSTEM)  # the widest scope the application ever takes
            with pytest.raises(ProgrammingError, match="permission denied"):
                c.execute(text(statement))


def test_triggers_refuse_even_the_owner(engine: Engine) -> None:
    """Grants stop the application role; the triggers stop everyone else who has not switched them off."""
    for statement in ("UPDATE audit_log SET detail = '{}'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with engine.connect() as c, pytest.raises(DBAPIError, match="append-only"):
            c.execute(text(statement))


@contextmanager
def _tampered(engine: Engine, sql: str, **params: object) -> Iterator[None]:
    """Do what a superuser could: switch the append-only trigger off, change the table, switch it on; undo after.
    The copy to undo from stays in the server (a table), and only the rows that differ are put back: the whole
    log went through Python before, 200 s per tamper once the session's other tests had filled it."""
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS audit_log_saved"))
        c.execute(text("CREATE UNLOGGED TABLE audit_log_saved AS SELECT * FROM audit_log"))
        c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        c.execute(text(sql), params)
        c.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))
    try:
        yield
    finally:
        with engine.begin() as c:  # put the rows back exactly as they were
            c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change, "
                           "DISABLE TRIGGER audit_log_chain, DISABLE TRIGGER audit_log_head"))
            c.execute(text("DELETE FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM audit_log_saved s "
                           "WHERE s.id = a.id AND row(s.*) IS NOT DISTINCT FROM row(a.*))"))
            c.execute(text("INSERT INTO audit_log SELECT s.* FROM audit_log_saved s "
                           "WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.id = s.id)"))
            c.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change, ENABLE TRIGGER audit_log_chain, "
                           "ENABLE TRIGGER audit_log_head"))
            c.execute(text("DROP TABLE audit_log_saved"))
        assert _verify(engine).ok


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "citygrid.cli", "audit", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_an_edit_by_a_superuser_is_detected_by_verify_and_the_cli(app_engine: Engine, engine: Engine,
                                                                  database_url: str) -> None:
    for i in range(3):
        audit.record_apart(app_engine, ADMIN, "update", f"edit-{i}")
    victim = _last(engine, target="edit-1")
    ok = _cli(database_url, "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with _tampered(engine, "UPDATE audit_log SET detail = '{\"forged\": true}' WHERE id = :i", i=victim.id):
        report = _verify(engine)
        assert not report.ok and report.broken_at is not None
        assert (report.broken_at["id"], report.broken_at["seq"], report.broken_at["problem"]) == (
            victim.id, victim.seq, "edited")
        res = _cli(database_url, "verify")
        assert res.returncode == 1 and f"seq {victim.seq}" in res.stdout, res.stdout + res.stderr


def test_a_deleted_row_is_a_gap_and_deleted_newest_rows_leave_the_head_ahead(app_engine: Engine,
                                                                          engine: Engine) -> None:
    for i in range(3):
        audit.record_apart(app_engine, ADMIN, "update", f"gap-{i}")
    middle, newest = _last(engine, target="gap-1"), _last(engine, target="gap-2")
    with _tampered(engine, "DELETE FROM audit_log WHERE id = :i", i=middle.id):
        report = _verify(engine)
        assert not report.ok and report.broken_at is not None
        assert (report.broken_at["seq"], report.broken_at["problem"]) == (newest.seq, "gap")
        assert f"{middle.seq}..{middle.seq}" in report.broken_at["detail"]
    with _tampered(engine, "DELETE FROM audit_log WHERE id = :i", i=newest.id):
        report = _verify(engine)
        assert not report.ok and report.broken_at is not None and report.broken_at["problem"] == "tail"


def test_a_rewritten_chain_is_caught_by_an_anchor(app_engine: Engine, engine: Engine) -> None:
    audit.record_apart(app_engine, ADMIN, "update", "anchored")
    head = _verify(engine)
    anchor = (head.head_seq, head.head_hash)
    with engine.connect() as c:
        assert audit.verify(c, anchor).ok
        assert not audit.verify(c, (head.head_seq, "00" * 32)).ok


def test_concurrent_writers_leave_one_valid_chain(app_engine: Engine, engine: Engine) -> None:
    before = _verify(engine)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(15):
                with scoped_session(app_engine, ADMIN) as s:
                    audit.record(s, ADMIN, "update", f"w{n}-{i}")
                    audit.record(s, ADMIN, "update", f"w{n}-{i}-b")
                if i % 5 == 0:  # some give up half way: their rows and their seq numbers vanish together
                    with app_engine.connect() as c:
                        scoped(c, ADMIN)
                        audit.record(c, ADMIN, "update", "abandoned")
                        c.rollback()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    after = _verify(engine)
    assert after.ok, after
    assert after.rows - before.rows == after.head_seq - before.head_seq == 8 * 15 * 2


def test_processes_writing_at_once_leave_one_valid_chain(app_engine: Engine, engine: Engine) -> None:
    before = _verify(engine)
    code = ("import sys; from sqlalchemy import create_engine, text\n"
            "e = create_engine(sys.argv[1])\n"
            "for i in range(20):\n"
            "    with e.begin() as c:\n"
            "        c.execute(text(\"SELECT set_config('role', 'citygrid_all', true)\"))\n"
            "        c.execute(text(\"INSERT INTO audit_log (principal, action, target) VALUES ('proc', 'p', :t)\"),"
            " {'t': f'{sys.argv[2]}-{i}'})\n")
    url = app_engine.url.render_as_string(hide_password=False)
    procs = [subprocess.Popen([sys.executable, "-c", code, url, f"p{n}"]) for n in range(4)]
    assert [p.wait(120) for p in procs] == [0] * 4
    after = _verify(engine)
    assert after.ok and after.head_seq - before.head_seq == 80


def test_reads_of_personal_fields_are_recorded(app_engine: Engine, engine: Engine, demo_county: dict) -> None:
    with engine.connect() as c:
        room = c.execute(text("SELECT a.code FROM person p JOIN addr_node a ON a.id = p.room_id LIMIT 1")).scalar_one()
    with app_engine.connect() as c:
        shown = nodes.describe(scoped(c, ADMIN), ADMIN, room)
    assert shown["persons"] and not any(p.get("masked") for p in shown["persons"])
    row = _last(engine, target=room, action="read_personal")
    assert row is not None and row.principal == "audit-admin" and row.fields == sorted(audit.PERSON_FIELDS)
    assert row.client_addr == "203.0.113.7" and row.detail == {"persons": len(shown["persons"])}
    with app_engine.connect() as c:  # the public: row-level security hands it no person at all, nothing to record
        public = nodes.describe(scoped(c, ANONYMOUS), ANONYMOUS, room)
    assert public["persons"] is None and public["house"] is None
    assert _last(engine, target=room, action="read_personal").seq == row.seq


def _api_key(engine: Engine, grants: list[Grant], clearance: str = "L2") -> str:
    name = f"a-{uuid.uuid4().hex[:8]}"
    with engine.begin() as c:
        credentials.add_principal(c, name, kind="service", grants=grants, clearance=clearance, by="test")
        return str(credentials.create_api_key(c, name, "audit test")["key"])


def test_refusals_are_recorded_with_the_error_code_and_origin(client: TestClient, engine: Engine) -> None:
    r = client.get("/audit", headers={"User-Agent": "curious/0.1"})
    assert r.status_code == 401 and r.json()["error_code"] == "unauthenticated"
    row = _last(engine, action="GET /audit")
    assert (row.principal, row.outcome, row.error_code, row.user_agent, row.client_addr) == (
        "anonymous", "refused", "unauthenticated", "curious/0.1", "testclient")
    key = _api_key(engine, [Grant("department", "420281", "natural_resources")])
    r = client.get("/audit/verify", headers={"X-API-Key": key})
    assert r.status_code == 403
    row = _last(engine, action="GET /audit/verify")
    assert row.outcome == "refused" and row.error_code == "forbidden" and row.roles == [
        "department:natural_resources@420281"]


def test_admins_query_and_verify_through_the_api(client: TestClient, engine: Engine, app_engine: Engine) -> None:
    key = _api_key(engine, [Grant("admin")], "L4")
    audit.record_apart(app_engine, ADMIN, "update", "api-visible")
    h = {"X-API-Key": key}
    r = client.get("/audit", params={"target": "api-visible", "principal": "audit-admin"}, headers=h)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["target"] for i in items] == ["api-visible"] and len(items[0]["hash"]) == 64
    assert client.get("/audit", params={"since": "yesterday"}, headers=h).json()["error_code"] == "datetime_invalid"
    assert client.get("/audit", params={"since": "2000-01-01", "limit": 3}, headers=h).json()["count"] == 3
    v = client.get("/audit/verify", headers=h).json()
    assert v["ok"] is True and v["broken_at"] is None
    assert _last(engine, action="read_audit").outcome == "ok"  # reading the log is itself recorded


def test_export_writes_a_verifiable_copy(engine: Engine, database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    res = _cli(database_url, "export", "--since", "2000-01-01", "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + len(rows)))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert _cli(database_url, "export", "--since", "soon", "--out", str(out)).returncode == 2


def test_migration_chained_the_rows_written_before_it(engine: Engine) -> None:
    """Rows of 0001's audit log (no hashes) joined the chain in id order; the first links to 32 zero bytes."""
    with engine.connect() as c:
        first = c.execute(text("SELECT seq, prev_hash FROM audit_log ORDER BY seq LIMIT 1")).first()
    assert first is None or (first.seq == 1 and bytes(first.prev_hash) == bytes(32))
