"""Backups that restore, for real: a small county database (the demo county's divisions, a small demo, codes, a
survey submission) and its batch files are backed up with `citygrid backup`, restored with `citygrid restore` into a
fresh PostgreSQL cluster of their own (roles, extensions and all), and compared table by table: row counts, a
checksum per table, the issued codes and the ledger's highest serials. The restore refuses a database that holds
tables (unless --force) and a damaged backup, before touching anything. The fresh cluster archives its WAL
(`archive_mode = on`, the README's `archive_command`): a forced WAL switch puts the segment in the archive."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from citygrid.db.backup import BackupError, read_manifest, restore
from citygrid.db.cluster import Cluster
from citygrid.db.engine import engine_for

ROOT = Path(__file__).resolve().parents[1]
CITYGRID = str(Path(sys.executable).parent / "citygrid")
# What the README gives for production, with the archive directory of the test: never over an archived segment,
# and copied under a temporary name first, so a segment that is in the archive is whole (a plain `cp` is seen
# half-written: this test caught it).
ARCHIVE_COMMAND = "test ! -f {dir}/%f && cp %p {dir}/%f.part && mv {dir}/%f.part {dir}/%f"


def _psql(url: str) -> psycopg.Connection[Any]:
    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True)


@pytest.fixture(scope="module")
def source(database_url: str) -> Iterator[tuple[str, Path]]:
    """A database of the suite's cluster with the demo county's divisions only (the whole of China would make the
    test a minute longer and prove nothing more), a small demo, codes and a submission; and a data directory with
    a batch job's files."""
    from citygrid.demo.load import load_demo
    from citygrid.security.principal import system_as
    from citygrid.survey import intake, template

    name = f"citygrid_bk_src_{os.getpid()}"
    suite = make_url(database_url)
    url = suite.set(database=name).render_as_string(hide_password=False)
    with _psql(suite.set(database="postgres").render_as_string(hide_password=False)) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name} TEMPLATE citygrid_tmpl")
    with _psql(url) as c:  # keep the province, the prefecture and 大冶市's divisions (cheap: truncate, put back)
        c.execute("CREATE TEMP TABLE d AS SELECT * FROM division WHERE code = '42' OR code LIKE '4202%'")
        c.execute("CREATE TEMP TABLE dc AS SELECT * FROM division_code WHERE division_code IN (SELECT code FROM d)")
        c.execute("TRUNCATE division, division_code")
        c.execute("INSERT INTO division SELECT * FROM d ORDER BY level")
        c.execute("INSERT INTO division_code SELECT * FROM dc")
    engine = engine_for(url)
    load_demo(engine, seed=11, scale=0.01)
    with engine.connect() as c:
        village, x, y = c.execute(text(
            "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM division "
            "WHERE level = 5 AND code LIKE '420281%' AND geom IS NOT NULL ORDER BY code LIMIT 1")).one()
    from citygrid.catalog import get_catalog

    wb = load_workbook(io.BytesIO(template.build(get_catalog().classes["010101"])))
    ws = wb["数据"]
    col = {str(h.value).lstrip("*").split("（")[0]: i for i, h in enumerate(ws[1], start=1)}
    for i in range(3):
        for label, value in (("名称", f"井{i}"), ("经度", x + i * 1e-5), ("纬度", y), ("状态", "完好")):
            ws.cell(2 + i, col[label], value)
    buf = io.BytesIO()
    wb.save(buf)

    def tx() -> Any:
        from contextlib import contextmanager

        @contextmanager
        def t() -> Iterator[Session]:
            with Session(engine) as s, s.begin():
                yield s
        return t()

    intake.submit(tx, system_as("t-backup"), "010101", village, buf.getvalue(), source="xlsx")
    data = ROOT / f".citygrid-backup-data-{os.getpid()}"
    (data / "batches" / "job1").mkdir(parents=True, exist_ok=True)
    (data / "batches" / "job1" / "input-a.csv").write_text("编号,地址\n1,大冶市金湖街道\n", encoding="utf-8")
    (data / "batches" / "job1" / "result.csv").write_bytes(b"\xef\xbb\xbfid,status\n1,matched\n")
    try:
        yield url, data
    finally:
        engine.dispose()
        shutil.rmtree(data, ignore_errors=True)
        with _psql(suite.set(database="postgres").render_as_string(hide_password=False)) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def fresh() -> Iterator[tuple[Cluster, Path]]:
    """A new cluster of its own that archives its WAL into a directory, as production should."""
    cluster = Cluster(ROOT / f".citygrid-backup-{os.getpid()}")
    archive = cluster.root / "wal-archive"
    cluster.init()
    archive.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(archive, "postgres", "postgres")
    with (cluster.pgdata / "postgresql.conf").open("a") as f:
        f.write(f"\narchive_mode = on\narchive_command = '{ARCHIVE_COMMAND.format(dir=archive)}'\n")
    cluster.start()
    try:
        yield cluster, archive
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CITYGRID, *args], capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT,
                          timeout=300)


def _facts(url: str) -> dict[str, Any]:
    with _psql(url) as c:
        return {
            "codes": c.execute("SELECT code FROM issued_code ORDER BY code").fetchall(),
            "objects": c.execute("SELECT code, class_code, ST_AsEWKB(geom) FROM city_object ORDER BY code").fetchall(),
            "ledger": c.execute("SELECT division_code, class_code, max(serial), count(*) FROM issued_code "
                                "GROUP BY 1, 2 ORDER BY 1, 2").fetchall(),
            "counters": c.execute("SELECT * FROM code_counter ORDER BY 1, 2").fetchall(),
            "submissions": c.execute("SELECT id, status, raw, sha256 FROM submission ORDER BY id").fetchall(),
            "alembic": c.execute("SELECT version_num FROM alembic_version").fetchone(),
        }


def test_a_backup_restores_into_a_fresh_cluster_with_every_table_equal(
        source: tuple[str, Path], fresh: tuple[Cluster, Path], tmp_path: Path) -> None:
    src_url, data = source
    cluster, _ = fresh
    out = tmp_path / "bk"
    r = _cli("backup", "--out", str(out), env={"DATABASE_URL": src_url, "CITYGRID_DATA_DIR": str(data)})
    assert r.returncode == 0, r.stdout + r.stderr
    m = read_manifest(out)
    before = _facts(src_url)
    assert before["codes"] and before["submissions"] and len(before["objects"]) > 0
    assert m["tables"]["public.issued_code"]["rows"] == len(before["codes"])
    assert m["tables"]["public.city_object"]["rows"] == len(before["objects"])
    assert [(c["division"], c["class"], c["max_serial"], c["issued"]) for c in m["codes"]] == \
        [tuple(r) for r in before["ledger"]]
    assert (m["alembic"],) == before["alembic"] and set(m["files"]) == {"batches/job1/input-a.csv",
                                                                      "batches/job1/result.csv"}
    assert "public.spatial_ref_sys" not in m["tables"]  # PostGIS's own, not ours

    target = make_url(cluster.url()).set(database="county").render_as_string(hide_password=False)
    restored = tmp_path / "restored-data"
    r = _cli("restore", str(out), "--database-url", target, env={"CITYGRID_DATA_DIR": str(restored)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "every table matches" in r.stdout
    assert _facts(target) == before  # codes, objects (geometry bytes), ledger, counters, raw submissions
    with _psql(target) as c:  # the manifest's checksums, recomputed here independently of restore()'s own check
        from citygrid.db.backup import table_checksums

        assert table_checksums(c) == m["tables"]
        # the application's roles exist in the new cluster and its grants came back with the dump
        assert c.execute("SELECT has_table_privilege('citygrid_all', 'city_object', 'SELECT')").fetchone() == (True,)
    for rel in m["files"]:
        assert (restored / rel).read_bytes() == (data / rel).read_bytes()

    # the restored database is one citygrid starts on: migrations find it at head
    from citygrid.db.migrate import check_revision

    assert (check_revision(target),) == before["alembic"]
    engine_for(target).dispose()


def test_restore_refuses_a_database_with_tables_and_a_damaged_backup_before_touching_anything(
        source: tuple[str, Path], fresh: tuple[Cluster, Path], tmp_path: Path) -> None:
    from citygrid.db.backup import backup

    src_url, data = source
    cluster, _ = fresh
    out = tmp_path / "bk"
    backup(src_url, out, data)
    target = make_url(cluster.url()).set(database="county2").render_as_string(hide_password=False)
    restore(out, target, tmp_path / "d1")
    with _psql(target) as c:
        c.execute("INSERT INTO data_source (name, edition, detail) VALUES ('marker', 'x', '{}')")

    with pytest.raises(BackupError, match="already holds .* tables: .*--force"):
        restore(out, target, tmp_path / "d2")
    with _psql(target) as c:  # untouched
        assert c.execute("SELECT count(*) FROM data_source WHERE name = 'marker'").fetchone() == (1,)

    r = _cli("restore", str(out), "--database-url", target, env={"CITYGRID_DATA_DIR": str(tmp_path / "d2")})
    assert r.returncode == 2 and "--force" in r.stdout and "Traceback" not in r.stdout + r.stderr

    with pytest.raises(BackupError, match="holds no manifest.json"):
        restore(tmp_path, target, tmp_path / "d2", force=True)
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    with (damaged / "database.dump").open("r+b") as f:
        f.seek(2000)
        byte = f.read(1)
        f.seek(2000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BackupError, match="damaged"):
        restore(damaged, target, tmp_path / "d2", force=True)
    with _psql(target) as c:
        assert c.execute("SELECT count(*) FROM data_source WHERE name = 'marker'").fetchone() == (1,)

    # --force replaces it: the marker is gone, the backup's content is back
    out2 = restore(out, target, tmp_path / "d1", force=True)
    assert out2["checksums"] == "match"
    with _psql(target) as c:
        assert c.execute("SELECT count(*) FROM data_source WHERE name = 'marker'").fetchone() == (0,)

    with pytest.raises(BackupError, match="not empty"):
        backup(src_url, out, data)  # never over another backup
    engine_for(target).dispose()


def test_wal_segments_reach_the_archive(fresh: tuple[Cluster, Path]) -> None:
    """The README's archive_command, for real: after a write and a forced switch, the segment is in the archive."""
    cluster, archive = fresh
    with _psql(cluster.url()) as c:
        c.execute("CREATE TABLE IF NOT EXISTS wal_probe (x int)")
        c.execute("INSERT INTO wal_probe VALUES (1)")
        segment = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        assert segment is not None
        c.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60  # a bound for the archiver, not a speed check
        while not (archive / segment[0]).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (archive / segment[0]).is_file()
        assert (archive / segment[0]).stat().st_size == 16 << 20
        failed = c.execute("SELECT failed_count FROM pg_stat_archiver").fetchone()
        assert failed == (0,)
