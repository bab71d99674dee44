"""Backups that restore: `pg_dump` (custom format) of the database plus the files citygrid keeps beside it, with a
manifest that lets a restore prove it got back what was saved.

Why a manifest of counts and checksums: a dump that `pg_restore` accepts is not yet a dump that holds the county's
codes. The manifest is computed in the very snapshot `pg_dump` reads (`pg_export_snapshot` / `--snapshot`), so a
backup of a live server still agrees with itself, and `restore` recomputes it on the restored database and refuses
to call the restore good when a single table differs.

What is where: submissions (raw files, attachments) live in the database (`submission.raw`,
`submission_attachment.data`); batch geocoding uploads and results live in `<data_dir>/batches` and are copied as
files. The keyring (`keyring.json`) is deliberately *not* in the backup: encrypted personal fields and the key that
opens them should not travel together. The manifest lists the key ids the data needs, and `restore` says which of
them the keyring in use lacks.

Point-in-time recovery (WAL archiving) is the README's "Backups" section; `archive_command` there is tested by
tests/test_reliability_backup.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from citygrid import __version__
from citygrid.db.cluster import pg_bin
from citygrid.settings import child_environment

MANIFEST = "manifest.json"
DUMP = "database.dump"
FILES = "files"
FORMAT = 1
# The directories under data_dir whose files belong to the data (job records point at them).
DATA_DIRS = ("batches",)
# Text output of every type fixed, so a checksum computed here equals one computed on another server.
_SESSION = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
            "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET row_security = off")
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1
"""
# Extensions the restore leaves to `migrate.extensions` (pgaudit needs the server to preload it, which a fresh
# cluster may not), rather than failing the whole restore on them.
_SKIP_EXTENSIONS = ("pgaudit",)


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


def _libpq_env(url: str) -> dict[str, str]:
    """libpq's environment for a SQLAlchemy URL: the password never appears on a command line (`ps`)."""
    u = make_url(url)
    return child_environment({key: str(value) for key, value in (
        ("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username), ("PGPASSWORD", u.password),
        ("PGDATABASE", u.database)) if value is not None})


def _conninfo(url: str, database: str | None = None) -> str:
    u = make_url(url)
    parts = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
             "dbname": database or u.database}
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})


def _tool(name: str) -> str:
    return str(pg_bin() / name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    return [str(r[0]) for r in conn.execute(_TABLES).fetchall()]


def table_checksums(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    """Rows and an order-independent checksum (md5 over the sorted md5 of each row's text) of every table that is
    not an extension's, in the connection's current snapshot."""
    conn.execute(_SESSION)
    out: dict[str, dict[str, Any]] = {}
    for table in _tables(conn):
        q = sql.SQL("SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) "
                    "FROM (SELECT md5(t::text) AS h FROM {} t) s").format(sql.SQL(table))
        row = conn.execute(q).fetchone()
        assert row is not None
        out[table] = {"rows": int(row[0]), "md5": str(row[1])}
    return out


def _facts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What a person restoring wants to see at a glance: the schema revision, the code ledger, the keys needed."""
    has = {t.split(".")[-1] for t in _tables(conn)}
    alembic = conn.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in has else None
    codes = [{"division": d, "class": c, "issued": int(n), "max_serial": int(m)} for d, c, n, m in conn.execute(
        "SELECT division_code, class_code, count(*), max(serial) FROM issued_code GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()] if "issued_code" in has else []
    counters = {f"{d}/{c}": int(n) for d, c, n in conn.execute(
        "SELECT division_code, class_code, next_serial FROM code_counter ORDER BY 1, 2").fetchall()} \
        if "code_counter" in has else {}
    kids: set[str] = set()
    if "person" in has:
        kids |= {str(r[0]) for r in conn.execute("SELECT DISTINCT pii_kid FROM person WHERE pii_kid IS NOT NULL")}
    if "api_key" in has:
        kids |= {str(r[0]) for r in conn.execute(
            "SELECT DISTINCT hash_kid FROM api_key WHERE hash_kid IS NOT NULL AND revoked_at IS NULL")}
    return {"alembic": alembic[0] if alembic else None, "codes": codes, "code_counters": counters,
            "keys_needed": sorted(kids)}


def _copy_files(data_dir: Path, out: Path) -> dict[str, dict[str, Any]]:
    listing: dict[str, dict[str, Any]] = {}
    for name in DATA_DIRS:
        src = data_dir / name
        if not src.is_dir():
            continue
        shutil.copytree(src, out / FILES / name)
        for p in sorted((out / FILES / name).rglob("*")):
            if p.is_file():
                listing[p.relative_to(out / FILES).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    return listing


def backup(url: str, out: Path, data_dir: Path) -> dict[str, Any]:
    """Write `out/database.dump`, `out/files/…` and `out/manifest.json`; return the manifest. `out` must not exist
    or be empty (a backup is never written over another one)."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a new directory (nothing was written)")
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    try:
        with psycopg.connect(_conninfo(url)) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute("SELECT pg_export_snapshot(), current_database(), "
                               "current_setting('server_version')").fetchone()
            assert row is not None
            snapshot, database, server = row
            # pg_dump reads the snapshot this transaction holds open; the manifest below reads the same one
            res = subprocess.run([_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-password",
                                  "--file", str(out / DUMP)], env=_libpq_env(url), capture_output=True, text=True)
            if res.returncode != 0:
                raise BackupError(f"pg_dump failed: {res.stderr.strip()}")
            tables = table_checksums(conn)
            facts = _facts(conn)
            conn.rollback()
        files = _copy_files(data_dir, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half backup that looks like a whole one
        raise
    manifest = {
        "format": FORMAT, "citygrid_version": __version__, "created_at": started.isoformat(),
        "database": database, "server_version": server, "snapshot": snapshot,
        "dump": {"file": DUMP, "bytes": (out / DUMP).stat().st_size, "sha256": _sha256(out / DUMP)},
        **facts, "tables": tables, "files": files,
        "not_included": "the keyring (keyring.json / CITYGRID_KEYRING): keep it apart; keys_needed lists its key ids",
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.rename(out / MANIFEST)  # the manifest appears last and whole: a directory without one is no backup
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of a backup directory, after checking that the dump and every file are the ones it lists."""
    path = src / MANIFEST
    if not path.is_file():
        raise BackupError(f"{src} holds no {MANIFEST}: it is not a citygrid backup, or the backup did not finish")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: backup format {manifest.get('format')!r}, this citygrid reads {FORMAT}")
    dump = src / manifest["dump"]["file"]
    if not dump.is_file() or _sha256(dump) != manifest["dump"]["sha256"]:
        raise BackupError(f"{dump} is missing or damaged (its SHA-256 is not the manifest's): nothing was restored")
    for rel, meta in manifest["files"].items():
        p = src / FILES / rel
        if not p.is_file() or _sha256(p) != meta["sha256"]:
            raise BackupError(f"{p} is missing or damaged (its SHA-256 is not the manifest's): nothing was restored")
    return manifest


def _known_revision(revision: str | None) -> None:
    from alembic.script import ScriptDirectory

    from citygrid.db.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    if revision is not None and revision not in {s.revision for s in scripts.walk_revisions()}:
        raise BackupError(f"the backup is at migration {revision}, which this citygrid does not know (its newest is "
                          f"{scripts.get_current_head()}): restore it with the citygrid version that made it "
                          f"(nothing was restored)")


def _user_tables(url: str) -> int:
    with psycopg.connect(_conninfo(url)) as conn:
        return len(_tables(conn))


def _roles(url: str) -> None:
    """The application's roles, which live in the cluster, not in the dump: created as migration 0017 does."""
    from citygrid.db.migrate import MIGRATIONS

    spec = importlib.util.spec_from_file_location(
        "citygrid_migration_0017", MIGRATIONS / "versions" / "0017_app_role_and_row_security.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(module.ROLES)


@contextmanager
def _restore_list(dump: Path, env: dict[str, str]) -> Iterator[Path]:
    """pg_restore's table of contents without the extensions the server must preload (`_SKIP_EXTENSIONS`)."""
    res = subprocess.run([_tool("pg_restore"), "--list", str(dump)], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise BackupError(f"pg_restore --list failed: {res.stderr.strip()}")
    keep = [line for line in res.stdout.splitlines()
            if not any(f"EXTENSION - {x} " in line or f"EXTENSION {x} " in line or line.endswith(f"EXTENSION - {x}")
                       for x in _SKIP_EXTENSIONS)]
    path = dump.parent / f".restore-{os.getpid()}.list"
    try:
        path.write_text("\n".join(keep) + "\n", encoding="utf-8")
        yield path
    finally:
        path.unlink(missing_ok=True)


def restore(src: Path, url: str, data_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Restore a backup into the database of `url` (created when missing) and its files under `data_dir`.

    Refuses, before touching anything, a damaged backup, one from a newer schema, and a database that already holds
    tables or a data directory that already holds files, unless `force` (which drops that database first). The
    restore is one transaction: it lands whole or not at all. Afterwards every table's rows and checksum are
    compared with the manifest; the result says what matched and which keys the current keyring lacks."""
    manifest = read_manifest(src)
    _known_revision(manifest.get("alembic"))
    target = make_url(url)
    database = target.database
    if not database:
        raise BackupError(f"{target.render_as_string(hide_password=True)} names no database")
    with psycopg.connect(_conninfo(url, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None
    tables = _user_tables(url) if exists else 0
    occupied = [name for name in DATA_DIRS if (data_dir / name).is_dir() and any((data_dir / name).iterdir())]
    if not force and tables:
        raise BackupError(f"database {database} already holds {tables} tables: restore into an empty or new database, "
                          f"or pass --force to replace it (its content is dropped); nothing was restored")
    if not force and occupied:
        raise BackupError(f"{data_dir / occupied[0]} already holds files: pass --force to replace them; nothing was "
                          f"restored")
    with psycopg.connect(_conninfo(url, "postgres"), autocommit=True) as admin:
        if exists and force:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            exists = False
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    _roles(url)
    env = _libpq_env(url)
    # PostGIS will not install while pgaudit logs DDL (citygrid/db/migrate.py); harmless where pgaudit is absent
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c pgaudit.log=none").strip()
    dump = src / manifest["dump"]["file"]
    with _restore_list(dump, env) as listing:
        res = subprocess.run([_tool("pg_restore"), "--exit-on-error", "--single-transaction", "--no-owner",
                              "--no-password", "--use-list", str(listing), "--dbname", database, str(dump)],
                             env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored (one transaction): {res.stderr.strip()}")
    with psycopg.connect(_conninfo(url)) as conn:
        got = table_checksums(conn)
        conn.rollback()
    differ = sorted(t for t in manifest["tables"].keys() | got.keys() if manifest["tables"].get(t) != got.get(t))
    if differ:
        raise BackupError(f"the restored database differs from the backup in {len(differ)} tables: "
                          f"{', '.join(differ[:10])}")
    from citygrid.db.migrate import extensions

    extensions(url)  # what the dump cannot carry: pgaudit where preloaded, PostGIS's && LEAKPROOF
    for name in DATA_DIRS:
        if (src / FILES / name).is_dir():
            shutil.rmtree(data_dir / name, ignore_errors=True)
            shutil.copytree(src / FILES / name, data_dir / name)
    from citygrid.security import keys

    have = set(keys.current().keys)
    return {"database": database, "tables": len(got), "rows": sum(t["rows"] for t in got.values()),
            "checksums": "match", "alembic": manifest.get("alembic"), "files": len(manifest["files"]),
            "keys_missing": sorted(set(manifest["keys_needed"]) - have)}
